#pragma once

// Counts deliveries so a benchmark can wait until a run's events have all
// been acknowledged by the sink.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "bridge/router/delivery_observer.h"

namespace hb::bench {

class CountingObserver final : public DeliveryObserver {
 public:
  // An atomic count, as the bare producer's delivery reports keep: the
  // router's side should not pay a lock per event for being watched.
  void OnDelivered(std::string_view, const Event&, SteadyTime) override {
    if (delivered_.fetch_add(1, std::memory_order_acq_rel) + 1 < target_.load()) return;
    std::lock_guard lock(mutex_);
    done_.notify_all();
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
    done_.wait(lock, [&] { return delivered_.load() >= target_.load(); });
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::atomic<std::size_t> delivered_{0};
  std::atomic<std::size_t> target_{0};
};

}  // namespace hb::bench
