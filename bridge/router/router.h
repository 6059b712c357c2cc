#pragma once

// The router: takes the engine's events from the watch and puts each on the
// queue of every sink whose filter matches. Each sink has its own bounded
// queue and worker, so a slow or dead sink never blocks the watch or the
// other sinks (beyond its own bounded block_timeout).

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/model/event_publisher.h"
#include "bridge/router/dead_letter.h"
#include "bridge/router/delivery_observer.h"
#include "bridge/router/route_filter.h"
#include "bridge/router/sink_worker.h"
#include "sinks/sink.h"

namespace hb {

struct SinkRoute {
  RouteFilter filter;
  SinkWorkerOptions worker;
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

  // Starts delivering to `sink` the events published from now on.
  void AddSink(SinkRoute route, SinkPtr sink, std::unique_ptr<DeadLetterFile> dead_letter);
  // Drains the sink for up to `timeout` and removes it; false if unknown.
  bool RemoveSink(std::string_view name, std::chrono::milliseconds timeout);

  void Publish(std::vector<Event> events) override;

  // Lets every sink deliver what it has, all in parallel, for up to
  // `timeout`; what is left is dead-lettered. Returns the number of events
  // left undelivered. The router accepts no events afterwards.
  std::size_t Shutdown(std::chrono::milliseconds timeout);

  std::vector<std::pair<std::string, std::size_t>> QueueDepths() const;

 private:
  struct Route {
    RouteFilter filter;
    std::unique_ptr<DeadLetterFile> dead_letter;  // outlives the worker below
    std::unique_ptr<SinkWorker> worker;
  };

  const Clock& clock_;
  DeliveryObserver* const observer_;
  mutable std::mutex mutex_;
  // shared_ptr so Publish() can deliver without holding mutex_ while a
  // sink's queue blocks, and RemoveSink() can drain outside the lock.
  std::vector<std::shared_ptr<Route>> routes_;  // GUARDED_BY(mutex_)
  bool shut_down_ = false;                      // GUARDED_BY(mutex_)
};

}  // namespace hb
