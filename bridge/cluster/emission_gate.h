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
#include <vector>

#include "bridge/cluster/cluster_coordinator.h"
#include "bridge/model/event_publisher.h"

namespace hb {

class EmissionGate final : public EventPublisher {
 public:
  EmissionGate(EventPublisher& next, const ClusterCoordinator& cluster)
      : next_(next), cluster_(cluster) {}

  void Publish(std::vector<Event> events) override;

  // Events that went on silent because another replica owns (or nobody
  // holds) their service.
  std::uint64_t withheld() const { return withheld_.load(std::memory_order_relaxed); }

 private:
  EventPublisher& next_;
  const ClusterCoordinator& cluster_;
  std::atomic<std::uint64_t> withheld_{0};
};

}  // namespace hb
