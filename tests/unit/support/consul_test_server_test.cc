// The Consul test server is only worth its tests if it behaves like Consul:
// these pin its answers to the shapes of Consul's documented responses
// (tests/fixtures/consul) and to the semantics of docs/consul-semantics.md that
// the bridge relies on, over real HTTP.

#include "tests/support/consul/consul_test_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/support/eventually.h"
#include "tests/support/http/loopback_socket.h"

namespace hb::test_support {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

json Fixture(const std::string& name) {
  std::ifstream in(std::string(HB_SOURCE_DIR) + "/tests/fixtures/consul/" + name);
  return json::parse(in);
}

// Objects whose keys are user data (Meta, a node's TaggedAddresses) compare
// their values only.
bool IsUserMap(const std::string& path) {
  return path.ends_with(".Meta") || path.ends_with("Node.TaggedAddresses");
}

// Consul omits these when empty (omitempty in its structs).
bool MayBeOmitted(const std::string& path) { return path.ends_with("Service.TaggedAddresses"); }

// Every key of `documented` is in `served` with the same JSON type, at every
// depth (arrays compare their first elements): the bridge may read any field
// Consul documents.
void ExpectSameShape(const json& documented, const json& served, const std::string& path = "$") {
  const auto kind = [](const json& value) {
    return value.is_number() ? std::string("number") : std::string(value.type_name());
  };
  if (documented.is_null() || served.is_null()) return;  // Consul sends null for empty lists
  ASSERT_EQ(kind(documented), kind(served)) << path;
  if (documented.is_object() && IsUserMap(path)) {
    if (!documented.empty() && !served.empty()) {
      ExpectSameShape(documented.begin().value(), served.begin().value(), path + ".*");
    }
  } else if (documented.is_object()) {
    for (const auto& [key, value] : documented.items()) {
      if (!served.contains(key) && MayBeOmitted(path + "." + key)) continue;
      ASSERT_TRUE(served.contains(key)) << path << "." << key << " is missing";
      ExpectSameShape(value, served.at(key), path + "." + key);
    }
  } else if (documented.is_array() && !documented.empty() && !served.empty()) {
    ExpectSameShape(documented.front(), served.front(), path + "[0]");
  }
}

// Everything the server sends until it closes the connection (or resets it).
std::string ReadUntilClosed(int fd) {
  std::string received;
  char chunk[4096];
  ssize_t n;
  while ((n = ::recv(fd, chunk, sizeof(chunk), 0)) > 0) received.append(chunk, n);
  return received;
}

// One GET on an open connection; the whole answer.
std::string RoundTrip(int fd, const std::string& path) {
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: consul\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return "";
  }
  std::string received;
  char chunk[4096];
  const auto complete = [&received] {
    const std::size_t end = received.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    const std::size_t length = received.find("Content-Length: ");
    const std::size_t body =
        length == std::string::npos || length > end ? 0 : std::stoul(received.substr(length + 16));
    return received.size() >= end + 4 + body;
  };
  while (!complete()) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    received.append(chunk, n);
  }
  return received;
}

// test_support::Eventually() with this file's deadline.
::testing::AssertionResult WaitUntil(const std::function<bool()>& condition,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return test_support::Eventually(condition, timeout);
}

class ConsulTestServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(ConsulTestServerOptions options) {
    options.reap_interval = milliseconds(50);
    options.min_deregister_critical_after = milliseconds(200);
    server_ = std::make_unique<ConsulTestServer>(options);
    ASSERT_NE(server_->Start(), 0);
    http_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    http_->set_read_timeout(30);
  }

  void Register(const json& body, const httplib::Headers& headers = {}) {
    auto result =
        http_->Put("/v1/agent/service/register", headers, body.dump(), "application/json");
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200) << result->body;
  }

  void Put(const std::string& path, const std::string& body = "") {
    auto result = http_->Put(path, body, "application/json");
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200) << path << ": " << result->body;
  }

  struct Answer {
    int status = 0;
    std::uint64_t index = 0;
    json body;
    std::string text;
  };
  Answer Get(const std::string& path, const httplib::Headers& headers = {}) {
    auto result = http_->Get(path, headers);
    EXPECT_TRUE(result) << path;
    if (!result) return {};
    Answer answer{result->status, 0, json::parse(result->body, nullptr, false), result->body};
    if (result->has_header("X-Consul-Index")) {
      answer.index = std::stoull(result->get_header_value("X-Consul-Index"));
    }
    return answer;
  }

  static json Web(const std::string& id, const std::string& ttl = "10s") {
    return {{"ID", id},
            {"Name", "web"},
            {"Tags", {"v1"}},
            {"Address", "10.0.0.1"},
            {"Port", 8080},
            {"Meta", {{"version", "1"}}},
            {"Check", {{"CheckID", "service:" + id}, {"TTL", ttl}, {"Status", "passing"}}}};
  }

  std::unique_ptr<ConsulTestServer> server_;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(ConsulTestServerTest, HealthServiceHasTheDocumentedShape) {
  Register(Web("web-1"));
  const Answer answer = Get("/v1/health/service/web");
  ASSERT_EQ(answer.status, 200);
  ASSERT_EQ(answer.body.size(), 1u);
  ExpectSameShape(Fixture("health_service.json"), answer.body);
  const json& entry = answer.body[0];
  EXPECT_EQ(entry["Service"]["ID"], "web-1");
  EXPECT_EQ(entry["Node"]["Datacenter"], "dc1");
  // The node's serfHealth comes first, then the service's own checks.
  ASSERT_EQ(entry["Checks"].size(), 2u);
  EXPECT_EQ(entry["Checks"][0]["CheckID"], "serfHealth");
  EXPECT_EQ(entry["Checks"][1]["CheckID"], "service:web-1");
  EXPECT_EQ(entry["Checks"][1]["ServiceID"], "web-1");
  EXPECT_EQ(entry["Checks"][1]["Type"], "ttl");
}

TEST_F(ConsulTestServerTest, CatalogServicesAndAgentSelfHaveTheDocumentedShape) {
  Register(Web("web-1"));
  const Answer services = Get("/v1/catalog/services");
  // Service name → its tags, like the documented answer.
  ASSERT_TRUE(services.body.is_object());
  const json documented = Fixture("catalog_services.json");
  for (const json* body : {&services.body, &documented}) {
    for (const auto& [name, tags] : body->items()) {
      ASSERT_TRUE(tags.is_array()) << name;
      for (const auto& tag : tags) EXPECT_TRUE(tag.is_string()) << name;
    }
  }
  EXPECT_EQ(services.body["web"], json({"v1"}));
  ExpectSameShape(Fixture("agent_self.json"), Get("/v1/agent/self").body);
}

TEST_F(ConsulTestServerTest, UnknownServiceIsAnEmptyListNot404) {
  const Answer answer = Get("/v1/health/service/nope");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, json::array());
  EXPECT_GT(answer.index, 0u);
}

TEST_F(ConsulTestServerTest, BlockingQueryHoldsUntilAChangeThenAnswersWithAHigherIndex) {
  Register(Web("web-1"));
  const std::uint64_t index = Get("/v1/health/service/web").index;
  auto blocked = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(30);
    auto result = client.Get("/v1/health/service/web?index=" + std::to_string(index) + "&wait=20s");
    return std::make_pair(std::stoull(result->get_header_value("X-Consul-Index")),
                          json::parse(result->body));
  });
  EXPECT_EQ(blocked.wait_for(milliseconds(300)), std::future_status::timeout);
  Put("/v1/agent/check/fail/service:web-1?note=boom");
  ASSERT_EQ(blocked.wait_for(milliseconds(10000)), std::future_status::ready);
  const auto [new_index, body] = blocked.get();
  EXPECT_GT(new_index, index);
  EXPECT_EQ(body[0]["Checks"][1]["Status"], "critical");
  EXPECT_EQ(body[0]["Checks"][1]["Output"], "boom");
}

