#include "bridge/app/daemon.h"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>

#include "bridge/app/checkpointer.h"
#include "bridge/app/cli.h"
#include "bridge/app/cluster_runtime.h"
#include "bridge/app/loop_heartbeat.h"
#include "bridge/app/reload.h"
#include "bridge/app/sink_factory.h"
#include "bridge/app/sinks_json.h"
#include "bridge/app/view_seeding.h"
#include "bridge/common/file_io.h"
#include "bridge/common/redact.h"
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

// Where router.Shutdown() put what it could not deliver, in words.
std::string WhereLeftoversWent(const BridgeConfig& config) {
  if (!config.state.dir.empty()) {
    return "they stay in the spools in " + config.state.dir + " for the next start";
  }
  std::string files;
  for (const SinkConfig& sink : config.sinks) {
    if (!sink.dead_letter_file.empty())
      files += (files.empty() ? "" : ", ") + sink.dead_letter_file;
  }
  return files.empty() ? "without state.dir they were dead-lettered to this log (error lines)"
                       : "without state.dir they were dead-lettered to " + files +
                             " (sinks without a dead_letter_file: to this log)";
}

std::string ReadinessReason(const Status& error) {
  switch (error.code()) {
    case StatusCode::kPermissionDenied:
      return "permission denied (HTTP 403): the ACL token (CONSUL_HTTP_TOKEN, "
             "CONSUL_HTTP_TOKEN_FILE, consul.token or consul.token_file) must be valid and "
             "allow service_prefix \"\" { policy = \"read\" } and node_prefix \"\" "
             "{ policy = \"read\" }";
    case StatusCode::kDeadlineExceeded:
      return "requests time out";
    case StatusCode::kNotFound:
      return "HTTP 404: is consul.address (CONSUL_HTTP_ADDR) a Consul agent's HTTP API?";
    case StatusCode::kUnavailable:
      return "Consul answers with errors (HTTP 429 or 5xx) or refuses connections";
    case StatusCode::kInvalidArgument:
      return "Consul's answers are not usable (malformed or unexpected)";
    case StatusCode::kResourceExhausted:
      return "Consul's answers are larger than consul.max_answer_size";
    default:
      return std::string(ToString(error.code()));
  }
}

// "; source dc2 unavailable: <reason>" for each further source that
// cannot be read now (they do not take readiness away), "" when none.
std::string UnavailableSources(const Watcher& watcher) {
  std::string text;
  const std::vector<WatchState> states = watcher.SourceStates();
  // With sources found at run time none stands for the bridge: all are
  // listed.
  for (std::size_t i = watcher.has_primary_source() ? 1 : 0; i < states.size(); ++i) {
    if (!states[i].last_error) continue;
    // Consul's text is a peer's: only its one well-known reason is named.
    const bool no_path =
        states[i].last_error->message().find("No path to datacenter") != std::string::npos;
    text += "; source " + (states[i].source.empty() ? "#" + std::to_string(i) : states[i].source) +
            " unavailable: " +
            (no_path ? std::string("Consul has no path to the datacenter (HTTP 500)")
             // The bridge's own reason (refused, no longer listed).
             : states[i].last_error->code() == StatusCode::kFailedPrecondition
                 ? states[i].last_error->message()
                 : ReadinessReason(*states[i].last_error));
  }
  return text;
}

// The watch's state, ready only once the sinks that hold state have taken
// the engine's view: the first scrape after /readyz turns 200 describes
// every instance.
WatchState ReadyState(Watcher& watcher, const ViewTracker& views) {
  WatchState state = watcher.State();
  state.ready = state.ready && views.Settled(kViewGrace);
  return state;
}

