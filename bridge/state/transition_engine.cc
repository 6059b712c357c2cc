#include "bridge/state/transition_engine.h"

#include <algorithm>
#include <functional>
#include <set>

#include "bridge/model/protocol_text.h"
#include "bridge/state/packed_instance.h"

namespace hb {
namespace {

// "<dc>\n<service>" in the default scope (as before sources existed), else
// "<source key>\n<service>": two sources never share a service's state.
std::string SourceKeyOf(std::string_view datacenter, const SourceScope& scope) {
  return scope.IsDefault() ? std::string(datacenter) : SourceKey(datacenter, scope);
}

std::string ServiceKey(std::string_view datacenter, const SourceScope& scope,
                       std::string_view service) {
  std::string key = SourceKeyOf(datacenter, scope);
  key.reserve(key.size() + 1 + service.size());
  key.append("\n").append(service);
  return key;
}

// Node names and service IDs are free text to Consul, NUL included (JSON's
// \u0000): a NUL of the node is written as NUL 0x01 and the pair is
// separated by NUL NUL, so no two (node, id) pairs share a key (node "a\0b"
// with id "c" and node "a" with id "b\0c" would, joined by one NUL) and keys
// still sort as (node, id) does.
constexpr std::string_view kKeySeparator("\0\0", 2);

void InstanceKeyInto(std::string& key, std::string_view node, std::string_view id) {
  key.clear();
  for (const char c : node) {
    key.push_back(c);
    if (c == '\0') key.push_back('\x01');
  }
  key.append(kKeySeparator).append(id);
}

// The instance behind an instance key and its packed details.
Instance UnpackInstance(std::string_view key, const PackedInstance& packed) {
  const std::size_t separator = key.find(kKeySeparator);
  std::string node;
  for (std::size_t i = 0; i < separator; ++i) {
    node.push_back(key[i]);
    if (key[i] == '\0') ++i;  // the 0x01 after an escaped NUL
  }
  return packed.Unpack(node, key.substr(separator + kKeySeparator.size()));
}

// The (node, id) behind an instance key.
std::pair<std::string, std::string> NodeAndId(std::string_view key) {
  const std::size_t separator = key.find(kKeySeparator);
  std::string node;
  for (std::size_t i = 0; i < separator; ++i) {
    node.push_back(key[i]);
    if (key[i] == '\0') ++i;
  }
  return {std::move(node), std::string(key.substr(separator + kKeySeparator.size()))};
}

template <typename Entry>
bool KeyLess(const Entry* a, const Entry* b) {
  return a->first < b->first;
}

DownReason ReasonFor(HealthStatus status) {
  switch (status) {
    case HealthStatus::kMaintenance:
      return DownReason::kMaintenance;
    case HealthStatus::kWarning:
      return DownReason::kWarning;
    case HealthStatus::kPassing:  // only when passing is configured as down
    case HealthStatus::kCritical:
      return DownReason::kCritical;
  }
  return DownReason::kCritical;
}

}  // namespace

struct TransitionEngine::InstanceState {
  // Everything of the last answer's Instance but node and id (in the key).
  PackedInstance details;
  HealthStatus status = HealthStatus::kCritical;
  // What events have said. Empty only for a new instance whose first
  // evaluation is a pending up (its up event has no previous status).
  std::optional<HealthStatus> reported_status;
  bool reported_up = false;
  // The instance's own raft index (Instance::modify_index) when Consul
  // gave one, else that of the answer it was last seen in.
  std::uint64_t index = 0;
  // `index` is the instance's own: the same on every replica.
  bool own_index = false;
  SteadyTime observed_at{};
  WallTime since{};
  bool pending = false;
  SteadyTime pending_since{};
  std::uint64_t pending_index = 0;
  SteadyTime pending_observed_at{};
  std::uint64_t generation = 0;
};

struct TransitionEngine::ServiceState {
  // Lets string_view keys find instances without building a string.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

