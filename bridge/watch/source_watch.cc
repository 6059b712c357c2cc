#include "bridge/watch/source_watch.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "bridge/consul/answer_parsers.h"

namespace hb {

struct SourceWatch::ServiceWatch {
  std::unique_ptr<BlockingQuery> query;
  bool synced = false;  // a first complete answer has reached the engine
};

// A table read on its way through the worker: the answer in, the diff out.
struct SourceWatch::TableJob {
  std::string body;
  std::uint64_t index = 0;
  ChangeDetector::TableBase base;  // handed back if the read was malformed
  Status status;
  ChangeDetector::TableRead read;
};

namespace {

// How many recent health answers' indexes explain catalog moves: a move's
// own health answer arrives within a few answers of it.
constexpr std::size_t kRecentServiceIndexes = 64;

}  // namespace

struct SourceWatch::CoveredService {
  bool synced = false;     // a first complete answer has reached the engine
  bool queued = false;     // waiting in urgent_reads_ or sweep_reads_
  bool urgent = false;     // waiting in urgent_reads_
  bool in_flight = false;  // a read is running
  bool dirty = false;      // changed again while its read was running
};

ConnectionPlan ConnectionPlan::For(std::size_t max_connections) {
  ConnectionPlan plan;
  if (max_connections == 0) {  // no budget: every service gets its own query
    plan.reads = 8;
    plan.dedicated = std::numeric_limits<std::size_t>::max();
    return plan;
  }
  // A tenth of the budget for reads (1 to 8): enough to re-read what one
  // change touched at once, small next to the blocking queries.
  plan.reads = std::clamp<std::size_t>(max_connections / 10, 1, 8);
  // The catalog watch and the change detector take one each.
  const std::size_t reserved = 2 + plan.reads;
  plan.dedicated = max_connections > reserved ? max_connections - reserved : 0;
  return plan;
}

namespace {

RequestScope ScopeOf(const WatcherOptions& options) {
  return {options.datacenter, options.scope.peer, options.scope.ns, options.scope.partition};
}

std::size_t BudgetOf(const WatcherOptions& options, const ConsulClient& client) {
  return options.connection_budget > 0 ? options.connection_budget
                                       : client.options().max_connections;
}

}  // namespace

SourceWatch::SourceWatch(WatcherOptions options, ConsulClient& client, TransitionEngine& engine,
                         EventPublisher& publisher, const Clock& clock)
    : options_(std::move(options)),
      filter_(options_.services),
      client_(client),
      request_scope_(ScopeOf(options_)),
      engine_(&engine),
      publisher_(publisher),
      clock_(clock),
      agent_retry_delay_(options_.agent_retry_initial),
      budget_(BudgetOf(options_, client)),
      plan_(ConnectionPlan::For(budget_)) {
  MutexLock lock(&state_mutex_);
  state_.connection_budget = budget_;
}

SourceWatch::~SourceWatch() { Stop(); }

void SourceWatch::Start() {
  client_.loop().Post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    // What the engine restored is its view until the first answer.
    if (engine_changed_) engine_changed_(*engine_);
    FetchDatacenter();
  });
}

void SourceWatch::Stop() {
  {
    MutexLock lock(&state_mutex_);
    if (stopped_) return;
    stopped_ = true;
    state_.ready = false;
  }
  client_.loop().RunAndWait([this] {
    // Resetting the token on the loop thread means every callback that runs
    // after this sees it expired: no race with the destructor.
    alive_.reset();
    if (tick_timer_) client_.loop().CancelTimer(*tick_timer_);
    if (agent_retry_timer_) client_.loop().CancelTimer(*agent_retry_timer_);
    if (peering_timer_) client_.loop().CancelTimer(*peering_timer_);
    if (read_retry_timer_) client_.loop().CancelTimer(*read_retry_timer_);
    if (safety_sweep_timer_) client_.loop().CancelTimer(*safety_sweep_timer_);
    if (catalog_grace_timer_) client_.loop().CancelTimer(*catalog_grace_timer_);
    if (table_read_timer_) client_.loop().CancelTimer(*table_read_timer_);
    catalog_query_.reset();
    services_.clear();
    covered_.clear();
    checks_query_.reset();
    retiring_.clear();
  });
}

WatchState SourceWatch::State() const {
  MutexLock lock(&state_mutex_);
  WatchState state = state_;
  const bool unreachable_too_long =
      state.unreachable_since &&
      clock_.Now() - *state.unreachable_since > options_.unreachable_grace;
  state.ready =
      !stopped_ && state.initial_sync_done && !unreachable_too_long && !permission_denied_;
  return state;
}

void SourceWatch::WithEngine(const std::function<void(const TransitionEngine&)>& visit) {
  client_.loop().RunAndWait([&] { visit(*engine_); });
}

void SourceWatch::UpdateServiceFilter(ServiceFilterOptions services) {
  client_.loop().RunAndWait([&] {
    filter_ = ServiceFilter(std::move(services));
    {
      MutexLock lock(&state_mutex_);
      if (stopped_) return;
    }
    if (catalog_seen_) ApplyCatalog(catalog_index_, false);
  });
}

