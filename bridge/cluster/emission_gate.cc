#include "bridge/cluster/emission_gate.h"

namespace hb {

void EmissionGate::Publish(std::vector<Event> events) {
  std::vector<Event> owned;
  owned.reserve(events.size());
  for (Event& event : events) {
    if (auto epoch = cluster_.EpochFor(event.service)) {
      event.epoch = *epoch;
      owned.push_back(std::move(event));
    } else {
      withheld_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!owned.empty()) next_.Publish(std::move(owned));
}

}  // namespace hb
