// The local agent's endpoints: /v1/agent/self, service registration, check
// updates (TTL heartbeats) and maintenance mode.

#include <httplib.h>

#include <optional>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {

void ConsulTestServer::ServeAgentRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;
  using nlohmann::json;
  const auto now = [] { return std::chrono::steady_clock::now(); };
  // The agent's services live in its own datacenter (agent endpoints do not
  // read ?dc=), in the namespace and partition the request names
  // (Enterprise: ?ns=, ?partition=, their headers, or the body's
  // Namespace and Partition).
  const auto agent_scope = [this](const Request& request, Response& response,
                                  const json* body) -> std::optional<ConsulScope> {
    auto scope = RequestScope(request, response, /*takes_peer=*/false, /*wildcard_ns=*/false);
    if (!scope) return std::nullopt;
    scope->datacenter = options_.datacenter;
    if (body != nullptr && body->is_object()) {
      const auto text = [body](const char* key) {
        auto it = body->find(key);
        return it != body->end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      if (scope->ns == "default" && !text("Namespace").empty()) scope->ns = text("Namespace");
      if (scope->partition == "default" && !text("Partition").empty()) {
        scope->partition = text("Partition");
      }
    }
    return scope;
  };

  server.Get("/v1/agent/self", [this](const Request&, Response& response) {
    json self = {{"Config",
                  {{"Datacenter", options_.datacenter},
                   {"NodeName", options_.node},
                   {"NodeID", "40e4a748-2192-161a-0510-9bf59fe950b5"},
                   {"Server", true},
                   {"Revision", "4e3f428b"},
                   {"Version", "1.17.0"}}},
                 {"Coord",
                  {{"Vec", json::array({0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0})},
                   {"Error", 1.5},
                   {"Adjustment", 0.0},
                   {"Height", 1e-5}}},
                 {"DebugConfig", json::object()},
                 {"Member",
                  {{"Name", options_.node},
                   {"Addr", options_.host},
                   {"Port", 8301},
                   {"Tags", {{"dc", options_.datacenter}, {"role", "consul"}}},
                   {"Status", 1}}},
                 {"Meta", json::object()}};
    response.set_content(self.dump(), "application/json");
  });

  // Routes that take no body use httplib's ContentReader form: with the
  // plain form httplib waits for a body that `curl -X PUT` never sends
  // (Consul itself accepts such requests).
  server.Put("/v1/agent/service/register",
             [this, now, agent_scope](const Request& request, Response& response) {
               json body;
               if (!ReadJsonBody(request, response, body)) return;
               const auto scope = agent_scope(request, response, &body);
               if (!scope) return;
               std::string error;
               int status = 400;
               {
                 WriterMutexLock lock(&mutex_);
                 if (TestCatalog* catalog = registry_.ForWrite(*scope, error, &status)) {
                   error = catalog->RegisterService(options_.node, body, now());
                 }
               }
               FinishWrite(response, error, status);
             });
  server.Put(R"(/v1/agent/service/deregister/(.+))", [this, agent_scope](
                                                         const Request& request, Response& response,
                                                         const httplib::ContentReader&) {
    const auto scope = agent_scope(request, response, nullptr);
    if (!scope) return;
    bool found = false;
    {
      WriterMutexLock lock(&mutex_);
      if (TestCatalog* catalog = registry_.Find(*scope)) {
        found = catalog->DeregisterService(options_.node, request.matches[1]);
      }
    }
    FinishWrite(response,
                found ? "" : "Unknown service ID \"" + std::string(request.matches[1]) + "\"", 404);
  });
  server.Put(R"(/v1/agent/check/(pass|warn|fail)/(.+))", [this, now, agent_scope](
                                                             const Request& request,
                                                             Response& response,
                                                             const httplib::ContentReader&) {
    const std::string verb = request.matches[1];
    const std::string status = verb == "pass" ? "passing" : verb == "warn" ? "warning" : "critical";
    const auto scope = agent_scope(request, response, nullptr);
    if (!scope) return;
    bool found = false;
    {
      WriterMutexLock lock(&mutex_);
      if (TestCatalog* catalog = registry_.Find(*scope)) {
        found = catalog->UpdateCheck(options_.node, request.matches[2], status,
                                     request.get_param_value("note"), now());
      }
    }
    FinishWrite(response,
                found ? "" : "Unknown check ID \"" + std::string(request.matches[2]) + "\"", 404);
  });
  server.Put(R"(/v1/agent/check/update/(.+))", [this, now, agent_scope](const Request& request,
                                                                        Response& response) {
    json body;
    if (!ReadJsonBody(request, response, body)) return;
    const std::string status = body.value("Status", "");
    if (status != "passing" && status != "warning" && status != "critical") {
      return FinishWrite(response, "Invalid check status: \"" + status + "\"");
    }
    const auto scope = agent_scope(request, response, nullptr);
    if (!scope) return;
    bool found = false;
    {
      WriterMutexLock lock(&mutex_);
      if (TestCatalog* catalog = registry_.Find(*scope)) {
        found = catalog->UpdateCheck(options_.node, request.matches[1], status,
                                     body.value("Output", ""), now());
      }
    }
    FinishWrite(response,
                found ? "" : "Unknown check ID \"" + std::string(request.matches[1]) + "\"", 404);
  });
  server.Put(R"(/v1/agent/service/maintenance/(.+))", [this, now, agent_scope](
                                                          const Request& request,
                                                          Response& response,
                                                          const httplib::ContentReader&) {
    if (!request.has_param("enable")) return FinishWrite(response, "Missing value for enable");
    const auto scope = agent_scope(request, response, nullptr);
    if (!scope) return;
    bool found = false;
    {
      WriterMutexLock lock(&mutex_);
      if (TestCatalog* catalog = registry_.Find(*scope)) {
        found = catalog->SetServiceMaintenance(options_.node, request.matches[1],
                                               request.get_param_value("enable") == "true",
                                               request.get_param_value("reason"), now());
      }
    }
    FinishWrite(response,
                found ? "" : "Unknown service ID \"" + std::string(request.matches[1]) + "\"", 404);
  });
  server.Put("/v1/agent/maintenance", [this, now](const Request& request, Response& response,
                                                  const httplib::ContentReader&) {
    if (!request.has_param("enable")) return FinishWrite(response, "Missing value for enable");
    {
      WriterMutexLock lock(&mutex_);
      catalog_.SetNodeMaintenance(options_.node, request.get_param_value("enable") == "true",
                                  request.get_param_value("reason"), now());
    }
    FinishWrite(response, "");
  });
}

}  // namespace hb::test_support
