#pragma once

// Sinks that hold state (WantsSilentEvents(): metrics, alerts) must describe
// what the engine knows now, never only the events they happened to see.
// They get the engine's view, as silent events, (1) during the initial
// sync, saved state or not (each service's first answer: its silent events
// without saved state, its silent restatement after the reconciled changes
// with it), and (2) when a reload adds, renames or rebuilds one of them
// (that sink only, TransitionEngine::View()). ViewTracker learns, from the
// delivery reports, when each has taken its view: readiness waits for it at
// start, and a reload for the sink it seeded, so the first scrape after
// either already holds every instance.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/model/event_publisher.h"
#include "bridge/router/delivery_observer.h"
#include "bridge/router/router.h"
#include "bridge/watch/watcher.h"

namespace hb {

// How long readiness, or a reload, waits at most for a sink to take its
// view: a destination that hangs must not hold either back for good.
inline constexpr std::chrono::milliseconds kViewGrace{std::chrono::seconds(10)};

// Passes every report on to `forward` and watches for the last event of
// each view sent. Thread-safe, as observers must be; costs one atomic load
// per report while no view is outstanding.
class ViewTracker final : public DeliveryObserver {
 public:
  // `clock` must outlive it; `forward` may be null.
  ViewTracker(DeliveryObserver* forward, const Clock& clock);

  // Remembers what ends the view of `sink` (before it is queued); a newer
  // view of a sink replaces the older.
  void Track(std::string_view sink, const EventPtr& last);
  // Track as Router::PublishView's callback.
  Router::ViewLastEvent Tracking() {
    return [this](std::string_view sink, const EventPtr& last) { Track(sink, last); };
  }
  // True when every sink has attempted the last event of its view (it was
  // delivered, refused or will be retried), or `grace` has passed since the
  // view was sent: a destination that hangs must not hold readiness back.
  bool Settled(std::chrono::milliseconds grace) const;
  // Waits up to `timeout` until the sink `name` has attempted its view.
  bool WaitFor(std::string_view name, std::chrono::milliseconds timeout);
  // The sink was removed: nothing of it is waited for any more.
  void Forget(std::string_view name);

  void OnDelivered(std::string_view sink, const Event& event, SteadyTime acked_at) override;
  void OnRetry(std::string_view sink, const Event& event, std::string_view error) override;
  void OnDeadLettered(std::string_view sink, const Event& event, std::string_view reason) override;
  void OnQueueDepth(std::string_view sink, std::size_t depth) override;
  void OnSpoolBytes(std::string_view sink, std::uint64_t bytes) override;
  void OnSpoolFull(std::string_view sink) override;
  void OnSpoolWriteError(std::string_view sink) override;
  void OnSpoolDropped(std::string_view sink, std::uint64_t bytes) override;

 private:
  struct Outstanding {
    EventPtr last;  // held, so its address is not reused meanwhile
    SteadyTime sent_at{};
  };
  void Attempted(std::string_view sink, const Event& event);

  DeliveryObserver* const forward_;
  const Clock& clock_;
  std::atomic<std::size_t> outstanding_count_{0};
  mutable Mutex mutex_;
  CondVar changed_;
  std::map<std::string, Outstanding, std::less<>> outstanding_ GUARDED_BY(mutex_);
};

// Between the watch and the router: notifying events go on as they are;
// silent ones (the initial sync's and the engine's view) go to the sinks
// that want them through Router::PublishView, so the tracker knows what ends
// each one's view.
class ViewPublisher final : public EventPublisher {
 public:
  // Both must outlive it.
  ViewPublisher(Router& router, ViewTracker& tracker) : router_(router), tracker_(tracker) {}
  void Publish(std::vector<Event> events) override;

 private:
  Router& router_;
  ViewTracker& tracker_;
};

// Sends the engine's current view to the sink `name` only (a reload added,
// renamed or rebuilt it) and waits up to `timeout` for the sink to take it.
// The view is taken and queued on the watch thread, between two answers, so
// no change slips between it and the events that follow. False on timeout.
bool SeedSink(Watcher& watcher, Router& router, ViewTracker& tracker, std::string_view name,
              std::chrono::milliseconds timeout);

}  // namespace hb
