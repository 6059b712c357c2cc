// /v1/session/*: create, renew, destroy, and the blocking reads info, list
// and node (session_store.h says what they model).

#include <httplib.h>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {
namespace {

// Reads a body a client may or may not send (`curl -X PUT` sends none).
std::string ReadOptionalBody(const httplib::ContentReader& reader) {
  std::string body;
  reader([&body](const char* data, std::size_t length) {
    body.append(data, length);
    return true;
  });
  return body;
}

}  // namespace

void ConsulTestServer::ServeSessionRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;
  using nlohmann::json;

  server.Put("/v1/session/create", [this](const Request&, Response& response,
                                          const httplib::ContentReader& reader) {
    const std::string text = ReadOptionalBody(reader);
    json body = nullptr;
    if (!text.empty()) {
      body = json::parse(text, nullptr, false);
      if (body.is_discarded()) {
        response.status = 400;
        response.set_content("Request decode failed: invalid JSON", "text/plain");
        return;
      }
    }
    SessionStore::CreateResult created;
    {
      WriterMutexLock lock(&mutex_);
      created = sessions_.Create(body, options_.node, catalog_, std::chrono::steady_clock::now());
    }
    if (created.error.empty()) {
      response.set_content(json{{"ID", created.id}}.dump(), "application/json");
    }
    FinishWrite(response, created.error, created.status);
  });
  server.Put(R"(/v1/session/renew/(.*))", [this](const Request& request, Response& response,
                                                 const httplib::ContentReader&) {
    const std::string id = request.matches[1];
    WriterMutexLock lock(&mutex_);
    const TestSession* session = sessions_.Renew(id, std::chrono::steady_clock::now());
    if (session == nullptr) {
      response.status = 404;
      response.set_content("Session id '" + id + "' not found", "text/plain");
      return;
    }
    response.set_content(json::array({sessions_.Json(*session)}).dump(), "application/json");
  });
  server.Put(R"(/v1/session/destroy/(.*))",
             [this](const Request& request, Response& response, const httplib::ContentReader&) {
               const std::string id = request.matches[1];
               {
                 WriterMutexLock lock(&mutex_);
                 InvalidateSessionLocked(id, std::chrono::steady_clock::now());
               }
               // Consul answers true for an unknown session too.
               response.set_content("true", "application/json");
               FinishWrite(response, "");
             });
  // Called by ServeBlocking under the lock, as are the answers below.
  const auto sessions_index = [this] {
    mutex_.AssertReaderHeld();
    return sessions_.Index();
  };
  server.Get(R"(/v1/session/info/(.*))",
             [this, sessions_index](const Request& request, Response& response) {
               const std::string id = request.matches[1];
               ServeBlocking(
                   request, response, "sessions", sessions_index,
                   [this, id] {
                     mutex_.AssertReaderHeld();
                     return Answer{200, sessions_.Info(id).dump()};
                   },
                   false);
             });
  server.Get("/v1/session/list",
             [this, sessions_index](const Request& request, Response& response) {
               ServeBlocking(
                   request, response, "sessions", sessions_index,
                   [this] {
                     mutex_.AssertReaderHeld();
                     return Answer{200, sessions_.List().dump()};
                   },
                   false);
             });
  server.Get(R"(/v1/session/node/(.*))",
             [this, sessions_index](const Request& request, Response& response) {
               const std::string node = request.matches[1];
               ServeBlocking(
                   request, response, "sessions", sessions_index,
                   [this, node] {
                     mutex_.AssertReaderHeld();
                     return Answer{200, sessions_.OnNode(node).dump()};
                   },
                   false);
             });
}

}  // namespace hb::test_support
