#pragma once

// The transition engine: pure and synchronous. Input is the complete
// instance set of one service at one Consul index (or "the service is
// gone"); output is the ordered events that change implies (docs/design.md's
// event table). No I/O; time comes from the injected Clock (dampening, event
// timestamps).
//
// Rules, beyond the event table:
// - An instance is (source, node, service ID); services are (source, name),
//   a source being a datacenter with its peer, namespace and partition
//   (SourceScope): sources never share state.
// - Per instance the engine keeps what events have *reported* (up-ness and
//   status), the current status, and a pending transition when dampening
//   delays one. A change of check Output, address, port, tags or meta alone
//   emits nothing; the new details ride along in the next event.
// - Up/down: when current up-ness differs from reported, a transition is
//   pending since it was first observed and fires once it has held for
//   up_after/down_after (a blip shorter than that emits nothing). When they
//   agree, a differing status emits status_changed at once.
// - A new instance emits registered at once; it starts as "never up", so an
//   up instance then goes through the up path, and one that starts critical
//   emits neither down nor status_changed.
// - A vanished instance (or a gone service): down(deregistered) if it was
//   reported up, then deregistered. Never dampened.
// - Service events follow from reported up counts after all instance events
//   of one call: 0 → ≥1 is service.up, ≥1 → 0 is service.down.
// - Order within one call: instances in snapshot order, then vanished ones by
//   key, then the service event.
// - Event ids are "<dc>/<node>/<instance>/<index>/<event>" and
//   "<dc>/<service>/<index>/<event>". For instance events, index is the
//   instance's own raft index (Instance::modify_index: the highest
//   ModifyIndex of its service entry and checks) when the new state was
//   first observed, or the snapshot's index when Consul gave none; a
//   departure carries the instance's last own index. A service event
//   carries the highest own index of the instance events that caused it
//   (else the snapshot's). So the same transition always has the same id,
//   on every replica that read the same data (consumers deduplicate on
//   it). The event suffix keeps the
//   two events of one instance at one index (registered+up, down+
//   deregistered) distinct, as CloudEvents requires.
// - Initial sync (until CompleteInitialSync()): a service's first answer is
//   not dampened (it establishes the state). Without restored state, its
//   events are marked silent unless initial_events is set; with restored
//   state, it is diffed against it and its events are marked reconciled.
//   With restored state (or initial_events), that answer's events end with
//   the service's part of View(), silent: sinks that hold state learn the whole current state
//   at start, saved state or not, while notification sinks (which never get
//   silent events) hear only what changed. Silent events always come after
//   the notifying ones of the same call.
// - A departed instance (down(deregistered), deregistered) has no status any
//   more: its events carry status null and the last status it had as
//   previous_status, so nothing says "passing" about an instance that left.
//
// Thread-safety: none. One owner thread calls everything.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/model/event.h"
#include "bridge/model/health.h"
#include "bridge/state/engine_options.h"
#include "bridge/state/packed_instance.h"
#include "bridge/state/reported_state.h"
#include "bridge/state/saved_state.h"

namespace hb {

// One instance as the engine sees it, for /v1/instances and state saving.
struct InstanceView {
  std::string datacenter;
  std::string service;
  // A copy: the engine keeps instances packed, not as Instance structs.
  std::shared_ptr<const Instance> instance;
  HealthStatus status = HealthStatus::kCritical;  // current aggregated status
  bool up = false;                                // as last reported
  WallTime since{};                               // last reported up/down change, or first seen
  SourceScope scope{};
};

class TransitionEngine {
 public:
  // `clock` must outlive the engine.
  TransitionEngine(EngineOptions options, const Clock& clock);
  ~TransitionEngine();

  TransitionEngine(const TransitionEngine&) = delete;
  TransitionEngine& operator=(const TransitionEngine&) = delete;