void SourceWatch::UpdateEngineOptions(EngineOptions options) {
  client_.loop().RunAndWait([&] {
    engine_->UpdateOptions(std::move(options));
    ScheduleTick();
  });
}

void SourceWatch::FetchDatacenter() {
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
        spdlog::debug("consul GET /v1/agent/self failed, retrying in {} ms",
                      agent_retry_delay_.count());
        agent_retry_timer_ = client_.loop().RunAt(clock_.Now() + agent_retry_delay_, [this, alive] {
          if (alive.expired()) return;
          agent_retry_timer_.reset();
          FetchDatacenter();
        });
        agent_retry_delay_ = std::min(agent_retry_delay_ * 2, options_.agent_retry_max);
      });
}

void SourceWatch::StartCatalogWatch() {
  {
    MutexLock lock(&state_mutex_);
    state_.datacenter = datacenter_;
    state_.source = SourceKey(datacenter_, options_.scope);
  }
  if (options_.scope.IsDefault()) {
    spdlog::info("watching the Consul catalog of datacenter {}", datacenter_);
  } else {
    spdlog::info("watching the Consul catalog of source {}",
                 SourceKey(datacenter_, options_.scope));
  }
  catalog_query_ = client_.Watch(
      "/v1/catalog/services", {}, [this](const QueryAnswer& answer) { return OnCatalog(answer); },
      [this](const Status& error) { OnError(error); }, request_scope_);
  if (!options_.scope.peer.empty()) {
    // A peering that is not active (failing, deleted) leaves its imported
    // services stale or removes them: the source is unavailable then, not
    // emptied. Consul cannot block on /v1/peerings, so it is polled.
    paused_ = true;
    PollPeering();
  }
}

Status SourceWatch::OnCatalog(const QueryAnswer& answer) {
  // Most moves of the catalog's index leave its body as it was (a
  // re-registration, a new instance of a known service): at 100,000
  // services the body is megabytes to parse and match against the filter on
  // this thread, so the same body goes straight to the move.
  if (catalog_seen_ && answer.body == catalog_body_) {
    OnSuccess();
    const bool moved = answer.meta.index != catalog_index_;
    catalog_index_ = answer.meta.index;
    if (moved && !paused_) OnCatalogMoved(catalog_index_, false);
    return Status::Ok();
  }
  auto catalog = ParseCatalogServices(answer.body);
  if (!catalog.ok()) return catalog.status();
  OnSuccess();
  const bool moved = catalog_seen_ && answer.meta.index != catalog_index_;
  // A service added, removed or retagged is what moved the index (or one of
  // the writes that did): that service is read, no need to search the
  // checks table for it. A covered service retagged is read again.
  bool explained = false;
  if (moved) {
    explained = catalog->size() != catalog_.size();
    for (const auto& [service, tags] : *catalog) {
      auto before = catalog_.find(service);
      if (before != catalog_.end() && before->second == tags) continue;
      explained = true;
      if (before != catalog_.end()) QueueRead(service, true);
    }
  }
  catalog_seen_ = true;
  catalog_ = std::move(*catalog);
  catalog_body_.assign(answer.body);
  catalog_index_ = answer.meta.index;
  // While the peering is down the catalog is kept, and applied when it is
  // active again: imported services it lost meanwhile are no departure.
  if (paused_) return Status::Ok();
  ApplyCatalog(catalog_index_, moved, explained);
  return Status::Ok();
}

void SourceWatch::ApplyCatalog(std::uint64_t index, bool catalog_moved, bool explained) {
  std::set<std::string, std::less<>> wanted;
  for (const auto& [service, tags] : catalog_) {
    if (filter_.Matches(service, tags)) wanted.insert(service);
  }
  // Left the catalog or the filter: its instances deregister now rather
  // than when the (possibly long) health wait would have noticed.
  const auto gone = [&](const std::string& service) {
    service_failures_.erase(service);
    unread_at_sync_.erase(service);
    spdlog::info("service {} left the catalog or the filter; no longer watched", service);
    std::vector<Event> events = engine_->ServiceGone(datacenter_, options_.scope, service, index);
    // Gone while the source could not be read: a change found by
    // reconciling, as after a restart.
    if (reconciling_.erase(service) > 0 || resuming_) MarkReconciled(events);
    Publish(std::move(events));
  };
  for (auto it = services_.begin(); it != services_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    const std::string service = it->first;
    if (!it->second->synced) --unsynced_services_;
    Retire(std::move(it->second->query), true);
    it = services_.erase(it);
    gone(service);
  }
  for (auto it = covered_.begin(); it != covered_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    const std::string service = it->first;
    if (!it->second.synced) --unsynced_services_;
    detector_.Forget(service);
    it = covered_.erase(it);  // a read in flight finds it gone and is dropped
    gone(service);
  }
  // Every move of the catalog's index is a service written somewhere: a
  // registration, a deregistration, new tags, meta, address or port, an
  // instance without checks.
  if (catalog_moved) OnCatalogMoved(index, explained);
  for (const auto& service : wanted) {
    if (services_.contains(service) || covered_.contains(service)) continue;
    if (services_.size() + retiring_dedicated_ < plan_.dedicated) {
      StartServiceWatch(service);
    } else {
      covered_.emplace(service, CoveredService{});
      ++unsynced_services_;
      QueueRead(service, true);
    }
  }
  Rebalance();
  UpdateCounts();
  MaybeCompleteInitialSync();
  ScheduleTick();
}

