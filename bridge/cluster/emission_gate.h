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
#include "bridge/cluster/write_ahead.h"
#include "bridge/model/event_publisher.h"
#include "bridge/state/transition_engine.h"

namespace hb {

class EmissionGate final : public EventPublisher {
 public:
  // `ledger` (may be null) follows what the sinks acknowledge of the
  // notifications that pass; `write_ahead` (may be null; with a ledger)
  // records what they have not acknowledged in Consul before each batch
  // leaves.
  EmissionGate(EventPublisher& next, ClusterCoordinator& cluster, HandoverLedger* ledger = nullptr,
               WriteAhead* write_ahead = nullptr)
      : next_(next), cluster_(cluster), ledger_(ledger), write_ahead_(write_ahead) {}

  void Publish(std::vector<Event> events) override;

  // The takeover of a service whose lock the coordinator acquired under
  // `epoch`, on the publishing thread (so no event of the service passes
  // in between), once `engine` finished its initial sync: opens the
  // service, then emits, marked reconciled and under `epoch`: first the
  // previous owner's `pending` events (its write-ahead: emitted, not
  // acknowledged by all its sinks) with their ids, but for instance events
  // `acknowledged` shows delivered; then exactly the transitions from
  // `acknowledged` (what the previous owner's sinks acknowledged), with
  // those events folded in, to what the engine reports now, with the ids
  // the previous owner gave them. A first owner (no acknowledged state)
  // starts from the engine's state, as after a silent initial sync, with
  // the pending events folded in. `pending` nullopt: no write-ahead was
  // found (an empty one found is rewritten or deleted).
  void TakeOver(const TransitionEngine& engine, std::string_view datacenter,
                const std::string& service, std::uint64_t epoch,
                std::optional<ReportedService> acknowledged,
                std::optional<std::vector<Event>> pending = std::nullopt);

  // Events that went on silent because another replica owns (or nobody
  // holds) their service.
  std::uint64_t withheld() const { return withheld_.load(std::memory_order_relaxed); }

 private:
  EventPublisher& next_;
  ClusterCoordinator& cluster_;
  HandoverLedger* const ledger_;
  WriteAhead* const write_ahead_;
  std::atomic<std::uint64_t> withheld_{0};
};

}  // namespace hb
