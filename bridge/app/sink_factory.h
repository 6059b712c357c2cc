#pragma once

// Builds one configured sink with everything the router needs for it: its
// route (filters, queue, retry), its dead-letter file and, with state.dir,
// its spool, which holds the events an earlier run left undelivered.

#include <vector>

#include "bridge/common/status.h"
#include "bridge/router/delivery_observer.h"
#include "bridge/router/router.h"
#include "config/bridge_config.h"
#include "sinks/sink_registry.h"

namespace hb {

struct BuiltSink {
  SinkRoute route;
  SinkPtr sink;
  SinkStorage storage;  // its spool holds what an earlier run left undelivered
};

SinkRoute RouteFor(const SinkConfig& sink);
// Where the sink delivers, secrets masked ("" when its type does not say).
std::string TargetOf(const SinkConfig& sink);

// Spool problems found while opening (torn tail, corrupt records) are
// logged, counted through `observer` (may be null) and dropped; errors are
// what stops the sink from being built (its factory, an unwritable file).
StatusOr<BuiltSink> BuildSink(const SinkConfig& sink, const StateConfig& state,
                              const SinkRegistry& registry, const SinkContext& context,
                              DeliveryObserver* observer);

// Sinks can be added to `router` in any order: each has its own worker.
Status AddSinks(const BridgeConfig& config, const SinkRegistry& registry,
                const SinkContext& context, DeliveryObserver* observer, Router& router);

}  // namespace hb