HttpHandlers Handlers(Watcher& watcher, const ViewTracker& views, const LoopHeartbeat& heartbeat,
                      std::chrono::milliseconds stall_timeout, BridgeMetrics& metrics,
                      prometheus::Registry& registry, InstancesEndpoint* instances,
                      const Router& router) {
  HttpHandlers handlers;
  handlers.metrics = [&watcher, &views, &heartbeat, stall_timeout, &metrics, &registry] {
    metrics.SetWatchState(ReadyState(watcher, views));
    metrics.SetSourceStates(watcher.SourceStates());
    metrics.SetSourceChurn(watcher.dropped_sources(), watcher.refused_sources());
    const auto since = heartbeat.SinceLastTurn();
    metrics.SetWatchLoopLag(since, since > stall_timeout);
    return prometheus::TextSerializer().Serialize(registry.Collect());
  };
  handlers.ready = [&watcher, &views, &heartbeat, stall_timeout](std::string& why) {
    // A stuck loop first: its State() may still say ready from before.
    if (const auto since = heartbeat.SinceLastTurn(); since > stall_timeout) {
      why = "watch loop stuck: it has not turned for " + std::to_string(since.count()) +
            " ms (watch.stall_timeout " + std::to_string(stall_timeout.count()) + " ms)";
      return false;
    }
    const WatchState state = watcher.State();
    if (state.ready) {
      if (views.Settled(kViewGrace)) {
        // Ready, and says which further sources cannot be read now.
        if (const std::string unavailable = UnavailableSources(watcher); !unavailable.empty()) {
          why = unavailable.substr(2);
        }
        return true;
      }
      why = "sinks that hold state are taking the current state";
    } else if (state.last_error) {
      // The kind of failure only: Consul's answer body is a peer's text
      // (an HTML page, anything) and belongs in the debug log, not here.
      why =
          "Consul unreachable: " + ReadinessReason(*state.last_error) + UnavailableSources(watcher);
    } else if (!state.initial_sync_done) {
      why = "initial sync in progress";
    } else {
      why = "Consul unreachable";
    }
    return false;
  };
  if (instances != nullptr) {
    handlers.instances = [instances](const QueryParams& query) { return instances->Json(query); };
  }
  handlers.sinks = [&router] { return SinksJson(router.SinkStatuses()); };
  handlers.index =
      std::string("health-bridge ") + kVersion +
      "\n\nendpoints:\n  /metrics        Prometheus metrics\n"
      "  /healthz        liveness\n  /readyz         readiness, with the reason "
      "when not ready\n" +
      (instances != nullptr ? "  /v1/instances   watched instances (?service=, ?status=)\n" : "") +
      "  /v1/sinks       each sink's target, state, last success and error, queue\n" +
      "\ndocs: README.md and docs/ in the source tree\n";
  return handlers;
}

