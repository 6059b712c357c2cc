#pragma once

#include <prometheus/registry.h>

#include <functional>

#include "config/bridge_config.h"
#include "config/config_loader.h"
#include "sinks/sink_registry.h"

namespace hb {

// Reads the configuration file again (SIGHUP).
using ConfigSource = std::function<LoadResult()>;

// Runs the bridge until SIGTERM or SIGINT: restores the saved state and the
// spools of state.dir, builds the sinks and the router, watches Consul,
// saves state as it goes, and reloads `reload` on SIGHUP. On SIGTERM or
// SIGINT it stops taking Consul answers, saves the state, and lets the sinks
// deliver for up to state.shutdown_timeout; what is left stays in the
// spools. The caller must have blocked SIGTERM, SIGINT and SIGHUP in every
// thread (before any started). `registry` is the process's metrics
// registry, owned by main. Returns the process exit code.
int RunDaemon(const BridgeConfig& config, const SinkRegistry& sinks, prometheus::Registry& registry,
              const ConfigSource& reload);

}  // namespace hb
