#include "bridge/watch/watcher.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <future>
#include <set>
#include <utility>

#include "bridge/consul/answer_parsers.h"

namespace hb {

struct Watcher::ServiceWatch {
  std::unique_ptr<BlockingQuery> query;
  bool synced = false;  // a first complete answer has reached the engine
};

Watcher::Watcher(WatcherOptions options, ConsulClient& client,
                 std::unique_ptr<TransitionEngine> engine, EventPublisher& publisher,
                 const Clock& clock)
    : options_(std::move(options)),
      filter_(options_.services),
      client_(client),
      engine_(std::move(engine)),
      publisher_(publisher),
      clock_(clock),
      agent_retry_delay_(options_.agent_retry_initial) {}

Watcher::~Watcher() { Stop(); }

void Watcher::Start() {
  client_.loop().Post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    FetchDatacenter();
  });
}

void Watcher::Stop() {
  {
    std::lock_guard lock(state_mutex_);
    if (stopped_) return;
    stopped_ = true;
    state_.ready = false;
  }
  RunOnLoopAndWait([this] {
    // Resetting the token on the loop thread means every callback that runs
    // after this sees it expired: no race with the destructor.
    alive_.reset();
    if (tick_timer_) client_.loop().CancelTimer(*tick_timer_);
    if (agent_retry_timer_) client_.loop().CancelTimer(*agent_retry_timer_);
    catalog_query_.reset();
    services_.clear();
  });
}

WatchState Watcher::State() const {
  std::lock_guard lock(state_mutex_);
  WatchState state = state_;
  const bool unreachable_too_long =
      state.unreachable_since &&
      clock_.Now() - *state.unreachable_since > options_.unreachable_grace;
  state.ready =
      !stopped_ && state.initial_sync_done && !unreachable_too_long && !permission_denied_;
  return state;
}

void Watcher::WithEngine(const std::function<void(const TransitionEngine&)>& visit) {
  RunOnLoopAndWait([&] { visit(*engine_); });
}

void Watcher::UpdateServiceFilter(ServiceFilterOptions services) {
  RunOnLoopAndWait([&] {
    filter_ = ServiceFilter(std::move(services));
    {
      std::lock_guard lock(state_mutex_);
      if (stopped_) return;
    }
    if (catalog_seen_) ApplyCatalog(catalog_index_);
  });
}

void Watcher::UpdateEngineOptions(EngineOptions options) {
  RunOnLoopAndWait([&] {
    engine_->UpdateOptions(std::move(options));
    ScheduleTick();
  });
}

void Watcher::RunOnLoopAndWait(const std::function<void()>& task) {
  if (client_.loop().InLoopThread()) {
    task();
    return;
  }
  std::promise<void> done;
  client_.loop().Post([&] {
    task();
    done.set_value();
  });
  done.get_future().wait();
}

void Watcher::FetchDatacenter() {
  if (!options_.datacenter.empty()) {
    datacenter_ = options_.datacenter;
    StartCatalogWatch();
    return;
  }
  // Events and service ids name the datacenter even when a service has no
  // instance to read it from, so learn it from the agent first.
  client_.Get(
      "/v1/agent/self", [this, alive = std::weak_ptr<bool>(alive_)](StatusOr<std::string> body) {
        if (alive.expired()) return;
        Status status = body.status();
        if (status.ok()) {
          auto agent = ParseAgentSelf(*body);
          if (agent.ok()) {
            OnSuccess();
            datacenter_ = agent->datacenter;
            StartCatalogWatch();
            return;
          }
          status = agent.status();
        }
        OnError(status);
        agent_retry_timer_ = client_.loop().RunAt(clock_.Now() + agent_retry_delay_, [this, alive] {
          if (alive.expired()) return;
          agent_retry_timer_.reset();
          FetchDatacenter();
        });
        agent_retry_delay_ = std::min(agent_retry_delay_ * 2, options_.agent_retry_max);
      });
}

void Watcher::StartCatalogWatch() {
  {
    std::lock_guard lock(state_mutex_);
    state_.datacenter = datacenter_;
  }
  spdlog::info("watching the Consul catalog of datacenter {}", datacenter_);
  catalog_query_ = client_.Watch(
      "/v1/catalog/services", {}, [this](const QueryAnswer& answer) { return OnCatalog(answer); },
      [this](const Status& error) { OnError(error); });
}

Status Watcher::OnCatalog(const QueryAnswer& answer) {
  auto catalog = ParseCatalogServices(answer.body);
  if (!catalog.ok()) return catalog.status();
  OnSuccess();
  catalog_seen_ = true;
  catalog_ = std::move(*catalog);
  catalog_index_ = answer.meta.index;
  ApplyCatalog(catalog_index_);
  return Status::Ok();
}

