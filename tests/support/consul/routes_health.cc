// Health reads: /v1/health/service/<name> and /v1/health/state/<state>, both
// blocking queries.

#include <httplib.h>

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
    ServeBlocking(
        request, response, "health/" + name,
        [this, name] { return catalog_.HealthServiceIndex(name); },
        [this, name, passing, tags] {
          return Answer{200, catalog_.HealthService(name, passing, tags).dump()};
        },
        true);
  });
  server.Get(R"(/v1/health/state/(any|passing|warning|critical))",
             [this](const Request& request, Response& response) {
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
               ServeBlocking(
                   request, response, "checks", [this] { return catalog_.ChecksIndex(); },
                   [this, state, filter] {
                     return Answer{200, catalog_.HealthStateText(state, filter.get())};
                   },
                   false);
             });
}

}  // namespace hb::test_support
