#pragma once

// BASELINE FOR COMPARISON ONLY - NOT A PRODUCT FEATURE, never shipped.
//
// The watcher teams write when their framework gives them no health events
// (go-kratos' Consul registry only hands out the passing list): every
// `period` it asks GET /v1/health/service/<name>?passing for every service
// and calls an instance "offline" when it drops out of the list.
// bench/detection_latency runs it beside the bridge to show what that costs:
//   - detection waits for the next poll (period/2 on average);
//   - with ?passing a critical instance just vanishes, exactly like a
//     deregistered or maintenance one, so no vanishing can be explained;
//   - a flap shorter than the period is missed unless a poll lands in it;
//   - every poll asks for every service, changed or not.
//
// Runs one thread of its own from construction to destruction (it joins).
// The accessors are safe to call from any thread.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hb::bench {

class NaivePoller {
 public:
  using Clock = std::chrono::steady_clock;

  // Polls `services` on the Consul agent at host:port, the first round at once.
  NaivePoller(const std::string& host, int port, std::vector<std::string> services,
              std::chrono::milliseconds period);
  ~NaivePoller();

  NaivePoller(const NaivePoller&) = delete;
  NaivePoller& operator=(const NaivePoller&) = delete;

  // When each instance was first seen missing from a passing list it had been
  // in (the end of the poll round that noticed). All the poller can say is
  // "gone": not whether it failed, was deregistered or is in maintenance.
  std::map<std::string, Clock::time_point> Vanished() const;
  long requests() const { return requests_.load(); }
  // Poll rounds completed; the first one is the baseline.
  int rounds() const { return rounds_.load(); }

 private:
  void Run();

  httplib::Client client_;
  const std::vector<std::string> services_;
  const std::chrono::milliseconds period_;
  std::atomic<long> requests_{0};
  std::atomic<int> rounds_{0};
  mutable std::mutex mutex_;
  std::condition_variable stop_requested_;
  bool stop_ = false;                                  // guarded by mutex_
  std::map<std::string, Clock::time_point> vanished_;  // guarded by mutex_
  std::thread thread_;  // last: starts once every member above exists
};

}  // namespace hb::bench
