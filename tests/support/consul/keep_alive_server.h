#pragma once

// An httplib::Server whose connection threads sleep between keep-alive
// requests instead of polling.
//
// Debian's cpp-httplib 0.11 waits for a connection's next request in a loop
// of poll(10 ms) + sleep(1 ms): every idle keep-alive connection wakes its
// worker ~90 times a second. A bridge watching thousands of services keeps
// that many connections, and each one idles between an answer and the next
// blocking query; measured at 2,000 services, that loop alone was ~95% of
// both cores (load average in the hundreds). Here a connection's worker
// blocks in one poll() on the socket and a stop eventfd until the next
// request arrives, the keep-alive timeout passes, or Stop() is called, and
// then hands the request to httplib's own parser, router and writer.
//
// Answers are compressed only with gzip, as Consul's are: httplib alone
// would pick brotli at its slowest setting for any client accepting it.
//
// Every connection is served on its own thread from the moment it is
// accepted (Go serves each on its own goroutine), so a connection is counted
// against the per-client-IP limit when it opens, as Consul counts it, never
// later when a pooled worker gets to it.
//
// Thread-safety: as httplib::Server; Stop() may be called from any thread.

#include <httplib.h>

#include "tests/support/consul/connection_limiter.h"

namespace hb::test_support {

class KeepAliveServer : public httplib::Server {
 public:
  // `limiter` counts (and may refuse) every connection; it must outlive
  // the server.
  explicit KeepAliveServer(ConnectionLimiter& limiter);
  ~KeepAliveServer() override;

  KeepAliveServer(const KeepAliveServer&) = delete;
  KeepAliveServer& operator=(const KeepAliveServer&) = delete;

  // Stops listening and closes idle keep-alive connections now (httplib's
  // own loop would hold them until their keep-alive timeout). Requests in a
  // handler finish first; wake them before calling this.
  void Stop();

 private:
  // Serves one connection on a worker thread until it closes, idles past
  // the keep-alive timeout, or Stop() is called; then closes it.
  bool process_and_close_socket(socket_t sock) override;

  ConnectionLimiter& limiter_;
  const int stop_fd_;  // eventfd: readable once Stop() was called
};

}  // namespace hb::test_support