void SourceWatch::Rebalance() {
  // A covered service moves to a free dedicated slot, in name order. Its
  // blocking query starts with a fresh read, so nothing is missed between.
  while (!covered_.empty() && services_.size() + retiring_dedicated_ < plan_.dedicated) {
    auto it = covered_.begin();
    const std::string service = it->first;
    if (!it->second.synced) --unsynced_services_;
    detector_.Forget(service);
    covered_.erase(it);
    StartServiceWatch(service);
  }
  if (!covered_.empty() && !options_.scope.peer.empty()) {
    // Consul's /v1/health/state takes no ?peer=: nothing tells which of a
    // peer's imported services changed, so the covered ones are re-read
    // on every catalog move and every safety_sweep_delay.
    ScheduleSafetySweep();
  } else if (!covered_.empty() && !checks_query_) {
    spdlog::info(
        "{} services get a blocking query each; the other {} are watched through "
        "/v1/health/state/any (consul.max_connections {})",
        services_.size(), covered_.size(), budget_);
    detector_.Reset();
    // Only the checks that are not passing (critical, warning, maintenance):
    // the index still moves on every check write, but a change costs an
    // answer the size of the unhealthy set instead of the whole table.
    checks_query_ = client_.Watch(
        "/v1/health/state/any", {{"filter", std::string(kNotPassingFilter)}},
        [this](const QueryAnswer& answer) { return OnChecks(answer); },
        [this](const Status& error) { OnError(error); }, request_scope_);
    // The whole table's baseline, for the registrations the filtered set
    // cannot show.
    table_read_wanted_ = true;
    if (!table_worker_) table_worker_ = std::make_unique<WorkerThread>();
  }
  PumpReads();
}

void SourceWatch::Retire(std::unique_ptr<BlockingQuery> query, bool dedicated_slot) {
  if (!query) return;
  const std::uint64_t key = next_retiring_++;
  if (dedicated_slot) ++retiring_dedicated_;
  BlockingQuery* retiring = query.get();
  retiring_.emplace(key, RetiringQuery{std::move(query), dedicated_slot});
  retiring->Retire([this, key, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    auto it = retiring_.find(key);
    if (it == retiring_.end()) return;
    if (it->second.dedicated) --retiring_dedicated_;
    retiring_.erase(it);
    Rebalance();
    UpdateCounts();
    MaybeCompleteInitialSync();
    if (connection_freed_) client_.loop().Post(connection_freed_);
  });
}

void SourceWatch::SetConnectionBudget(std::size_t max_connections) {
  client_.loop().RunAndWait([this, max_connections] {
    {
      MutexLock lock(&state_mutex_);
      if (stopped_) return;
    }
    if (budget_ == 0 || max_connections == 0 || max_connections == budget_) return;
    const std::size_t before = budget_;
    budget_ = max_connections;
    plan_ = ConnectionPlan::For(budget_);
    {
      MutexLock lock(&state_mutex_);
      state_.connection_budget = budget_;
    }
    // Past the new plan: the dedicated services last in name order (the
    // first ones are promoted first) go to the covered path. Their queries
    // retire, never cut mid-wait: Consul would hold the connection anyway.
    std::size_t demoted = 0;
    while (services_.size() > plan_.dedicated) {
      auto it = std::prev(services_.end());
      const std::string service = it->first;
      CoveredService covered;
      covered.synced = it->second->synced;  // unsynced_services_ counts either path alike
      Retire(std::move(it->second->query), true);
      services_.erase(it);
      covered_.emplace(service, covered);
      // Read once on the covered path: whatever changed since the retired
      // query's last answer.
      QueueRead(service, true);
      ++demoted;
    }
    if (budget_ < before) {
      spdlog::info(
          "connection budget{}: {} -> {} (consul.max_connections shared among more sources); {} "
          "services moved to the change detector",
          SourceSuffix(), before, budget_, demoted);
    } else {
      spdlog::info("connection budget{}: {} -> {} (connections freed by other sources)",
                   SourceSuffix(), before, budget_);
    }
    Rebalance();
    UpdateCounts();
    MaybeCompleteInitialSync();
  });
}

std::size_t SourceWatch::ConnectionsCommitted() const {
  const std::size_t held = (catalog_query_ ? 1 : 0) + (checks_query_ ? 1 : 0) + services_.size() +
                           retiring_.size() + reads_in_flight_;
  return std::max(budget_, held);
}

void SourceWatch::OnConnectionFreed(std::function<void()> freed) {
  client_.loop().RunAndWait([&] { connection_freed_ = std::move(freed); });
}

