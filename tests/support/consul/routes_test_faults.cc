// Test-only controls under /_test/, for scripts and the demo
// (curl -X PUT ...); the same faults as the C++ methods.

#include <httplib.h>

#include <thread>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {

void ConsulTestServer::ServeTestFaultRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;

  server.Put(
      "/_test/fail", [this](const Request& request, Response&, const httplib::ContentReader&) {
        FailNext(std::atoi(request.get_param_value("count").c_str()),
                 request.has_param("status") ? std::atoi(request.get_param_value("status").c_str())
                                             : 500,
                 request.has_param("body") ? request.get_param_value("body") : "No cluster leader",
                 request.has_param("prefix") ? request.get_param_value("prefix") : "/v1/");
      });
  server.Put(
      "/_test/latency", [this](const Request& request, Response&, const httplib::ContentReader&) {
        SetLatency(std::chrono::milliseconds(std::atoi(request.get_param_value("ms").c_str())));
      });
  server.Put("/_test/malformed",
             [this](const Request& request, Response&, const httplib::ContentReader&) {
               MalformedNext(std::atoi(request.get_param_value("count").c_str()));
             });
  server.Put("/_test/drop",
             [this](const Request& request, Response&, const httplib::ContentReader&) {
               DropNext(std::atoi(request.get_param_value("count").c_str()));
             });
  server.Put("/_test/reset-index",
             [this](const Request& request, Response&, const httplib::ContentReader&) {
               ResetIndex(std::strtoull(request.get_param_value("to").c_str(), nullptr, 10));
             });
  server.Put("/_test/leader",
             [this](const Request& request, Response&, const httplib::ContentReader&) {
               SetKnownLeader(request.get_param_value("known") != "false");
             });
  server.Put("/_test/serf", [this](const Request& request, Response& response,
                                   const httplib::ContentReader&) {
    if (!SetSerfHealth(request.get_param_value("node"), request.get_param_value("status"))) {
      response.status = 404;
    }
  });
  server.Put("/_test/refuse",
             [this](const Request& request, Response&, const httplib::ContentReader&) {
               const auto duration =
                   std::chrono::milliseconds(std::atoi(request.get_param_value("ms").c_str()));
               // Not from this worker thread: Stop() waits for the workers.
               std::thread([this, duration] { RefuseFor(duration); }).detach();
             });
  server.Get("/_test/requests", [this](const Request&, Response& response) {
    response.set_content(nlohmann::json(RequestCounts()).dump(), "application/json");
  });
}

}  // namespace hb::test_support
