#pragma once

// What the Consul client is told: the one definition of these options and
// their defaults. The config's `consul` section embeds them (the loader maps
// its YAML keys and the consul CLI's environment variables onto these
// fields), so this header stays free of the client's machinery.

#include <chrono>
#include <cstddef>
#include <string>

namespace hb {

// consul.tls: how requests to Consul use TLS.
struct TlsSettings {
  // CA bundle to verify Consul. Default: "" = the system CAs.
  std::string ca_file;
  // Directory of CA certificates. Default: "".
  std::string ca_path;
  // Client certificate and its key, for Consul's verify_incoming. Default: "".
  std::string cert_file;
  std::string key_file;
  // Name to verify in the server's certificate instead of the URL's host.
  // Default: "" = the URL's host.
  std::string server_name;
  // Skip certificate verification (tests only). Default: false.
  bool insecure_skip_verify = false;
};

struct ConsulClientOptions {
  // http(s)://host:port of the Consul agent (consul.address). Default:
  // http://127.0.0.1:8500.
  std::string address = "http://127.0.0.1:8500";
  // Sent as X-Consul-Token when set. Default: "".
  std::string token;
  // File the token came from (consul.token_file): read again after an HTTP
  // 403 (at most once a second) and by ReloadToken(), so a rotated token
  // takes effect without a restart. Default: "".
  std::string token_file;
  // ?dc= on every query. Default: "" = the agent's datacenter.
  std::string datacenter;
  // ?stale: any server may answer; scales reads, may lag. Default: false.
  bool stale = false;
  // Blocking wait per query (consul.wait_time; Consul caps it at 10m).
  // Default: 5m.
  std::chrono::milliseconds wait{std::chrono::minutes(5)};
  // Added to wait + wait/16 (Consul's jitter) for the client-side timeout of
  // a blocking request that hangs. Default: 5s.
  std::chrono::milliseconds timeout_margin{std::chrono::seconds(5)};
  // Timeout of non-blocking reads (first read, agent/self). Default: 30s.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};  // Default: 5s
  TlsSettings tls;
  // Backoff after a failed request (Consul down, 5xx, 429, 403): doubles
  // from initial to max per failure, ±20% jitter; a longer Retry-After from
  // Consul wins. So once Consul is back, the bridge notices within about
  // backoff_max (consul.retry.initial_backoff, max_backoff). Default: 1s, 10s.
  std::chrono::milliseconds backoff_initial{std::chrono::seconds(1)};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(10)};
  // Answers that come back early with an unchanged index are rate limited
  // by a token bucket (Consul's advice: burst 2) refilled once per this
  // interval, so a broken or flapping Consul is not hammered. Default: 1s.
  std::chrono::milliseconds same_index_interval{std::chrono::seconds(1)};
  // While every request fails, a warning says so once per this interval
  // (the first failure is the caller's to log): an outage is never silent
  // for longer. Default: 30s.
  std::chrono::milliseconds outage_reminder_interval{std::chrono::seconds(30)};
  // Most connections open to Consul at once, whatever the number of
  // services (curl's hard cap; the watch plans its queries to stay inside
  // it). Consul refuses a client IP's connections past
  // limits.http_max_conns_per_client (200 by default) with 429; half of
  // that leaves room for everything else on the same IP (the node's own
  // tools, a sidecar, a second bridge during a rolling update) and for the
  // bridge's short reads. 0: no cap. Default: 100.
  std::size_t max_connections = 100;
  // The largest answer kept, after decompression (consul.max_answer_size);
  // a larger one is an error (outcome "too_large"), backed off like any
  // other, and the last known state stays. /v1/health/state/any, the
  // largest the watch reads, is about 320 bytes per check (32 MB at 100,000
  // instances of one check). The buffer of an answer being read never grows
  // past it, so a bomb costs the bridge at most this much on top of its own
  // memory. Default: 64 MiB.
  std::size_t max_answer_bytes = std::size_t{64} << 20;
};

}  // namespace hb
