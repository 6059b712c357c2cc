#include "bridge/cluster/emission_gate.h"

#include <set>

namespace hb {
namespace {

// Whether `acknowledged` shows `event` delivered already: an instance event
// no later than what every sink acknowledged of that instance. (Service
// events carry nothing to tell: they are repeated, with their ids.)
bool AcknowledgedAlready(const ReportedService& acknowledged, const Event& event) {
  if (event.instance_id.empty()) return false;
  auto it = acknowledged.instances.find({event.node, event.instance_id});
  return it != acknowledged.instances.end() && it->second.index >= event.consul_index;
}

}  // namespace

void EmissionGate::Publish(std::vector<Event> events) {
  std::set<std::string> owned;
  for (Event& event : events) {
    if (auto epoch = cluster_.EpochFor(event.service)) {
      event.epoch = epoch;
      if (!event.silent) owned.insert(event.service);
    } else {
      // Not ours: no notification, but sinks that hold state (metrics,
      // Alertmanager) still follow it, as they follow the initial sync, so
      // their view stays exact when the service moves between replicas.
      event.silent = true;
      event.epoch.reset();
      withheld_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (events.empty()) return;
  if (ledger_ != nullptr) ledger_->Emitting(events);
  // Recorded before they leave: a successor re-emits what was not confirmed.
  if (write_ahead_ != nullptr && !owned.empty()) write_ahead_->Record(owned);
  next_.Publish(std::move(events));
}

void EmissionGate::TakeOver(const TransitionEngine& engine, std::string_view datacenter,
                            const std::string& service, std::uint64_t epoch,
                            std::optional<ReportedService> acknowledged,
                            std::optional<std::vector<Event>> pending) {
  if (!cluster_.Open(service, epoch)) return;  // lost meanwhile: its successor emits
  const bool first_owner = !acknowledged;
  ReportedService base = acknowledged
                             ? std::move(*acknowledged)
                             : engine.Reported(datacenter, service).value_or(ReportedService{});
  // The previous owner's unconfirmed events, with their ids, folded into
  // the state the diff starts from, so it does not emit them again under
  // other ids.
  std::vector<Event> events;
  ReportedService from = base;
  if (pending) {
    for (Event& event : *pending) {
      if (event.service != service || (!first_owner && AcknowledgedAlready(base, event))) continue;
      FoldEvent(from, event);
      event.silent = false;
      event.reconciled = true;
      event.observed_at = std::chrono::steady_clock::now();
      events.push_back(std::move(event));
    }
  }
  if (!first_owner || !events.empty()) {
    std::vector<Event> since = engine.ReconcileFrom(datacenter, service, from);
    events.insert(events.end(), std::make_move_iterator(since.begin()),
                  std::make_move_iterator(since.end()));
  }
  // A first owner's state is written at once, so its successor has one.
  if (ledger_ != nullptr) ledger_->Begin(service, std::move(base), first_owner);
  if (pending && write_ahead_ != nullptr) write_ahead_->Adopt(service);
  for (Event& event : events) event.epoch = epoch;
  if (ledger_ != nullptr && !events.empty()) ledger_->Emitting(events);
  // The events re-emitted are unconfirmed again, now this replica's; a
  // write-ahead found and nothing pending: deleted.
  if (write_ahead_ != nullptr && (pending || !events.empty())) write_ahead_->Record({service});
  if (events.empty()) return;
  next_.Publish(std::move(events));
}

}  // namespace hb
