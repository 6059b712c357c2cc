// Test-only controls under /_test/, for scripts and the demo
// (curl -X PUT ...); the same faults as the C++ methods.

#include <httplib.h>

#include <charconv>
#include <optional>
#include <thread>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {
namespace {

// The query parameter as a whole number; nullopt (the route answers 400)
// when it is missing or is not one.
std::optional<long long> NumberParam(const httplib::Request& request, const char* name) {
  const std::string text = request.get_param_value(name);
  long long value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

}  // namespace

void ConsulTestServer::ServeTestFaultRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;

  server.Put("/_test/fail", [this](const Request& request, Response& response,
                                   const httplib::ContentReader&) {
    const auto count = NumberParam(request, "count");
    const auto status = request.has_param("status") ? NumberParam(request, "status") : 500;
    if (!count || !status) {
      response.status = 400;
      return;
    }
    FailNext(static_cast<int>(*count), static_cast<int>(*status),
             request.has_param("body") ? request.get_param_value("body") : "No cluster leader",
             request.has_param("prefix") ? request.get_param_value("prefix") : "/v1/");
  });
  server.Put("/_test/latency",
             [this](const Request& request, Response& response, const httplib::ContentReader&) {
               const auto ms = NumberParam(request, "ms");
               if (!ms) {
                 response.status = 400;
                 return;
               }
               SetLatency(std::chrono::milliseconds(*ms));
             });
  server.Put("/_test/malformed",
             [this](const Request& request, Response& response, const httplib::ContentReader&) {
               const auto count = NumberParam(request, "count");
               if (!count) {
                 response.status = 400;
                 return;
               }
               MalformedNext(static_cast<int>(*count));
             });
  server.Put("/_test/drop",
             [this](const Request& request, Response& response, const httplib::ContentReader&) {
               const auto count = NumberParam(request, "count");
               if (!count) {
                 response.status = 400;
                 return;
               }
               DropNext(static_cast<int>(*count));
             });
  server.Put("/_test/reset-index",
             [this](const Request& request, Response& response, const httplib::ContentReader&) {
               const auto to = NumberParam(request, "to");
               if (!to || *to < 0) {
                 response.status = 400;
                 return;
               }
               ResetIndex(static_cast<std::uint64_t>(*to));
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
             [this](const Request& request, Response& response, const httplib::ContentReader&) {
               const auto ms = NumberParam(request, "ms");
               if (!ms) {
                 response.status = 400;
                 return;
               }
               const auto duration = std::chrono::milliseconds(*ms);
               // Not from this worker thread: Stop() waits for the workers.
               std::thread([this, duration] { RefuseFor(duration); }).detach();
             });
  server.Get("/_test/requests", [this](const Request&, Response& response) {
    response.set_content(nlohmann::json(RequestCounts()).dump(), "application/json");
  });
}

}  // namespace hb::test_support