void Watcher::ApplyCatalog(std::uint64_t index) {
  std::set<std::string, std::less<>> wanted;
  for (const auto& [service, tags] : catalog_) {
    if (filter_.Matches(service, tags)) wanted.insert(service);
  }
  for (auto it = services_.begin(); it != services_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    // Left the catalog or the filter: its instances deregister now rather
    // than when the (possibly long) health wait would have noticed.
    const std::string service = it->first;
    if (!it->second->synced) --unsynced_services_;
    it = services_.erase(it);
    spdlog::info("service {} left the catalog or the filter; no longer watched", service);
    Publish(engine_->ServiceGone(datacenter_, service, index));
  }
  for (const auto& service : wanted) {
    if (!services_.contains(service)) StartServiceWatch(service);
  }
  {
    std::lock_guard lock(state_mutex_);
    state_.watched_services = services_.size();
  }
  MaybeCompleteInitialSync();
  ScheduleTick();
}

void Watcher::StartServiceWatch(const std::string& service) {
  auto watch = std::make_unique<ServiceWatch>();
  // Deliberately no ?passing: critical and maintenance instances must stay
  // in the answer, or they vanish without a reason (the go-kratos gap).
  watch->query = client_.Watch(
      "/v1/health/service/" + PercentEncode(service), {},
      [this, service](const QueryAnswer& answer) { return OnHealth(service, answer); },
      [this](const Status& error) { OnError(error); });
  services_.emplace(service, std::move(watch));
  ++unsynced_services_;
}

Status Watcher::OnHealth(const std::string& service, const QueryAnswer& answer) {
  auto it = services_.find(service);
  if (it == services_.end()) return Status::Ok();  // dropped by the catalog meanwhile
  auto health = ParseHealthService(answer.body);
  // A malformed body is an error to retry, never an empty snapshot: an empty
  // list would deregister every instance.
  if (!health.ok()) return health.status();
  OnSuccess();

  ServiceSnapshot snapshot;
  snapshot.datacenter = datacenter_;
  snapshot.service = service;
  snapshot.index = answer.meta.index;
  snapshot.instances = std::move(health->instances);
  snapshot.received_at = answer.received_at;
  // Every answer is diffed on its own (docs/consul-semantics.md rule 18):
  // collapsing answers would hide flaps.
  Publish(engine_->Apply(std::move(snapshot)));
  if (!it->second->synced) {
    it->second->synced = true;
    --unsynced_services_;
  }
  MaybeCompleteInitialSync();
  ScheduleTick();
  return Status::Ok();
}

void Watcher::MaybeCompleteInitialSync() {
  {
    std::lock_guard lock(state_mutex_);
    if (state_.initial_sync_done) return;
  }
  if (!catalog_seen_ || unsynced_services_ > 0) return;
  Publish(engine_->CompleteInitialSync());
  // The sync read every service's full answer at once; glibc keeps those
  // freed pages (about a third of the RSS at 10,000 services) unless asked.
  ::malloc_trim(0);
  std::lock_guard lock(state_mutex_);
  state_.initial_sync_done = true;
  spdlog::info("initial sync complete: {} services watched", services_.size());
}

void Watcher::OnSuccess() {
  std::lock_guard lock(state_mutex_);
  if (state_.unreachable_since) {
    const auto outage = std::chrono::duration_cast<std::chrono::milliseconds>(
        clock_.Now() - *state_.unreachable_since);
    spdlog::info("Consul answers again after {} ms of errors", outage.count());
  }
  state_.unreachable_since.reset();
  state_.last_error.reset();
  state_.last_success = clock_.WallNow();
  permission_denied_ = false;
}

void Watcher::OnError(const Status& error) {
  std::lock_guard lock(state_mutex_);
  // Log once per streak: with thousands of watches a Consul outage would
  // otherwise print thousands of identical lines.
  if (!state_.unreachable_since) {
    state_.unreachable_since = clock_.Now();
    spdlog::warn("Consul request failed: {}; keeping the last known state and retrying",
                 error.ToString());
  } else if (!state_.last_error || state_.last_error->code() != error.code()) {
    spdlog::warn("Consul request failed: {}", error.ToString());
  }
  // A missing or revoked ACL token will not heal by waiting out a grace.
  permission_denied_ = error.code() == StatusCode::kPermissionDenied;
  state_.last_error = error;
}

void Watcher::Publish(std::vector<Event> events) {
  if (!events.empty()) publisher_.Publish(std::move(events));
}

void Watcher::ScheduleTick() {
  const auto deadline = engine_->NextDeadline();
  if (deadline == tick_deadline_) return;
  if (tick_timer_) client_.loop().CancelTimer(*tick_timer_);
  tick_timer_.reset();
  tick_deadline_ = deadline;
  if (!deadline) return;
  // A dampened transition must fire even when Consul stays silent.
  tick_timer_ = client_.loop().RunAt(*deadline, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    tick_timer_.reset();
    tick_deadline_.reset();
    Publish(engine_->Tick());
    ScheduleTick();
  });
}

}  // namespace hb
