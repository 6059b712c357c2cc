// Datacenters: GET /v1/catalog/datacenters, and /_test/datacenter to add
// one or cut it off from scripts and the demo.

#include <httplib.h>

#include <shared_mutex>
#include <string>
#include <vector>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {

void ConsulTestServer::ServeDatacenterRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;

  // Not a blocking query in Consul (no index): a client that follows the
  // list polls it. Consul sorts by round-trip time from this agent; here
  // the local datacenter comes first and the others in the order added.
  // A cut-off datacenter stays listed, as Consul keeps a WAN member that
  // failed until it is reaped.
  server.Get("/v1/catalog/datacenters", [this](const Request&, Response& response) {
    std::vector<std::string> names;
    {
      ReaderMutexLock lock(&mutex_);
      names = registry_.Datacenters();
    }
    response.set_content(nlohmann::json(names).dump(), "application/json");
  });

  // PUT /_test/datacenter?name=dc2 adds it; &cut=true (with &error=...,
  // default "No path to datacenter") cuts it off, &cut=false restores it.
  server.Put("/_test/datacenter", [this](const Request& request, Response& response,
                                         const httplib::ContentReader&) {
    const std::string name = request.get_param_value("name");
    bool known;
    {
      ReaderMutexLock lock(&mutex_);
      known = registry_.HasDatacenter(name);
    }
    if (!known && !AddDatacenter(name)) {
      response.status = 400;
      response.set_content("cannot add datacenter \"" + name + "\"", "text/plain");
      return;
    }
    if (!request.has_param("cut")) return;
    const bool cut = request.get_param_value("cut") == "true";
    const std::string error =
        request.has_param("error") ? request.get_param_value("error") : "No path to datacenter";
    if (!CutDatacenter(name, cut, error)) {
      response.status = 400;
      response.set_content("cannot cut off datacenter \"" + name + "\" (the local one?)",
                           "text/plain");
    }
  });
}

}  // namespace hb::test_support