  std::string datacenter;
  SourceScope scope;
  std::string source_key;  // SourceKeyOf(datacenter, scope)
  std::string name;
  // Node-based: an InstanceEntry stays put while others come and go.
  std::unordered_map<std::string, InstanceState, KeyHash, std::equal_to<>> instances;
  int up_count = 0;
  bool reported_up = false;
  // A first complete answer was applied since the engine started (restored
  // services start false: the initial sync diffs against them).
  bool synced = false;
  std::uint64_t last_index = 0;
  std::uint64_t generation = 0;
  int pending_count = 0;
  std::uint64_t view_version = 0;  // TransitionEngine::view_clock_ at its last change
};

struct TransitionEngine::Emitter {
  std::vector<Event>& out;
  WallTime now;
  bool silent = false;
  bool reconciled = false;
  // The initial sync establishes the state: nothing to dampen yet.
  bool undamped = false;
  // The highest own index (InstanceState::own_index) among the instance
  // events so far: a service event it causes carries it, so replicas that
  // saw the same instance data give the service event the same id.
  std::uint64_t highest_own_index = 0;

  Event& Add(EventType type, const ServiceState& service, std::uint64_t index,
             SteadyTime observed_at) {
    Event& event = out.emplace_back();
    event.type = type;
    event.datacenter = service.datacenter;
    event.scope = service.scope;
    event.service = service.name;
    event.consul_index = index;
    event.silent = silent;
    event.reconciled = reconciled;
    event.time = now;
    event.observed_at = observed_at;
    return event;
  }

