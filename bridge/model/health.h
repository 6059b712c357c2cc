#pragma once

// The health vocabulary every floor shares: what Consul reports about one
// service instance, independent of how it was fetched. Plain values, no I/O.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/model/source_scope.h"

namespace hb {

// Ordered from best to worst; AggregateStatus() takes the maximum.
enum class HealthStatus : std::uint8_t { kPassing, kWarning, kCritical, kMaintenance };

// "passing", "warning", "critical", "maintenance".
std::string_view ToString(HealthStatus status);
std::optional<HealthStatus> ParseHealthStatus(std::string_view text);

// One Consul health check as /v1/health/service returns it. Node-level
// checks (serfHealth, _node_maintenance) have an empty service_id and apply
// to every instance on their node.
struct Check {
  std::string id;                                 // CheckID
  std::string name;                               // Name
  HealthStatus status = HealthStatus::kCritical;  // passing, warning or critical
  std::string output;      // changes on every heartbeat: never a transition by itself
  std::string notes;       // the maintenance reason lives here
  std::string service_id;  // "" for node checks
  std::string type;        // "ttl", "http", "tcp", ... ("" for serfHealth)

  // `_node_maintenance` or `_service_maintenance:<id>`: Consul's maintenance
  // mode, which counts as its own status, worse than critical.
  bool IsMaintenance() const;

  bool operator==(const Check&) const = default;
};

// Worst status of `checks` as the Go api's HealthChecks.AggregatedStatus():
// any maintenance check gives kMaintenance, then critical > warning >
// passing; no checks at all is passing.
HealthStatus AggregateStatus(std::span<const Check> checks);

// One instance of a service on one node at one moment.
struct Instance {
  std::string node;     // Node.Node
  std::string id;       // Service.ID; unique per node only (go-kratos #1711)
  std::string service;  // Service.Service
  std::string address;  // Service.Address, or Node.Address when that is empty
  int port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> meta;
  // Node checks and this instance's own checks, in Consul's order.
  std::vector<Check> checks;
  // The raft index of the instance's last write: the highest ModifyIndex of
  // its service entry and its checks (node checks included). Every replica
  // reading the same data sees the same value, whenever it reads it, so
  // event ids built from it agree across replicas. 0 when unknown (the
  // answer had none); not kept in saved state or packed details.
  std::uint64_t modify_index = 0;

  bool operator==(const Instance&) const = default;
};

// Everything Consul knows about one service in one datacenter at one index:
// the complete instance list, never a delta. An empty list is information
// (the last instance left), not a missing answer.
struct ServiceSnapshot {
  std::string datacenter;
  std::string service;
  std::uint64_t index = 0;  // X-Consul-Index of the answer
  std::vector<Instance> instances;
  // When the answer arrived, for end-to-end latency metrics.
  SteadyTime received_at{};
  SourceScope scope{};  // peer, namespace, partition (default: none)
};

}  // namespace hb
