#include "bridge/router/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

namespace hb {

Router::Router(const Clock& clock, DeliveryObserver* observer)
    : clock_(clock), observer_(observer) {}

Router::~Router() { Shutdown(std::chrono::milliseconds(0)); }

void Router::AddSink(SinkRoute route, SinkPtr sink, std::unique_ptr<DeadLetterFile> dead_letter) {
  auto entry = std::make_shared<Route>();
  entry->filter = std::move(route.filter);
  entry->dead_letter = std::move(dead_letter);
  entry->worker = std::make_unique<SinkWorker>(std::move(route.worker), std::move(sink),
                                               *entry->dead_letter, clock_, observer_);
  std::lock_guard lock(mutex_);
  routes_.push_back(std::move(entry));
}

bool Router::RemoveSink(std::string_view name, std::chrono::milliseconds timeout) {
  std::shared_ptr<Route> removed;
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(routes_.begin(), routes_.end(),
                           [&](const auto& route) { return route->worker->name() == name; });
    if (it == routes_.end()) return false;
    removed = std::move(*it);
    routes_.erase(it);
  }
  removed->worker->Shutdown(timeout);
  return true;
}

void Router::Publish(std::vector<Event> events) {
  std::vector<std::shared_ptr<Route>> routes;
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) {
      spdlog::warn("router: {} events published after shutdown were not routed", events.size());
      return;
    }
    routes = routes_;
  }
  for (auto& event : events) {
    auto shared = std::make_shared<const Event>(std::move(event));
    for (const auto& route : routes) {
      if (shared->silent && !route->worker->wants_silent_events()) continue;
      if (!route->filter.Matches(*shared)) continue;
      route->worker->Enqueue(shared);
    }
  }
}

std::size_t Router::Shutdown(std::chrono::milliseconds timeout) {
  std::vector<std::shared_ptr<Route>> routes;
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) return 0;
    shut_down_ = true;
    routes.swap(routes_);
  }
  // In parallel: one slow sink must not eat the others' share of the grace.
  std::vector<std::future<std::size_t>> drained;
  drained.reserve(routes.size());
  for (const auto& route : routes) {
    drained.push_back(std::async(std::launch::async,
                                 [&route, timeout] { return route->worker->Shutdown(timeout); }));
  }
  std::size_t left = 0;
  for (auto& result : drained) left += result.get();
  return left;
}

std::vector<std::pair<std::string, std::size_t>> Router::QueueDepths() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::string, std::size_t>> depths;
  depths.reserve(routes_.size());
  for (const auto& route : routes_) {
    depths.emplace_back(std::string(route->worker->name()), route->worker->QueueDepth());
  }
  return depths;
}

}  // namespace hb
