#include "bridge/app/view_seeding.h"

#include <algorithm>

namespace hb {

ViewTracker::ViewTracker(DeliveryObserver* forward, const Clock& clock)
    : forward_(forward), clock_(clock) {}

void ViewTracker::Track(std::string_view sink, const EventPtr& last) {
  MutexLock lock(&mutex_);
  outstanding_.insert_or_assign(std::string(sink), Outstanding{last, clock_.Now()});
  outstanding_count_.store(outstanding_.size(), std::memory_order_release);
}

bool ViewTracker::Settled(std::chrono::milliseconds grace) const {
  if (outstanding_count_.load(std::memory_order_acquire) == 0) return true;
  const SteadyTime now = clock_.Now();
  MutexLock lock(&mutex_);
  return std::all_of(outstanding_.begin(), outstanding_.end(),
                     [&](const auto& entry) { return now - entry.second.sent_at >= grace; });
}

bool ViewTracker::WaitFor(std::string_view name, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&mutex_);
  while (outstanding_.contains(name) && changed_.WaitUntil(&mutex_, deadline)) {
  }
  return !outstanding_.contains(name);
}

void ViewTracker::Forget(std::string_view name) {
  MutexLock lock(&mutex_);
  if (auto it = outstanding_.find(name); it != outstanding_.end()) outstanding_.erase(it);
  outstanding_count_.store(outstanding_.size(), std::memory_order_release);
  changed_.SignalAll();
}

void ViewTracker::Attempted(std::string_view sink, const Event& event) {
  if (outstanding_count_.load(std::memory_order_acquire) == 0) return;
  MutexLock lock(&mutex_);
  auto it = outstanding_.find(sink);
  if (it == outstanding_.end() || it->second.last.get() != &event) return;
  outstanding_.erase(it);
  outstanding_count_.store(outstanding_.size(), std::memory_order_release);
  changed_.SignalAll();
}

void ViewTracker::OnDelivered(std::string_view sink, const Event& event, SteadyTime acked_at) {
  if (forward_ != nullptr) forward_->OnDelivered(sink, event, acked_at);
  Attempted(sink, event);
}

void ViewTracker::OnRetry(std::string_view sink, const Event& event, std::string_view error) {
  if (forward_ != nullptr) forward_->OnRetry(sink, event, error);
  Attempted(sink, event);
}

void ViewTracker::OnDeadLettered(std::string_view sink, const Event& event,
                                 std::string_view reason) {
  if (forward_ != nullptr) forward_->OnDeadLettered(sink, event, reason);
  Attempted(sink, event);
}

void ViewTracker::OnQueueDepth(std::string_view sink, std::size_t depth) {
  if (forward_ != nullptr) forward_->OnQueueDepth(sink, depth);
}

void ViewTracker::OnSpoolBytes(std::string_view sink, std::uint64_t bytes) {
  if (forward_ != nullptr) forward_->OnSpoolBytes(sink, bytes);
}

void ViewTracker::OnSpoolFull(std::string_view sink) {
  if (forward_ != nullptr) forward_->OnSpoolFull(sink);
}

void ViewTracker::OnSpoolWriteError(std::string_view sink) {
  if (forward_ != nullptr) forward_->OnSpoolWriteError(sink);
}

void ViewTracker::OnSpoolDropped(std::string_view sink, std::uint64_t bytes) {
  if (forward_ != nullptr) forward_->OnSpoolDropped(sink, bytes);
}

void ViewPublisher::Publish(std::vector<Event> events) {
  // The engine puts the silent events of one batch (the state it restates)
  // after its notifying ones, so sending the notifying ones first keeps
  // every sink's order.
  const auto first_silent = std::stable_partition(events.begin(), events.end(),
                                                  [](const Event& event) { return !event.silent; });
  std::vector<Event> silent(std::make_move_iterator(first_silent),
                            std::make_move_iterator(events.end()));
  events.erase(first_silent, events.end());
  if (!events.empty()) router_.Publish(std::move(events));
  if (!silent.empty()) router_.PublishView(std::move(silent), tracker_.Tracking());
}

bool SeedSink(Watcher& watcher, Router& router, ViewTracker& tracker, std::string_view name,
              std::chrono::milliseconds timeout) {
  watcher.WithEngine([&](const TransitionEngine& engine) {
    router.PublishView(engine.View(), tracker.Tracking(), name);
  });
  return tracker.WaitFor(name, timeout);
}

}  // namespace hb