Status SourceWatch::OnChecks(const QueryAnswer& answer) {
  auto rows = ParseHealthState(answer.body);
  if (!rows.ok()) return rows.status();
  OnSuccess();
  for (const std::string& service : detector_.OnChecks(*rows, answer.meta.index)) {
    if (covered_.contains(service)) QueueRead(service, true);
  }
  ResolveCatalogMoves(std::nullopt);
  WantTableRead();
  // The first answer is a baseline the reads waited for: any change
  // after it shows in a later answer.
  PumpReads();
  return Status::Ok();
}

void SourceWatch::StartTableRead() {
  table_read_wanted_ = false;
  table_read_in_flight_ = true;
  table_read_started_ = std::chrono::steady_clock::now();
  ++reads_in_flight_;
  // Every catalog move seen so far happened before this read starts, so the
  // read shows the checks of each one.
  const std::uint64_t settles = catalog_index_;
  client_.Read(
      "/v1/health/state/any",
      [this, settles, alive = std::weak_ptr<bool>(alive_)](StatusOr<ReadAnswer> answer) {
        if (alive.expired()) return;
        OnTableRead(settles, std::move(answer));
      },
      request_scope_);
}

void SourceWatch::OnTableRead(std::uint64_t settles, StatusOr<ReadAnswer> answer) {
  --reads_in_flight_;
  if (!answer.ok()) {
    table_read_in_flight_ = false;
    OnError(answer.status());
    table_read_wanted_ = true;
    BackOffReads();
    return;
  }
  // Parsed and diffed on the worker (3 MB of JSON at 10,000 instances,
  // 32 MB at 100,000): a health answer arriving meanwhile is handled at
  // once instead of waiting for it. table_read_in_flight_ stays set until
  // the result is back, so one table at a time is in memory.
  auto job = std::make_shared<TableJob>();
  job->body = std::move(answer->body);
  job->index = answer->meta.index;
  job->base = detector_.TakeTable();
  table_worker_->Post(
      [this, job, settles, loop = &client_.loop(), alive = std::weak_ptr<bool>(alive_)] {
        auto rows = ParseHealthState(job->body);
        std::string().swap(job->body);
        if (rows.ok()) {
          job->read = ChangeDetector::DiffTable(*rows, job->index, job->base);
          job->base = {};  // the old table is freed here, not on the loop
        } else {
          job->status = rows.status();
        }
        loop->Post([this, job, settles, alive] {
          if (alive.expired()) return;
          OnTableDiffed(settles, *job);
        });
      });
  PumpReads();  // the read's connection is free
}

void SourceWatch::OnTableDiffed(std::uint64_t settles, TableJob& job) {
  table_read_in_flight_ = false;
  // The next table read keeps to its share of the time.
  const auto now = std::chrono::steady_clock::now();
  const double share = std::clamp(options_.table_read_share, 0.01, 1.0);
  table_read_not_before_ = now + std::chrono::duration_cast<SteadyTime::duration>(
                                     (now - table_read_started_) * (1.0 / share - 1.0));
  if (!job.status.ok()) {
    detector_.RestoreTable(std::move(job.base));
    OnError(job.status);
    table_read_wanted_ = true;
    BackOffReads();
    return;
  }
  OnSuccess();
  for (const std::string& service : detector_.ApplyTable(std::move(job.read))) {
    if (covered_.contains(service)) QueueRead(service, true);
  }
  ResolveCatalogMoves(settles);
  read_failures_ = 0;
  PumpReads();
}

void SourceWatch::OnCatalogMoved(std::uint64_t index, bool explained) {
  if (covered_.empty()) return;
  if (!options_.scope.peer.empty()) {
    // No checks table of a peer's services to consult: read them again.
    Sweep();
    return;
  }
  if (explained) {
    ScheduleSafetySweep();
    return;
  }
  unexplained_moves_.push_back(index);
  ResolveCatalogMoves(std::nullopt);
  WantTableRead();
}

void SourceWatch::WantTableRead() {
  if (unexplained_moves_.empty()) {
    if (catalog_grace_timer_) client_.loop().CancelTimer(*catalog_grace_timer_);
    catalog_grace_timer_.reset();
    // Explained meanwhile; the first read (the baseline) is still wanted.
    if (detector_.has_table()) table_read_wanted_ = false;
    return;
  }
  // A registration or deregistration whose checks all pass leaves no trace
  // in the detector's filtered answer: one read of the whole table says
  // which service it was. Moves while a read runs wait for the next one.
  // But the detector's answer for the same write may still be on its way
  // (Consul wakes both queries, in either order): wait for it, briefly.
  const std::uint64_t latest =
      *std::max_element(unexplained_moves_.begin(), unexplained_moves_.end());
  if (detector_.checks_index() < latest) {
    if (!catalog_grace_timer_) {
      catalog_grace_timer_ =
          client_.loop().RunAt(std::chrono::steady_clock::now() + options_.catalog_move_grace,
                               [this, alive = std::weak_ptr<bool>(alive_)] {
                                 if (alive.expired()) return;
                                 catalog_grace_timer_.reset();
                                 if (unexplained_moves_.empty()) return;
                                 table_read_wanted_ = true;
                                 PumpReads();
                               });
    }
    return;
  }
  if (catalog_grace_timer_) client_.loop().CancelTimer(*catalog_grace_timer_);
  catalog_grace_timer_.reset();
  table_read_wanted_ = true;
  PumpReads();
}

