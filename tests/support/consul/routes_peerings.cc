// Cluster peerings: GET /v1/peerings and /v1/peering/<name> in the shapes
// Consul documents, and /_test/peer* to create peerings, change their
// state and import services from scripts and the demo.

#include <httplib.h>

#include <optional>
#include <set>
#include <shared_mutex>
#include <string>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

json PeeringJson(const TestPeering& peering, const std::set<std::string>& imported,
                 const std::string& server_address, bool enterprise) {
  json out = {
      {"ID", peering.id},
      {"Name", peering.name},
      {"State", peering.state},
      {"PeerID", peering.peer_id},
      {"PeerServerName", "server." + peering.remote_datacenter + ".consul"},
      {"PeerServerAddresses", json::array({server_address})},
      // Consul 1.14 counted what was imported and exported; 1.15
      // moved the names into StreamStatus. Both are served.
      {"ImportedServiceCount", imported.size()},
      {"ExportedServiceCount", 0},
      {"StreamStatus", {{"ImportedServices", imported}, {"ExportedServices", json::array()}}},
      {"Remote", {{"Partition", "default"}, {"Datacenter", peering.remote_datacenter}}},
      {"CreateIndex", peering.create_index},
      {"ModifyIndex", peering.modify_index}};
  if (enterprise) out["Partition"] = peering.partition;
  return out;
}

}  // namespace

void ConsulTestServer::ServePeeringRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;

  const auto partition_of = [](const Request& request) {
    // Consul OSS refused a partition before the route (see RefuseScopeLocked).
    const std::string partition = request.get_param_value("partition");
    return partition.empty() ? std::string("default") : partition;
  };
  // Neither is a blocking query in Consul.
  server.Get("/v1/peerings", [this, partition_of](const Request& request, Response& response) {
    json out = json::array();
    {
      ReaderMutexLock lock(&mutex_);
      for (const TestPeering* peering : registry_.Peers(partition_of(request))) {
        out.push_back(PeeringJson(*peering, registry_.ImportedServices(peering->name),
                                  options_.host + ":8300", options_.enterprise));
      }
    }
    response.set_content(out.dump(), "application/json");
  });
  server.Get(R"(/v1/peering/([^/]+))",
             [this, partition_of](const Request& request, Response& response) {
               const std::string name = request.matches[1];
               std::optional<json> found;
               {
                 ReaderMutexLock lock(&mutex_);
                 const TestPeering* peering = registry_.FindPeer(name);
                 if (peering != nullptr && peering->partition == partition_of(request)) {
                   found = PeeringJson(*peering, registry_.ImportedServices(name),
                                       options_.host + ":8300", options_.enterprise);
                 }
               }
               if (!found) {
                 response.status = 404;
                 response.set_content("Peering not found for \"" + name + "\"", "text/plain");
                 return;
               }
               response.set_content(found->dump(), "application/json");
             });

  // PUT /_test/peer?name=p&state=ACTIVE creates the peering or changes its
  // state; DELETE /_test/peer?name=p deletes it and what it imported.
  server.Put("/_test/peer", [this](const Request& request, Response& response,
                                   const httplib::ContentReader&) {
    const std::string name = request.get_param_value("name");
    const std::string state =
        request.has_param("state") ? request.get_param_value("state") : "ACTIVE";
    bool known;
    {
      ReaderMutexLock lock(&mutex_);
      known = registry_.FindPeer(name) != nullptr;
    }
    if (!(known ? SetPeerState(name, state) : AddPeer(name, state))) {
      response.status = 400;
      response.set_content("cannot set peering \"" + name + "\" to state \"" + state + "\"",
                           "text/plain");
    }
  });
  server.Delete("/_test/peer", [this](const Request& request, Response& response) {
    if (!DeletePeer(request.get_param_value("name"))) response.status = 404;
  });
  // PUT /_test/peer/register?peer=p (body: an agent service registration)
  // imports a service from the peer; /_test/peer/check?peer=p&id=..&status=..
  // changes one of its checks.
  server.Put("/_test/peer/register", [this](const Request& request, Response& response) {
    json body;
    if (!ReadJsonBody(request, response, body)) return;
    ConsulScope scope;
    scope.peer = request.get_param_value("peer");
    if (request.has_param("ns")) scope.ns = request.get_param_value("ns");
    if (request.has_param("partition")) scope.partition = request.get_param_value("partition");
    const std::string error = RegisterService(scope, body);
    if (!error.empty()) {
      response.status = 400;
      response.set_content(error, "text/plain");
    }
  });
  server.Put("/_test/peer/check",
             [this](const Request& request, Response& response, const httplib::ContentReader&) {
               const std::string status = request.get_param_value("status");
               if (status != "passing" && status != "warning" && status != "critical") {
                 response.status = 400;
                 response.set_content("Invalid check status: \"" + status + "\"", "text/plain");
                 return;
               }
               ConsulScope scope;
               scope.peer = request.get_param_value("peer");
               if (request.has_param("ns")) scope.ns = request.get_param_value("ns");
               if (request.has_param("partition"))
                 scope.partition = request.get_param_value("partition");
               if (!UpdateCheck(scope, request.get_param_value("id"), status,
                                request.get_param_value("output"))) {
                 response.status = 404;
               }
             });
}

}  // namespace hb::test_support
