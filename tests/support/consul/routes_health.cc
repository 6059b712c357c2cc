// Health reads: /v1/health/service/<name> and /v1/health/state/<state>, both
// blocking queries, in the scope the request names (?dc=, ?peer=, ?ns=,
// ?partition=).

#include <httplib.h>

#include <algorithm>

#include "tests/support/consul/check_filter.h"
#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {

void ConsulTestServer::ServeHealthRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;

  server.Get(R"(/v1/health/service/(.+))", [this](const Request& request, Response& response) {
    const std::string name = request.matches[1];
    const bool passing = request.has_param("passing") &&
                         request.get_param_value("passing") != "false" &&
                         request.get_param_value("passing") != "0";
    std::vector<std::string> tags;
    for (std::size_t i = 0; i < request.get_param_value_count("tag"); ++i) {
      tags.push_back(request.get_param_value("tag", i));
    }
    // One service of one namespace: Consul takes ?peer= here, not ns=*.
    const auto scope = RequestScope(request, response, /*takes_peer=*/true, /*wildcard_ns=*/false);
    if (!scope) return;
    const std::string key = ScopeRegistry::Key(*scope, options_.datacenter);
    ServeBlocking(
        request, response, WatchKey(*scope, "health/" + name),
        [this, key, name] {
          mutex_.AssertReaderHeld();  // ServeBlocking calls it under the lock
          // A scope nothing was written to has no catalog yet: an unknown
          // service there, at the lowest index Consul answers.
          const TestCatalog* catalog = registry_.FindByKey(key);
          return catalog == nullptr ? std::uint64_t{1} : catalog->HealthServiceIndex(name);
        },
        [this, key, name, passing, tags] {
          mutex_.AssertReaderHeld();  // ServeBlocking calls it under the lock
          const TestCatalog* catalog = registry_.FindByKey(key);
          return Answer{200, catalog == nullptr
                                 ? std::string("[]")
                                 : catalog->HealthService(name, passing, tags).dump()};
        },
        true);
  });
  server.Get(R"(/v1/health/state/(any|passing|warning|critical))", [this](const Request& request,
                                                                          Response& response) {
    const std::string state = request.matches[1];
    // Consul compiles the expression before it reads anything, and
    // refuses one it cannot compile.
    std::shared_ptr<const CheckFilter> filter;
    // An empty filter is no filter, as in Consul.
    if (!request.get_param_value("filter").empty()) {
      std::string error;
      filter = CheckFilter::Parse(request.get_param_value("filter"),
                                  TestCatalog::HealthStateSelectors(), error);
      if (!filter) {
        response.status = 400;
        response.set_content(error, "text/plain");
        return;
      }
    }
    // Every check of a namespace, or of all of them with ns=*
    // (Enterprise); no ?peer= on this endpoint.
    const auto scope = RequestScope(request, response, /*takes_peer=*/false, /*wildcard_ns=*/true);
    if (!scope) return;
    ServeBlocking(
        request, response, WatchKey(*scope, "checks"),
        [this, scope = *scope] {
          mutex_.AssertReaderHeld();  // ServeBlocking calls it under the lock
          std::uint64_t index = 1;
          for (const TestCatalog* catalog : registry_.Matching(scope)) {
            index = std::max(index, catalog->ChecksIndex());
          }
          return index;
        },
        [this, scope = *scope, state, filter] {
          mutex_.AssertReaderHeld();  // ServeBlocking calls it under the lock
          const auto catalogs = registry_.Matching(scope);
          if (catalogs.size() == 1) {
            // No copy: this answer is 32 MB at 100,000 instances.
            return Answer{200, catalogs.front()->HealthStateText(state, filter.get())};
          }
          // The catalogs' arrays joined into one.
          std::string joined = "[";
          for (const TestCatalog* catalog : catalogs) {
            const std::string part = catalog->HealthStateText(state, filter.get());
            if (part.size() <= 2) continue;  // "[]"
            if (joined.size() > 1) joined.push_back(',');
            joined.append(part, 1, part.size() - 2);
          }
          joined.push_back(']');
          return Answer{200, std::move(joined)};
        },
        false);
  });
}

}  // namespace hb::test_support
