#pragma once

// The events and acknowledged states the handover tests build: one
// service, "payments" on node-a of dc1, under epoch 7.

#include <cstdint>
#include <string>

#include "bridge/model/event.h"
#include "bridge/model/health.h"
#include "bridge/state/reported_state.h"

namespace hb::test_support {

inline Event InstanceEvent(EventType type, const std::string& instance, HealthStatus status,
                           std::uint64_t index) {
  Event event;
  event.type = type;
  event.datacenter = "dc1";
  event.service = "payments";
  event.node = "node-a";
  event.instance_id = instance;
  event.status = status;
  event.consul_index = index;
  event.epoch = 7;
  event.id =
      "dc1/node-a/" + instance + "/" + std::to_string(index) + "/" + std::string(ToString(type));
  return event;
}

inline ReportedService UpState(const std::string& instance, std::uint64_t index) {
  ReportedService state;
  state.up = true;
  state.instances[{"node-a", instance}] = {true, HealthStatus::kPassing, index};
  return state;
}

}  // namespace hb::test_support
