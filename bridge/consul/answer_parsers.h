#pragma once

// Parsers for the Consul answers the watch uses. Strict about the types of
// the fields they read, tolerant of fields they do not; an error names the
// JSON path ("[3].Service.Port: expected an integer, got string"). They never
// throw, and a malformed body is never an empty result: an empty instance
// list means "no instances" and would deregister everything.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"
#include "bridge/model/health.h"

namespace hb {

struct HealthAnswer {
  std::vector<Instance> instances;  // node checks included in each instance's checks
};
// GET /v1/health/service/<name>
StatusOr<HealthAnswer> ParseHealthService(std::string_view body);

// GET /v1/catalog/services: service name → tags (union over instances).
using CatalogServices = std::map<std::string, std::vector<std::string>>;
StatusOr<CatalogServices> ParseCatalogServices(std::string_view body);

// One row of GET /v1/health/state/any: the fields that say which instance
// a check belongs to and whether it was written.
struct CheckRow {
  std::string node;
  std::string check_id;
  std::string service_id;    // "" for a node check (serfHealth, node maintenance)
  std::string service_name;  // "" for a node check
  std::string status;
  std::uint64_t modify_index = 0;
  bool operator==(const CheckRow&) const = default;
};
// GET /v1/health/state/<state>
StatusOr<std::vector<CheckRow>> ParseHealthState(std::string_view body);

struct AgentSelf {
  std::string datacenter;  // Config.Datacenter
  std::string node_name;   // Config.NodeName
};
// GET /v1/agent/self
StatusOr<AgentSelf> ParseAgentSelf(std::string_view body);

// GET /v1/peerings: each peering's Name → State ("ACTIVE", "PENDING",
// "ESTABLISHING", "FAILING", "DELETING", "TERMINATED", ...).
using PeeringStates = std::map<std::string, std::string>;
StatusOr<PeeringStates> ParsePeerings(std::string_view body);

}  // namespace hb
