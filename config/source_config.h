#pragma once

// watch.sources: the Consul datacenters, cluster peers, namespaces and
// admin partitions one bridge watches (README.md "Sources"). Kept apart
// from bridge_config.h so the rest of the configuration does not depend on
// it.

#include <string>
#include <vector>

namespace YAML {
class Emitter;
}  // namespace YAML

namespace hb {

class ConfigReader;
class ConfigErrors;

struct SourceConfig {
  // Datacenter to query (?dc=). Default: "" = consul.datacenter, or the
  // agent's own datacenter when that is empty too.
  std::string datacenter;
  // Cluster peer whose imported services to watch (?peer=). Default: "".
  std::string peer;
  // Consul Enterprise namespace (?ns=). Default: "" = Consul's default.
  std::string ns;
  // Consul Enterprise admin partition (?partition=). Default: "".
  std::string partition;
  // The services watched in this source: watch.services, with the keys
  // this source's own `services` map sets replaced.
  std::vector<std::string> include{"*"};
  std::vector<std::string> exclude{"consul"};
  std::vector<std::string> tags;

  bool operator==(const SourceConfig&) const = default;
};

// Reads the `sources` list of `watch` (absent: one source, today's single
// datacenter). Per-source `services` keys fall back to `include`, `exclude`
// and `tags`, the global watch.services. Problems are reported on `watch`
// with their key path ("watch.sources[1].peer: ...").
std::vector<SourceConfig> ReadSources(ConfigReader& watch, const std::vector<std::string>& include,
                                      const std::vector<std::string>& exclude,
                                      const std::vector<std::string>& tags);

// Every source holds at least its catalog watch, its change detector and one
// read: `max_connections` (consul.max_connections) must give each that much.
void CheckSourceBudget(const std::vector<SourceConfig>& sources, int max_connections,
                       ConfigErrors& errors);

// Writes `sources:` for check-config (nothing when the list is empty).
void EmitSources(YAML::Emitter& out, const std::vector<SourceConfig>& sources);

}  // namespace hb
