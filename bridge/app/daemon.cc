#include "bridge/app/daemon.h"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>

#include "bridge/app/checkpointer.h"
#include "bridge/app/cli.h"
#include "bridge/app/component_options.h"
#include "bridge/app/loop_heartbeat.h"
#include "bridge/app/reload.h"
#include "bridge/app/sink_factory.h"
#include "bridge/common/version.h"
#include "bridge/consul/consul_client.h"
#include "bridge/router/router.h"
#include "bridge/server/http_server.h"
#include "bridge/server/instances_json.h"
#include "bridge/state/state_file.h"
#include "bridge/telemetry/bridge_metrics.h"
#include "bridge/watch/watcher.h"

namespace hb {
namespace {

HttpHandlers Handlers(Watcher& watcher, const LoopHeartbeat& heartbeat,
                      std::chrono::milliseconds stall_timeout, BridgeMetrics& metrics,
                      prometheus::Registry& registry) {
  HttpHandlers handlers;
  handlers.metrics = [&watcher, &heartbeat, stall_timeout, &metrics, &registry] {
    metrics.SetWatchState(watcher.State());
    const auto since = heartbeat.SinceLastTurn();
    metrics.SetWatchLoopLag(since, since > stall_timeout);
    return prometheus::TextSerializer().Serialize(registry.Collect());
  };
  handlers.ready = [&watcher, &heartbeat, stall_timeout](std::string& why) {
    // A stuck loop first: its State() may still say ready from before.
    if (const auto since = heartbeat.SinceLastTurn(); since > stall_timeout) {
      why = "watch loop stuck: it has not turned for " + std::to_string(since.count()) +
            " ms (watch.stall_timeout " + std::to_string(stall_timeout.count()) + " ms)";
      return false;
    }
    const WatchState state = watcher.State();
    if (state.ready) return true;
    if (state.last_error) {
      why = "Consul unreachable: " + state.last_error->message();
    } else if (!state.initial_sync_done) {
      why = "initial sync in progress";
    } else {
      why = "Consul unreachable";
    }
    return false;
  };
  handlers.instances = [&watcher] {
    std::string json;
    watcher.WithEngine(
        [&json](const TransitionEngine& engine) { json = InstancesJson(engine.Instances()); });
    return json;
  };
  return handlers;
}

std::filesystem::path StateFilePath(const StateConfig& state) {
  return std::filesystem::path(state.dir) / "state.json";
}

// The engine, with the state saved by the last run when there is one. An
// unreadable state file is set aside (never silently overwritten) and the
// bridge starts as on a first run.
std::unique_ptr<TransitionEngine> MakeEngine(const BridgeConfig& config, const Clock& clock,
                                             BridgeMetrics& metrics) {
  auto engine = std::make_unique<TransitionEngine>(EngineOptionsFor(config.watch), clock);
  if (config.state.dir.empty()) return engine;
  const std::filesystem::path file = StateFilePath(config.state);
  auto loaded = LoadStateFile(file);
  if (!loaded.ok()) {
    std::filesystem::path aside = file;
    aside += ".corrupt";
    std::error_code ignored;
    std::filesystem::rename(file, aside, ignored);
    spdlog::error(
        "{}; moved to {} and starting without it: changes made while the bridge was "
        "stopped will not be reported",
        loaded.status().message(), aside.string());
    metrics.OnStateDropped();
  } else if (*loaded) {
    spdlog::info(
        "restored the state of {} instances from {}; the first sync reports what "
        "changed meanwhile",
        (*loaded)->instances.size(), file.string());
    engine->Restore(**loaded);
  }
  return engine;
}

// Waits for signals, reloading on SIGHUP; returns SIGTERM or SIGINT.
int ServeUntilStopped(BridgeConfig& running, const ConfigSource& reload, LiveBridge live) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  int received = 0;
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    spdlog::info("SIGHUP: reloading the configuration");
    const LoadResult loaded = reload();
    if (!loaded.ok()) {
      for (const auto& error : loaded.errors) spdlog::error("reload: {}", error);
      spdlog::error("reload: the new configuration is not valid; the running one stays");
      continue;
    }
    running = ApplyReload(running, *loaded.config, live);
    spdlog::info("reload: done");
  }
  return received;
}

}  // namespace

int RunDaemon(const BridgeConfig& config, const SinkRegistry& sinks, prometheus::Registry& registry,
              const ConfigSource& reload) {
  spdlog::info("health-bridge {} ({}) starting", kVersion, kGitRevision);
  if (!config.state.dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(config.state.dir, error);
    if (error) {
      spdlog::error("state.dir {}: {}", config.state.dir, error.message());
      return kExitRuntime;
    }
  }
  SystemClock clock;
  BridgeMetrics metrics(registry, clock);
  const SinkContext context{{config.events.type_prefix, config.events.source}, &clock, &registry};
  Router router(clock, &metrics);
  if (Status added = AddSinks(config, sinks, context, &metrics, router); !added.ok()) {
    spdlog::error("{}", added.message());
    return kExitUsage;
  }

  auto client = ConsulClient::Create(ClientOptionsFor(config.consul), &metrics);
  if (!client.ok()) {
    spdlog::error("{}", client.status().message());
    return kExitUsage;
  }
  Watcher watcher(WatcherOptionsFor(config), **client, MakeEngine(config, clock, metrics), router,
                  clock);
  // Turns a few times per stall_timeout, at most once a second.
  LoopHeartbeat heartbeat((*client)->loop(), clock,
                          std::min<std::chrono::milliseconds>(std::chrono::seconds(1),
                                                              config.watch.stall_timeout / 4));
  heartbeat.Start();
  // Declared after the watcher and the heartbeat, so it stops serving before
  // what its handlers read goes away.
  auto server =
      HttpServer::Start(config.server.listen, Handlers(watcher, heartbeat, config.watch.stall_timeout,
                                                       metrics, registry));
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return kExitRuntime;
  }
  spdlog::info("serving /metrics, /healthz, /readyz and /v1/instances on port {}",
               (*server)->port());
  std::optional<Checkpointer> checkpointer;
  if (!config.state.dir.empty()) {
    checkpointer.emplace(StateFilePath(config.state), config.state.save_interval, watcher, router,
                         metrics);
    checkpointer->Start();
  }
  watcher.Start();
  spdlog::info("watching Consul at {}", config.consul.address);

  BridgeConfig running = config;
  const int received =
      ServeUntilStopped(running, reload, {router, watcher, sinks, context, &metrics});
  spdlog::info("signal {}: stopping (sinks get up to {} ms to deliver)", received,
               running.state.shutdown_timeout.count());
  watcher.Stop();
  heartbeat.Stop();
  if (checkpointer) checkpointer->Stop();
  const std::size_t left = router.Shutdown(running.state.shutdown_timeout);
  if (left > 0) {
    spdlog::warn("{} events were not delivered; {}", left,
                 running.state.dir.empty() ? "see the dead-letter files"
                                           : "they stay in the spools for the next start");
  }
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace hb
