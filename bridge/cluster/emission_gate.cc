#include "bridge/cluster/emission_gate.h"

namespace hb {

void EmissionGate::Publish(std::vector<Event> events) {
  for (Event& event : events) {
    if (auto epoch = cluster_.EpochFor(event.service)) {
      event.epoch = epoch;
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
  next_.Publish(std::move(events));
}

void EmissionGate::TakeOver(const TransitionEngine& engine, std::string_view datacenter,
                            const std::string& service, std::uint64_t epoch,
                            std::optional<ReportedService> acknowledged) {
  if (!cluster_.Open(service, epoch)) return;  // lost meanwhile: its successor emits
  std::vector<Event> events;
  ReportedService base;
  const bool first_owner = !acknowledged;
  if (acknowledged) {
    events = engine.ReconcileFrom(datacenter, service, *acknowledged);
    base = std::move(*acknowledged);
  } else {
    base = engine.Reported(datacenter, service).value_or(ReportedService{});
  }
  // A first owner's state is written at once, so its successor has one.
  if (ledger_ != nullptr) ledger_->Begin(service, std::move(base), first_owner);
  if (events.empty()) return;
  for (Event& event : events) event.epoch = epoch;
  if (ledger_ != nullptr) ledger_->Emitting(events);
  next_.Publish(std::move(events));
}

}  // namespace hb