  void AddInstance(EventType type, const ServiceState& service, const InstanceEntry& entry,
                   std::uint64_t index, SteadyTime observed_at,
                   std::optional<HealthStatus> previous) {
    Event& event = Add(type, service, index, observed_at);
    const InstanceState& state = entry.second;
    Instance instance = UnpackInstance(entry.first, state.details);
    event.instance_id = std::move(instance.id);
    event.node = std::move(instance.node);
    event.address = std::move(instance.address);
    event.port = instance.port;
    event.tags = std::move(instance.tags);
    event.meta = std::move(instance.meta);
    event.checks = std::move(instance.checks);
    event.status = state.status;
    event.previous_status = previous;
    // Node and ID are free text in Consul: encoded, the id is safe in any
    // header (webhook-id, ce_id) and its parts stay unambiguous.
    event.id = InstanceEventId(service.datacenter, service.scope, event.node, event.instance_id,
                               index, ToString(type));
    if (state.own_index) highest_own_index = std::max(highest_own_index, index);
  }
};

TransitionEngine::TransitionEngine(EngineOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

TransitionEngine::~TransitionEngine() = default;

bool TransitionEngine::IsUp(HealthStatus status) const {
  if (status == HealthStatus::kMaintenance) return false;
  return std::find(options_.up_statuses.begin(), options_.up_statuses.end(), status) !=
         options_.up_statuses.end();
}

TransitionEngine::ServiceState& TransitionEngine::ServiceFor(std::string_view datacenter,
                                                             const SourceScope& scope,
                                                             std::string_view service) {
  const std::string key = ServiceKey(datacenter, scope, service);
  auto it = services_.find(key);
  if (it == services_.end()) {
    auto state = std::make_unique<ServiceState>();
    state->datacenter = datacenter;
    state->scope = scope;
    state->source_key = SourceKeyOf(datacenter, scope);
    state->name = service;
    it = services_.emplace(key, std::move(state)).first;
  }
  // Every caller is about to change the service.
  it->second->view_version = ++view_clock_;
  return *it->second;
}

std::vector<Event> TransitionEngine::Apply(ServiceSnapshot snapshot) {
  std::vector<Event> events;
  ServiceState& service = ServiceFor(snapshot.datacenter, snapshot.scope, snapshot.service);
  Emitter emit{events, clock_.WallNow()};
  // Only a service's first answer of the initial sync is special: a change
  // seen later during the sync is a real change.
  const bool first_of_sync = !service.synced && !SourceSynced(service);
  if (first_of_sync) {
    emit.reconciled = restored_ && HasRestored(service);
    emit.silent = !emit.reconciled && !options_.initial_events;
    emit.undamped = true;
  }
  service.synced = true;
  service.last_index = snapshot.index;
  const std::uint64_t generation = ++service.generation;

  std::string key;
  for (const Instance& instance : snapshot.instances) {
    InstanceKeyInto(key, instance.node, instance.id);
    const auto [it, added] = service.instances.try_emplace(key);
    InstanceState& state = it->second;
    // Packing the details costs no more than comparing them, and keeps the
    // next event current (address, tags, meta, check output).
    state.details = PackedInstance(instance);
    state.status = AggregateStatus(instance.checks);
    // The instance's own index keeps ids equal across replicas and over
    // time: the answer's index moves with every write to any instance of
    // the service, so one replica reading later would name the same
    // transition differently.
    state.own_index = instance.modify_index != 0;
    state.index = state.own_index ? instance.modify_index : snapshot.index;
    state.observed_at = snapshot.received_at;
    state.generation = generation;
    if (added) {
      state.since = emit.now;
      if (!IsUp(state.status)) state.reported_status = state.status;
      emit.AddInstance(EventType::kInstanceRegistered, service, *it, state.index,
                       snapshot.received_at, std::nullopt);
    }
    Evaluate(service, *it, emit);
  }

  std::vector<InstanceEntry*> vanished;
  for (InstanceEntry& entry : service.instances) {
    if (entry.second.generation != generation) vanished.push_back(&entry);
  }
  std::sort(vanished.begin(), vanished.end(), KeyLess<InstanceEntry>);
  for (InstanceEntry* entry : vanished) Deregister(service, *entry, snapshot.index, emit);

  EmitServiceChange(service, snapshot.index, snapshot.received_at, emit);
  // Sinks that hold state learn this service's state, not only what changed
  // while the bridge was away, and get it as silent events however the
  // sync's events are marked (without saved state and initial_events, the
  // silent events above already describe all of it).
  if (first_of_sync && (restored_ || options_.initial_events)) {
    AppendServiceView(service, events);
  }
  return events;
}

void TransitionEngine::Evaluate(ServiceState& service, InstanceEntry& entry, Emitter& emit) {
  InstanceState& state = entry.second;
  const bool up = IsUp(state.status);
  if (up == state.reported_up) {
    SetPending(service, state, false);
    if (!state.reported_status) {
      state.reported_status = state.status;
    } else if (*state.reported_status != state.status) {
      emit.AddInstance(EventType::kInstanceStatusChanged, service, entry, state.index,
                       state.observed_at, state.reported_status);
      state.reported_status = state.status;
    }
    return;
  }
  if (!state.pending) {
    SetPending(service, state, true);
    state.pending_since = clock_.Now();
    state.pending_index = state.index;
    state.pending_observed_at = state.observed_at;
  }
  const auto delay = up ? options_.up_after : options_.down_after;
  if (!emit.undamped && clock_.Now() - state.pending_since < delay) return;

  SetPending(service, state, false);
  emit.AddInstance(up ? EventType::kInstanceUp : EventType::kInstanceDown, service, entry,
                   state.pending_index, state.pending_observed_at, state.reported_status);
  if (!up) emit.out.back().reason = ReasonFor(state.status);
  state.reported_up = up;
  state.reported_status = state.status;
  state.since = emit.now;
  service.up_count += up ? 1 : -1;
}

void TransitionEngine::Deregister(ServiceState& service, InstanceEntry& entry, std::uint64_t index,
                                  Emitter& emit) {
  InstanceState& state = entry.second;
  SetPending(service, state, false);
  // Its own last index names its departure the same on every replica; the
  // index of the answer it vanished from differs with when one read it.
  if (state.own_index) index = state.index;
  // An instance that left the catalog has no status any more: its last one
  // is the previous status, and none is claimed as current.
  if (state.reported_up) {
    emit.AddInstance(EventType::kInstanceDown, service, entry, index, state.observed_at,
                     state.reported_status);
    emit.out.back().reason = DownReason::kDeregistered;
    emit.out.back().status.reset();
    --service.up_count;
  }
  emit.AddInstance(EventType::kInstanceDeregistered, service, entry, index, state.observed_at,
                   state.reported_status);
  emit.out.back().status.reset();
  RememberDeparted(service, entry, index, emit.now);
  service.instances.erase(service.instances.find(entry.first));
}

void TransitionEngine::RememberDeparted(const ServiceState& service, const InstanceEntry& entry,
                                        std::uint64_t index, WallTime at) {
  while (!departed_.empty() &&
         (departed_.size() >= kDepartedLimit || at - departed_.front().at > kDepartedRetention)) {
    departed_.pop_front();
  }
  departed_.push_back({service.datacenter, service.scope, service.name, entry.first,
                       entry.second.details, entry.second.reported_status, index, at});
}

void TransitionEngine::EmitServiceChange(ServiceState& service, std::uint64_t index,
                                         SteadyTime observed_at, Emitter& emit) {
  const bool up = service.up_count > 0;
  if (up == service.reported_up) return;
  service.reported_up = up;
  if (emit.highest_own_index != 0) index = emit.highest_own_index;
  Event& event =
      emit.Add(up ? EventType::kServiceUp : EventType::kServiceDown, service, index, observed_at);
  event.instances_up = service.up_count;
  event.instances_total = static_cast<int>(service.instances.size());
  event.id =
      ServiceEventId(service.datacenter, service.scope, service.name, index, ToString(event.type));
}

std::vector<Event> TransitionEngine::ServiceGone(std::string_view datacenter,
                                                 std::string_view service_name,
                                                 std::uint64_t index) {
  return ServiceGone(datacenter, SourceScope{}, service_name, index);
}

std::vector<Event> TransitionEngine::ServiceGone(std::string_view datacenter,
                                                 const SourceScope& scope,
                                                 std::string_view service_name,
                                                 std::uint64_t index) {
  std::vector<Event> events;
  auto it = services_.find(ServiceKey(datacenter, scope, service_name));
  if (it == services_.end()) return events;
  ServiceState& service = *it->second;
  Emitter emit{events, clock_.WallNow()};
  emit.reconciled = restored_ && !SourceSynced(service);
  std::vector<InstanceEntry*> all;
  all.reserve(service.instances.size());
  for (InstanceEntry& entry : service.instances) all.push_back(&entry);
  std::sort(all.begin(), all.end(), KeyLess<InstanceEntry>);
  for (InstanceEntry* entry : all) Deregister(service, *entry, index, emit);
  EmitServiceChange(service, index, SteadyTime{}, emit);
  services_.erase(it);
  return events;
}

void TransitionEngine::SetPending(ServiceState& service, InstanceState& state, bool pending) {
  if (state.pending == pending) return;
  state.pending = pending;
  if (pending) {
    ++service.pending_count;
    ++pending_total_;
  } else {
    --service.pending_count;
    --pending_total_;
  }
}

std::vector<Event> TransitionEngine::Tick() {
  std::vector<Event> events;
  if (pending_total_ == 0) return events;
  Emitter emit{events, clock_.WallNow()};
  for (auto& [service_key, service] : services_) {
    if (service->pending_count == 0) continue;
    std::vector<InstanceEntry*> pending;
    for (InstanceEntry& entry : service->instances) {
      if (entry.second.pending) pending.push_back(&entry);
    }
    std::sort(pending.begin(), pending.end(), KeyLess<InstanceEntry>);
    std::uint64_t index = 0;
    SteadyTime observed_at{};
    service->view_version = ++view_clock_;
    for (InstanceEntry* entry : pending) {
      index = std::max(index, entry->second.pending_index);
      observed_at = std::max(observed_at, entry->second.pending_observed_at);
      Evaluate(*service, *entry, emit);
    }
    EmitServiceChange(*service, index, observed_at, emit);
  }
  return events;
}

std::optional<SteadyTime> TransitionEngine::NextDeadline() const {
  std::optional<SteadyTime> earliest;
  if (pending_total_ == 0) return earliest;
  for (const auto& [service_key, service] : services_) {
    if (service->pending_count == 0) continue;
    for (const auto& [key, state] : service->instances) {
      if (!state.pending) continue;
      const auto due =
          state.pending_since + (IsUp(state.status) ? options_.up_after : options_.down_after);
      if (!earliest || due < *earliest) earliest = due;
    }
  }
  return earliest;
}

bool TransitionEngine::SourceSynced(const ServiceState& service) const {
  if (late_sources_.contains(service.source_key)) return false;
  return initial_sync_complete_ || synced_sources_.contains(service.source_key);
}

bool TransitionEngine::HasRestored(const ServiceState& service) const {
  return !announced_sources_ || restored_sources_.contains(service.source_key);
}

void TransitionEngine::AddSource(std::string_view datacenter, const SourceScope& scope) {
  announced_sources_ = true;
  std::string source = SourceKeyOf(datacenter, scope);
  if (initial_sync_complete_) {
    // Whatever saved state it had was applied or dropped by now: it starts
    // anew.
    restored_sources_.erase(source);
    late_sources_.insert(std::move(source));
    return;
  }
  announced_.insert(std::move(source));
  expected_sources_ = std::max<std::size_t>(announced_.size(), 1);
}

std::vector<Event> TransitionEngine::DropSource(std::string_view datacenter,
                                                const SourceScope& scope) {
  std::vector<Event> events;
  const std::string source = SourceKeyOf(datacenter, scope);
  std::vector<std::pair<std::string, std::uint64_t>> services;
  for (const auto& [key, service] : services_) {
    if (service->source_key == source) services.emplace_back(key, service->last_index);
  }
  AppendGone(services, events);
  for (Event& event : events) {
    event.silent = true;
    event.reconciled = false;
  }
  late_sources_.erase(source);
  synced_sources_.erase(source);
  restored_sources_.erase(source);
  if (!initial_sync_complete_ && announced_.erase(source) > 0) {
    expected_sources_ = std::max<std::size_t>(announced_.size(), 1);
    MaybeFinishAnnouncedSync(events);
  }
  return events;
}

void TransitionEngine::AppendGone(
    const std::vector<std::pair<std::string, std::uint64_t>>& services,
    std::vector<Event>& events) {
  for (const auto& [key, index] : services) {
    auto it = services_.find(key);
    if (it == services_.end()) continue;
    // Copies: ServiceGone() erases the service these strings live in.
    const std::string datacenter = it->second->datacenter;
    const std::string name = it->second->name;
    auto more = ServiceGone(datacenter, SourceScope(it->second->scope), name, index);
    std::move(more.begin(), more.end(), std::back_inserter(events));
  }
}

void TransitionEngine::MaybeFinishAnnouncedSync(std::vector<Event>& events) {
  if (initial_sync_complete_ || announced_.empty()) return;
  for (const std::string& source : announced_) {
    if (!synced_sources_.contains(source)) return;
  }
  // The restored services of sources no longer found: dropped silently.
  std::vector<std::pair<std::string, std::uint64_t>> gone;
  for (const auto& [key, service] : services_) {
    if (!announced_.contains(service->source_key)) gone.emplace_back(key, service->last_index);
  }
  std::vector<Event> dropped;
  AppendGone(gone, dropped);
  for (Event& event : dropped) {
    event.silent = true;
    event.reconciled = false;
    events.push_back(std::move(event));
  }
  std::erase_if(restored_sources_,
                [&](const std::string& source) { return !announced_.contains(source); });
  initial_sync_complete_ = true;
}

std::vector<Event> TransitionEngine::CompleteInitialSync(
    std::string_view datacenter, const std::set<std::string, std::less<>>& unreadable) {
  return CompleteInitialSync(datacenter, SourceScope{}, unreadable);
}

std::vector<Event> TransitionEngine::CompleteInitialSync(
    std::string_view datacenter, const SourceScope& scope,
    const std::set<std::string, std::less<>>& unreadable) {
  std::vector<Event> events;
  const std::string source = SourceKeyOf(datacenter, scope);
  // A source found after the initial sync ends its own first sync.
  if (late_sources_.erase(source) > 0) {
    synced_sources_.insert(source);
    return events;
  }
  if (initial_sync_complete_) return events;
  if (synced_sources_.contains(source)) return events;
  if (announced_sources_) {
    // Sources found at run time: the sync ends once all announced ones
    // synced. This source's restored services not applied meanwhile are
    // gone, as after any restart.
    std::vector<std::pair<std::string, std::uint64_t>> gone;
    for (const auto& [key, service] : services_) {
      if (service->source_key == source && !service->synced &&
          !unreadable.contains(service->name)) {
        gone.emplace_back(key, service->last_index);
      }
    }
    AppendGone(gone, events);
    synced_sources_.insert(source);
    MaybeFinishAnnouncedSync(events);
    return events;
  }
  // This source's restored services that were not applied meanwhile are
  // gone; once every expected source synced, so are those of sources no
  // longer watched.
  const bool last = synced_sources_.size() + 1 >= expected_sources_;
  std::vector<std::pair<std::string, std::uint64_t>> gone;
  for (const auto& [key, service] : services_) {
    const bool own = service->source_key == source;
    if (own && unreadable.contains(service->name)) continue;
    if (service->synced || (!own && (!last || synced_sources_.contains(service->source_key)))) {
      continue;
    }
    gone.emplace_back(key, service->last_index);
  }
  // Still inside the source's initial sync, so these carry reconciled: true.
  AppendGone(gone, events);
  synced_sources_.insert(source);
  if (last) initial_sync_complete_ = true;
  return events;
}

void TransitionEngine::ExpectSources(std::size_t count) {
  expected_sources_ = std::max<std::size_t>(count, 1);
}

void TransitionEngine::AppendServiceView(const ServiceState& service,
                                         std::vector<Event>& out) const {
  Emitter emit{out, clock_.WallNow()};
  emit.silent = true;
  std::vector<const InstanceEntry*> sorted;
  sorted.reserve(service.instances.size());
  for (const InstanceEntry& entry : service.instances) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), KeyLess<InstanceEntry>);
  for (const InstanceEntry* entry : sorted) {
    const InstanceState& state = entry->second;
    // What events have said, as a sink that saw all of them holds it: a
    // transition still waiting out its dampening is not part of it yet.
    const HealthStatus reported = state.reported_status.value_or(state.status);
    emit.AddInstance(state.reported_up ? EventType::kInstanceUp : EventType::kInstanceDown, service,
                     *entry, state.index, SteadyTime{}, std::nullopt);
    Event& event = out.back();
    event.status = reported;
    if (!state.reported_up) event.reason = ReasonFor(reported);
  }
  Event& event = emit.Add(service.reported_up ? EventType::kServiceUp : EventType::kServiceDown,
                          service, service.last_index, SteadyTime{});
  event.instances_up = service.up_count;
  event.instances_total = static_cast<int>(service.instances.size());
  event.id = ServiceEventId(service.datacenter, service.scope, service.name, service.last_index,
                            ToString(event.type));
}

