#pragma once

// A Sink of our own interface that records what it acknowledges and answers
// as the test scripts it. Thread-safe: the worker delivers, the test reads.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "bridge/router/sink.h"

namespace hb::test_support {

class RecordingSink final : public Sink {
 public:
  using Script = std::function<DeliveryResult(const Event&, int attempt)>;

  struct Log {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::string> acked;     // ids, in acknowledgement order
    std::vector<std::string> attempts;  // ids, every attempt
    bool release = true;                // false: Deliver() waits until set

    // Waits until `count` acknowledgements arrived or `timeout` passed.
    bool WaitForAcked(std::size_t count, std::chrono::milliseconds timeout) {
      std::unique_lock lock(mutex);
      return changed.wait_for(lock, timeout, [&] { return acked.size() >= count; });
    }
    std::vector<std::string> Acked() {
      std::lock_guard lock(mutex);
      return acked;
    }
    void SetRelease(bool value) {
      {
        std::lock_guard lock(mutex);
        release = value;
      }
      changed.notify_all();
    }
  };

  RecordingSink(std::string name, Log& log, Script script = {}, std::size_t max_batch = 1,
                bool wants_silent = false)
      : name_(std::move(name)),
        log_(log),
        script_(std::move(script)),
        max_batch_(max_batch),
        wants_silent_(wants_silent) {}

  std::string_view Name() const override { return name_; }
  std::size_t MaxBatch() const override { return max_batch_; }
  bool WantsSilentEvents() const override { return wants_silent_; }

  void Deliver(std::span<const EventPtr> events,
               std::span<DeliveryResult> results) noexcept override {
    std::unique_lock lock(log_.mutex);
    log_.changed.wait(lock, [&] { return log_.release; });
    for (std::size_t i = 0; i < events.size(); ++i) {
      const Event& event = *events[i];
      const int attempt = ++attempts_by_id_[event.id];
      log_.attempts.push_back(event.id);
      results[i] = script_ ? script_(event, attempt) : DeliveryResult::Ok();
      if (results[i].kind == DeliveryResult::Kind::kOk) log_.acked.push_back(event.id);
    }
    log_.changed.notify_all();
  }

  bool Shutdown(std::chrono::milliseconds) noexcept override { return true; }

 private:
  const std::string name_;
  Log& log_;
  const Script script_;
  const std::size_t max_batch_;
  const bool wants_silent_;
  std::map<std::string, int> attempts_by_id_;  // guarded by log_.mutex
};

}  // namespace hb::test_support
