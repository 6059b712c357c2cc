// /v1/status/leader: the leader's address, or "" while the cluster has none.

#include <httplib.h>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {

void ConsulTestServer::ServeStatusRoutes(httplib::Server& server) {
  server.Get("/v1/status/leader", [this](const httplib::Request&, httplib::Response& response) {
    WriterMutexLock lock(&mutex_);
    response.set_content(known_leader_ ? "\"127.0.0.1:8300\"" : "\"\"", "application/json");
  });
}

}  // namespace hb::test_support
