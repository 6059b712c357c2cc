#pragma once

// The configuration, translated into the options of the components it
// configures (which do not depend on the config library).

#include "bridge/consul/consul_client.h"
#include "bridge/state/engine_options.h"
#include "bridge/watch/watcher.h"
#include "config/bridge_config.h"

namespace hb {

ConsulClientOptions ClientOptionsFor(const ConsulConfig& consul);
EngineOptions EngineOptionsFor(const WatchConfig& watch);
ServiceFilterOptions ServiceFilterFor(const ServiceSelection& services);
// One filter per watched source (watch.sources; one without them).
std::vector<ServiceFilterOptions> SourceFiltersFor(const WatchConfig& watch);
WatcherOptions WatcherOptionsFor(const BridgeConfig& config);

}  // namespace hb
