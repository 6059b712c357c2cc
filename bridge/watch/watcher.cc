#include "bridge/watch/watcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "bridge/consul/answer_parsers.h"

namespace hb {
namespace {

// One SourceWatch's options per source: the source's datacenter, scope,
// filter and share of the connection budget.
std::vector<WatcherOptions> PerSource(const WatcherOptions& options, std::size_t max_connections) {
  std::vector<WatchSource> sources = options.sources;
  if (sources.empty()) sources.push_back({options.datacenter, "", "", "", options.services});
  const std::size_t count = sources.size();
  std::vector<WatcherOptions> out;
  for (std::size_t i = 0; i < count; ++i) {
    WatcherOptions one = options;
    one.sources.clear();
    one.services = sources[i].services;
    if (!sources[i].datacenter.empty()) one.datacenter = sources[i].datacenter;
    one.scope = {sources[i].peer, sources[i].ns, sources[i].partition, count > 1};
    if (count > 1 && max_connections > 0) {
      // What an equal split leaves over goes to the first source, the
      // agent's own as a rule.
      one.connection_budget = max_connections / count + (i == 0 ? max_connections % count : 0);
    }
    out.push_back(std::move(one));
  }
  return out;
}

bool HasTemplates(const WatcherOptions& options) {
  return std::any_of(options.sources.begin(), options.sources.end(),
                     [](const WatchSource& source) { return source.IsTemplate(); });
}

// Where a list's wildcard lives, for log lines.
std::string DescribeList(const SourceList& list) {
  std::string text = list.Path();
  if (!list.datacenter.empty()) text += " of datacenter " + list.datacenter;
  if (!list.partition.empty()) text += " of partition " + list.partition;
  return text;
}

}  // namespace

Watcher::Watcher(const WatcherOptions& options, ConsulClient& client,
                 std::unique_ptr<TransitionEngine> engine, EventPublisher& publisher,
                 const Clock& clock)
    : options_(options),
      client_(client),
      publisher_(publisher),
      clock_(clock),
      templates_(HasTemplates(options)),
      engine_(std::move(engine)),
      list_retry_(options.agent_retry_initial) {
  if (templates_) {
    for (const WatchSource& entry : options_.sources) entry_services_.push_back(entry.services);
    return;
  }
  std::vector<WatcherOptions> per_source = PerSource(options, client.options().max_connections);
  engine_->ExpectSources(per_source.size());
  for (WatcherOptions& one : per_source) {
    sources_.push_back(
        std::make_unique<SourceWatch>(std::move(one), client, *engine_, publisher, clock));
  }
}

Watcher::~Watcher() { Stop(); }

void Watcher::Start() {
  if (!templates_) {
    for (auto& source : sources_) source->Start();
    return;
  }
  client_.loop().Post([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    ListLocalDatacenter();
  });
}

void Watcher::Stop() {
  if (!templates_) {
    for (auto& source : sources_) source->Stop();
    return;
  }
  {
    MutexLock lock(&mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  client_.loop().RunAndWait([this] {
    alive_.reset();
    if (list_timer_) client_.loop().CancelTimer(*list_timer_);
    list_timer_.reset();
    if (drain_timer_) client_.loop().CancelTimer(*drain_timer_);
    drain_timer_.reset();
  });
  // The sources stay (stopped) so State() and WithEngine() still work.
  std::vector<SourceWatch*> watches;
  {
    MutexLock lock(&mutex_);
    for (auto& found : found_) {
      if (found->watch) watches.push_back(found->watch.get());
    }
  }
  for (SourceWatch* watch : watches) watch->Stop();
}

void Watcher::ListLocalDatacenter() {
  if (!options_.datacenter.empty()) {
    local_datacenter_ = options_.datacenter;
    StartListing();
    return;
  }
  // Entries without a datacenter name the agent's, and a datacenter listed
  // by /v1/catalog/datacenters that is the agent's is the same source.
  client_.Get("/v1/agent/self", [this,
                                 alive = std::weak_ptr<bool>(alive_)](StatusOr<std::string> body) {
    if (alive.expired()) return;
    Status status = body.status();
    if (status.ok()) {
      auto agent = ParseAgentSelf(*body);
      if (agent.ok()) {
        local_datacenter_ = agent->datacenter;
        list_retry_ = options_.agent_retry_initial;
        StartListing();
        return;
      }
      status = agent.status();
    }
    {
      MutexLock lock(&mutex_);
      list_error_ = status;
      if (!list_failing_since_) list_failing_since_ = clock_.Now();
    }
    spdlog::warn("listing the sources: consul GET /v1/agent/self failed: {}", status.ToString());
    list_timer_ = client_.loop().RunAt(clock_.Now() + list_retry_, [this, alive] {
      if (alive.expired()) return;
      list_timer_.reset();
      ListLocalDatacenter();
    });
    list_retry_ = std::min(list_retry_ * 2, options_.agent_retry_max);
  });
}

void Watcher::StartListing() {
  cycle_lists_.clear();
  cycle_failed_root_ = false;
  ReadNextList();
}

void Watcher::ReadNextList() {
  std::vector<FoundSource> found;
  std::optional<SourceList> next =
      ExpandSources(options_.sources, local_datacenter_, cycle_lists_, found);
  if (next) {
    // One list at a time: the listing holds one connection of the budget.
    const SourceList& list = *next;
    client_.Get(
        list.Path(),
        [this, list, alive = std::weak_ptr<bool>(alive_)](StatusOr<std::string> body) {
          if (alive.expired()) return;
          OnList(list, std::move(body));
        },
        RequestScope{list.datacenter, "", "", list.partition});
    return;
  }
  if (cycle_failed_root_) {
    // The local lists could not be read: nothing is concluded from this
    // listing, retried with backoff.
    ScheduleListing(list_retry_);
    list_retry_ = std::min(list_retry_ * 2, options_.agent_retry_max);
    return;
  }
  list_retry_ = options_.agent_retry_initial;
  Reconcile(found);
  ScheduleListing(options_.source_list_interval);
}

void Watcher::ScheduleListing(std::chrono::milliseconds delay) {
  list_timer_ =
      client_.loop().RunAt(clock_.Now() + delay, [this, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        list_timer_.reset();
        StartListing();
      });
}

void Watcher::OnList(const SourceList& list, StatusOr<std::string> body) {
  Status status = body.status();
  if (status.ok()) {
    StatusOr<std::vector<std::string>> names =
        list.kind == SourceList::Kind::kDatacenters ? ParseDatacenterList(*body)
        : list.kind == SourceList::Kind::kPeerings
            ? ParseActivePeerings(*body)
            : ParseNamedList(
                  *body, list.kind == SourceList::Kind::kNamespaces ? "namespaces" : "partitions");
    if (names.ok()) {
      last_good_[list.Key()] = *names;
      cycle_lists_[list.Key()] = std::move(*names);
      if (list.datacenter.empty()) {
        MutexLock lock(&mutex_);
        list_error_.reset();
        list_failing_since_.reset();
      }
      ReadNextList();
      return;
    }
    status = names.status();
  }
  // A list that cannot be read is never an empty one: the sources it gave
  // last stay.
  auto last = last_good_.find(list.Key());
  if (last != last_good_.end()) {
    cycle_lists_[list.Key()] = last->second;
  } else {
    cycle_lists_[list.Key()] = std::nullopt;
  }
  if (list.datacenter.empty()) {
    // The local agent's own lists: Consul is failing for the bridge.
    if (last == last_good_.end()) cycle_failed_root_ = true;
    MutexLock lock(&mutex_);
    if (!list_failing_since_) list_failing_since_ = clock_.Now();
    if (!list_error_ || list_error_->code() != status.code()) {
      spdlog::warn("listing the sources: reading {} failed: {}; the sources it gave stay",
                   DescribeList(list), status.ToString());
    }
    list_error_ = status;
  } else {
    // Another datacenter's list (a datacenter cut off): its sources found
    // before stay, the others follow.
    spdlog::debug("listing the sources: reading {} failed: {}", DescribeList(list),
                  status.ToString());
  }
  ReadNextList();
}

WatcherOptions Watcher::OptionsFor(const FoundSource& found, std::size_t budget) const {
  WatcherOptions one = options_;
  one.sources.clear();
  one.services = entry_services_.at(found.entry);
  one.datacenter = found.source.datacenter;
  one.scope = {found.source.peer, found.source.ns, found.source.partition, true};
  one.connection_budget = budget;
  return one;
}

bool Watcher::Admit(Found& source) {
  std::size_t admitted = 0;
  {
    MutexLock lock(&mutex_);
    for (const auto& found : found_) {
      if (found->watch || found->waiting) ++admitted;
    }
  }
  if (admitted >= options_.max_sources) {
    if (!source.refused_since) {
      spdlog::warn(
          "source {} found but not watched: watch.max_sources ({}) sources hold the connection "
          "budget; it is admitted once one goes",
          source.found.key, options_.max_sources);
      MutexLock lock(&mutex_);
      source.refused_since = clock_.Now();
    }
    return false;
  }
  MutexLock lock(&mutex_);
  if (source.refused_since) {
    spdlog::info("source {} admitted: there is room in watch.max_sources again", source.found.key);
  }
  source.refused_since.reset();
  source.waiting = true;
  return true;
}

void Watcher::StartSource(Found& source, std::size_t budget) {
  auto watch = std::make_unique<SourceWatch>(OptionsFor(source.found, budget), client_, *engine_,
                                             publisher_, clock_);
  if (engine_changed_) watch->OnEngineChanged(engine_changed_);
  // A retired query that ended frees a connection another source may be
  // waiting for.
  watch->OnConnectionFreed([this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    Resplit();
  });
  engine_->AddSource(source.found.source.datacenter,
                     SourceScope{source.found.source.peer, source.found.source.ns,
                                 source.found.source.partition, true});
  SourceWatch* started = watch.get();
  {
    MutexLock lock(&mutex_);
    source.watch = std::move(watch);
    source.waiting = false;
  }
  spdlog::info("source {} found: watching it with {} connections", source.found.key, budget);
  started->Start();
}

void Watcher::Resplit() {
  {
    MutexLock lock(&mutex_);
    if (stopped_) return;
  }
  const std::size_t max_connections = client_.options().max_connections;
  const SteadyTime now = clock_.Now();
  std::erase_if(draining_, [now](const Draining& draining) { return draining.until <= now; });
  // Admitted sources in the order found: the remainder of an even split
  // goes to the first ones.
  std::vector<Found*> admitted;
  {
    MutexLock lock(&mutex_);
    for (auto& found : found_) {
      if (found->watch || found->waiting) admitted.push_back(found.get());
    }
  }
  if (max_connections == 0) {  // no budget: nothing to split
    for (Found* source : admitted) {
      if (!source->watch) StartSource(*source, 0);
    }
    return;
  }
  if (admitted.empty()) return;
  const std::size_t available = max_connections - 1;  // one lists the sources
  const std::size_t count = admitted.size();
  std::vector<std::size_t> targets;
  targets.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    targets.push_back(
        std::max<std::size_t>(3, available / count + (i < available % count ? 1 : 0)));
  }
  // Shrinking is always safe: first, so what it frees counts below.
  for (std::size_t i = 0; i < count; ++i) {
    SourceWatch* watch = admitted[i]->watch.get();
    if (watch != nullptr && targets[i] < watch->connection_budget()) {
      watch->SetConnectionBudget(targets[i]);
    }
  }
  std::size_t committed = Committed(admitted);
  // Growth and starts only out of what is free now.
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t free = max_connections > committed ? max_connections - committed : 0;
    SourceWatch* watch = admitted[i]->watch.get();
    if (watch == nullptr) {
      if (free < 3) continue;  // a later re-split starts it
      const std::size_t budget = std::min(targets[i], free);
      committed += budget;
      StartSource(*admitted[i], budget);
      continue;
    }
    if (targets[i] <= watch->connection_budget() || free == 0) continue;
    const std::size_t before = watch->ConnectionsCommitted();
    const std::size_t grant = std::min(targets[i], before + free);
    if (grant <= watch->connection_budget()) continue;
    watch->SetConnectionBudget(grant);
    committed = committed - before + watch->ConnectionsCommitted();
  }
}

std::size_t Watcher::Committed(const std::vector<Found*>& admitted) const {
  std::size_t committed = 1;  // the lists
  for (const Draining& draining : draining_) committed += draining.connections;
  for (const Found* source : admitted) {
    if (source->watch) committed += source->watch->ConnectionsCommitted();
  }
  return committed;
}

std::size_t Watcher::connections_committed() {
  if (!templates_) return 0;
  std::size_t committed = 0;
  client_.loop().RunAndWait([&] {
    const SteadyTime now = clock_.Now();
    std::erase_if(draining_, [now](const Draining& draining) { return draining.until <= now; });
    std::vector<Found*> admitted;
    {
      MutexLock lock(&mutex_);
      for (auto& found : found_) {
        if (found->watch) admitted.push_back(found.get());
      }
    }
    committed = Committed(admitted);
  });
  return committed;
}

void Watcher::ScheduleResplit(SteadyTime at) {
  if (drain_timer_) client_.loop().CancelTimer(*drain_timer_);
  drain_timer_ = client_.loop().RunAt(at, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    drain_timer_.reset();
    Resplit();
    if (!draining_.empty()) ScheduleResplit(draining_.front().until);
  });
}

