// Consul Enterprise admin partitions and namespaces: GET /v1/partitions
// and GET /v1/namespaces in the shapes Consul documents, and
// /_test/partition, /_test/namespace to add and remove them (and DELETE
// /_test/datacenter to take a datacenter off the WAN) from scripts and the
// demo.

#include <httplib.h>

#include <shared_mutex>
#include <string>
#include <vector>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

// `partition`: the partition a namespace belongs to (Consul Enterprise
// 1.11+ names it), "" for partitions.
json TenancyList(const std::vector<ScopeRegistry::Tenancy>& entries, const char* builtin,
                 const std::string& partition) {
  json out = json::array();
  for (const ScopeRegistry::Tenancy& entry : entries) {
    json one = {{"Name", entry.name},
                {"Description", entry.name == "default" ? builtin : ""},
                {"CreateIndex", entry.create_index},
                {"ModifyIndex", entry.modify_index}};
    if (!partition.empty()) one["Partition"] = partition;
    out.push_back(std::move(one));
  }
  return out;
}

}  // namespace

void ConsulTestServer::ServeTenancyRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;

  // Consul OSS has neither endpoint.
  const auto enterprise_only = [this](Response& response) {
    if (options_.enterprise) return true;
    response.status = 404;
    response.set_content("Invalid URL path: not a recognized HTTP API endpoint", "text/plain");
    return false;
  };
  const auto datacenter_of = [this](const Request& request) {
    const std::string datacenter = request.get_param_value("dc");
    return datacenter.empty() ? options_.datacenter : datacenter;
  };
  const auto partition_of = [](const Request& request) {
    std::string partition = request.get_param_value("partition");
    if (partition.empty()) partition = request.get_header_value("X-Consul-Partition");
    return partition.empty() ? std::string("default") : partition;
  };

  // Not a blocking query in Consul: a client that follows the list polls
  // it.
  server.Get("/v1/partitions",
             [this, enterprise_only, datacenter_of](const Request& request, Response& response) {
               if (!enterprise_only(response)) return;
               json out;
               {
                 ServerReadLock lock(&mutex_);
                 out = TenancyList(registry_.Partitions(datacenter_of(request)),
                                   "Builtin Default Partition", "");
               }
               response.set_content(out.dump(), "application/json");
             });
  // A blocking query in Consul; this server answers at once with the
  // datacenter's index (a client that polls it sees the same).
  server.Get("/v1/namespaces", [this, enterprise_only, datacenter_of, partition_of](
                                   const Request& request, Response& response) {
    if (!enterprise_only(response)) return;
    json out;
    std::uint64_t index = 0;
    {
      ServerReadLock lock(&mutex_);
      const std::string datacenter = datacenter_of(request);
      const std::string partition = partition_of(request);
      out = TenancyList(registry_.Namespaces(datacenter, partition), "Builtin Default Namespace",
                        partition);
      index = registry_.Index(datacenter);
    }
    response.set_header("X-Consul-Index", std::to_string(index));
    response.set_content(out.dump(), "application/json");
  });

  // PUT /_test/partition?name=p[&dc=dc2] adds it; DELETE removes it.
  // PUT /_test/namespace?name=n[&partition=p][&dc=dc2] likewise.
  server.Put("/_test/partition",
             [this](const Request& request, Response& response, const httplib::ContentReader&) {
               if (!AddPartition(request.get_param_value("dc"), request.get_param_value("name"))) {
                 response.status = 400;
                 response.set_content("cannot add partition", "text/plain");
               }
             });
  server.Delete("/_test/partition", [this](const Request& request, Response& response) {
    if (!RemovePartition(request.get_param_value("dc"), request.get_param_value("name"))) {
      response.status = 404;
    }
  });
  server.Put("/_test/namespace", [this](const Request& request, Response& response,
                                        const httplib::ContentReader&) {
    if (!AddNamespace(request.get_param_value("dc"), request.get_param_value("partition"),
                      request.get_param_value("name"))) {
      response.status = 400;
      response.set_content("cannot add namespace", "text/plain");
    }
  });
  server.Delete("/_test/namespace", [this](const Request& request, Response& response) {
    if (!RemoveNamespace(request.get_param_value("dc"), request.get_param_value("partition"),
                         request.get_param_value("name"))) {
      response.status = 404;
    }
  });
  server.Delete("/_test/datacenter", [this](const Request& request, Response& response) {
    if (!RemoveDatacenter(request.get_param_value("name"))) response.status = 404;
  });
}

}  // namespace hb::test_support
