#include "bridge/app/daemon.h"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>

#include "bridge/app/cli.h"
#include "bridge/common/version.h"
#include "bridge/consul/consul_client.h"
#include "bridge/router/router.h"
#include "bridge/server/http_server.h"
#include "bridge/server/instances_json.h"
#include "bridge/telemetry/bridge_metrics.h"
#include "bridge/watch/watcher.h"

namespace hb {
namespace {

ConsulClientOptions ClientOptions(const ConsulConfig& consul) {
  ConsulClientOptions options;
  options.address = consul.address;
  options.token = consul.effective_token;
  options.datacenter = consul.datacenter;
  options.stale = consul.stale;
  options.wait = consul.wait_time;
  options.tls = {consul.tls.ca_file,  consul.tls.ca_path,     consul.tls.cert_file,
                 consul.tls.key_file, consul.tls.server_name, consul.tls.insecure_skip_verify};
  return options;
}

std::string DeadLetterPath(const SinkConfig& sink, const StateConfig& state) {
  if (!sink.dead_letter_file.empty()) return sink.dead_letter_file;
  if (state.dir.empty()) return "";
  return (std::filesystem::path(state.dir) / (sink.name + ".dead.jsonl")).string();
}

// Builds every configured sink into the router; false (logged) if one
// cannot be built.
bool AddSinks(const BridgeConfig& config, const SinkRegistry& registry, const SinkContext& context,
              Router& router) {
  for (const SinkConfig& sink : config.sinks) {
    auto created = registry.Create(sink, context);
    if (!created.ok()) {
      spdlog::error("{}", created.status().message());
      return false;
    }
    const CloudEventOptions events = context.events;
    auto dead_letter = DeadLetterFile::Open(
        sink.name, DeadLetterPath(sink, config.state),
        [events](const Event& event) { return SerializeCloudEvent(event, events); });
    if (!dead_letter.ok()) {
      spdlog::error("{}", dead_letter.status().message());
      return false;
    }
    SinkRoute route;
    route.filter = {sink.events, sink.services, sink.tags};
    route.worker.queue_capacity = sink.queue.capacity;
    route.worker.block_timeout = sink.queue.block_timeout;
    route.worker.retry = {sink.retry.initial_backoff, sink.retry.max_backoff,
                          sink.retry.max_attempts, sink.retry.max_age};
    router.AddSink(std::move(route), std::move(created).value(), std::move(dead_letter).value());
    spdlog::info("sink {} ({}) ready", sink.name, sink.type);
  }
  return true;
}

HttpHandlers Handlers(Watcher& watcher, BridgeMetrics& metrics, prometheus::Registry& registry) {
  HttpHandlers handlers;
  handlers.metrics = [&watcher, &metrics, &registry] {
    metrics.SetWatchState(watcher.State());
    return prometheus::TextSerializer().Serialize(registry.Collect());
  };
  handlers.ready = [&watcher](std::string& why) {
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
    std::string json = R"({"instances":[]})";
    watcher.WithEngine(
        [&json](const TransitionEngine& engine) { json = InstancesJson(engine.Instances()); });
    return json;
  };
  return handlers;
}

}  // namespace

int RunDaemon(const BridgeConfig& config, const SinkRegistry& sinks,
              prometheus::Registry& registry) {
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
  if (!AddSinks(config, sinks, context, router)) return kExitUsage;

  auto client = ConsulClient::Create(ClientOptions(config.consul), &metrics);
  if (!client.ok()) {
    spdlog::error("{}", client.status().message());
    return kExitUsage;
  }
  EngineOptions engine;
  engine.up_statuses = config.watch.up_statuses;
  engine.down_after = config.watch.down_after;
  engine.up_after = config.watch.up_after;
  engine.initial_events = config.watch.initial_events;
  WatcherOptions watch;
  watch.services = {config.watch.services.include, config.watch.services.exclude,
                    config.watch.services.tags};
  watch.datacenter = config.consul.datacenter;
  watch.unreachable_grace = config.watch.unreachable_grace;
  Watcher watcher(watch, **client, std::make_unique<TransitionEngine>(engine, clock), router,
                  clock);
  // Declared after the watcher, so it stops serving before the watcher its
  // handlers read goes away.
  auto server = HttpServer::Start(config.server.listen, Handlers(watcher, metrics, registry));
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return kExitRuntime;
  }
  spdlog::info("serving /metrics, /healthz, /readyz and /v1/instances on port {}",
               (*server)->port());
  watcher.Start();
  spdlog::info("watching Consul at {}", config.consul.address);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  int received = 0;
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    spdlog::warn("SIGHUP: configuration reload is not supported by this version; ignored");
  }
  spdlog::info("signal {}: stopping (sinks get up to {} ms to deliver)", received,
               config.state.shutdown_timeout.count());
  watcher.Stop();
  const std::size_t left = router.Shutdown(config.state.shutdown_timeout);
  if (left > 0) spdlog::warn("{} events were not delivered; see the dead-letter files", left);
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace hb
