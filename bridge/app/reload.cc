#include "bridge/app/reload.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "bridge/app/sink_factory.h"
#include "config/config_loader.h"

namespace hb {
namespace {

// Everything a reload cannot change, as text.
std::string StartOnlySettings(BridgeConfig config) {
  config.sinks.clear();
  config.watch.watcher.services = {};
  for (WatchSource& source : config.watch.watcher.sources) source.services = {};
  config.watch.engine = {};
  config.log.level.clear();
  // It only adds or drops a sink, which the reload applies.
  config.server.default_metrics_sink = true;
  return FormatEffectiveConfig(config, /*mask_secrets=*/false);
}

const SinkConfig* FindSink(const BridgeConfig& config, const std::string& name) {
  auto it = std::find_if(config.sinks.begin(), config.sinks.end(),
                         [&](const SinkConfig& sink) { return sink.name == name; });
  return it == config.sinks.end() ? nullptr : &*it;
}

// A new or rebuilt sink that holds state starts from the engine's view,
// not empty; the reload is done once it holds it.
void Seed(const std::string& name, LiveBridge live) {
  if (!SeedSink(live.watcher, live.router, live.views, name, kViewGrace)) {
    spdlog::warn("reload: sink {} did not take the current state within {} ms; it will", name,
                 kViewGrace.count());
  }
}

// Rebuilds, adds and removes sinks; returns the sinks now running.
std::vector<SinkConfig> ReloadSinks(const BridgeConfig& current, const BridgeConfig& next,
                                    LiveBridge live) {
  std::vector<SinkConfig> running;
  for (const SinkConfig& old : current.sinks) {
    if (FindSink(next, old.name) != nullptr) continue;
    spdlog::info("reload: removing sink {}: it gets up to {} ms to deliver what it has", old.name,
                 current.state.shutdown_timeout.count());
    const auto left = live.router.RemoveSink(old.name, current.state.shutdown_timeout);
    if (left && *left > 0) {
      if (current.state.dir.empty()) {
        spdlog::warn("reload: sink {} removed; {} undelivered events were dead-lettered", old.name,
                     *left);
      } else {
        spdlog::warn(
            "reload: sink {} removed; {} undelivered events stay in its spool in {}: a sink "
            "added again under that name delivers them first",
            old.name, *left, current.state.dir);
      }
    }
    live.views.Forget(old.name);
    live.metrics.ForgetSink(old.name);
  }
  for (const SinkConfig& sink : next.sinks) {
    const SinkConfig* old = FindSink(current, sink.name);
    if (old != nullptr && FormatSinkConfig(*old, false) == FormatSinkConfig(sink, false)) {
      running.push_back(sink);
      continue;
    }
    if (old == nullptr) {
      auto built = BuildSink(sink, current.state, live.registry, live.context, live.observer);
      if (!built.ok()) {
        spdlog::error("reload: sink {} not added: {}", sink.name, built.status().message());
        continue;
      }
      const bool stateful = built->sink->WantsSilentEvents();
      live.router.AddSink(std::move(built->route), std::move(built->sink),
                          std::move(built->storage));
      spdlog::info("reload: sink {} ({}) added, delivers to {}", sink.name, sink.type,
                   TargetOf(sink));
      if (stateful) Seed(sink.name, live);
    } else {
      auto created = live.registry.Create(sink, live.context);
      if (!created.ok()) {
        spdlog::error("reload: sink {} keeps its old settings: {}", sink.name,
                      created.status().message());
        running.push_back(*old);
        continue;
      }
      const bool stateful = (*created)->WantsSilentEvents();
      live.router.ReplaceSink(sink.name, RouteFor(sink), std::move(*created));
      spdlog::info(
          "reload: sink {} ({}) rebuilt with its new settings (delivers to {}); its queued "
          "events are kept",
          sink.name, sink.type, TargetOf(sink));
      if (stateful) Seed(sink.name, live);
    }
    running.push_back(sink);
  }
  return running;
}

// The same sources in the same order, whatever their service filters.
bool SameSourceScopes(const std::vector<WatchSource>& a, const std::vector<WatchSource>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const WatchSource& x = a[i];
    const WatchSource& y = b[i];
    if (x.datacenter != y.datacenter || x.peer != y.peer || x.ns != y.ns ||
        x.partition != y.partition) {
      return false;
    }
  }
  return true;
}

}  // namespace

BridgeConfig ApplyReload(const BridgeConfig& current, const BridgeConfig& next, LiveBridge live) {
  BridgeConfig effective = current;
  if (StartOnlySettings(current) != StartOnlySettings(next)) {
    spdlog::warn(
        "reload: changes to consul, server, state, events, log.format or "
        "watch.unreachable_grace take effect at the next restart; the running values "
        "stay");
  }
  effective.sinks = ReloadSinks(current, next, live);

  const WatcherOptions& next_watch = next.watch.watcher;
  const WatcherOptions& current_watch = current.watch.watcher;
  if (!SameSourceScopes(next_watch.sources, current_watch.sources)) {
    spdlog::warn(
        "reload: changes to the list of watch.sources take effect at the next restart; "
        "the running sources stay");
  } else if (next_watch.services != current_watch.services ||
             next_watch.sources != current_watch.sources) {
    live.watcher.UpdateServiceFilters(next_watch);
    spdlog::info("reload: watch.services applied");
    effective.watch.watcher.services = next_watch.services;
    effective.watch.watcher.sources = next_watch.sources;
  }
  if (next.watch.engine != current.watch.engine) {
    live.watcher.UpdateEngineOptions(next.watch.engine);
    spdlog::info("reload: watch up_statuses, dampening and initial_events applied");
  }
  effective.watch.engine = next.watch.engine;

  if (next.log.level != current.log.level) {
    spdlog::set_level(spdlog::level::from_str(next.log.level));
    spdlog::info("reload: log level {}", next.log.level);
  }
  effective.log.level = next.log.level;
  return effective;
}

}  // namespace hb