TEST_F(ConsulTestServerTest, BlockingQueryWithoutAChangeAnswersTheSameIndexAfterWait) {
  const Answer first = Get("/v1/catalog/services");
  const Answer again =
      Get("/v1/catalog/services?index=" + std::to_string(first.index) + "&wait=100ms");
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.index, first.index);
}

TEST_F(ConsulTestServerTest, HealthChangesDoNotMoveTheCatalogServicesIndex) {
  Register(Web("web-1"));
  const std::uint64_t catalog_index = Get("/v1/catalog/services").index;
  const std::uint64_t health_index = Get("/v1/health/service/web").index;
  Put("/v1/agent/check/warn/service:web-1");
  EXPECT_EQ(Get("/v1/catalog/services").index, catalog_index);
  EXPECT_GT(Get("/v1/health/service/web").index, health_index);
  Register(Web("web-2"));  // a new instance of a known service: the list is unchanged
  Register(json{{"ID", "db-1"}, {"Name", "db"}});
  EXPECT_GT(Get("/v1/catalog/services").index, catalog_index);
}

TEST_F(ConsulTestServerTest, PassingAndTagFiltersDropInstancesLikeConsul) {
  Register(Web("web-1"));
  json tagged = Web("web-2");
  tagged["Tags"] = {"v2"};
  Register(tagged);
  Put("/v1/agent/check/fail/service:web-1");
  EXPECT_EQ(Get("/v1/health/service/web").body.size(), 2u);
  const Answer passing = Get("/v1/health/service/web?passing");
  ASSERT_EQ(passing.body.size(), 1u);
  EXPECT_EQ(passing.body[0]["Service"]["ID"], "web-2");
  const Answer v1 = Get("/v1/health/service/web?tag=v1");
  ASSERT_EQ(v1.body.size(), 1u);
  EXPECT_EQ(v1.body[0]["Service"]["ID"], "web-1");
}

TEST_F(ConsulTestServerTest, TtlLapseTurnsTheCheckCriticalWithConsulsOutput) {
  Register(Web("web-1", "100ms"));
  json check;
  EXPECT_TRUE(WaitUntil([&] {
    check = Get("/v1/health/service/web").body[0]["Checks"][1];
    return check["Status"] == "critical";
  }));
  EXPECT_EQ(check["Status"], "critical");
  EXPECT_THAT(check["Output"].get<std::string>(), HasSubstr("TTL expired"));
}

TEST_F(ConsulTestServerTest, ReaperDeregistersAServiceCriticalPastItsLimit) {
  json body = Web("web-1");
  body["Check"]["DeregisterCriticalServiceAfter"] = "100ms";  // raised to the 200ms floor
  Register(body);
  Put("/v1/agent/check/fail/service:web-1");
  EXPECT_TRUE(WaitUntil([&] { return Get("/v1/health/service/web").body.empty(); }));
  EXPECT_FALSE(Get("/v1/catalog/services").body.contains("web"));
}

TEST_F(ConsulTestServerTest, MaintenanceAddsACriticalMaintenanceCheck) {
  Register(Web("web-1"));
  Put("/v1/agent/service/maintenance/web-1?enable=true&reason=deploy");
  const json checks = Get("/v1/health/service/web").body[0]["Checks"];
  const auto maintenance = std::find_if(checks.begin(), checks.end(), [](const json& check) {
    return check["CheckID"] == "_service_maintenance:web-1";
  });
  ASSERT_NE(maintenance, checks.end());
  EXPECT_EQ((*maintenance)["Status"], "critical");
  EXPECT_EQ((*maintenance)["Notes"], "deploy");
  Put("/v1/agent/service/maintenance/web-1?enable=false");
  EXPECT_EQ(Get("/v1/health/service/web").body[0]["Checks"].size(), 2u);

  Put("/v1/agent/maintenance?enable=true&reason=kernel");
  const json node_checks = Get("/v1/health/service/web").body[0]["Checks"];
  EXPECT_TRUE(std::any_of(node_checks.begin(), node_checks.end(), [](const json& check) {
    return check["CheckID"] == "_node_maintenance" && check["Status"] == "critical" &&
           check["ServiceID"] == "";
  }));
}

