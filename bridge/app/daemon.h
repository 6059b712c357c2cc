#pragma once

#include <prometheus/registry.h>

#include "config/bridge_config.h"
#include "sinks/sink_registry.h"

namespace hb {

// Runs the bridge until SIGTERM or SIGINT: builds the sinks and the router,
// watches Consul, and on a signal stops taking Consul answers and lets the
// sinks deliver for up to state.shutdown_timeout. The caller must have
// blocked SIGTERM, SIGINT and SIGHUP in every thread (before any started).
// `registry` is the process's metrics registry, owned by main. Returns the
// process exit code.
int RunDaemon(const BridgeConfig& config, const SinkRegistry& sinks,
              prometheus::Registry& registry);

}  // namespace hb
