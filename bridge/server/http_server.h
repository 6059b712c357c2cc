#pragma once

// The bridge's own HTTP server: /metrics, /healthz, /readyz, /v1/instances,
// /v1/sinks and an index at /. It knows nothing of what it serves: the handlers come
// from the daemon, which wires the watch and the metrics.
//
// The port may face anyone, so the server is built for hostile clients
// (docs/design.md, "Our HTTP port"):
// - Only GET and HEAD; a request body is refused from its head, never read.
// - One thread reads every connection's request head, non-blocking, each
//   within head_timeout and max_head_bytes; a slow or silent client costs a
//   file descriptor, never a thread. Past max_connections the connection
//   that has waited longest for its head is closed to make room.
// - /healthz and /readyz are answered on that thread as soon as their head
//   is read, so no slow handler, scrape or client can starve the probes.
// - /metrics, /v1/instances, /v1/sinks and / run on a few worker threads behind a
//   bounded queue (503 when full) and are written within write_timeout.
// - Optional TLS and basic auth from the web config file (web_config.h);
//   the probes never ask for credentials, everything else does.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bridge/common/status.h"
#include "bridge/server/web_config.h"

namespace hb {

struct HttpServerOptions {
  // "host:port" or "[v6]:port"; port 0 picks one. Default: 0.0.0.0:9464.
  std::string listen = "0.0.0.0:9464";
  // TLS, basic auth and response headers. Default: plain HTTP, no auth.
  WebConfig web;
  // Open connections at once. Default: 256.
  std::size_t max_connections = 256;
  // Time a client has to send its whole request head. Default: 5s.
  std::chrono::milliseconds head_timeout{std::chrono::seconds(5)};
  // Largest request head. Default: 8 KiB.
  std::size_t max_head_bytes = 8192;
  // Time a client has to take a whole response. Default: 30s.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // Threads for /metrics, /v1/instances and /, and requests that may wait
  // for them. Default: 2, 16.
  std::size_t workers = 2;
  std::size_t max_queued = 16;
};

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct HttpHandlers {
  // The Prometheus text exposition.
  std::function<std::string()> metrics;
  // Whether the bridge is ready; when not, `why` says what is missing.
  // When ready, a non-empty `why` is a detail shown after "ready; ".
  std::function<bool(std::string& why)> ready;
  // The JSON document of /v1/instances for the query's filters; empty
  // function: the endpoint is off (404).
  std::function<std::string(const QueryParams& query)> instances;
  // The JSON document of /v1/sinks; empty function: the endpoint is off.
  std::function<std::string()> sinks;
  // The text of "/": what this is and which endpoints it serves.
  std::string index;
};

class HttpServer {
 public:
  // Binds and serves on threads of its own. Fails with the address when it
  // cannot bind, or with the file and reason when TLS cannot be set up.
  static StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                     HttpHandlers handlers);
  // Stops serving, closes every connection and joins the threads.
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  bool tls() const;

  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" or "[v6]:port"; nullopt when malformed.
std::optional<std::pair<std::string, int>> ParseListenAddress(const std::string& listen);

}  // namespace hb