TEST_F(ConsulTestServerTest, IndexResetGoesBackwardsAndWakesBlockedQueries) {
  for (int i = 0; i < 5; ++i) Register(Web("web-" + std::to_string(i)));
  const std::uint64_t index = Get("/v1/health/service/web").index;
  auto blocked = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(30);
    auto result = client.Get("/v1/health/service/web?index=" + std::to_string(index) + "&wait=20s");
    return std::stoull(result->get_header_value("X-Consul-Index"));
  });
  ASSERT_TRUE(WaitUntil([&] { return server_->BlockedQueries() == 1; }));
  server_->ResetIndex(2);
  ASSERT_EQ(blocked.wait_for(milliseconds(10000)), std::future_status::ready);
  EXPECT_LT(blocked.get(), index);
}

TEST_F(ConsulTestServerTest, FaultsAnswerLikeAnUnhealthyCluster) {
  server_->FailNext(1, 500, "No cluster leader", "/v1/health/");
  const Answer failed = Get("/v1/health/service/web");
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.text, "No cluster leader");
  EXPECT_EQ(Get("/v1/health/service/web").status, 200);

  server_->MalformedNext(1);
  EXPECT_TRUE(Get("/v1/health/service/web").body.is_discarded());
  EXPECT_TRUE(Get("/v1/health/service/web").body.is_array());
}

TEST_F(ConsulTestServerTest, StopAndStartServeTheSameDataOnTheSamePort) {
  Register(Web("web-1"));
  const int port = server_->port();
  server_->Stop();
  EXPECT_FALSE(http_->Get("/v1/health/service/web"));
  ASSERT_EQ(server_->Start(), port);
  EXPECT_EQ(Get("/v1/health/service/web").body.size(), 1u);
}

TEST_F(ConsulTestServerTest, ARenamedServiceMovesToItsNewNameWithItsChecks) {
  Register(Web("web-1"));
  json renamed = Web("web-1");
  renamed["Name"] = "api";
  Register(renamed);
  EXPECT_TRUE(Get("/v1/health/service/web").body.empty());
  const Answer api = Get("/v1/health/service/api");
  ASSERT_EQ(api.body.size(), 1u);
  std::vector<std::string> checks;
  for (const auto& check : api.body[0]["Checks"]) checks.push_back(check["CheckID"]);
  EXPECT_THAT(checks, ::testing::ElementsAre("serfHealth", "service:web-1"));
}

TEST_F(ConsulTestServerTest, DeregisteringAServiceRemovesItsChecksOnly) {
  Register(Web("web-1"));
  Register(Web("web-2"));
  Put("/v1/agent/service/deregister/web-1");
  std::vector<std::string> checks;
  for (const auto& check : Get("/v1/health/state/any").body) checks.push_back(check["CheckID"]);
  EXPECT_THAT(checks, ::testing::ElementsAre("serfHealth", "service:web-2"));
  const Answer web = Get("/v1/health/service/web");
  ASSERT_EQ(web.body.size(), 1u);
  EXPECT_EQ(web.body[0]["Checks"].size(), 2u);
}

