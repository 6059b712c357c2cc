#pragma once

// Parsers for the Consul answers the watch uses. Strict about the types of
// the fields they read, tolerant of fields they do not; an error names the
// JSON path ("[3].Service.Port: expected an integer, got string"). They never
// throw, and a malformed body is never an empty result: an empty instance
// list means "no instances" and would deregister everything.

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

struct AgentSelf {
  std::string datacenter;  // Config.Datacenter
  std::string node_name;   // Config.NodeName
};
// GET /v1/agent/self
StatusOr<AgentSelf> ParseAgentSelf(std::string_view body);

}  // namespace hb