void Watcher::Drop(const std::string& key) {
  std::unique_ptr<Found> dropped;
  {
    MutexLock lock(&mutex_);
    auto it = std::find_if(found_.begin(), found_.end(),
                           [&](const auto& found) { return found->found.key == key; });
    if (it == found_.end()) return;
    dropped = std::move(*it);
    found_.erase(it);
    if (dropped->watch) ++dropped_;
  }
  if (!dropped->watch) return;  // refused: nothing was watched
  const std::size_t held = dropped->watch->ConnectionsCommitted();
  dropped->watch->Stop();
  // Consul keeps a blocking query it was holding, and its connection, until
  // its wait ends: the connections are free only then.
  const auto wait = client_.options().wait;
  draining_.push_back({clock_.Now() + wait + wait / 16 + client_.options().timeout_margin, held});
  ScheduleResplit(draining_.front().until);
  const WatchSource& source = dropped->found.source;
  std::vector<Event> events = engine_->DropSource(
      source.datacenter, SourceScope{source.peer, source.ns, source.partition, true});
  spdlog::warn(
      "source {} dropped: not listed for {} ms (watch.source_grace); its state leaves "
      "silently ({} silent events)",
      key, options_.source_grace.count(), events.size());
  if (!events.empty()) publisher_.Publish(std::move(events));
  if (engine_changed_) engine_changed_(*engine_);
}

