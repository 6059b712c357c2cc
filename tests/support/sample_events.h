#pragma once

// Realistic events for sink and router tests, with stable ids as the engine
// makes them.

#include <cstdint>
#include <memory>
#include <string>

#include "bridge/model/event.h"
#include "bridge/router/sink.h"

namespace hb::test_support {

inline Event InstanceEvent(std::string instance, EventType type, std::uint64_t index,
                           std::string service = "payments") {
  Event event;
  event.type = type;
  event.datacenter = "dc1";
  event.service = std::move(service);
  event.node = "node-a";
  event.instance_id = std::move(instance);
  event.address = "10.1.2.3";
  event.port = 8080;
  event.tags = {"v2"};
  event.meta = {{"version", "2.4.1"}};
  event.consul_index = index;
  event.status =
      type == EventType::kInstanceDown ? HealthStatus::kCritical : HealthStatus::kPassing;
  if (type == EventType::kInstanceDown) event.reason = DownReason::kCritical;
  event.checks = {{"service:" + event.instance_id, "Service TTL", *event.status, "TTL expired", "",
                   event.instance_id, "ttl"}};
  event.time = std::chrono::system_clock::now();
  event.id = "dc1/node-a/" + event.instance_id + "/" + std::to_string(index) + "/" +
             std::string(ToString(type));
  return event;
}

inline EventPtr Shared(Event event) { return std::make_shared<const Event>(std::move(event)); }

}  // namespace hb::test_support