bool SourceWatch::ServiceAnsweredAt(std::uint64_t index) const {
  return std::find(recent_service_indexes_.begin(), recent_service_indexes_.end(), index) !=
         recent_service_indexes_.end();
}

void SourceWatch::ScheduleSafetySweep() {
  if (safety_sweep_timer_) return;
  safety_sweep_timer_ =
      client_.loop().RunAt(std::chrono::steady_clock::now() + options_.safety_sweep_delay,
                           [this, alive = std::weak_ptr<bool>(alive_)] {
                             if (alive.expired()) return;
                             safety_sweep_timer_.reset();
                             Sweep();
                             // A peer source's covered services have no
                             // change detector: they are re-read this often.
                             if (!options_.scope.peer.empty() && !covered_.empty()) {
                               ScheduleSafetySweep();
                             }
                           });
}

void SourceWatch::ResolveCatalogMoves(std::optional<std::uint64_t> settled_up_to) {
  if (unexplained_moves_.empty()) return;
  const std::size_t before = unexplained_moves_.size();
  std::erase_if(unexplained_moves_, [this](std::uint64_t index) {
    return detector_.Explains(index) || ServiceAnsweredAt(index);
  });
  if (unexplained_moves_.size() < before) ScheduleSafetySweep();
  if (!settled_up_to) return;
  // A move the table read after it does not explain was a write no check
  // shows (tags, meta, address, an instance without checks).
  const std::size_t unsettled = unexplained_moves_.size();
  std::erase_if(unexplained_moves_, [&](std::uint64_t index) { return index <= *settled_up_to; });
  if (unexplained_moves_.size() < unsettled) Sweep();
  WantTableRead();
}

void SourceWatch::Sweep() {
  for (const auto& [service, covered] : covered_) QueueRead(service, false);
  PumpReads();
}

void SourceWatch::QueueRead(const std::string& service, bool urgent) {
  auto it = covered_.find(service);
  if (it == covered_.end()) return;
  CoveredService& covered = it->second;
  if (covered.in_flight) {
    covered.dirty = true;
    return;
  }
  // A service waiting for a sweep that the detector names moves ahead (its
  // sweep entry is skipped once it was read).
  if (covered.queued && (covered.urgent || !urgent)) return;
  covered.queued = true;
  covered.urgent = urgent;
  (urgent ? urgent_reads_ : sweep_reads_).push_back(service);
}

void SourceWatch::PumpReads() {
  if (read_retry_timer_) return;
  // The table read comes first: it says which services to read.
  if (table_read_wanted_ && !table_read_in_flight_ && reads_in_flight_ < plan_.reads) {
    if (std::chrono::steady_clock::now() >= table_read_not_before_) {
      StartTableRead();
    } else if (!table_read_timer_) {
      table_read_timer_ =
          client_.loop().RunAt(table_read_not_before_, [this, alive = std::weak_ptr<bool>(alive_)] {
            if (alive.expired()) return;
            table_read_timer_.reset();
            PumpReads();
          });
    }
  }
  // Reads wait for the detector's baselines: a change between a read and a
  // later baseline would be in neither. A peer source runs no detector
  // (Consul's /v1/health/state takes no ?peer=): its covered services are
  // read on every catalog move and sweep, with no baseline to wait for.
  if (options_.scope.peer.empty() && !detector_.has_baseline()) return;
  while (reads_in_flight_ < plan_.reads && (!urgent_reads_.empty() || !sweep_reads_.empty())) {
    // Sweeps use at most half the read slots (at least one), so a change
    // the detector names never waits behind a whole sweep.
    if (urgent_reads_.empty() &&
        sweep_reads_in_flight_ >= std::max<std::size_t>(plan_.reads / 2, 1)) {
      break;
    }
    const bool sweep = urgent_reads_.empty();
    std::deque<std::string>& queue = sweep ? sweep_reads_ : urgent_reads_;
    std::string service = std::move(queue.front());
    queue.pop_front();
    auto it = covered_.find(service);
    if (it == covered_.end() || !it->second.queued) continue;  // gone or promoted since
    it->second.queued = false;
    it->second.urgent = false;
    it->second.in_flight = true;
    ++reads_in_flight_;
    if (sweep) ++sweep_reads_in_flight_;
    client_.Read(
        "/v1/health/service/" + PercentEncode(service),
        [this, service, sweep, alive = std::weak_ptr<bool>(alive_)](StatusOr<ReadAnswer> answer) {
          if (alive.expired()) return;
          if (sweep) --sweep_reads_in_flight_;
          OnRead(service, std::move(answer));
        },
        request_scope_);
  }
}

