#pragma once

// The bridge's own HTTP server (docs/design.md): /metrics, /healthz, /readyz and
// /v1/instances on server.listen. It knows nothing of what it serves: the
// handlers come from the daemon, which wires the watch and the metrics.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "bridge/common/status.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace hb {

struct HttpHandlers {
  // The Prometheus text exposition.
  std::function<std::string()> metrics;
  // Whether the bridge is ready; when not, `why` says what is missing.
  std::function<bool(std::string& why)> ready;
  // The JSON document of /v1/instances.
  std::function<std::string()> instances;
};

class HttpServer {
 public:
  // Binds `listen` ("host:port", "[v6]:port"; port 0 picks one) and serves
  // on a thread of its own. Fails with the address when it cannot bind.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen,
                                                     const HttpHandlers& handlers);
  // Stops serving and joins the thread.
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

  // Use Start().
  struct PassKey {
    explicit PassKey() = default;
  };
  HttpServer(PassKey, std::unique_ptr<httplib::Server> server, int port);

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_;
  std::thread thread_;
};

// Splits "host:port" or "[v6]:port"; nullopt when malformed.
std::optional<std::pair<std::string, int>> ParseListenAddress(const std::string& listen);

}  // namespace hb
