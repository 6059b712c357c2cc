#include "bridge/state/reported_state.h"

namespace hb {

void FoldEvent(ReportedService& reported, const Event& event) {
  if (!event.IsInstanceEvent()) {
    if (event.type == EventType::kServiceUp) reported.up = true;
    if (event.type == EventType::kServiceDown) reported.up = false;
    return;
  }
  const std::pair<std::string, std::string> key{event.node, event.instance_id};
  if (event.type == EventType::kInstanceDeregistered) {
    reported.instances.erase(key);
    return;
  }
  ReportedInstance& instance = reported.instances[key];
  instance.index = event.consul_index;
  // A departing instance's down carries no status: it keeps its last one.
  if (event.status) instance.status = *event.status;
  switch (event.type) {
    case EventType::kInstanceUp:
      instance.up = true;
      break;
    case EventType::kInstanceDown:
      instance.up = false;
      break;
    case EventType::kInstanceRegistered:
    case EventType::kInstanceStatusChanged:
    case EventType::kInstanceDeregistered:
    case EventType::kServiceUp:
    case EventType::kServiceDown:
      break;
  }
}

}  // namespace hb