void SourceWatch::OnRead(const std::string& service, StatusOr<ReadAnswer> answer) {
  --reads_in_flight_;
  auto it = covered_.find(service);
  if (it != covered_.end()) it->second.in_flight = false;
  Status status = answer.status();
  if (status.ok() && it != covered_.end()) {
    status = ApplyHealth(service, answer->body, answer->meta.index, answer->received_at, true);
  }
  it = covered_.find(service);  // the engine's events cannot change covered_, but be exact
  if (!status.ok()) {
    if (it == covered_.end()) return PumpReads();
    if (OnServiceError(service, status)) {
      // Consul answered, this service's answer is unusable: it alone waits
      // (a backoff of its own), the other reads go on.
      const int failures = service_failures_[service].count;
      const auto delay = ExponentialBackoff(failures, client_.options().backoff_initial,
                                            client_.options().backoff_max, rng_);
      client_.loop().RunAt(std::chrono::steady_clock::now() + delay,
                           [this, service, alive = std::weak_ptr<bool>(alive_)] {
                             if (alive.expired()) return;
                             QueueRead(service, true);
                             PumpReads();
                           });
      return PumpReads();
    }
    QueueRead(service, true);
    BackOffReads();
    return;
  }
  read_failures_ = 0;
  if (it != covered_.end() && it->second.dirty) {
    it->second.dirty = false;
    QueueRead(service, true);
  }
  PumpReads();
}

void SourceWatch::BackOffReads() {
  // One backoff for all reads: they fail together when Consul does, and
  // the reads in flight when it failed count as one failure, not R.
  if (read_retry_timer_) return;
  ++read_failures_;
  const auto delay = ExponentialBackoff(read_failures_, client_.options().backoff_initial,
                                        client_.options().backoff_max, rng_);
  read_retry_timer_ = client_.loop().RunAt(std::chrono::steady_clock::now() + delay,
                                           [this, alive = std::weak_ptr<bool>(alive_)] {
                                             if (alive.expired()) return;
                                             read_retry_timer_.reset();
                                             PumpReads();
                                           });
}

void SourceWatch::UpdateCounts() {
  MutexLock lock(&state_mutex_);
  state_.watched_services = services_.size() + covered_.size();
  state_.dedicated_services = services_.size();
  state_.covered_services = covered_.size();
}

void SourceWatch::StartServiceWatch(const std::string& service) {
  auto watch = std::make_unique<ServiceWatch>();
  // Deliberately no ?passing: critical and maintenance instances must stay
  // in the answer, or they vanish without a reason (the go-kratos gap).
  watch->query = client_.Watch(
      "/v1/health/service/" + PercentEncode(service), {},
      [this, service](const QueryAnswer& answer) { return OnHealth(service, answer); },
      [this, service](const Status& error) { OnServiceError(service, error); }, request_scope_);
  services_.emplace(service, std::move(watch));
  ++unsynced_services_;
}

Status SourceWatch::OnHealth(const std::string& service, const QueryAnswer& answer) {
  if (!services_.contains(service)) return Status::Ok();  // dropped by the catalog meanwhile
  return ApplyHealth(service, answer.body, answer.meta.index, answer.received_at, false);
}

Status SourceWatch::ApplyHealth(const std::string& service, std::string_view body,
                                std::uint64_t index, SteadyTime received_at, bool covered) {
  auto health = ParseHealthService(body);
  // A malformed body is an error to retry, never an empty snapshot: an empty
  // list would deregister every instance.
  if (!health.ok()) return health.status();
  OnSuccess();
  if (paused_) {
    // The peering is down: what Consul answers now (imported services
    // removed, stale) is kept, the latest per service, and applied once it
    // is active again.
    paused_answers_.insert_or_assign(service,
                                     PausedAnswer{std::string(body), index, received_at, covered});
    return Status::Ok();
  }
  OnServiceRead(service);
  if (covered) detector_.RecordInstances(service, health->instances);
  recent_service_indexes_.push_back(index);
  if (recent_service_indexes_.size() > kRecentServiceIndexes) recent_service_indexes_.pop_front();
  if (!unexplained_moves_.empty()) {
    // This answer may be the write a catalog move waits for.
    ResolveCatalogMoves(std::nullopt);
    if (unexplained_moves_.empty()) WantTableRead();
  }

  ServiceSnapshot snapshot;
  snapshot.datacenter = datacenter_;
  snapshot.scope = options_.scope;
  snapshot.service = service;
  snapshot.index = index;
  snapshot.instances = std::move(health->instances);
  snapshot.received_at = received_at;
  // Every answer is diffed on its own (docs/consul-semantics.md rule 18):
  // collapsing answers would hide flaps.
  std::vector<Event> events = engine_->Apply(std::move(snapshot));
  if (reconciling_.erase(service) > 0) MarkReconciled(events);
  Publish(std::move(events));
  bool* synced = nullptr;
  if (covered) {
    if (auto it = covered_.find(service); it != covered_.end()) synced = &it->second.synced;
  } else if (auto it = services_.find(service); it != services_.end()) {
    synced = &it->second->synced;
  }
  if (synced != nullptr && !*synced) {
    *synced = true;
    --unsynced_services_;
  }
  MaybeCompleteInitialSync();
  ScheduleTick();
  return Status::Ok();
}

