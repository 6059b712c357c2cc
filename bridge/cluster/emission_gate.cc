#include "bridge/cluster/emission_gate.h"

namespace hb {

void EmissionGate::Publish(std::vector<Event> events) {
  for (Event& event : events) {
    if (auto epoch = cluster_.EpochFor(event.service)) {
      event.epoch = *epoch;
    } else {
      // Not ours: no notification, but sinks that hold state (metrics,
      // Alertmanager) still follow it, as they follow the initial sync, so
      // their view stays exact when the service moves between replicas.
      event.silent = true;
      event.epoch.reset();
      withheld_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!events.empty()) next_.Publish(std::move(events));
}

}  // namespace hb