std::vector<Event> TransitionEngine::View() const {
  std::vector<Event> events;
  for (const auto& [service_key, service] : services_) AppendServiceView(*service, events);
  // Each departed instance once, as it last left, oldest departure first.
  const WallTime now = clock_.WallNow();
  std::set<std::string, std::less<>> seen;
  std::vector<const Departed*> latest;
  for (auto it = departed_.rbegin(); it != departed_.rend(); ++it) {
    if (now - it->at > kDepartedRetention) break;
    std::string key = ServiceKey(it->datacenter, it->scope, it->service);
    // Back in the catalog since: the live instance above is what holds.
    auto service = services_.find(key);
    if (service != services_.end() && service->second->instances.contains(it->key)) continue;
    key.append("\n").append(it->key);
    if (seen.insert(std::move(key)).second) latest.push_back(&*it);
  }
  for (auto it = latest.rbegin(); it != latest.rend(); ++it) {
    const Departed& gone = **it;
    Event& event = events.emplace_back();
    event.type = EventType::kInstanceDeregistered;
    event.datacenter = gone.datacenter;
    event.scope = gone.scope;
    event.service = gone.service;
    event.consul_index = gone.index;
    event.silent = true;
    event.time = gone.at;  // when it left: its series' remaining time follows
    Instance instance = UnpackInstance(gone.key, gone.details);
    event.instance_id = std::move(instance.id);
    event.node = std::move(instance.node);
    event.address = std::move(instance.address);
    event.port = instance.port;
    event.tags = std::move(instance.tags);
    event.meta = std::move(instance.meta);
    event.previous_status = gone.last_status;
    event.id = InstanceEventId(gone.datacenter, gone.scope, event.node, event.instance_id,
                               gone.index, ToString(event.type));
  }
  return events;
}