// The server waits for a keep-alive connection's next request itself
// (keep_alive_server.h): requests sent back to back on one connection are
// all answered, and Stop() closes a connection left idle.
TEST_F(ConsulTestServerTest, CompressesWithGzipOnlyLikeConsul) {
  Register(Web("web-1"));
  httplib::Client client("127.0.0.1", server_->port());
  client.set_decompress(false);  // to see the coding on the wire
  auto everything =
      client.Get("/v1/health/service/web", {{"Accept-Encoding", "br, gzip, deflate"}});
  ASSERT_TRUE(everything);
  EXPECT_EQ(everything->get_header_value("Content-Encoding"), "gzip");
  auto brotli_only = client.Get("/v1/health/service/web", {{"Accept-Encoding", "br"}});
  ASSERT_TRUE(brotli_only);
  EXPECT_FALSE(brotli_only->has_header("Content-Encoding"));
  EXPECT_EQ(json::parse(brotli_only->body)[0]["Service"]["ID"], "web-1");
}

TEST_F(ConsulTestServerTest, KeepAliveConnectionsServeBackToBackRequestsAndCloseOnStop) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  timeval guard{30, 0};  // a broken server fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(server_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const std::string request = "GET /v1/status/leader HTTP/1.1\r\nHost: consul\r\n\r\n";
  const std::string both = request + request;
  ASSERT_EQ(::send(fd, both.data(), both.size(), 0), static_cast<ssize_t>(both.size()));
  std::string received;
  const auto answers = [&received] {
    std::size_t count = 0;
    for (std::size_t at = 0; (at = received.find("\"127.0.0.1:8300\"", at)) != std::string::npos;
         ++at) {
      ++count;
    }
    return count;
  };
  char chunk[4096];
  while (answers() < 2) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    ASSERT_GT(n, 0) << received;
    received.append(chunk, static_cast<std::size_t>(n));
  }
  EXPECT_THAT(received, ::testing::Not(HasSubstr("Connection: close")));

  server_->Stop();
  EXPECT_EQ(::recv(fd, chunk, sizeof(chunk), 0), 0);  // closed by the server, not timed out
  ::close(fd);
}

