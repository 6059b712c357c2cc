#include "bridge/router/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

namespace hb {

Router::Router(const Clock& clock, DeliveryObserver* observer)
    : clock_(clock), observer_(observer) {}

Router::~Router() { Shutdown(std::chrono::milliseconds(0)); }

void Router::AddSink(SinkRoute route, SinkPtr sink, SinkStorage storage) {
  auto entry = std::make_shared<Route>();
  entry->name = std::string(sink->Name());
  entry->storage = std::move(storage);
  {
    WriterMutexLock swap(&entry->swap_mutex);  // not shared yet; the analysis wants it
    entry->filter = std::move(route.filter);
    entry->type = std::move(route.type);
    entry->target = std::move(route.target);
    entry->worker = std::make_unique<SinkWorker>(std::move(route.worker), std::move(sink),
                                                 entry->storage, clock_, observer_);
  }
  MutexLock lock(&mutex_);
  routes_.push_back(std::move(entry));
}

std::vector<std::shared_ptr<Router::Route>>::iterator Router::FindLocked(std::string_view name) {
  return std::find_if(routes_.begin(), routes_.end(),
                      [&](const auto& route) { return route->name == name; });
}

std::shared_ptr<Router::Route> Router::Take(std::string_view name) {
  MutexLock lock(&mutex_);
  auto it = FindLocked(name);
  if (it == routes_.end()) return nullptr;
  auto taken = std::move(*it);
  routes_.erase(it);
  return taken;
}

std::optional<std::size_t> Router::RemoveSink(std::string_view name,
                                              std::chrono::milliseconds timeout) {
  std::shared_ptr<Route> removed = Take(name);
  if (removed == nullptr) return std::nullopt;
  // A reload that drops a sink must not lose what it has not delivered:
  // a config tool's mistake is undone by adding it back. Shared: a
  // ReplaceSink() that found the route before it was taken may be swapping
  // its worker.
  ReaderMutexLock swap(&removed->swap_mutex);
  const std::size_t left = removed->worker->Shutdown(timeout, removed->storage.spool != nullptr
                                                                  ? Leftovers::kKeepInSpool
                                                                  : Leftovers::kDeadLetter);
  // An empty spool is only clutter: it goes.
  if (left == 0 && removed->storage.spool != nullptr) removed->storage.spool->Destroy();
  return left;
}

bool Router::ReplaceSink(std::string_view name, SinkRoute route, SinkPtr sink) {
  std::shared_ptr<Route> found;
  {
    MutexLock lock(&mutex_);
    auto it = FindLocked(name);
    if (it == routes_.end()) return false;
    found = *it;
  }
  // Publish() waits meanwhile, so the next event goes to the new worker,
  // after everything the old one had.
  WriterMutexLock swap(&found->swap_mutex);
  SinkBacklog backlog = found->worker->Release();
  found->worker.reset();
  found->filter = std::move(route.filter);
  found->type = std::move(route.type);
  found->target = std::move(route.target);
  found->worker =
      std::make_unique<SinkWorker>(std::move(route.worker), std::move(sink), found->storage, clock_,
                                   observer_, std::move(backlog));
  return true;
}

Status Router::SyncSpools() {
  std::vector<std::shared_ptr<Route>> routes;
  {
    MutexLock lock(&mutex_);
    routes = routes_;
  }
  Status first_error;
  for (const auto& route : routes) {
    if (route->storage.spool == nullptr) continue;
    Status synced = route->storage.spool->Sync();
    if (first_error.ok() && !synced.ok()) first_error = std::move(synced);
  }
  return first_error;
}

void Router::Publish(std::vector<Event> events) {
  std::vector<std::shared_ptr<Route>> routes;
  {
    MutexLock lock(&mutex_);
    if (shut_down_) {
      spdlog::warn("router: {} events published after shutdown were not routed", events.size());
      return;
    }
    routes = routes_;
  }
  std::vector<EventPtr> shared;
  shared.reserve(events.size());
  for (auto& event : events) shared.push_back(std::make_shared<const Event>(std::move(event)));
  // Each sink gets its share in one call: one lock and one wake-up per
  // answer rather than per event.
  std::vector<EventPtr> matching;
  matching.reserve(shared.size());
  // How many sinks each event went to, for the observer.
  std::vector<std::size_t> routed(observer_ != nullptr ? shared.size() : 0, 0);
  for (const auto& route : routes) {
    ReaderMutexLock swap(&route->swap_mutex);
    matching.clear();
    for (std::size_t i = 0; i < shared.size(); ++i) {
      const EventPtr& event = shared[i];
      if (event->silent && !route->worker->wants_silent_events()) continue;
      if (!route->filter.Matches(*event)) continue;
      matching.push_back(event);
      if (!routed.empty()) ++routed[i];
    }
    route->worker->Enqueue(matching);
  }
  for (std::size_t i = 0; i < routed.size(); ++i) {
    if (!shared[i]->silent) observer_->OnRouted(*shared[i], routed[i]);
  }
  published_.fetch_add(shared.size(), std::memory_order_release);
}

void Router::PublishView(std::vector<Event> view, const ViewLastEvent& before_queueing,
                         std::string_view only) {
  std::vector<std::shared_ptr<Route>> routes;
  {
    MutexLock lock(&mutex_);
    if (shut_down_) return;
    routes = routes_;
  }
  std::vector<EventPtr> shared;
  shared.reserve(view.size());
  for (auto& event : view) shared.push_back(std::make_shared<const Event>(std::move(event)));
  std::vector<EventPtr> matching;
  for (const auto& route : routes) {
    if (!only.empty() && route->name != only) continue;
    ReaderMutexLock swap(&route->swap_mutex);
    if (!route->worker->wants_silent_events()) continue;
    matching.clear();
    for (const EventPtr& event : shared) {
      if (route->filter.Matches(*event)) matching.push_back(event);
    }
    if (matching.empty()) continue;
    // Before: the worker may deliver it before Enqueue() returns.
    if (before_queueing) before_queueing(route->name, matching.back());
    route->worker->Enqueue(matching);
  }
  // The initial sync's view is the first state worth saving.
  published_.fetch_add(shared.size(), std::memory_order_release);
}

std::size_t Router::Shutdown(std::chrono::milliseconds timeout) {
  std::vector<std::shared_ptr<Route>> routes;
  {
    MutexLock lock(&mutex_);
    if (shut_down_) return 0;
    shut_down_ = true;
    routes.swap(routes_);
  }
  // In parallel: one slow sink must not eat the others' share of the grace.
  std::vector<std::future<std::size_t>> drained;
  drained.reserve(routes.size());
  for (const auto& route : routes) {
    drained.push_back(std::async(std::launch::async, [&route, timeout] {
      ReaderMutexLock swap(&route->swap_mutex);
      return route->worker->Shutdown(timeout);
    }));
  }
  std::size_t left = 0;
  for (auto& result : drained) left += result.get();
  return left;
}

std::vector<std::pair<std::string, std::size_t>> Router::QueueDepths() const {
  MutexLock lock(&mutex_);
  std::vector<std::pair<std::string, std::size_t>> depths;
  depths.reserve(routes_.size());
  for (const auto& route : routes_) {
    ReaderMutexLock swap(&route->swap_mutex);
    depths.emplace_back(route->name, route->worker->QueueDepth());
  }
  return depths;
}

std::vector<SinkStatusReport> Router::SinkStatuses() const {
  std::vector<std::shared_ptr<Route>> routes;
  {
    MutexLock lock(&mutex_);
    routes = routes_;
  }
  std::vector<SinkStatusReport> reports;
  reports.reserve(routes.size());
  for (const auto& route : routes) {
    ReaderMutexLock swap(&route->swap_mutex);
    if (route->worker == nullptr) continue;
    reports.push_back({route->name, route->type, route->target, route->worker->DeliveryStatus()});
  }
  return reports;
}

}  // namespace hb
