#pragma once

#include "sinks/sink_registry.h"

namespace hb {

// Registers every sink type this build ships. Adding a sink adds one line.
void RegisterBuiltinSinks(SinkRegistry& registry);

}  // namespace hb