  // The complete instance list of one service at one index.
  std::vector<Event> Apply(ServiceSnapshot snapshot);
  // The service left the catalog (or the watch filter).
  std::vector<Event> ServiceGone(std::string_view datacenter, std::string_view service,
                                 std::uint64_t index);
  std::vector<Event> ServiceGone(std::string_view datacenter, const SourceScope& scope,
                                 std::string_view service, std::uint64_t index);
  // Fires the dampened transitions that are due now.
  std::vector<Event> Tick();
  // When the earliest pending transition becomes due, if any.
  std::optional<SteadyTime> NextDeadline() const;

  // Ends the initial sync. With restored state, every restored service that
  // was not applied meanwhile is gone; those events are returned. Services
  // of `datacenter` named in `unreadable` are still in the catalog but no
  // answer of theirs could be used: their restored state stays, and their
  // first answer is diffed against it.
  std::vector<Event> CompleteInitialSync(std::string_view datacenter = {},
                                         const std::set<std::string, std::less<>>& unreadable = {});
  // Several sources (watch.sources) share one engine, each with its own
  // initial sync: a source's first answers are diffed against its restored
  // state (or silent) until its own CompleteInitialSync(), whatever the
  // others do. The sync as a whole completes with the last expected source;
  // only then are restored services of sources no longer watched gone.
  std::vector<Event> CompleteInitialSync(std::string_view datacenter, const SourceScope& scope,
                                         const std::set<std::string, std::less<>>& unreadable);
  // How many sources call CompleteInitialSync(). Default: 1.
  void ExpectSources(std::size_t count);
  // Sources found at run time (watch.sources with `all` or `*`), instead of
  // ExpectSources(): each source is announced before its first answer.
  // Announced during the initial sync, it is one more source the sync
  // waits for; announced after, it syncs on its own. Either way a source
  // the engine has no saved state of starts silent, like a first start (a
  // datacenter seen for the first time is no burst of registrations), and
  // the restored services of sources never announced are dropped silently
  // when the sync completes, not reported gone.
  void AddSource(std::string_view datacenter, const SourceScope& scope);
  // A source found at run time is no longer watched: its services are
  // forgotten. The events are all silent: sinks that hold state drop its
  // series, notification sinks hear nothing (a datacenter leaving the WAN
  // list is no instance.down).
  std::vector<Event> DropSource(std::string_view datacenter, const SourceScope& scope);
  bool initial_sync_complete() const { return initial_sync_complete_; }

  // Saved state: Restore() before the first Apply().
  SavedState Save() const;
  void Restore(const SavedState& state);

  // Every known instance, sorted by datacenter, service, node, id.
  std::vector<InstanceView> Instances() const;
  // Each known service's key ("<dc>\n<service>", in the order of
  // Instances()) with a version that moves whenever the service's part of
  // Instances() may have changed: a copy of that part stays good until its
  // version moves. Costs a call per service, nothing per instance.
  void VisitServiceVersions(
      const std::function<void(std::string_view key, std::uint64_t version)>& visit) const;
  // One service's part of Instances(), by the key VisitServiceVersions()
  // gives; empty when the engine does not know it.
  std::vector<InstanceView> ServiceInstances(std::string_view key) const;

  // The reported state as silent events, for sinks that hold state (a sink
  // a reload added or rebuilt): per service, in the
  // order of Instances(), one instance.up or instance.down (with its reason)
  // per instance carrying its reported status, then one service.up or
  // service.down; last, one instance.deregistered (time: when it left) per
  // instance that left within kDepartedRetention (at most kDepartedLimit of
  // them) and is not back, so a new sink keeps its series as long as the
  // others do. A sink that applied every event so far already holds this.
  std::vector<Event> View() const;

  static constexpr std::chrono::hours kDepartedRetention{1};
  static constexpr std::size_t kDepartedLimit = 10000;

