#pragma once

// A Consul agent that attacks its client, for the hostile-peer tests: it
// answers the endpoints the bridge reads (/v1/agent/self,
// /v1/catalog/services, /v1/health/service/<name>, /v1/health/state/any)
// on 127.0.0.1, serving well-formed answers for some services and a
// scripted attack for others, so a test can check that the attacked
// service costs the bridge bounded memory and nobody else's events.
//
// It speaks HTTP/1.1 over raw sockets (one thread per connection) rather
// than through an HTTP library, since the attacks are things a library
// would refuse to send: a lying Content-Encoding, a drip of one byte a
// second, a header of a megabyte, thousands of headers.
//
// Blocking queries are held as Consul holds them: a request whose ?index=
// equals the current index waits for a write, or for its ?wait= (at most
// 10 minutes). Every write (a registration, a status change) moves one
// raft index shared by all endpoints.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace hb::test_support {

enum class Attack {
  kNone,  // a well-formed answer, as Consul sends it
  // Content-Encoding: gzip, a few hundred KiB inflating to 400 MiB of
  // whitespace around a valid answer.
  kGzipBomb,
  // A valid answer, one byte a second, status line and headers included.
  kSlowDrip,
  kGarbageIndex,   // X-Consul-Index: 12abc
  kNegativeIndex,  // X-Consul-Index: -1
  kZstd,           // Content-Encoding: zstd, which the client never asked for
  kHugeHeader,     // one header of 1 MiB
  kManyHeaders,    // 5,000 headers (each small, 150 KB together)
  kInvalidUtf8,    // bytes that are not UTF-8 inside the JSON strings (services only)
  kDeepNesting,    // 100,000 nested arrays
  // Services only: a valid answer whose every string (node, service ID and name, check
  // ID, name and output, tags, meta keys and values, address) holds CR LF,
  // NUL, ESC and DEL around text that would forge a log line or a header.
  kControlBytes,
};

// The text kControlBytes puts in every string of an answer (after the
// field's own name, e.g. "svc" + kControlText).
inline constexpr char kHostileTextBytes[] =
    "\r\n{\"forged\":true}\r\nX-Forged: yes\r\n\r\n\0\x1b[31m\x7f";
inline constexpr std::string_view kControlText(kHostileTextBytes, sizeof(kHostileTextBytes) - 1);

class HostileConsulPeer {
 public:
  // Listens on 127.0.0.1 and an ephemeral port; port() is 0 if that failed.
  HostileConsulPeer();
  // Closes every connection and joins every thread.
  ~HostileConsulPeer();

  HostileConsulPeer(const HostileConsulPeer&) = delete;
  HostileConsulPeer& operator=(const HostileConsulPeer&) = delete;

  int port() const { return port_; }
  std::string address() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Registers `name` with `instances` instances (node-a..., one passing
  // service check each) whose /v1/health/service answer is attacked as
  // `attack` says. With kControlBytes the name, IDs and every other string
  // of the service are the hostile text (see ServiceNameFor()).
  void AddService(const std::string& name, Attack attack, int instances = 1);
  // The name under which the catalog lists what AddService(name, ...)
  // registered: `name` itself, or name + kControlText for kControlBytes.
  static std::string ServiceNameFor(const std::string& name, Attack attack);
  // Sets every check of the service registered as `name` to `status`
  // ("passing", "warning", "critical"): one write.
  void SetStatus(const std::string& name, const std::string& status);
  // Attacks every answer of an endpoint path prefix (e.g.
  // "/v1/catalog/services", "/v1/health/state/"), whatever the service.
  void AttackEndpoint(const std::string& path_prefix, Attack attack);

  // Requests received whose path starts with `path_prefix`.
  std::size_t Requests(const std::string& path_prefix) const;
  // The most connections that were open at once.
  std::size_t MaxOpenConnections() const;

 private:
  struct Service {
    std::string catalog_name;
    Attack attack = Attack::kNone;
    int instances = 1;
    std::string status = "passing";
    std::uint64_t modify_index = 0;
  };
  struct Request {
    std::string path;  // percent-decoded, without the query
    std::map<std::string, std::string> query;
  };
  struct Answer {
    int status = 200;
    std::string body;
    Attack attack = Attack::kNone;
    std::uint64_t index = 0;
  };

  void AcceptLoop();
  void Serve(int fd);
  Answer AnswerFor(const Request& request);
  // Waits while a blocking query's index is current (lock held).
  void HoldBlockingQuery(std::unique_lock<std::mutex>& lock, const Request& request);
  std::string HealthServiceBody(const Service& service) const;
  std::string HealthStateBody(bool not_passing_only) const;
  std::string CatalogBody() const;
  bool Send(int fd, const Answer& answer);
  const std::string& Bomb(std::string_view inner);

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;

  // Read without the lock by the threads that poll their sockets.
  std::atomic<bool> stop_flag_{false};
  mutable std::mutex mutex_;
  std::condition_variable written_;
  bool stopping_ = false;                                  // guarded by mutex_
  std::uint64_t index_ = 10;                               // guarded by mutex_
  std::map<std::string, Service> services_;                // by catalog name, guarded by mutex_
  std::map<std::string, Attack> endpoint_attacks_;         // guarded by mutex_
  std::map<std::string, std::size_t> requests_;            // by path, guarded by mutex_
  std::set<int> open_;                                     // guarded by mutex_
  std::size_t max_open_ = 0;                               // guarded by mutex_
  std::vector<std::thread> connections_;                   // guarded by mutex_
  std::map<std::string, std::string, std::less<>> bombs_;  // by inner body, guarded by bomb_mutex_
  std::mutex bomb_mutex_;
};

}  // namespace hb::test_support
