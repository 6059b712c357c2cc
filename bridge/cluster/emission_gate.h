#pragma once

// Between the watch and the router in cluster mode: the events of services
// this replica holds the lock of go on as notifications, each stamped with
// the lock's epoch (Event::epoch, the CloudEvents extension `hbepoch`); the
// others go on as silent events, which the router hands only to sinks that
// hold state (metrics, Alertmanager), never to notifying ones (webhook,
// Kafka, log). The engine keeps watching and diffing every service, so a
// replica that takes a service over knows its state already.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/cluster/cluster_coordinator.h"
#include "bridge/cluster/handover_ledger.h"
#include "bridge/model/event_publisher.h"
#include "bridge/state/transition_engine.h"

namespace hb {

class EmissionGate final : public EventPublisher {
 public:
  // `ledger` (may be null) follows what the sinks acknowledge of the
  // notifications that pass.
  EmissionGate(EventPublisher& next, ClusterCoordinator& cluster, HandoverLedger* ledger = nullptr)
      : next_(next), cluster_(cluster), ledger_(ledger) {}

  void Publish(std::vector<Event> events) override;

  // The takeover of a service whose lock the coordinator acquired under
  // `epoch`, on the publishing thread (so no event of the service passes
  // in between), once `engine` finished its initial sync: opens the
  // service, then emits, marked reconciled, exactly the transitions from
  // `acknowledged` (what the previous owner's sinks acknowledged) to what
  // the engine reports now, with the ids the previous owner gave them. A
  // first owner (no acknowledged state) emits nothing: the state it starts
  // from is the engine's, as after a silent initial sync.
  void TakeOver(const TransitionEngine& engine, std::string_view datacenter,
                const std::string& service, std::uint64_t epoch,
                std::optional<ReportedService> acknowledged);

  // Events that went on silent because another replica owns (or nobody
  // holds) their service.
  std::uint64_t withheld() const { return withheld_.load(std::memory_order_relaxed); }

 private:
  EventPublisher& next_;
  ClusterCoordinator& cluster_;
  HandoverLedger* const ledger_;
  std::atomic<std::uint64_t> withheld_{0};
};

}  // namespace hb
