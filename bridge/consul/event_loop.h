#pragma once

// One thread that drives libcurl's multi interface, timers and posted tasks,
// so thousands of concurrent blocking queries share one thread and a pool of
// keep-alive connections. It uses curl's socket-action API over epoll: an
// answer on one connection costs work for that transfer only, where
// curl_multi_perform() would check every held long-poll (one poll() per
// transfer) on each wakeup.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/common/status.h"
#include "bridge/consul/consul_client_options.h"

namespace hb {

// What every request to Consul shares, on a libcurl easy handle (a CURL*,
// taken as void* to keep curl out of this header): HTTP and HTTPS only,
// and consul.tls's files and verification.
void ApplyConsulTransport(void* easy_handle, const TlsSettings& tls);
// With consul.tls.server_name: rewrites `url` to ask for that name and
// returns the curl --connect-to rule ("name:port:host:port") that routes it
// to the configured host, so the certificate is checked against the name.
// "" (and `url` unchanged) without one.
std::string RouteToServerName(std::string& url, const TlsSettings& tls);

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;          // "Name: value"
  std::chrono::milliseconds timeout{30000};  // whole transfer
  std::chrono::milliseconds connect_timeout{5000};
  TlsSettings tls;
  // The most body bytes kept, after decompression; a larger answer aborts
  // the transfer (HttpResponse::too_large). 0: no limit.
  std::size_t max_body_bytes = 0;
  // Ask for a gzip-compressed answer (the only coding Consul sends).
  bool accept_gzip = true;
};

struct HttpResponse {
  Status transport;  // OK when an HTTP answer arrived (any status code)
  // The peer closed or reset the connection instead of answering (what a
  // server past its connection limit may look like when it closes before
  // our request was read).
  bool connection_reset = false;
  // The answer grew past HttpRequest::max_body_bytes and was cut off.
  bool too_large = false;
  long status = 0;
  std::string body;
  // Lower-case names; the last value of a repeated header.
  std::map<std::string, std::string> headers;
};

// Post(), RunAt() and CancelTimer() are thread-safe; StartGet() and
// CancelTransfer() run on the loop thread only. Tasks and callbacks run on
// the loop thread, one at a time.
class EventLoop {
 public:
  using TimerId = std::uint64_t;
  using TransferId = std::uint64_t;

  // `max_connections` > 0 caps the connections curl opens (to all hosts
  // together); transfers past it wait in curl for a free connection, so a
  // caller must not start more long-held transfers than that. 0: no cap.
  explicit EventLoop(std::size_t max_connections = 0);
  // Stops the thread; pending tasks, timers and transfers are dropped and
  // their callbacks never run.
  ~EventLoop();

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Post(std::function<void()> task);
  // Runs `task` on the loop thread and returns once it ran: at once when
  // called there, else posted. Not from a loop being destroyed.
  void RunAndWait(const std::function<void()>& task);
  // `when` is steady_clock time.
  TimerId RunAt(SteadyTime when, std::function<void()> task);
  void CancelTimer(TimerId id);
  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_; }

  TransferId StartGet(HttpRequest request, std::function<void(HttpResponse)> done);
  void CancelTransfer(TransferId id);

  // Transfers in flight (loop thread).
  std::size_t active_transfers() const { return transfers_.size(); }

 private:
  struct Transfer;

  // curl's CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION (CURL and
  // CURLM are void in curl.h; curl_socket_t is int).
  static int OnCurlSocket(void* easy, int fd, int what, void* loop, void* socket_data);
  static int OnCurlTimer(void* multi, long timeout_ms, void* loop);
  // CURLOPT_WRITEFUNCTION; `transfer` is the Transfer.
  static std::size_t OnCurlBody(char* data, std::size_t size, std::size_t count, void* transfer);
  // CURLOPT_HEADERFUNCTION; `transfer` is the Transfer.
  static std::size_t OnCurlHeader(char* data, std::size_t size, std::size_t count, void* transfer);

  void Run();
  void Wake();
  void RunDueTimers();
  void CompleteTransfers();
  std::chrono::milliseconds NextTimeout();

  void* multi_;        // CURLM*, owned
  int epoll_fd_ = -1;  // owned
  int wake_fd_ = -1;   // eventfd, owned: Post() and RunAt() from other threads
  std::thread thread_;
  std::thread::id thread_id_;

  Mutex mutex_;
  bool stop_ GUARDED_BY(mutex_) = false;
  std::deque<std::function<void()>> tasks_ GUARDED_BY(mutex_);
  std::multimap<SteadyTime, TimerId> timer_order_ GUARDED_BY(mutex_);
  std::map<TimerId, std::function<void()>> timers_ GUARDED_BY(mutex_);
  TimerId next_timer_ GUARDED_BY(mutex_) = 1;

  // Loop thread only.
  std::optional<SteadyTime> curl_deadline_;  // curl's next timeout, if any
  std::map<TransferId, std::unique_ptr<Transfer>> transfers_;
  TransferId next_transfer_ = 1;
};

}  // namespace hb
