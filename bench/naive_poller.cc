// BASELINE FOR COMPARISON ONLY - NOT A PRODUCT FEATURE (see naive_poller.h).

#include "bench/naive_poller.h"

#include <nlohmann/json.hpp>
#include <set>

namespace hb::bench {

NaivePoller::NaivePoller(const std::string& host, int port, std::vector<std::string> services,
                         std::chrono::milliseconds period)
    : client_(host, port),
      services_(std::move(services)),
      period_(period),
      thread_([this] { Run(); }) {}

NaivePoller::~NaivePoller() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_requested_.notify_all();
  thread_.join();
}

std::map<std::string, NaivePoller::Clock::time_point> NaivePoller::Vanished() const {
  std::lock_guard lock(mutex_);
  return vanished_;
}

void NaivePoller::Run() {
  client_.set_keep_alive(true);
  std::set<std::string> passing;
  auto next_round = Clock::now();
  while (true) {
    std::set<std::string> now_passing;
    bool complete = true;
    for (const std::string& service : services_) {
      ++requests_;
      const auto response = client_.Get(("/v1/health/service/" + service + "?passing").c_str());
      const auto entries = response && response->status == 200
                               ? nlohmann::json::parse(response->body, nullptr, false)
                               : nlohmann::json(nlohmann::json::value_t::discarded);
      if (entries.is_discarded()) {
        complete = false;
        continue;
      }
      for (const auto& entry : entries)
        now_passing.insert(entry["Service"]["ID"].get<std::string>());
    }
    const auto finished = Clock::now();
    std::unique_lock lock(mutex_);
    // A round with a failed request would report that service's instances as
    // gone; it is not compared (nor becomes the baseline).
    if (rounds_ > 0 && complete) {
      for (const auto& id : passing) {
        if (!now_passing.contains(id)) vanished_.try_emplace(id, finished);
      }
    }
    if (complete) passing = std::move(now_passing);
    ++rounds_;
    // A fixed schedule, as a cron-like poller has: the round's own duration
    // does not push the next one back.
    next_round += period_;
    if (stop_requested_.wait_until(lock, next_round, [this] { return stop_; })) return;
  }
}

}  // namespace hb::bench
