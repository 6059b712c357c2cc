#pragma once

// The limit for any Consul watcher, for bench/detection_latency: one plain
// HTTP client holding GET /v1/health/service/<name>?index=N&wait=W and
// noting when each answer returns. It parses only what it needs to say which
// instances turned critical, and delivers nothing; whatever the bridge takes
// beyond this is the bridge's own cost.
//
// Runs one thread of its own from construction to destruction (it joins).
// The accessors are safe to call from any thread.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace hb::bench {

class BlockingQueryClient {
 public:
  using Clock = std::chrono::steady_clock;

  // Watches `service` on the Consul agent at host:port. `wait` bounds one
  // held request, and so how long the destructor may take. Default: 2s.
  BlockingQueryClient(const std::string& host, int port, std::string service,
                      std::chrono::seconds wait = std::chrono::seconds(2));
  ~BlockingQueryClient();

  BlockingQueryClient(const BlockingQueryClient&) = delete;
  BlockingQueryClient& operator=(const BlockingQueryClient&) = delete;

  // When each instance was first seen critical after being seen otherwise
  // (the answer's arrival, taken before parsing it).
  std::map<std::string, Clock::time_point> TurnedCritical() const;
  // Requests sent, answered or not.
  long requests() const { return requests_.load(); }
  // True once the first answer (the baseline) was read.
  bool synced() const { return synced_.load(); }

 private:
  void Run();

  httplib::Client client_;
  const std::string service_;
  const std::chrono::seconds wait_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  std::atomic<long> requests_{0};
  mutable std::mutex mutex_;
  std::map<std::string, Clock::time_point> turned_critical_;  // guarded by mutex_
  std::thread thread_;  // last: starts once every member above exists
};

}  // namespace hb::bench