void SourceWatch::MaybeCompleteInitialSync() {
  {
    MutexLock lock(&state_mutex_);
    if (state_.initial_sync_done) return;
  }
  if (!catalog_seen_ || unsynced_services_ > 0) return;
  Publish(engine_->CompleteInitialSync(datacenter_, options_.scope, unread_at_sync_));
  unread_at_sync_.clear();
  // The sync read every service's full answer at once; glibc keeps those
  // freed pages (about a third of the RSS at 10,000 services) unless asked.
  ::malloc_trim(0);
  MutexLock lock(&state_mutex_);
  state_.initial_sync_done = true;
  spdlog::info("initial sync complete{}: {} services watched", SourceSuffix(), services_.size());
}

std::string SourceWatch::SourceSuffix() const {
  if (!options_.scope.named_in_subject) return "";  // the only source
  return " (source " + SourceKey(datacenter_, options_.scope) + ")";
}

void SourceWatch::MarkReconciled(std::vector<Event>& events) {
  for (Event& event : events) {
    if (!event.silent) event.reconciled = true;
  }
}

void SourceWatch::OnSuccess() {
  bool recovered = false;
  {
    MutexLock lock(&state_mutex_);
    state_.last_success = clock_.WallNow();
    // An inactive peering keeps the source unavailable whatever answers.
    if (paused_) return;
    if (state_.unreachable_since) {
      const auto outage = std::chrono::duration_cast<std::chrono::milliseconds>(
          clock_.Now() - *state_.unreachable_since);
      spdlog::info("Consul answers again after {} ms of errors{}", outage.count(), SourceSuffix());
      recovered = state_.initial_sync_done;
    }
    state_.unreachable_since.reset();
    state_.last_error.reset();
    permission_denied_ = false;
  }
  if (!recovered) return;
  // Nothing was read while the source could not be. Its instances kept
  // their last known state (an outage is no instance.down); what really
  // changed meanwhile is reported once, marked reconciled. A dedicated
  // service whose query failed is in reconciling_ already (its next answer
  // is a fresh read); a covered one is read again now, since the change
  // detector only sees what differs in the checks that are not passing.
  for (const auto& [service, covered] : covered_) reconciling_.insert(service);
  client_.loop().Post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    Sweep();
  });
}

void SourceWatch::PollPeering() {
  peering_timer_.reset();
  // Peerings belong to the local datacenter and the source's partition.
  client_.Get(
      "/v1/peerings",
      [this, alive = std::weak_ptr<bool>(alive_)](StatusOr<std::string> body) {
        if (alive.expired()) return;
        Status status = body.status();
        if (status.ok()) {
          auto peerings = ParsePeerings(*body);
          if (peerings.ok()) {
            auto it = peerings->find(options_.scope.peer);
            SetPeeringState(it == peerings->end() ? "not established (no such peering)"
                                                  : it->second);
          } else {
            status = peerings.status();
          }
        }
        if (!status.ok()) OnError(status);
        peering_timer_ =
            client_.loop().RunAt(clock_.Now() + options_.peering_poll_interval, [this, alive] {
              if (alive.expired()) return;
              PollPeering();
            });
      },
      RequestScope{"", "", "", options_.scope.partition});
}

bool SourceWatch::SourceInitialSyncDone() const {
  MutexLock lock(&state_mutex_);
  return state_.initial_sync_done;
}

void SourceWatch::SetPeeringState(const std::string& state) {
  const bool active = state == "ACTIVE";
  // A peer source starts paused: nothing it answers counts before the
  // peering is known to be active.
  const bool first = !peering_known_;
  peering_known_ = true;
  if (!first && active == !paused_) return;
  if (!active) {
    paused_ = true;
    spdlog::warn(
        "peering {} is {}: source {} is unavailable; its instances keep their last known "
        "state until it is active again",
        options_.scope.peer, state, SourceKey(datacenter_, options_.scope));
    MutexLock lock(&state_mutex_);
    state_.last_error = Status::Unavailable("peering " + options_.scope.peer + " is " + state);
    if (!state_.unreachable_since) state_.unreachable_since = clock_.Now();
    return;
  }
  paused_ = false;
  spdlog::info(
      "peering {} is active{}", options_.scope.peer,
      first ? "" : " again: source " + SourceKey(datacenter_, options_.scope) + " is reconciled");
  {
    MutexLock lock(&state_mutex_);
    state_.last_error.reset();
    state_.unreachable_since.reset();
  }
  // What the source answered meanwhile was kept, not applied: the catalog
  // as it is now, and each service's latest answer. Applied now, they say
  // what changed while the peering was down, marked reconciled.
  // The first time, this is the source's initial sync, which the engine
  // marks itself.
  resuming_ = !first;
  if (catalog_seen_) ApplyCatalog(catalog_index_, false);
  resuming_ = false;
  std::map<std::string, PausedAnswer, std::less<>> answers;
  answers.swap(paused_answers_);
  for (auto& [service, answer] : answers) {
    const bool watched = answer.covered ? covered_.contains(service) : services_.contains(service);
    if (!watched) continue;
    if (!first) reconciling_.insert(service);
    if (Status applied =
            ApplyHealth(service, answer.body, answer.index, answer.received_at, answer.covered);
        !applied.ok()) {
      OnServiceError(service, applied);
    }
  }
}

