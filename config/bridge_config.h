#pragma once

// The typed configuration (README.md "Configuration"). Every field states
// its default; config_loader.h fills them from YAML and the environment.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bridge/consul/consul_client_options.h"
#include "bridge/model/health.h"
#include "bridge/router/dead_letter.h"
#include "bridge/router/route_filter.h"
#include "bridge/router/sink_worker_options.h"
#include "bridge/spool/spool.h"
#include "bridge/state/engine_options.h"
#include "bridge/watch/watcher.h"

// Only the settings' Emit() needs it; yaml-cpp's header is costly to parse
// in every file that sees a config struct.
namespace YAML {
class Emitter;
}  // namespace YAML

namespace hb {

class ConfigReader;

// consul: the client's options (their defaults are the client's), as the
// loader filled them from the file and the consul CLI's environment
// variables: CONSUL_HTTP_ADDR (CONSUL_HTTP_SSL=true makes a bare host:port
// https), CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, CONSUL_CACERT,
// CONSUL_CAPATH, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME
// and CONSUL_HTTP_SSL_VERIFY=false (tls.insecure_skip_verify).
struct ConsulConfig {
  // client.token is the token to send: the token file's content if set
  // (as in Consul's Go api), else `token`. Filled by the loader.
  ConsulClientOptions client;
  // consul.token as written (or CONSUL_HTTP_TOKEN), for check-config.
  // Default: "".
  std::string token;
};

struct WatchConfig {
  // services, sources (config/source_config.h), unreachable_grace; the
  // loader fills datacenter and the backoff of the first request from the
  // consul section.
  WatcherOptions watcher;
  // up_statuses, dampening, initial_events.
  EngineOptions engine;
  // Not ready once the watch loop (the thread that takes Consul's answers)
  // has not turned for this long: it is stuck. Default: 30s.
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(30)};
};

struct EventsConfig {
  // Reverse-DNS prefix of the CloudEvents type. Default: io.healthbridge.
  std::string type_prefix = "io.healthbridge";
  // CloudEvents source. Default: "" = consul://<datacenter>.
  std::string source;
};

// Type-specific settings of one sink, parsed by that sink's own parser.
class SinkSettings {
 public:
  virtual ~SinkSettings() = default;
  // Writes the settings as YAML map entries (the caller opened the map).
  virtual void Emit(YAML::Emitter& out, bool mask_secrets) const = 0;
  // Where the sink delivers, secrets masked (a URL's user info and query),
  // for the start-up log and /v1/sinks. Default: "".
  virtual std::string Target() const { return ""; }
};

struct SinkConfig {
  std::string name;          // required, unique, [a-z0-9_-]
  std::string type;          // required: a type the SinkParsers know
  RouteFilter filter;        // events, services, tags
  SinkWorkerOptions worker;  // queue.capacity and retry
  // Where undeliverable events go, one JSON line each. Default: "" =
  // <state.dir>/<name>.dead.jsonl, or the error log when state.dir is empty.
  std::string dead_letter_file;
  // Size at which the dead-letter file is rotated (<file>.1 .. .3 kept; the
  // oldest beyond is deleted, logged). Default: DeadLetterLimits::max_bytes.
  std::uint64_t dead_letter_max_bytes = DeadLetterLimits{}.max_bytes;
  // spool.max_bytes: bound on this sink's spool in state.dir; past it new
  // events are dead-lettered (and counted). Default: SpoolOptions::max_bytes.
  std::uint64_t spool_max_bytes = SpoolOptions{}.max_bytes;
  std::shared_ptr<const SinkSettings> settings;
};

// Parses the type-specific keys of one sink from its mapping.
using SinkSettingsParser = std::function<std::shared_ptr<const SinkSettings>(ConfigReader&)>;
using SinkParsers = std::map<std::string, SinkSettingsParser, std::less<>>;

struct ServerConfig {
  std::string listen = "0.0.0.0:9464";  // /metrics, /healthz, /readyz. Default: 0.0.0.0:9464
  // A web config file in the Prometheus exporter-toolkit format: TLS and
  // basic auth (bridge/server/web_config.h). Read at start. Default: "".
  std::string web_config_file;
  // Open connections at once; past it the oldest one still sending its
  // request head is closed. Default: 256.
  std::int64_t max_connections = 256;
  // /v1/instances: off by default (instance meta may hold credentials);
  // when on, only the meta keys in instances_meta are shown.
  bool instances = false;
  std::vector<std::string> instances_meta;
  // Without a sink of type metrics, the loader adds one named "metrics" (or
  // "default-metrics" when that name is taken) over every watched service,
  // so /metrics has the instance gauges on any config. Default: true.
  bool default_metrics_sink = true;
};

struct StateConfig {
  std::string dir;  // spool and saved state. Default: "" = memory only
  // How often the engine's state is saved when events were published
  // (spools are fsynced first). Default: 1s.
  std::chrono::milliseconds save_interval{std::chrono::seconds(1)};
  // Grace for sinks to deliver on SIGTERM. Default: 10s.
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(10)};
};

// Cluster mode (docs/cluster-design.md): replicas share the services
// through Consul sessions and locks, each emitted by one replica.
struct ClusterConfig {
  bool enabled = false;  // Default: false (one replica emits everything)
  // KV prefix of this deployment's members and locks. Default: health-bridge
  std::string prefix = "health-bridge";
  // Session TTL, 1s to 24h (Consul refuses less than its session_ttl_min,
  // 10s by default). Default: 15s.
  std::chrono::milliseconds session_ttl{std::chrono::seconds(15)};
  // Consul's lock-delay after a replica's session is lost, 0 to 60s.
  // Default: 15s.
  std::chrono::milliseconds lock_delay{std::chrono::seconds(15)};
  // This replica's member id. Default: "" = the host name.
  std::string member_id;
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error. Default: info
  std::string format = "json";  // json or text. Default: json
};

struct BridgeConfig {
  ConsulConfig consul;
  WatchConfig watch;
  EventsConfig events;
  std::vector<SinkConfig> sinks;
  ServerConfig server;
  StateConfig state;
  LogConfig log;
  ClusterConfig cluster;

  // "<key path>: <variable>" for each value the environment supplied
  // (Consul's variables and ${VAR}s), for check-config. Filled by the loader.
  std::vector<std::string> from_environment;
};

}  // namespace hb