SavedState TransitionEngine::Save() const {
  SavedState saved;
  for (const auto& [service_key, service] : services_) {
    saved.services.push_back({service->datacenter, service->name, service->scope});
    std::vector<const InstanceEntry*> sorted;
    for (const InstanceEntry& entry : service->instances) sorted.push_back(&entry);
    std::sort(sorted.begin(), sorted.end(), KeyLess<InstanceEntry>);
    for (const InstanceEntry* entry : sorted) {
      const InstanceState& state = entry->second;
      SavedInstance& out = saved.instances.emplace_back();
      out.datacenter = service->datacenter;
      out.scope = service->scope;
      out.service = service->name;
      out.instance = UnpackInstance(entry->first, state.details);
      out.reported_status = state.reported_status.value_or(state.status);
      out.reported_up = state.reported_up;
      out.index = state.index;
      out.since = state.since;
    }
  }
  return saved;
}

void TransitionEngine::Restore(const SavedState& saved) {
  restored_ = true;
  for (const auto& service : saved.services) {
    ServiceFor(service.datacenter, service.scope, service.service);
  }
  for (const auto& record : saved.instances) {
    ServiceState& service = ServiceFor(record.datacenter, record.scope, record.service);
    std::string key;
    InstanceKeyInto(key, record.instance.node, record.instance.id);
    InstanceState state;
    state.details = PackedInstance(record.instance);
    state.status = record.reported_status;
    state.reported_status = record.reported_status;
    state.reported_up = record.reported_up;
    state.index = record.index;
    state.since = record.since;
    service.last_index = std::max(service.last_index, record.index);
    if (record.reported_up) ++service.up_count;
    service.instances.insert_or_assign(std::move(key), std::move(state));
  }
  for (auto& [key, service] : services_) {
    service->reported_up = service->up_count > 0;
    restored_sources_.insert(service->source_key);
  }
}