  // What this engine's events have reported about one service (silent ones
  // included); nullopt when it does not know the service.
  std::optional<ReportedService> Reported(std::string_view datacenter,
                                          std::string_view service) const;
  // The events that take a consumer holding `acknowledged` (what another
  // replica's events reported and every sink acknowledged) to what this
  // engine reports now, marked reconciled: registered (and up) for new
  // instances, up, down or status_changed for changed ones, down
  // (deregistered) and deregistered for departed ones, then the service's
  // up or down. Each carries the index the emitting replica gave it (the
  // instance's own index, see Instance::modify_index), so a consumer that
  // already has it sees the same id. Changes nothing.
  std::vector<Event> ReconcileFrom(std::string_view datacenter, std::string_view service,
                                   const ReportedService& acknowledged) const;

  // Takes effect at the next evaluation (config reload).
  void UpdateOptions(EngineOptions options);

 private:
  struct InstanceState;
  struct ServiceState;
  struct Emitter;
  // An instance keyed by "<node>\0\0<id>" (a NUL of the node escaped as
  // NUL 0x01), as the engine holds it.
  using InstanceEntry = std::pair<const std::string, InstanceState>;

  ServiceState& ServiceFor(std::string_view datacenter, const SourceScope& scope,
                           std::string_view service);
  // The service's source finished its initial sync (or every source did).
  bool SourceSynced(const ServiceState& service) const;
  void Evaluate(ServiceState& service, InstanceEntry& entry, Emitter& emit);
  // Emits the instance's last events and forgets it.
  void Deregister(ServiceState& service, InstanceEntry& entry, std::uint64_t index, Emitter& emit);
  void EmitServiceChange(ServiceState& service, std::uint64_t index, SteadyTime observed_at,
                         Emitter& emit);
  bool IsUp(HealthStatus status) const;
  void SetPending(ServiceState& service, InstanceState& state, bool pending);

  // An instance that left the catalog, remembered for View().
  struct Departed {
    std::string datacenter;
    SourceScope scope;
    std::string service;
    std::string key;  // as InstanceEntry
    PackedInstance details;
    std::optional<HealthStatus> last_status;
    std::uint64_t index = 0;
    WallTime at{};
  };
  // One service's part of View(), appended to `out`.
  void AppendServiceView(const ServiceState& service, std::vector<Event>& out) const;
  void RememberDeparted(const ServiceState& service, const InstanceEntry& entry,
                        std::uint64_t index, WallTime at);

  EngineOptions options_;
  const Clock& clock_;
  std::deque<Departed> departed_;  // oldest first, bounded by kDepartedLimit
  bool initial_sync_complete_ = false;
  bool restored_ = false;
  // Sources (by key) whose initial sync completed, of expected_sources_.
  std::set<std::string, std::less<>> synced_sources_;
  std::size_t expected_sources_ = 1;
  // AddSource(): the sources announced during the initial sync, the ones
  // announced after it and not synced yet, and the sources of the restored
  // state.
  bool announced_sources_ = false;
  std::set<std::string, std::less<>> announced_;
  std::set<std::string, std::less<>> late_sources_;
  std::set<std::string, std::less<>> restored_sources_;
  // The source announced at run time has saved state to diff against.
  bool HasRestored(const ServiceState& service) const;
  // Ends the initial sync once every announced source synced.
  void MaybeFinishAnnouncedSync(std::vector<Event>& events);
  // Each of `services` (key, last index) is gone: its events appended.
  void AppendGone(const std::vector<std::pair<std::string, std::uint64_t>>& services,
                  std::vector<Event>& events);
  // Moves on every change of a service's part of Instances(): each
  // ServiceState keeps the value of its last change.
  std::uint64_t view_clock_ = 0;
  // One service's part of Instances(), appended to `views`.
  void AppendInstances(const ServiceState& service, std::vector<InstanceView>& views) const;
  // Keyed by "<dc>\n<service>"; std::map keeps Instances() and state files
  // in a stable order.
  std::map<std::string, std::unique_ptr<ServiceState>, std::less<>> services_;
  // Instances waiting out dampening, over all services: Tick() and
  // NextDeadline() run after every answer and must not walk thousands of
  // services when nothing waits (the default, no dampening).
  std::size_t pending_total_ = 0;
};

}  // namespace hb
