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

#include "bridge/model/health.h"
#include "config/source_config.h"

// Only the settings' Emit() needs it; yaml-cpp's header is costly to parse
// in every file that sees a config struct.
namespace YAML {
class Emitter;
}  // namespace YAML

namespace hb {

class ConfigReader;

struct ConsulTlsConfig {
  std::string ca_file;    // CA bundle to verify Consul. Default: system CAs. Env: CONSUL_CACERT
  std::string ca_path;    // Directory of CA certificates. Default: "". Env: CONSUL_CAPATH
  std::string cert_file;  // Client certificate. Default: "". Env: CONSUL_CLIENT_CERT
  std::string key_file;   // Client key. Default: "". Env: CONSUL_CLIENT_KEY
  // Name to verify in Consul's certificate. Default: the address's host.
  // Env: CONSUL_TLS_SERVER_NAME
  std::string server_name;
  // Skip certificate verification (tests only). Default: false.
  // Env: CONSUL_HTTP_SSL_VERIFY=false
  bool insecure_skip_verify = false;
};

struct ConsulConfig {
  // Consul's HTTP API, URL or host:port. Default: http://127.0.0.1:8500.
  // Env: CONSUL_HTTP_ADDR (CONSUL_HTTP_SSL=true makes a bare host:port https).
  std::string address = "http://127.0.0.1:8500";
  // ACL token. Default: "". Env: CONSUL_HTTP_TOKEN.
  std::string token;
  // File holding the ACL token; wins over `token`, as in Consul's Go api.
  // Default: "". Env: CONSUL_HTTP_TOKEN_FILE.
  std::string token_file;
  // Datacenter to watch. Default: "" = the agent's.
  std::string datacenter;
  // Blocking query wait (Consul caps it at 10m). Default: 5m.
  std::chrono::milliseconds wait_time{std::chrono::minutes(5)};
  // Read from any server (?stale): scales reads, may lag. Default: false.
  bool stale = false;
  // Most connections the bridge holds to Consul at once, whatever the
  // number of services. Consul refuses a client IP's connections past
  // limits.http_max_conns_per_client (200 by default) with 429; half of that
  // leaves room for everything else on the same IP (the node's own tools, a
  // sidecar, a second bridge during a rolling update) and for the bridge's
  // short reads. From 3 (the catalog watch, the change detector and one
  // read) to 10000. Default: 100.
  int max_connections = 100;
  // The largest Consul answer kept, after decompression (1 KiB to 4 GiB): a
  // larger one is an error, retried with backoff, and the last known state
  // stays. The largest answer the bridge reads is /v1/health/state/any,
  // about 320 bytes per check in the datacenter. Default: 128 MiB.
  std::uint64_t max_answer_size = std::uint64_t{128} << 20;
  // consul.retry: after a failed request (Consul down, 5xx, 429, 403) the
  // bridge waits initial_backoff, doubling per failure up to max_backoff
  // (±20% jitter; a longer Retry-After from Consul wins). So once Consul is
  // back, the bridge notices within about max_backoff. initial_backoff from
  // 10ms, max_backoff from initial_backoff to 10m. Default: 1s, 10s.
  std::chrono::milliseconds retry_initial_backoff{std::chrono::seconds(1)};
  std::chrono::milliseconds retry_max_backoff{std::chrono::seconds(10)};
  ConsulTlsConfig tls;

  // The token to send: the token file's content if set, else `token`.
  // Filled by the loader.
  std::string effective_token;
};

struct ServiceSelection {
  std::vector<std::string> include{"*"};       // service name globs. Default: all
  std::vector<std::string> exclude{"consul"};  // globs never watched. Default: consul
  std::vector<std::string> tags;               // tags a service must have. Default: none

  bool operator==(const ServiceSelection&) const = default;
};

struct WatchConfig {
  ServiceSelection services;
  // Statuses that count as up. Default: passing, warning.
  std::vector<HealthStatus> up_statuses{HealthStatus::kPassing, HealthStatus::kWarning};
  std::chrono::milliseconds down_after{0};  // dampening.down_after. Default: 0s
  std::chrono::milliseconds up_after{0};    // dampening.up_after. Default: 0s
  // Emit registered/up for everything on the first sync. Default: false.
  bool initial_events = false;
  // Not ready once Consul has been unreachable this long. Default: 30s.
  std::chrono::milliseconds unreachable_grace{std::chrono::seconds(30)};
  // Not ready once the watch loop (the thread that takes Consul's answers)
  // has not turned for this long: it is stuck. Default: 30s.
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(30)};
  // watch.sources (config/source_config.h). Default: empty = one source,
  // consul.datacenter (or the agent's), as before sources existed.
  std::vector<SourceConfig> sources;
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

struct SinkQueueConfig {
  // Events waiting in memory; past it they wait in the spool (state.dir),
  // or are dead-lettered at once without one. Default: 10000.
  std::size_t capacity = 10000;
};

struct SinkRetryConfig {
  std::chrono::milliseconds initial_backoff{std::chrono::seconds(1)};  // Default: 1s
  std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};      // Default: 5m
  int max_attempts = 0;                                                // Default: 0 = unlimited
  std::chrono::milliseconds max_age{std::chrono::hours(24)};           // Default: 24h
};

struct SinkConfig {
  std::string name;                        // required, unique, [a-z0-9_-]
  std::string type;                        // required: kafka, webhook, alertmanager, log, metrics
  std::vector<std::string> events{"*"};    // event type globs. Default: all
  std::vector<std::string> services{"*"};  // service globs. Default: all
  std::vector<std::string> tags;           // required instance tags. Default: none
  SinkQueueConfig queue;
  SinkRetryConfig retry;
  // Where undeliverable events go, one JSON line each. Default: "" =
  // <state.dir>/<name>.dead.jsonl, or the error log when state.dir is empty.
  std::string dead_letter_file;
  // Size at which the dead-letter file is rotated (<file>.1 .. .3 kept; the
  // oldest beyond is deleted, logged). Default: 64MiB.
  std::uint64_t dead_letter_max_bytes = std::uint64_t{64} << 20;
  // spool.max_bytes: bound on this sink's spool in state.dir; past it new
  // events are dead-lettered (and counted). Default: 256MiB.
  std::uint64_t spool_max_bytes = std::uint64_t{256} << 20;
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