void TransitionEngine::AppendInstances(const ServiceState& service,
                                       std::vector<InstanceView>& views) const {
  const std::size_t first = views.size();
  for (const auto& [key, state] : service.instances) {
    views.push_back({service.datacenter, service.name,
                     std::make_shared<const Instance>(UnpackInstance(key, state.details)),
                     state.status, state.reported_up, state.since, service.scope});
  }
  std::sort(views.begin() + static_cast<std::ptrdiff_t>(first), views.end(),
            [](const InstanceView& a, const InstanceView& b) {
              return std::tie(a.instance->node, a.instance->id) <
                     std::tie(b.instance->node, b.instance->id);
            });
}

std::vector<InstanceView> TransitionEngine::Instances() const {
  std::vector<InstanceView> views;
  for (const auto& [service_key, service] : services_) AppendInstances(*service, views);
  return views;
}

void TransitionEngine::VisitServiceVersions(
    const std::function<void(std::string_view key, std::uint64_t version)>& visit) const {
  for (const auto& [key, service] : services_) visit(key, service->view_version);
}

std::vector<InstanceView> TransitionEngine::ServiceInstances(std::string_view key) const {
  std::vector<InstanceView> views;
  if (auto it = services_.find(key); it != services_.end()) AppendInstances(*it->second, views);
  return views;
}

