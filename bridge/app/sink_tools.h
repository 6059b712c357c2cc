#pragma once

// Operator tools that use one configured sink directly, without Consul or
// the router: `health-bridge test-sink` sends one clearly marked test event,
// `health-bridge replay` delivers a dead-letter file's events again. Both
// print what they did and return an exit code.

#include <iosfwd>
#include <optional>
#include <string>

#include "config/bridge_config.h"
#include "sinks/sink_registry.h"

namespace hb {

// Sends one `instance.up` of the service "health-bridge-test" (meta
// health_bridge_test: "true", node and instance named after this host and
// the time) through the sink `name`, and reports the outcome and latency.
// 0 when the sink acknowledged it, 1 when it failed, 2 for an unknown name.
int TestSink(const BridgeConfig& config, const SinkRegistry& registry, const std::string& name,
             std::ostream& out);

// Delivers every event of a dead-letter file (one JSON object per line, as
// sinks write them) through the sink that dead-lettered it, or through
// `sink` when given, retrying transient failures a few times. Events that
// still fail, and lines that cannot be read, are kept in "<file>.failed"
// with the reason, so nothing is lost. 0 when every event was delivered.
int ReplayDeadLetters(const BridgeConfig& config, const SinkRegistry& registry,
                      const std::string& file, const std::optional<std::string>& sink,
                      std::ostream& out);

}  // namespace hb