TEST_F(ConsulTestServerTest, TheConnectionPastConsulsDefaultLimitGets429AndIsClosed) {
  ASSERT_EQ(ConsulTestServerOptions{}.max_conns_per_client, 200u);
  // Idle connections count, as in Consul: the limit is on open TCP
  // connections, not on requests.
  std::vector<int> open;
  for (int i = 0; i < 200; ++i) {
    const int fd = test_support::ConnectLoopback(server_->port());
    ASSERT_GE(fd, 0);
    open.push_back(fd);
  }
  ASSERT_TRUE(WaitUntil([&] { return server_->OpenConnections() == 200; }));
  const int refused = test_support::ConnectLoopback(server_->port());
  ASSERT_GE(refused, 0);  // accepted by the kernel, then answered and closed
  const std::string answer = ReadUntilClosed(refused);
  ::close(refused);
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 429 Too Many Requests\r\n"));
  EXPECT_THAT(answer, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(answer, ::testing::EndsWith(
                          "\r\n\r\nYour IP is issuing too many concurrent connections, please "
                          "rate limit your calls\n"));
  EXPECT_EQ(server_->RefusedConnections(), 1u);
  EXPECT_EQ(server_->PeakConnections(), 200u);

  // Every held connection is still served, many requests each.
  for (int round = 0; round < 3; ++round) {
    EXPECT_THAT(RoundTrip(open[round], "/v1/status/leader"), ::testing::StartsWith("HTTP/1.1 200"));
  }
  // A closed connection frees its slot for the next one.
  ::close(open.back());
  open.pop_back();
  ASSERT_TRUE(WaitUntil([&] { return server_->OpenConnections() == 199; }));
  const int next = test_support::ConnectLoopback(server_->port());
  ASSERT_GE(next, 0);
  EXPECT_THAT(RoundTrip(next, "/v1/status/leader"), ::testing::StartsWith("HTTP/1.1 200"));
  open.push_back(next);
  for (const int fd : open) ::close(fd);
  EXPECT_TRUE(WaitUntil([&] { return server_->OpenConnections() == 0; }));
  EXPECT_EQ(server_->RefusedConnections(), 1u);
}

TEST_F(ConsulTestServerTest, RequestsOnOneKeepAliveConnectionCountOnce) {
  const int fd = test_support::ConnectLoopback(server_->port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 300; ++i) {
    ASSERT_THAT(RoundTrip(fd, "/v1/status/leader"), ::testing::StartsWith("HTTP/1.1 200")) << i;
  }
  EXPECT_EQ(server_->PeakConnections(), 1u);
  EXPECT_EQ(server_->RefusedConnections(), 0u);
  ::close(fd);
}

TEST(ConsulTestServerLimit, TheLimitIsConfigurableAndCanBeTurnedOff) {
  for (const std::size_t limit : {std::size_t{5}, std::size_t{0}}) {
    ConsulTestServerOptions options;
    options.max_conns_per_client = limit;
    ConsulTestServer server(options);
    ASSERT_NE(server.Start(), 0);
    const int wanted = limit == 0 ? 250 : 5;
    std::vector<int> open;
    open.reserve(wanted);
    for (int i = 0; i < wanted; ++i) open.push_back(test_support::ConnectLoopback(server.port()));
    ASSERT_TRUE(
        WaitUntil([&] { return server.OpenConnections() == static_cast<std::size_t>(wanted); }));
    const int extra = test_support::ConnectLoopback(server.port());
    if (limit == 0) {
      EXPECT_THAT(RoundTrip(extra, "/v1/status/leader"), ::testing::StartsWith("HTTP/1.1 200"));
      EXPECT_EQ(server.RefusedConnections(), 0u);
    } else {
      EXPECT_THAT(ReadUntilClosed(extra), ::testing::StartsWith("HTTP/1.1 429"));
      EXPECT_EQ(server.RefusedConnections(), 1u);
    }
    ::close(extra);
    for (const int fd : open) ::close(fd);
  }
}

// ?filter= as Consul (go-bexpr) applies it to /v1/health/state/any: only the
// matching checks, the index of the whole checks table.
TEST_F(ConsulTestServerTest, HealthStateFilterKeepsMatchingChecksAndTheTableIndex) {
  Register(Web("web-1"));
  Register(Web("web-2"));
  const std::string not_passing = "/v1/health/state/any?filter=Status%20!%3D%20%22passing%22";
  const Answer all = Get("/v1/health/state/any");
  Answer filtered = Get(not_passing);
  ASSERT_EQ(filtered.status, 200) << filtered.text;
  EXPECT_TRUE(filtered.body.is_array());
  EXPECT_TRUE(filtered.body.empty());
  EXPECT_EQ(filtered.index, all.index);
  Put("/v1/agent/check/fail/service:web-2?note=down");
  filtered = Get(not_passing);
  ASSERT_EQ(filtered.body.size(), 1u) << filtered.text;
  EXPECT_EQ(filtered.body[0]["CheckID"], "service:web-2");
  EXPECT_EQ(filtered.body[0]["ServiceName"], "web");
  EXPECT_GT(filtered.index, all.index);
  // A passing write moves the index though the filtered answer stays empty.
  Put("/v1/agent/check/pass/service:web-2");
  const Answer healed = Get(not_passing);
  EXPECT_TRUE(healed.body.empty());
  EXPECT_GT(healed.index, filtered.index);
  Put("/v1/agent/check/fail/service:web-1");
  const auto ids = [&](const std::string& filter) {
    const Answer answer = Get("/v1/health/state/any?filter=" + filter);
    EXPECT_EQ(answer.status, 200) << filter << ": " << answer.text;
    std::set<std::string> out;
    for (const auto& check : answer.body) out.insert(check["CheckID"].get<std::string>());
    return out;
  };
  EXPECT_EQ(ids("CheckID%20%3D%3D%20%22service%3Aweb-2%22"),
            std::set<std::string>{"service:web-2"});
  EXPECT_EQ(ids("ServiceName%20%3D%3D%20%22web%22%20and%20not%20Status%20%3D%3D%20%22critical%22"),
            std::set<std::string>{"service:web-2"});
  EXPECT_EQ(ids("(Status%20%3D%3D%20%22critical%22%20or%20CheckID%20%3D%3D%20%22service%3Aweb-2%22)"
                "%20and%20ServiceName%20!%3D%20%22db%22"),
            (std::set<std::string>{"service:web-1", "service:web-2"}));
  // The node's serfHealth has no service: ServiceName is empty.
  EXPECT_THAT(ids("ServiceName%20%3D%3D%20%22%22"), ::testing::Contains("serfHealth"));
}

TEST_F(ConsulTestServerTest, HealthStateFilterRefusesWhatItCannotCompile) {
  Register(Web("web-1"));
  for (const std::string filter :
       {"Status", "Status%20%3D%3D%20passing", "Status%20%3E%20%22a%22", "Nope%20%3D%3D%20%22a%22",
        "Status%20%3D%3D%20%22a", "(Status%20%3D%3D%20%22a%22", "Status%20%3D%3D%20%22a%22%20and",
        "Status%20%3D%3D%20%22a%22%20xor%20Node%20%3D%3D%20%22b%22"}) {
    const Answer answer = Get("/v1/health/state/any?filter=" + filter);
    EXPECT_EQ(answer.status, 400) << filter;
    EXPECT_THAT(answer.text, HasSubstr("Failed to create boolean expression evaluator")) << filter;
  }
  const Answer unknown = Get("/v1/health/state/any?filter=Nope%20%3D%3D%20%22a%22");
  EXPECT_THAT(unknown.text, HasSubstr("Selector \"Nope\" is not valid"));
  // An empty filter is no filter, as in Consul.
  const Answer empty = Get("/v1/health/state/any?filter=");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body.size(), Get("/v1/health/state/any").body.size());
}

