#pragma once

// Compact builders for engine tests: snapshots read like the scenario.

#include <string>
#include <vector>

#include "bridge/model/event.h"
#include "bridge/model/health.h"

namespace hb::test_support {

inline Check ServiceCheck(const std::string& instance, HealthStatus status,
                          std::string output = "") {
  Check check;
  check.id = "service:" + instance;
  check.name = "Service TTL";
  check.status = status;
  check.output = std::move(output);
  check.service_id = instance;
  check.type = "ttl";
  return check;
}

inline Check NodeCheck(const std::string& id, HealthStatus status) {
  Check check;
  check.id = id;
  check.name = id == "serfHealth" ? "Serf Health Status" : "Node Maintenance Mode";
  check.status = status;
  return check;
}

inline Instance MakeInstance(const std::string& id, HealthStatus status,
                             const std::string& node = "node-a",
                             const std::string& service = "payments") {
  Instance instance;
  instance.node = node;
  instance.id = id;
  instance.service = service;
  instance.address = "10.0.0.1";
  instance.port = 8080;
  instance.tags = {"v2"};
  instance.meta = {{"version", "2.4.1"}};
  instance.checks = {NodeCheck("serfHealth", HealthStatus::kPassing), ServiceCheck(id, status)};
  return instance;
}

inline ServiceSnapshot Snapshot(std::uint64_t index, std::vector<Instance> instances,
                                const std::string& service = "payments",
                                const std::string& datacenter = "dc1") {
  ServiceSnapshot snapshot;
  snapshot.datacenter = datacenter;
  snapshot.service = service;
  snapshot.index = index;
  snapshot.instances = std::move(instances);
  return snapshot;
}

// "instance.down payments-1 critical" / "service.down payments": the part of
// an event a scenario asserts on.
inline std::string Describe(const Event& event) {
  std::string text(ToString(event.type));
  text += ' ';
  text += event.IsInstanceEvent() ? event.instance_id : event.service;
  if (event.reason) {
    text += ' ';
    text += ToString(*event.reason);
  }
  return text;
}

inline std::vector<std::string> Describe(const std::vector<Event>& events) {
  std::vector<std::string> out;
  out.reserve(events.size());
  for (const auto& event : events) out.push_back(Describe(event));
  return out;
}

}  // namespace hb::test_support
