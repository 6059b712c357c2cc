// Consul Enterprise admin partitions and namespaces: GET /v1/partitions
// and GET /v1/namespaces in the shapes Consul documents, and
// /_test/partition, /_test/namespace to add and remove (mark for
// deletion) them, /_test/tenancy/finish-deletions to finish the deletions
// (and DELETE /_test/datacenter to take a datacenter off the WAN) from
// scripts and the demo.

#include <httplib.h>

#include <ctime>
#include <shared_mutex>
#include <string>
#include <vector>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

// Consul writes time.Time as RFC 3339 (UTC here).
std::string Rfc3339(std::chrono::system_clock::time_point at) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

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
    // Marked for deletion: still listed, with the time it was marked.
    if (entry.deleted_at) one["DeletedAt"] = Rfc3339(*entry.deleted_at);
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

  // Not a blocking query in Consul ("Blocking queries: No" in its API
  // docs): ?index= is ignored, and the answer carries no X-Consul-Index. A
  // client that follows the list polls it.
  server.Get("/v1/partitions",
             [this, enterprise_only, datacenter_of](const Request& request, Response& response) {
               if (!enterprise_only(response)) return;
               json out;
               {
                 ReaderMutexLock lock(&mutex_);
                 out = TenancyList(registry_.Partitions(datacenter_of(request)),
                                   "Builtin Default Partition", "");
               }
               response.set_content(out.dump(), "application/json");
             });
  // A blocking query in Consul ("Blocking queries: YES"): with ?index= it
  // is held until the partition's namespace list moves past it or ?wait=
  // (capped like every blocking query) elapses, and answers with the
  // list's X-Consul-Index.
  server.Get("/v1/namespaces", [this, enterprise_only, datacenter_of, partition_of](
                                   const Request& request, Response& response) {
    if (!enterprise_only(response)) return;
    const std::string datacenter = datacenter_of(request);
    const std::string partition = partition_of(request);
    // '*' first: every change wakes such keys when their index moved.
    ServeBlocking(
        request, response, "*namespaces@" + datacenter + "/" + partition,
        [this, datacenter, partition] {
          mutex_.AssertReaderHeld();  // ServeBlocking calls it under the lock
          return registry_.NamespacesIndex(datacenter, partition);
        },
        [this, datacenter, partition] {
          mutex_.AssertReaderHeld();
          return Answer{200, TenancyList(registry_.Namespaces(datacenter, partition),
                                         "Builtin Default Namespace", partition)
                                 .dump()};
        },
        /*may_be_malformed=*/false);
  });

  // PUT /_test/tenancy/finish-deletions takes the partitions and
  // namespaces marked for deletion off the lists (Consul does so once
  // their data is gone); answers how many.
  server.Put("/_test/tenancy/finish-deletions",
             [this](const Request&, Response& response, const httplib::ContentReader&) {
               response.set_content(std::to_string(FinishTenancyDeletions()), "text/plain");
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