void Watcher::Reconcile(const std::vector<FoundSource>& listed) {
  const SteadyTime now = clock_.Now();
  std::set<std::string, std::less<>> keys;
  for (const FoundSource& found : listed) keys.insert(found.key);
  std::vector<std::string> to_drop;
  std::vector<Found*> waiting;  // refused, to admit if there is room
  {
    MutexLock lock(&mutex_);
    for (auto& found : found_) {
      if (keys.contains(found->found.key)) {
        if (found->vanished_since) {
          spdlog::info("source {} is listed again{}", found->found.key,
                       found->watch ? ": whatever changed meanwhile is reconciled" : "");
          found->vanished_since.reset();
        }
        continue;
      }
      if (!found->watch) {  // refused and no longer listed: forgotten
        to_drop.push_back(found->found.key);
        continue;
      }
      if (!found->vanished_since) {
        found->vanished_since = now;
        spdlog::warn(
            "source {} is no longer listed: its instances keep their last known state; it is "
            "dropped in {} ms unless listed again (watch.source_grace)",
            found->found.key, options_.source_grace.count());
      } else if (now - *found->vanished_since >= options_.source_grace) {
        to_drop.push_back(found->found.key);
      }
    }
  }
  for (const std::string& key : to_drop) Drop(key);
  // New sources, in the order listed (entries named in full first as
  // configured), and those refused before.
  for (const FoundSource& found : listed) {
    Found* known = nullptr;
    {
      MutexLock lock(&mutex_);
      for (auto& source : found_) {
        if (source->found.key == found.key) known = source.get();
      }
      if (known == nullptr) {
        auto fresh = std::make_unique<Found>();
        fresh->found = found;
        known = fresh.get();
        found_.push_back(std::move(fresh));
      }
    }
    if (known->watch == nullptr) waiting.push_back(known);
  }
  // Announced before any starts: the engine's initial sync waits for all
  // sources of the first listing.
  for (Found* source : waiting) {
    if (!source->waiting) Admit(*source);
  }
  // Starts those admitted as connections allow, and grows the others into
  // what the sources gone left.
  Resplit();
  MutexLock lock(&mutex_);
  listed_ = true;
}

