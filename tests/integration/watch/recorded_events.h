#pragma once

// What a watch of several sources publishes, as its tests read it: a
// publisher that records notifying events (and silent ones apart), waits
// for a condition on them, and names each event as text
// ("dc2 instance.down payments-1 critical").

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "bridge/model/event.h"
#include "bridge/model/event_publisher.h"
#include "bridge/model/source_scope.h"

namespace hb::test_support {

class RecordedEvents final : public EventPublisher {
 public:
  // `deadline`: how long WaitFor() waits unless told otherwise.
  explicit RecordedEvents(std::chrono::milliseconds deadline) : deadline_(deadline) {}

  void Publish(std::vector<Event> events) override {
    std::lock_guard lock(mutex_);
    for (auto& event : events) (event.silent ? silent_ : events_).push_back(std::move(event));
    changed_.notify_all();
  }

  // Waits until `done` holds for the notifying events so far, or the
  // deadline; returns them.
  std::vector<Event> WaitFor(const std::function<bool(const std::vector<Event>&)>& done) {
    return WaitFor(done, deadline_);
  }
  std::vector<Event> WaitFor(const std::function<bool(const std::vector<Event>&)>& done,
                             std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return done(events_); });
    return events_;
  }

  std::vector<Event> All() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<Event> Silent() {
    std::lock_guard lock(mutex_);
    return silent_;
  }

 private:
  const std::chrono::milliseconds deadline_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Event> events_;
  std::vector<Event> silent_;
};

inline std::string Describe(const Event& event) {
  std::string text = SourceKey(event.datacenter, event.scope) + " " +
                     std::string(ToString(event.type)) + " " +
                     (event.IsInstanceEvent() ? event.instance_id : event.service);
  if (event.reason) text += " " + std::string(ToString(*event.reason));
  return text;
}

inline std::vector<std::string> Describe(const std::vector<Event>& events) {
  std::vector<std::string> out;
  out.reserve(events.size());
  for (const Event& event : events) out.push_back(Describe(event));
  return out;
}

inline bool Has(const std::vector<Event>& events, const std::string& description) {
  return std::any_of(events.begin(), events.end(),
                     [&](const Event& event) { return Describe(event) == description; });
}

}  // namespace hb::test_support
