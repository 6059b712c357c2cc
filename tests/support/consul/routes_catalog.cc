// Catalog endpoints: the blocking services list and the catalog-level
// register/deregister of nodes the test server has no agent for.

#include <httplib.h>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {

void ConsulTestServer::ServeCatalogRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;
  using nlohmann::json;

  server.Get("/v1/catalog/services", [this](const Request& request, Response& response) {
    ServeBlocking(
        request, response, "catalog", [this] { return catalog_.CatalogServicesIndex(); },
        [this] {
          return Answer{200, catalog_.CatalogServices().dump()};
        },
        false);
  });
  server.Put("/v1/catalog/register", [this](const Request& request, Response& response) {
    json body;
    if (!ReadJsonBody(request, response, body)) return;
    std::string error;
    {
      std::lock_guard lock(mutex_);
      error = catalog_.CatalogRegister(body, std::chrono::steady_clock::now());
    }
    if (error.empty()) response.set_content("true", "application/json");
    FinishWrite(response, error);
  });
  server.Put("/v1/catalog/deregister", [this](const Request& request, Response& response) {
    json body;
    if (!ReadJsonBody(request, response, body)) return;
    {
      std::lock_guard lock(mutex_);
      catalog_.CatalogDeregister(body.value("Node", ""), body.value("ServiceID", ""));
    }
    response.set_content("true", "application/json");
    FinishWrite(response, "");
  });
}

}  // namespace hb::test_support