std::vector<WatchState> Watcher::SourceStates() const {
  std::vector<WatchState> states;
  if (!templates_) {
    states.reserve(sources_.size());
    for (const auto& source : sources_) states.push_back(source->State());
    return states;
  }
  MutexLock lock(&mutex_);
  states.reserve(found_.size());
  for (const auto& found : found_) {
    WatchState state;
    if (found->watch) {
      state = found->watch->State();
    } else if (found->waiting) {
      state.datacenter = found->found.source.datacenter;
      state.last_error = Status::Unavailable(
          "not watched yet: waiting for 3 free connections of consul.max_connections, which "
          "other sources still hold until their blocking queries end");
    } else {
      state.datacenter = found->found.source.datacenter;
      state.last_error = Status::FailedPrecondition("not watched: watch.max_sources (" +
                                                    std::to_string(options_.max_sources) +
                                                    ") sources hold the connection budget");
      state.unreachable_since = found->refused_since;
    }
    state.source = found->found.key;
    if (found->vanished_since) {
      if (!state.last_error) {
        state.last_error = Status::FailedPrecondition(
            "no longer listed: dropped after watch.source_grace unless listed again");
      }
      if (!state.unreachable_since) state.unreachable_since = found->vanished_since;
    }
    states.push_back(std::move(state));
  }
  return states;
}