bool SourceWatch::OnServiceError(const std::string& service, const Status& error) {
  // A refused token is never one service's problem: readiness says it at
  // once.
  if (error.code() == StatusCode::kPermissionDenied) OnError(error);
  // Its next answer is a fresh read: what changed while it failed is a
  // reconciliation.
  if (SourceInitialSyncDone()) reconciling_.insert(service);
  const bool answered = error.code() == StatusCode::kInvalidArgument ||
                        error.code() == StatusCode::kResourceExhausted;
  ServiceFailures& streak = service_failures_[service];
  const int failures = ++streak.count;
  bool reachable = false;
  {
    MutexLock lock(&state_mutex_);
    reachable = !state_.unreachable_since.has_value();
  }
  // A read that ran past its deadline while Consul answers the rest: this
  // service's answer is too slow to wait for (a drip of one byte a second
  // holds a read until its deadline, every time). Waiting for more such
  // reads would hold the whole start-up for one service.
  const bool too_slow = reachable && error.code() == StatusCode::kDeadlineExceeded;
  if (answered && !streak.warned) {
    streak.warned = true;
    // Once per streak: the query retries with backoff for as long as it
    // lasts.
    spdlog::warn(
        "service {}: Consul's answer cannot be used: {}; its last known state stays, retrying "
        "with backoff",
        service, error.ToString());
  } else if (!answered) {
    // Its reads alone keep failing while Consul answers the rest (a drip, a
    // header curl refuses): say so once. When Consul is down for everyone,
    // the catalog's error says it, not one line per service.
    if (too_slow && !streak.warned) {
      streak.warned = true;
      spdlog::warn(
          "service {}: its answer did not arrive within the read's deadline while Consul "
          "answers the rest: {}; its last known state stays, retrying with backoff",
          service, error.ToString());
    } else if (reachable && failures == kUnreadableAfter && !streak.warned) {
      streak.warned = true;
      spdlog::warn(
          "service {}: {} reads failed in a row while Consul answers the rest: {}; its "
          "last known state stays, retrying with backoff",
          service, failures, error.ToString());
    } else {
      spdlog::debug("service {}: read failed: {}", service, error.ToString());
    }
  }
  if (answered || too_slow || failures >= kUnreadableAfter) {
    bool* synced = nullptr;
    if (auto it = services_.find(service); it != services_.end()) {
      synced = &it->second->synced;
    } else if (auto covered = covered_.find(service); covered != covered_.end()) {
      synced = &covered->second.synced;
    }
    if (synced != nullptr && !*synced) {
      *synced = true;
      --unsynced_services_;
      unread_at_sync_.insert(service);
      MaybeCompleteInitialSync();
    }
  }
  return answered;
}

void SourceWatch::OnServiceRead(const std::string& service) {
  unread_at_sync_.erase(service);
  auto it = service_failures_.find(service);
  if (it == service_failures_.end()) return;
  if (it->second.warned) {
    spdlog::info("service {}: Consul's answers are usable again after {} failed reads", service,
                 it->second.count);
  }
  service_failures_.erase(it);
}

void SourceWatch::OnError(const Status& error) {
  MutexLock lock(&state_mutex_);
  // Log once per streak: with thousands of watches a Consul outage would
  // otherwise print thousands of identical lines.
  if (!state_.unreachable_since) {
    state_.unreachable_since = clock_.Now();
    spdlog::warn("Consul request failed{}: {}; keeping the last known state and retrying",
                 SourceSuffix(), error.ToString());
  } else if (!state_.last_error || state_.last_error->code() != error.code()) {
    spdlog::warn("Consul request failed: {}", error.ToString());
  }
  // A missing or revoked ACL token will not heal by waiting out a grace.
  permission_denied_ = error.code() == StatusCode::kPermissionDenied;
  state_.last_error = error;
}

void SourceWatch::Publish(std::vector<Event> events) {
  if (engine_changed_ && !engine_change_posted_) {
    // Posted tasks run after the loop's current batch of answers.
    engine_change_posted_ = true;
    client_.loop().Post([this, alive = std::weak_ptr<bool>(alive_)] {
      if (alive.expired()) return;
      engine_change_posted_ = false;
      engine_changed_(*engine_);
    });
  }
  if (!events.empty()) publisher_.Publish(std::move(events));
}

void SourceWatch::OnEngineChanged(std::function<void(const TransitionEngine&)> changed) {
  client_.loop().RunAndWait([&] { engine_changed_ = std::move(changed); });
}

void SourceWatch::ScheduleTick() {
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
