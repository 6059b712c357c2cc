#pragma once

// SIGHUP: applies a new, already validated configuration to the running
// bridge. Sinks are added, removed (after delivering for up to
// state.shutdown_timeout; the rest is dead-lettered; their series go) or
// rebuilt with their queued events kept; a sink that holds state (metrics)
// that is added, renamed or rebuilt is sent the engine's current view, and
// the reload waits (up to kViewGrace) until it took it; the watch's service filter, up statuses and
// dampening change in place. consul, server, state, events, log.format and watch.unreachable_grace
// are read once at start: a change to them is logged and takes effect at the next restart.

#include "bridge/app/view_seeding.h"
#include "bridge/router/delivery_observer.h"
#include "bridge/router/router.h"
#include "bridge/telemetry/bridge_metrics.h"
#include "bridge/watch/watcher.h"
#include "config/bridge_config.h"
#include "sinks/sink_registry.h"

namespace hb {

// The running parts a reload changes; all must outlive the call.
struct LiveBridge {
  Router& router;
  Watcher& watcher;
  const SinkRegistry& registry;
  const SinkContext& context;
  DeliveryObserver* observer;
  // Sinks that hold state get the engine's view when added or rebuilt.
  ViewTracker& views;
  // A removed sink's own series go with it.
  BridgeMetrics& metrics;
};

// Returns the configuration now in effect: `next`, except the start-only
// settings (kept from `current`) and sinks that could not be rebuilt (kept
// as they were, with the error logged).
BridgeConfig ApplyReload(const BridgeConfig& current, const BridgeConfig& next, LiveBridge live);

}  // namespace hb
