#pragma once

// Counts deliveries so a benchmark can wait until a run's events have all
// been acknowledged by the sink.

#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "bridge/router/delivery_observer.h"

namespace hb::bench {

class CountingObserver final : public DeliveryObserver {
 public:
  void OnDelivered(std::string_view, const Event&, SteadyTime) override {
    std::lock_guard lock(mutex_);
    if (++delivered_ >= target_) done_.notify_all();
  }
  void OnRetry(std::string_view, const Event&, std::string_view) override {}
  void OnDeadLettered(std::string_view, const Event&, std::string_view) override {}
  void OnQueueDepth(std::string_view, std::size_t) override {}
  void Expect(std::size_t count) {
    std::lock_guard lock(mutex_);
    delivered_ = 0;
    target_ = count;
  }
  void Wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return delivered_ >= target_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::size_t delivered_ = 0;
  std::size_t target_ = 0;
};

}  // namespace hb::bench