TEST_F(ConsulTestServerTest, AHeartbeatThatKeepsTheStatusMovesNoIndex) {
  ASSERT_EQ(ConsulTestServerOptions{}.check_update_interval, std::chrono::minutes(5));
  Register(Web("web-1"));
  const Answer health = Get("/v1/health/service/web");
  const Answer checks = Get("/v1/health/state/any");
  // go-kratos' heartbeat: same status, a new output.
  Put("/v1/agent/check/update/service:web-1", R"({"Status": "passing", "Output": "beat 1"})");
  Put("/v1/agent/check/pass/service:web-1?note=beat%202");
  const Answer after = Get("/v1/health/service/web");
  EXPECT_EQ(after.index, health.index);
  EXPECT_EQ(Get("/v1/health/state/any").index, checks.index);
  EXPECT_EQ(after.body[0]["Checks"][1]["Output"], "");  // not written yet
  // A change of status is written at once, with its output.
  Put("/v1/agent/check/fail/service:web-1?note=down");
  const Answer failed = Get("/v1/health/service/web");
  EXPECT_GT(failed.index, health.index);
  EXPECT_EQ(failed.body[0]["Checks"][1]["Status"], "critical");
  EXPECT_EQ(failed.body[0]["Checks"][1]["Output"], "down");
}

TEST_F(ConsulTestServerTest, ANewOutputOfTheSameStatusIsWrittenAfterTheCheckUpdateInterval) {
  ConsulTestServerOptions options;
  options.check_update_interval = milliseconds(200);
  Start(options);
  Register(Web("web-1"));
  const Answer before = Get("/v1/health/service/web");
  Put("/v1/agent/check/pass/service:web-1?note=still%20fine");
  // Written back once, between interval/2 and 1.5 x interval later.
  const Answer after =
      Get("/v1/health/service/web?index=" + std::to_string(before.index) + "&wait=20s");
  EXPECT_GT(after.index, before.index);
  EXPECT_EQ(after.body[0]["Checks"][1]["Status"], "passing");
  EXPECT_EQ(after.body[0]["Checks"][1]["Output"], "still fine");
}