WatchState Watcher::State() const {
  std::vector<WatchState> states = SourceStates();
  if (!templates_ && states.size() == 1) return std::move(states.front());
  WatchState all = states.empty() ? WatchState{} : states.front();
  all.watched_services = all.dedicated_services = all.covered_services = 0;
  for (const WatchState& state : states) {
    all.watched_services += state.watched_services;
    all.dedicated_services += state.dedicated_services;
    all.covered_services += state.covered_services;
    if (state.last_success && (!all.last_success || *state.last_success > *all.last_success)) {
      all.last_success = state.last_success;
    }
  }
  // A further source holds readiness only while it syncs for the first time
  // and answers: one that cannot be read is reported as unavailable, not
  // as the bridge being unready.
  const std::size_t further = templates_ ? 0 : 1;
  for (std::size_t i = further; i < states.size(); ++i) {
    const bool settled = states[i].initial_sync_done || states[i].last_error.has_value();
    all.initial_sync_done = all.initial_sync_done && settled;
    all.ready = all.ready && settled;
  }
  if (templates_) {
    MutexLock lock(&mutex_);
    // The bridge's own view: the lists read once, Consul answering them.
    const bool unreachable_too_long =
        list_failing_since_ && clock_.Now() - *list_failing_since_ > options_.unreachable_grace;
    all.initial_sync_done = listed_;
    all.ready = listed_ && !stopped_ && !unreachable_too_long;
    for (const WatchState& state : states) {
      const bool settled = state.initial_sync_done || state.last_error.has_value();
      all.initial_sync_done = all.initial_sync_done && settled;
      all.ready = all.ready && settled;
    }
    all.last_error = list_error_;
    all.unreachable_since = list_failing_since_;
  }
  return all;
}

std::uint64_t Watcher::dropped_sources() const {
  MutexLock lock(&mutex_);
  return dropped_;
}

std::size_t Watcher::refused_sources() const {
  MutexLock lock(&mutex_);
  return static_cast<std::size_t>(
      std::count_if(found_.begin(), found_.end(),
                    [](const auto& found) { return found->watch == nullptr && !found->waiting; }));
}

std::size_t Watcher::source_count() const {
  if (!templates_) return sources_.size();
  MutexLock lock(&mutex_);
  return found_.size();
}

void Watcher::WithEngine(const std::function<void(const TransitionEngine&)>& visit) {
  if (!templates_) {
    sources_.front()->WithEngine(visit);
    return;
  }
  client_.loop().RunAndWait([&] { visit(*engine_); });
}

void Watcher::UpdateServiceFilters(const WatcherOptions& options) {
  if (!templates_) {
    for (std::size_t i = 0; i < sources_.size(); ++i) {
      sources_[i]->UpdateServiceFilter(i < options.sources.size() ? options.sources[i].services
                                                                  : options.services);
    }
    return;
  }
  client_.loop().RunAndWait([&] {
    for (std::size_t i = 0; i < entry_services_.size() && i < options.sources.size(); ++i) {
      entry_services_[i] = options.sources[i].services;
    }
    std::vector<std::pair<SourceWatch*, std::size_t>> watches;
    {
      MutexLock lock(&mutex_);
      for (auto& found : found_) {
        if (found->watch) watches.emplace_back(found->watch.get(), found->found.entry);
      }
    }
    for (auto& [watch, entry] : watches) watch->UpdateServiceFilter(entry_services_.at(entry));
  });
}

void Watcher::UpdateEngineOptions(const EngineOptions& options) {
  if (!templates_) {
    // Each source re-plans its own tick from the engine's new deadlines.
    for (auto& source : sources_) source->UpdateEngineOptions(options);
    return;
  }
  client_.loop().RunAndWait([&] {
    engine_->UpdateOptions(options);
    std::vector<SourceWatch*> watches;
    {
      MutexLock lock(&mutex_);
      for (auto& found : found_) {
        if (found->watch) watches.push_back(found->watch.get());
      }
    }
    for (SourceWatch* watch : watches) watch->UpdateEngineOptions(options);
  });
}

void Watcher::OnEngineChanged(const std::function<void(const TransitionEngine&)>& changed) {
  if (!templates_) {
    for (auto& source : sources_) source->OnEngineChanged(changed);
    return;
  }
  client_.loop().RunAndWait([&] { engine_changed_ = changed; });
}

}  // namespace hb
