#pragma once

// watch.sources: the Consul datacenters, cluster peers, namespaces and
// admin partitions one bridge watches (README.md "Sources"), read into the
// watcher's own WatchSource.

#include <string>
#include <vector>

#include "bridge/watch/watcher.h"

namespace YAML {
class Emitter;
}  // namespace YAML

namespace hb {

class ConfigReader;
class ConfigErrors;

// Reads the `sources` list of `watch` into the watcher's own WatchSource
// (absent: no sources, the watcher's one default source). Per-source
// `services` keys fall back to `services`, the global watch.services.
// Problems are reported on `watch` with their key path
// ("watch.sources[1].peer: ...").
std::vector<WatchSource> ReadSources(ConfigReader& watch, const ServiceFilterOptions& services);

// ReadSources() into `watcher`, with the settings of sources found at run
// time (max_sources, source_grace, source_list_interval), accepted only
// when an entry uses `all` or `*`.
void ReadSourceSettings(ConfigReader& watch, WatcherOptions& watcher);

// Every source holds at least its catalog watch, its change detector and one
// read: `max_connections` (consul.max_connections) must give each that much,
// and with sources found at run time each of max_sources (at most that many
// share the budget at once), plus one for listing them.
void CheckSourceBudget(const WatcherOptions& watcher, int max_connections, ConfigErrors& errors);

// Writes `sources:` (and the settings of sources found at run time) for
// check-config (nothing when the list is empty).
void EmitSources(YAML::Emitter& out, const WatcherOptions& watcher);

}  // namespace hb
