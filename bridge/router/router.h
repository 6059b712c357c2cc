#pragma once

// The router: takes the engine's events from the watch and puts each on the
// queue of every sink whose filter matches. Each sink has its own bounded
// queue and worker, and Publish() never waits for a sink: a full queue
// overflows to the sink's spool, or the event is dead-lettered at once. So
// a slow or dead sink never blocks the watch or the other sinks.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/common/status.h"
#include "bridge/model/event_publisher.h"
#include "bridge/router/delivery_observer.h"
#include "bridge/router/route_filter.h"
#include "bridge/router/sink.h"
#include "bridge/router/sink_storage.h"
#include "bridge/router/sink_worker.h"

namespace hb {

struct SinkRoute {
  RouteFilter filter;
  SinkWorkerOptions worker;
  // What /v1/sinks shows: the sink's type and where it delivers, secrets
  // masked (a URL's user info and query).
  std::string type;
  std::string target;
};

// One sink as /v1/sinks shows it.
struct SinkStatusReport {
  std::string name;
  std::string type;
  std::string target;
  SinkDeliveryStatus delivery;
};

// Publish() runs on the watch thread; AddSink(), RemoveSink(), Shutdown() and
// QueueDepths() may be called from any thread.
class Router final : public EventPublisher {
 public:
  // `clock` must outlive the router; `observer` may be null.
  explicit Router(const Clock& clock, DeliveryObserver* observer = nullptr);
  ~Router() override;

  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Starts delivering to `sink` the events published from now on, after
  // those its storage's spool still holds (paged in as the queue drains).
  void AddSink(SinkRoute route, SinkPtr sink, SinkStorage storage);
  // Drains the sink for up to `timeout` and removes it. What is left stays
  // in its spool, on disk, for a sink of the same name added later (a
  // removal is often undone); without a spool it is dead-lettered. An
  // emptied spool is deleted. Returns the number of events left, or nullopt
  // for an unknown name.
  std::optional<std::size_t> RemoveSink(std::string_view name, std::chrono::milliseconds timeout);
  // Gives the sink `name` new settings: its undelivered events, spool and
  // dead-letter file carry over to `sink`, in order. False if unknown.
  bool ReplaceSink(std::string_view name, SinkRoute route, SinkPtr sink);
  // Makes every spool durable up to now (fdatasync); the first error.
  Status SyncSpools();

  void Publish(std::vector<Event> events) override;

  // Puts `view` (silent events restating the engine's state) on the queue
  // of every sink that wants silent events, or of the sink `only` when set,
  // each through its filter. `before_queueing` (may be empty) is told each
  // such sink's last matching event just before it is queued: once the sink
  // has attempted that one, it holds the view.
  using ViewLastEvent = std::function<void(std::string_view sink, const EventPtr& last)>;
  void PublishView(std::vector<Event> view, const ViewLastEvent& before_queueing,
                   std::string_view only = {});

  // Lets every sink deliver what it has, all in parallel, for up to
  // `timeout`; what is left stays in the spools (is dead-lettered without
  // one). Returns the number of events left undelivered. The router accepts
  // no events afterwards.
  std::size_t Shutdown(std::chrono::milliseconds timeout);

  std::vector<std::pair<std::string, std::size_t>> QueueDepths() const;
  // Every sink's status, in the order they were added.
  std::vector<SinkStatusReport> SinkStatuses() const;

  // Events published so far: the saved state is rewritten only when it moved.
  std::uint64_t published() const { return published_.load(std::memory_order_acquire); }

 private:
  struct Route {
    std::string name;
    SinkStorage storage;  // outlives the worker below
    // Held shared while events are handed to the worker, exclusively while
    // ReplaceSink() swaps it: no event slips between the two workers.
    SharedMutex swap_mutex;
    RouteFilter filter GUARDED_BY(swap_mutex);
    std::string type GUARDED_BY(swap_mutex);
    std::string target GUARDED_BY(swap_mutex);
    std::unique_ptr<SinkWorker> worker GUARDED_BY(swap_mutex);
  };

  // The route of the sink `name`, or routes_.end().
  std::vector<std::shared_ptr<Route>>::iterator FindLocked(std::string_view name) REQUIRES(mutex_);
  std::shared_ptr<Route> Take(std::string_view name) EXCLUDES(mutex_);

  const Clock& clock_;
  DeliveryObserver* const observer_;
  mutable Mutex mutex_;
  // shared_ptr so Publish() can hand events over without holding mutex_,
  // and RemoveSink() can drain outside the lock.
  std::vector<std::shared_ptr<Route>> routes_ GUARDED_BY(mutex_);
  bool shut_down_ GUARDED_BY(mutex_) = false;
  std::atomic<std::uint64_t> published_{0};
};

}  // namespace hb
