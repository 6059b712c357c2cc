// Catalog endpoints: the blocking services list and the catalog-level
// register/deregister of nodes the test server has no agent for, in the
// scope the request names (?dc=, ?ns=, ?partition=; ?peer= on the list).

#include <httplib.h>

#include <algorithm>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

// The scope a catalog write names in its body, where Consul also reads it:
// Datacenter, and Namespace/Partition at the top or in the Service. Query
// parameters win over the body.
void ApplyBodyScope(const httplib::Request& request, const json& body, ConsulScope& scope) {
  const auto text = [](const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!request.has_param("dc") && !text(body, "Datacenter").empty()) {
    scope.datacenter = text(body, "Datacenter");
  }
  const json service =
      body.contains("Service") && body["Service"].is_object() ? body["Service"] : json::object();
  for (const json* holder : {&body, &service}) {
    if (!request.has_param("ns") && !text(*holder, "Namespace").empty()) {
      scope.ns = text(*holder, "Namespace");
    }
    if (!request.has_param("partition") && !text(*holder, "Partition").empty()) {
      scope.partition = text(*holder, "Partition");
    }
  }
}

}  // namespace

void ConsulTestServer::ServeCatalogRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;

  server.Get("/v1/catalog/services", [this](const Request& request, Response& response) {
    // ?peer= lists what a peer exports; ns=* every namespace (Enterprise).
    const auto scope = RequestScope(request, response, /*takes_peer=*/true, /*wildcard_ns=*/true);
    if (!scope) return;
    ServeBlocking(
        request, response, WatchKey(*scope, "catalog"),
        [this, scope = *scope] {
          mutex_.AssertReaderHeld();  // ServeBlocking calls it under the lock
          std::uint64_t index = 1;
          for (const TestCatalog* catalog : registry_.Matching(scope)) {
            index = std::max(index, catalog->CatalogServicesIndex());
          }
          return index;
        },
        [this, scope = *scope] {
          mutex_.AssertReaderHeld();
          const auto catalogs = registry_.Matching(scope);
          if (catalogs.size() == 1) return Answer{200, catalogs.front()->CatalogServices().dump()};
          // Across namespaces, one name's tags are merged, as Consul does.
          json merged = json::object();
          for (const TestCatalog* catalog : catalogs) {
            const json services = catalog->CatalogServices();
            for (const auto& [name, tags] : services.items()) {
              json& into = merged[name];
              if (into.is_null()) into = json::array();
              for (const auto& tag : tags) {
                if (std::find(into.begin(), into.end(), tag) == into.end()) into.push_back(tag);
              }
            }
          }
          return Answer{200, merged.dump()};
        },
        false);
  });
  server.Put("/v1/catalog/register", [this](const Request& request, Response& response) {
    json body;
    if (!ReadJsonBody(request, response, body)) return;
    auto scope = RequestScope(request, response, /*takes_peer=*/false, /*wildcard_ns=*/false);
    if (!scope) return;
    ApplyBodyScope(request, body, *scope);
    if (body.is_object() && body.contains("PeerName")) {
      // Only a peering stream writes imported data (Catalog.Register).
      return FinishWrite(response, "cannot register requests with PeerName in them", 500);
    }
    std::string error;
    int status = 400;
    {
      WriterMutexLock lock(&mutex_);
      if (auto refused = DatacenterErrorLocked(scope->datacenter)) {
        error = *refused;
        status = 500;
      } else if (TestCatalog* catalog = registry_.ForWrite(*scope, error, &status)) {
        error = catalog->CatalogRegister(body, std::chrono::steady_clock::now());
      }
    }
    if (error.empty()) response.set_content("true", "application/json");
    FinishWrite(response, error, status);
  });
  server.Put("/v1/catalog/deregister", [this](const Request& request, Response& response) {
    json body;
    if (!ReadJsonBody(request, response, body)) return;
    auto scope = RequestScope(request, response, /*takes_peer=*/false, /*wildcard_ns=*/false);
    if (!scope) return;
    ApplyBodyScope(request, body, *scope);
    if (!body.is_object()) {
      return FinishWrite(response, "Request decode failed: expected a JSON object");
    }
    std::optional<std::string> refused;
    {
      WriterMutexLock lock(&mutex_);
      refused = DatacenterErrorLocked(scope->datacenter);
      TestCatalog* catalog = refused ? nullptr : registry_.Find(*scope);
      if (catalog != nullptr) {
        catalog->CatalogDeregister(body.value("Node", ""), body.value("ServiceID", ""));
      }
    }
    if (refused) return FinishWrite(response, *refused, 500);
    response.set_content("true", "application/json");
    FinishWrite(response, "");
  });
}

}  // namespace hb::test_support
