// The test server's datacenters, peers, namespaces and partitions: the
// scope a request names, what Consul answers for a scope it cannot serve,
// and the C++ methods that write to a scope.

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {
namespace {

// Names of datacenters, peers, namespaces and partitions are DNS labels in
// Consul; anything else (and the separators of the server's watch keys)
// is refused.
bool IsScopeName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

// The value of a query parameter, or else of its header form.
std::string ParamOrHeader(const httplib::Request& request, const char* param, const char* header) {
  const std::string value = request.get_param_value(param);
  return value.empty() ? request.get_header_value(header) : value;
}

}  // namespace

std::optional<std::string> ConsulTestServer::DatacenterErrorLocked(
    const std::string& datacenter) const {
  if (datacenter.empty() || datacenter == options_.datacenter) return std::nullopt;
  // Consul's forwardDC: no route at all to a datacenter it never heard of.
  if (!registry_.HasDatacenter(datacenter)) return std::string("No path to datacenter");
  if (const std::string* error = registry_.CutError(datacenter)) return *error;
  return std::nullopt;
}

std::optional<ConsulTestServer::Refusal> ConsulTestServer::RefuseScopeLocked(
    const httplib::Request& request) const {
  if (!request.path.starts_with("/v1/")) return std::nullopt;
  // Consul OSS parses ?ns= and ?partition= (and their headers) on every
  // endpoint that takes an enterprise meta, and refuses any value.
  const bool takes_enterprise_meta = !request.path.starts_with("/v1/status/") &&
                                     request.path != "/v1/catalog/datacenters" &&
                                     request.path != "/v1/agent/self";
  if (!options_.enterprise && takes_enterprise_meta) {
    if (!request.get_header_value("X-Consul-Namespace").empty()) {
      return Refusal{400,
                     "Invalid header: \"X-Consul-Namespace\" - Namespaces are a Consul "
                     "Enterprise feature"};
    }
    if (!request.get_param_value("ns").empty()) {
      return Refusal{
          400, "Invalid query parameter: \"ns\" - Namespaces are a Consul Enterprise feature"};
    }
    if (!request.get_header_value("X-Consul-Partition").empty()) {
      return Refusal{400,
                     "Invalid header: \"X-Consul-Partition\" - Partitions are a Consul "
                     "Enterprise feature"};
    }
    if (!request.get_param_value("partition").empty()) {
      return Refusal{
          400,
          "Invalid query parameter: \"partition\" - Partitions are a Consul Enterprise feature"};
    }
  }
  const std::string datacenter = request.get_param_value("dc");
  if (auto error = DatacenterErrorLocked(datacenter)) return Refusal{500, *error};
  if (!datacenter.empty() && datacenter != options_.datacenter &&
      (request.path.starts_with("/v1/kv/") || request.path.starts_with("/v1/session/"))) {
    // Other datacenters hold catalogs only; rather than answer with the
    // local datacenter's KV or sessions, say so.
    return Refusal{500, "consul test server: datacenter \"" + datacenter +
                            "\" serves /v1/catalog/ and /v1/health/ only, not " + request.path};
  }
  return std::nullopt;
}

std::optional<ConsulScope> ConsulTestServer::RequestScope(const httplib::Request& request,
                                                          httplib::Response& response,
                                                          bool takes_peer, bool wildcard_ns) const {
  const auto refuse = [&](const std::string& text) -> std::optional<ConsulScope> {
    response.status = 400;
    response.set_content(text, "text/plain");
    return std::nullopt;
  };
  ConsulScope scope;
  scope.datacenter = request.get_param_value("dc");
  if (scope.datacenter.empty()) scope.datacenter = options_.datacenter;
  // Endpoints without a peer parameter ignore it, as Consul ignores query
  // parameters an endpoint does not read.
  if (takes_peer) scope.peer = request.get_param_value("peer");
  // On Consul OSS any value was refused before: only Enterprise gets here
  // with one.
  const std::string ns = ParamOrHeader(request, "ns", "X-Consul-Namespace");
  const std::string partition = ParamOrHeader(request, "partition", "X-Consul-Partition");
  if (!ns.empty()) scope.ns = ns;
  if (!partition.empty()) scope.partition = partition;
  if (!scope.peer.empty() && !IsScopeName(scope.peer)) {
    return refuse("Invalid query parameter: \"peer\": not a peer name: " + scope.peer);
  }
  if (scope.ns == "*") {
    if (!wildcard_ns) {
      return refuse("consul test server: ns=* (every namespace) is not served on " + request.path);
    }
  } else if (!IsScopeName(scope.ns)) {
    return refuse("Invalid query parameter: \"ns\": not a namespace name: " + scope.ns);
  }
  if (!IsScopeName(scope.partition)) {
    return refuse("Invalid query parameter: \"partition\": not a partition name: " +
                  scope.partition);
  }
  return scope;
}

std::string ConsulTestServer::WatchKey(const ConsulScope& scope,
                                       const std::string& endpoint) const {
  return (scope.ns == "*" ? "*" : "") + ScopeRegistry::Key(scope, options_.datacenter) + endpoint;
}

bool ConsulTestServer::AddDatacenter(const std::string& name) {
  if (!IsScopeName(name)) return false;
  WriterMutexLock lock(&mutex_);
  return registry_.AddDatacenter(name);
}

bool ConsulTestServer::CutDatacenter(const std::string& name, bool cut, std::string error) {
  WriterMutexLock lock(&mutex_);
  if (!registry_.SetCut(name, cut ? std::optional<std::string>(std::move(error)) : std::nullopt)) {
    return false;
  }
  // Queries held on it end with the error now.
  WakeAllLocked();
  return true;
}

bool ConsulTestServer::RemoveDatacenter(const std::string& name) {
  {
    WriterMutexLock lock(&mutex_);
    if (!registry_.RemoveDatacenter(name)) return false;
    // Queries held on it end with "No path to datacenter" now.
    WakeAllLocked();
  }
  return true;
}

bool ConsulTestServer::AddPartition(const std::string& datacenter, const std::string& name) {
  if (!options_.enterprise || !IsScopeName(name)) return false;
  WriterMutexLock lock(&mutex_);
  return registry_.AddPartition(datacenter.empty() ? options_.datacenter : datacenter, name);
}

std::size_t ConsulTestServer::FinishTenancyDeletions() {
  WriterMutexLock lock(&mutex_);
  const std::size_t finished = registry_.FinishDeletions();
  // Blocking /v1/namespaces readers see the entries leave.
  WakeChangedLocked();
  return finished;
}

bool ConsulTestServer::RemovePartition(const std::string& datacenter, const std::string& name) {
  bool found;
  {
    WriterMutexLock lock(&mutex_);
    found = registry_.RemovePartition(datacenter.empty() ? options_.datacenter : datacenter, name,
                                      std::chrono::system_clock::now());
  }
  Notify();
  return found;
}

bool ConsulTestServer::AddNamespace(const std::string& datacenter, const std::string& partition,
                                    const std::string& name) {
  if (!options_.enterprise || !IsScopeName(name)) return false;
  WriterMutexLock lock(&mutex_);
  const bool added = registry_.AddNamespace(datacenter.empty() ? options_.datacenter : datacenter,
                                            partition.empty() ? "default" : partition, name);
  // Blocking /v1/namespaces readers see it come.
  if (added) WakeChangedLocked();
  return added;
}

bool ConsulTestServer::RemoveNamespace(const std::string& datacenter, const std::string& partition,
                                       const std::string& name) {
  bool found;
  {
    WriterMutexLock lock(&mutex_);
    found = registry_.RemoveNamespace(datacenter.empty() ? options_.datacenter : datacenter,
                                      partition.empty() ? "default" : partition, name,
                                      std::chrono::system_clock::now());
  }
  Notify();
  return found;
}

bool ConsulTestServer::AddPeer(const std::string& name, const std::string& state,
                               const std::string& partition) {
  if (!IsScopeName(name) || !IsScopeName(partition)) return false;
  WriterMutexLock lock(&mutex_);
  return registry_.AddPeer(name, state, "dc-" + name, partition);
}

bool ConsulTestServer::SetPeerState(const std::string& name, const std::string& state) {
  WriterMutexLock lock(&mutex_);
  return registry_.SetPeerState(name, state);
}

bool ConsulTestServer::DeletePeer(const std::string& name) {
  bool found;
  {
    WriterMutexLock lock(&mutex_);
    found = registry_.DeletePeer(name);
  }
  Notify();
  return found;
}

std::string ConsulTestServer::RegisterService(const ConsulScope& scope,
                                              const nlohmann::json& registration) {
  std::string error;
  {
    WriterMutexLock lock(&mutex_);
    if (TestCatalog* catalog = registry_.ForWrite(scope, error)) {
      error =
          catalog->RegisterService(options_.node, registration, std::chrono::steady_clock::now());
    }
  }
  Notify();
  return error;
}

bool ConsulTestServer::DeregisterService(const ConsulScope& scope, const std::string& service_id) {
  bool found = false;
  {
    WriterMutexLock lock(&mutex_);
    if (TestCatalog* catalog = registry_.Find(scope)) {
      found = catalog->DeregisterService(options_.node, service_id);
    }
  }
  Notify();
  return found;
}

bool ConsulTestServer::UpdateCheck(const ConsulScope& scope, const std::string& check_id,
                                   const std::string& status, const std::string& output) {
  bool found = false;
  {
    WriterMutexLock lock(&mutex_);
    if (TestCatalog* catalog = registry_.Find(scope)) {
      found = catalog->UpdateCheck(options_.node, check_id, status, output,
                                   std::chrono::steady_clock::now());
    }
  }
  Notify();
  return found;
}

std::uint64_t ConsulTestServer::Index(const std::string& datacenter) {
  WriterMutexLock lock(&mutex_);
  return registry_.Index(datacenter);
}

}  // namespace hb::test_support