TEST_F(ConsulTestServerTest, BlockingWaitsAreCappedAtTheMaximumPlusAtMostASixteenthOfJitter) {
  ConsulTestServerOptions options;
  options.max_wait = milliseconds(320);
  Start(options);
  ASSERT_EQ(ConsulTestServerOptions{}.max_wait, std::chrono::minutes(10));
  const Answer first = Get("/v1/catalog/services");
  const auto started = std::chrono::steady_clock::now();
  const Answer held = Get("/v1/catalog/services?index=" + std::to_string(first.index) + "&wait=1h");
  const auto held_for = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(held.index, first.index);
  EXPECT_GE(held_for, milliseconds(320));
  // The cap, not the hour asked for (with room for a loaded machine).
  EXPECT_LT(held_for, milliseconds(320 + 320 / 16 + 5000));
}

TEST_F(ConsulTestServerTest, AnyServiceWriteMovesTheCatalogServicesIndexEvenWithTheSameBody) {
  Register(Web("web-1"));
  const Answer before = Get("/v1/catalog/services");
  json changed = Web("web-1");
  changed["Meta"]["version"] = "2";
  Register(changed);
  const Answer after = Get("/v1/catalog/services");
  EXPECT_GT(after.index, before.index);
  EXPECT_EQ(after.body, before.body);
}

TEST(TestCatalogText, TheChecksAnswerWrittenAsTextIsTheSameDocument) {
  TestCatalog catalog("dc1");
  const auto now = std::chrono::steady_clock::now();
  catalog.EnsureNode("node-a", "10.0.0.1");
  ASSERT_EQ(catalog.RegisterService("node-a",
                                    json{{"ID", "we\"b-1"},
                                         {"Name", "web \\ svc"},
                                         {"Tags", {"v1", "ctl\x01"}},
                                         {"Check", {{"TTL", "10s"}, {"Status", "passing"}}}},
                                    now),
            "");
  ASSERT_EQ(catalog.RegisterService(
                "node-a", json{{"ID", "db-1"}, {"Name", "db"}, {"Check", {{"TTL", "10s"}}}}, now),
            "");
  catalog.SetNodeMaintenance("node-a", true, "new\nline", now);
  for (const std::string state : {"any", "critical", "passing", "warning"}) {
    EXPECT_EQ(json::parse(catalog.HealthStateText(state)), catalog.HealthState(state)) << state;
  }
}

TEST_F(ConsulTestServerTest, DeregisteringAnUnknownServiceIs404) {
  auto result = http_->Put("/v1/agent/service/deregister/nope", "", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_THAT(result->body, HasSubstr("nope"));
}

TEST(ConsulTestServerAcl, MissingAndWrongTokensAreRefusedWithConsulsTexts) {
  ConsulTestServerOptions options;
  options.acl_token = "s3cret";
  ConsulTestServer server(options);
  ASSERT_NE(server.Start(), 0);
  httplib::Client http("127.0.0.1", server.port());
  auto missing = http.Get("/v1/catalog/services");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 403);
  EXPECT_THAT(missing->body, HasSubstr("Permission denied"));
  auto wrong = http.Get("/v1/catalog/services", {{"X-Consul-Token", "nope"}});
  EXPECT_EQ(wrong->status, 403);
  EXPECT_THAT(wrong->body, HasSubstr("ACL not found"));
  EXPECT_EQ(http.Get("/v1/catalog/services", {{"X-Consul-Token", "s3cret"}})->status, 200);
  EXPECT_EQ(http.Get("/v1/catalog/services", {{"Authorization", "Bearer s3cret"}})->status, 200);
}

}  // namespace
}  // namespace hb::test_support