// "http://127.0.0.1:9464": where the server answers, with the host it is
// bound to (0.0.0.0 or :: means every interface).
std::string ServedAt(const std::string& listen, int port, bool tls) {
  std::string host = "0.0.0.0";
  if (auto parsed = ParseListenAddress(listen)) host = parsed->first;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

// The server's options: the web config file is read once, at start.
StatusOr<HttpServerOptions> ServerOptionsFor(const ServerConfig& config) {
  HttpServerOptions options;
  options.listen = config.listen;
  options.max_connections = static_cast<std::size_t>(config.max_connections);
  if (!config.web_config_file.empty()) {
    auto web = LoadWebConfig(config.web_config_file);
    if (!web.ok()) return web.status();
    options.web = std::move(*web);
  }
  return options;
}

std::filesystem::path StateFilePath(const StateConfig& state) {
  return std::filesystem::path(state.dir) / "state.json";
}

// The engine, with the state saved by the last run when there is one. An
// unreadable state file is set aside (never silently overwritten) and the
// bridge starts as on a first run.
std::unique_ptr<TransitionEngine> MakeEngine(const BridgeConfig& config, const Clock& clock,
                                             BridgeMetrics& metrics) {
  auto engine = std::make_unique<TransitionEngine>(config.watch.engine, clock);
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
int ServeUntilStopped(BridgeConfig& running, const ConfigSource& reload, LiveBridge live,
                      BridgeMetrics& metrics, ConsulClient& consul) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  int received = 0;
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    spdlog::info("SIGHUP: reloading the configuration");
    // The token file may have been rotated, whatever the config says.
    consul.ReloadToken();
    const LoadResult loaded = reload();
    metrics.OnConfigReload(loaded.ok());
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
  // Spools, saved state and dead letters hold instance data (meta, check
  // output): whatever creates a file or directory from here on makes it
  // private to the bridge's user (0600, 0700).
  ::umask(077);
  if (!config.state.dir.empty()) {
    if (Status created = CreatePrivateDirectories(config.state.dir); !created.ok()) {
      spdlog::error("state.dir: {}", created.message());
      return kExitRuntime;
    }
  }
  SystemClock clock;
  BridgeMetrics metrics(registry, clock);
  const SinkContext context{{config.events.type_prefix, config.events.source}, &clock, &registry};
  ViewTracker views(&metrics, clock);
  // Cluster mode: what the sinks acknowledge becomes each owned service's
  // handover state.
  std::unique_ptr<HandoverLedger> ledger;
  if (config.cluster.enabled) ledger = std::make_unique<HandoverLedger>(&views);
  Router router(clock, ledger ? static_cast<DeliveryObserver*>(ledger.get()) : &views);
  ViewPublisher publisher(router, views);
  if (Status added = AddSinks(config, sinks, context, &metrics, router); !added.ok()) {
    spdlog::error("{}", added.message());
    return kExitUsage;
  }

  auto client = ConsulClient::Create(config.consul.client, &metrics);
  if (!client.ok()) {
    spdlog::error("{}", client.status().message());
    return kExitUsage;
  }
  // Cluster mode: only the events of services this replica owns go on.
  std::unique_ptr<ClusterRuntime> cluster;
  if (config.cluster.enabled) {
    auto created = ClusterRuntime::Create(config, **client, publisher, *ledger, clock, registry);
    if (!created.ok()) {
      spdlog::error("{}", created.status().message());
      return kExitUsage;
    }
    cluster = std::move(*created);
  }
  Watcher watcher(config.watch.watcher, **client, MakeEngine(config, clock, metrics),
                  cluster ? cluster->gate() : publisher, clock);
  if (cluster) cluster->UseWatch(watcher, (*client)->loop());
  // Turns a few times per stall_timeout, at most once a second.
  LoopHeartbeat heartbeat(
      (*client)->loop(), clock,
      std::min<std::chrono::milliseconds>(std::chrono::seconds(1), config.watch.stall_timeout / 4));
  heartbeat.Start();
  std::optional<InstancesEndpoint> instances;
  if (config.server.instances) {
    // The watch thread publishes what changed; requests read the snapshot.
    instances.emplace(InstancesDocumentOptions{config.server.instances_meta});
    watcher.OnEngineChanged(
        [&instances](const TransitionEngine& engine) { instances->Refresh(engine); });
  }
  auto server_options = ServerOptionsFor(config.server);
  if (!server_options.ok()) {
    spdlog::error("{}", server_options.status().message());
    return kExitUsage;
  }
  // Declared after the watcher and the heartbeat, so it stops serving
  // before what its handlers read goes away.
  HttpHandlers handlers = Handlers(watcher, views, heartbeat, config.watch.stall_timeout, metrics,
                                   registry, instances ? &*instances : nullptr, router);
  if (cluster) {
    handlers.ready = [watch_ready = std::move(handlers.ready), &cluster](std::string& why) {
      if (!watch_ready(why)) return false;
      // Ready: `why` may hold a detail (a source that cannot be read).
      std::string detail = std::move(why);
      why = cluster->NotReadyReason();
      if (!why.empty()) return false;
      why = std::move(detail);
      return true;
    };
  }
  auto server = HttpServer::Start(std::move(*server_options), std::move(handlers));
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return kExitRuntime;
  }
  spdlog::info("serving {} at {} (on port {}; server.listen {})",
               instances ? "/metrics, /healthz, /readyz, /, /v1/sinks and /v1/instances"
                         : "/metrics, /healthz, /readyz, / and /v1/sinks",
               ServedAt(config.server.listen, (*server)->port(), (*server)->tls()),
               (*server)->port(), config.server.listen);
  std::optional<Checkpointer> checkpointer;
  if (!config.state.dir.empty()) {
    checkpointer.emplace(StateFilePath(config.state), config.state.save_interval, watcher, router,
                         metrics);
    checkpointer->Start();
  }
  if (cluster) {
    if (Status started = cluster->Start(); !started.ok()) {
      spdlog::error("cluster: {}", started.message());
      return kExitUsage;
    }
    spdlog::info("cluster mode: member {} under {}", cluster->member_id(), config.cluster.prefix);
  }
  watcher.Start();
  spdlog::info("watching Consul at {}", RedactUrl(config.consul.client.address));

  BridgeConfig running = config;
  const int received = ServeUntilStopped(
      running, reload, {router, watcher, sinks, context, &metrics, views, metrics}, metrics,
      **client);
  spdlog::info("signal {}: stopping (sinks get up to {} ms to deliver)", received,
               running.state.shutdown_timeout.count());
  watcher.Stop();
  heartbeat.Stop();
  if (checkpointer) checkpointer->Stop();
  const std::size_t left = router.Shutdown(running.state.shutdown_timeout);
  if (left > 0) {
    spdlog::warn("{} events were not delivered; {}", left, WhereLeftoversWent(running));
  }
  // After the sinks drained: the successors take the services at once.
  if (cluster) cluster->Leave();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace hb
