#include "bridge/server/http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <charconv>

namespace hb {
namespace {

// What Prometheus asks for; it also accepts this for plain text format.
constexpr char kPrometheusText[] = "text/plain; version=0.0.4; charset=utf-8";

void Serve(httplib::Server& server, const HttpHandlers& handlers) {
  server.Get("/metrics",
             [metrics = handlers.metrics](const httplib::Request&, httplib::Response& response) {
               response.set_content(metrics(), kPrometheusText);
             });
  // Liveness never depends on Consul (Kubernetes probes): a Consul outage must
  // not get the bridge restarted.
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz",
             [ready = handlers.ready](const httplib::Request&, httplib::Response& response) {
               std::string why;
               if (ready(why)) {
                 response.set_content("ready\n", "text/plain");
               } else {
                 response.status = 503;
                 response.set_content("not ready: " + why + "\n", "text/plain");
               }
             });
  server.Get("/v1/instances", [instances = handlers.instances](const httplib::Request&,
                                                               httplib::Response& response) {
    response.set_content(instances(), "application/json");
  });
  server.set_exception_handler(
      // httplib's handler type takes the exception_ptr by value.
      [](const httplib::Request& request, httplib::Response& response,
         std::exception_ptr error) {  // NOLINT(performance-unnecessary-value-param)
        std::string what = "unknown error";
        try {
          std::rethrow_exception(std::move(error));
        } catch (const std::exception& caught) {
          what = caught.what();
        } catch (...) {
        }
        spdlog::error("http {}: {}", request.path, what);
        response.status = 500;
        response.set_content("internal error\n", "text/plain");
      });
}

}  // namespace

std::optional<std::pair<std::string, int>> ParseListenAddress(const std::string& listen) {
  std::string host;
  std::string_view port_text;
  if (listen.starts_with("[")) {
    const auto close = listen.find("]:");
    if (close == std::string::npos) return std::nullopt;
    host = listen.substr(1, close - 1);
    port_text = std::string_view(listen).substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos || listen.find(':') != colon) return std::nullopt;
    host = listen.substr(0, colon);
    port_text = std::string_view(listen).substr(colon + 1);
  }
  int port = -1;
  const auto [end, error] = std::from_chars(port_text.begin(), port_text.end(), port);
  if (host.empty() || error != std::errc() || end != port_text.end() || port < 0 || port > 65535) {
    return std::nullopt;
  }
  return std::pair{host, port};
}

HttpServer::HttpServer(PassKey, std::unique_ptr<httplib::Server> server, int port)
    : server_(std::move(server)), port_(port) {
  auto ended = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([server = server_.get(), ended] {
    server->listen_after_bind();
    *ended = true;
  });
  // httplib loses a stop() that comes before its loop runs, and the
  // destructor's join() would then hang.
  while (!server_->is_running() && !*ended) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

HttpServer::~HttpServer() {
  server_->stop();
  thread_.join();
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen,
                                                        const HttpHandlers& handlers) {
  const auto address = ParseListenAddress(listen);
  if (!address) {
    return Status::InvalidArgument("server.listen: expected host:port, got \"" + listen + "\"");
  }
  auto server = std::make_unique<httplib::Server>();
  // httplib's default adds SO_REUSEPORT, which would let a second bridge
  // share the port and split the scrapes; a taken port must be an error.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  Serve(*server, handlers);
  const auto& [host, wanted] = *address;
  const int port = wanted == 0 ? server->bind_to_any_port(host)
                               : (server->bind_to_port(host, wanted) ? wanted : -1);
  if (port <= 0) {
    return Status::Unavailable("server.listen " + listen +
                               ": cannot listen there (address in use, or not this host's)");
  }
  return std::make_unique<HttpServer>(PassKey{}, std::move(server), port);
}

}  // namespace hb