std::optional<ReportedService> TransitionEngine::Reported(std::string_view datacenter,
                                                          std::string_view service_name) const {
  // Cluster mode watches one source, the default scope (config refuses
  // cluster.enabled with watch.sources).
  auto it = services_.find(ServiceKey(datacenter, SourceScope{}, service_name));
  if (it == services_.end()) return std::nullopt;
  const ServiceState& service = *it->second;
  ReportedService reported;
  reported.up = service.reported_up;
  for (const auto& [key, state] : service.instances) {
    reported.instances.emplace(
        NodeAndId(key),
        ReportedInstance{state.reported_up, state.reported_status.value_or(state.status),
                         state.index});
  }
  return reported;
}

std::vector<Event> TransitionEngine::ReconcileFrom(std::string_view datacenter,
                                                   std::string_view service_name,
                                                   const ReportedService& acknowledged) const {
  std::vector<Event> events;
  Emitter emit{events, clock_.WallNow()};
  emit.reconciled = true;
  auto found = services_.find(ServiceKey(datacenter, SourceScope{}, service_name));
  const ServiceState* service = found == services_.end() ? nullptr : found->second.get();
  std::uint64_t highest = 0;

  if (service != nullptr) {
    std::vector<const InstanceEntry*> sorted;
    sorted.reserve(service->instances.size());
    for (const InstanceEntry& entry : service->instances) sorted.push_back(&entry);
    std::sort(sorted.begin(), sorted.end(), KeyLess<InstanceEntry>);
    for (const InstanceEntry* entry : sorted) {
      const InstanceState& state = entry->second;
      const HealthStatus reported = state.reported_status.value_or(state.status);
      // What the previous owner emitted for this state carried this index.
      const std::uint64_t index = state.index;
      auto add = [&](EventType type, std::optional<HealthStatus> previous) -> Event& {
        emit.AddInstance(type, *service, *entry, index, state.observed_at, previous);
        Event& event = events.back();
        event.status = reported;
        highest = std::max(highest, index);
        return event;
      };
      auto acked = acknowledged.instances.find(NodeAndId(entry->first));
      if (acked == acknowledged.instances.end()) {
        add(EventType::kInstanceRegistered, std::nullopt);
        if (state.reported_up) add(EventType::kInstanceUp, std::nullopt);
      } else if (acked->second.up != state.reported_up) {
        Event& event = add(state.reported_up ? EventType::kInstanceUp : EventType::kInstanceDown,
                           acked->second.status);
        if (!state.reported_up) event.reason = ReasonFor(reported);
      } else if (acked->second.status != reported) {
        add(EventType::kInstanceStatusChanged, acked->second.status);
      }
    }
  }
  // Acknowledged instances that left since: this owner never saw their
  // details, only what was acknowledged.
  for (const auto& gone : acknowledged.instances) {
    // Named, not bound: the lambda below captures them.
    const std::pair<std::string, std::string>& key = gone.first;
    const ReportedInstance& acked = gone.second;
    if (service != nullptr) {
      std::string engine_key;
      InstanceKeyInto(engine_key, key.first, key.second);
      if (service->instances.contains(engine_key)) continue;
    }
    auto add = [&](EventType type) -> Event& {
      Event& event = events.emplace_back();
      event.type = type;
      event.datacenter = datacenter;
      event.service = service_name;
      event.node = key.first;
      event.instance_id = key.second;
      event.consul_index = acked.index;
      event.previous_status = acked.status;
      event.reconciled = true;
      event.time = emit.now;
      event.id = InstanceEventId(datacenter, key.first, key.second, acked.index, ToString(type));
      highest = std::max(highest, acked.index);
      return event;
    };
    if (acked.up) add(EventType::kInstanceDown).reason = DownReason::kDeregistered;
    add(EventType::kInstanceDeregistered);
  }

  const bool up = service != nullptr && service->reported_up;
  if (up != acknowledged.up) {
    const std::uint64_t index =
        highest != 0 ? highest : (service != nullptr ? service->last_index : 0);
    Event& event = events.emplace_back();
    event.type = up ? EventType::kServiceUp : EventType::kServiceDown;
    event.datacenter = datacenter;
    event.service = service_name;
    event.consul_index = index;
    event.reconciled = true;
    event.time = emit.now;
    if (service != nullptr) {
      event.instances_up = service->up_count;
      event.instances_total = static_cast<int>(service->instances.size());
    }
    event.id = ServiceEventId(datacenter, service_name, index, ToString(event.type));
  }
  return events;
}

void TransitionEngine::UpdateOptions(EngineOptions options) { options_ = std::move(options); }

}  // namespace hb
