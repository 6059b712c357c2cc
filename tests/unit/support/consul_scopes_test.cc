// The Consul test server's datacenters, cluster peers, namespaces and
// partitions, pinned to what Consul documents: each datacenter its own
// Raft index, "No path to datacenter" (HTTP 500) for one it cannot reach,
// /v1/peerings and ?peer= answers naming the peer, and ?ns= / ?partition=
// as Consul Enterprise serves them and Consul OSS refuses them.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"

namespace hb::test_support {
namespace {

using nlohmann::json;
using ::testing::UnorderedElementsAre;

struct Answer {
  int status = 0;
  std::uint64_t index = 0;
  json body;
  std::string text;
};

class ConsulScopesTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(ConsulTestServerOptions options) {
    http_.reset();
    server_ = std::make_unique<ConsulTestServer>(std::move(options));
    ASSERT_NE(server_->Start(), 0);
    http_ = MakeClient();
  }

  std::unique_ptr<httplib::Client> MakeClient() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client->set_read_timeout(30);
    return client;
  }

  Answer Get(const std::string& path, const httplib::Headers& headers = {}) const {
    return GetWith(*http_, path, headers);
  }

  static Answer GetWith(httplib::Client& client, const std::string& path,
                        const httplib::Headers& headers = {}) {
    auto result = client.Get(path, headers);
    EXPECT_TRUE(result) << path;
    if (!result) return {};
    Answer answer{result->status, 0, json::parse(result->body, nullptr, false), result->body};
    if (result->has_header("X-Consul-Index")) {
      answer.index = std::stoull(result->get_header_value("X-Consul-Index"));
    }
    return answer;
  }

  static json Web(const std::string& id, const std::string& status = "passing") {
    return {{"ID", id},
            {"Name", "web"},
            {"Port", 8080},
            {"Check", {{"CheckID", "service:" + id}, {"TTL", "10m"}, {"Status", status}}}};
  }

  std::unique_ptr<ConsulTestServer> server_;
  std::unique_ptr<httplib::Client> http_;
};

// The scope of datacenter dc2's default namespace and partition.
ConsulScope Dc2() { return {.datacenter = "dc2"}; }

TEST_F(ConsulScopesTest, DatacentersAreListedLocalFirstAndUnknownOnesHaveNoPath) {
  ASSERT_TRUE(server_->AddDatacenter("dc2"));
  ASSERT_TRUE(server_->AddDatacenter("dc3"));
  EXPECT_FALSE(server_->AddDatacenter("dc2"));
  const Answer listed = Get("/v1/catalog/datacenters");
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body, json({"dc1", "dc2", "dc3"}));
  // The local datacenter by name is the local datacenter.
  EXPECT_EQ(Get("/v1/health/service/web?dc=dc1").status, 200);
  // Consul's forwardDC for a datacenter it has no route to, on every
  // endpoint family (hashicorp/consul#908: 500, text/plain).
  for (const std::string path : {"/v1/health/service/web?dc=dc9", "/v1/catalog/services?dc=dc9",
                                 "/v1/health/state/any?dc=dc9", "/v1/kv/key?dc=dc9"}) {
    const Answer answer = Get(path);
    EXPECT_EQ(answer.status, 500) << path;
    EXPECT_EQ(answer.text, "No path to datacenter") << path;
  }
}

TEST_F(ConsulScopesTest, EachDatacenterAnswersWithItsOwnDataAndItsOwnRaftIndex) {
  ASSERT_TRUE(server_->AddDatacenter("dc2"));
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(server_->RegisterService(Web("local-" + std::to_string(i))), "");
  ASSERT_EQ(server_->RegisterService(Dc2(), Web("remote-1")), "");
  const std::uint64_t dc1_index = server_->Index("dc1");
  const std::uint64_t dc2_index = server_->Index("dc2");
  EXPECT_GT(dc1_index, dc2_index + 10) << "one Raft log per datacenter";
  EXPECT_EQ(server_->Index(), dc1_index);

  const Answer remote = Get("/v1/health/service/web?dc=dc2");
  ASSERT_EQ(remote.status, 200);
  ASSERT_EQ(remote.body.size(), 1u);
  EXPECT_EQ(remote.body[0]["Service"]["ID"], "remote-1");
  EXPECT_EQ(remote.body[0]["Node"]["Datacenter"], "dc2");
  EXPECT_LE(remote.index, dc2_index);
  EXPECT_EQ(Get("/v1/health/service/web").body.size(), 20u);
  EXPECT_EQ(Get("/v1/catalog/services?dc=dc2").body, json({{"web", json::array()}}));

  // Writes to one datacenter move only its index.
  ASSERT_TRUE(server_->UpdateCheck(Dc2(), "service:remote-1", "critical", "down"));
  EXPECT_EQ(server_->Index("dc1"), dc1_index);
  EXPECT_GT(server_->Index("dc2"), dc2_index);
  EXPECT_EQ(Get("/v1/health/service/web?dc=dc2").body[0]["Checks"][1]["Status"], "critical");
}

TEST_F(ConsulScopesTest, AnIndexFromAnotherDatacenterHoldsTheQueryPastItsChanges) {
  // go-kratos passes one datacenter's X-Consul-Index to the next one's
  // blocking query: the server waits for its own index to pass a number
  // from another log, so the change below is not seen until the wait ends.
  ASSERT_TRUE(server_->AddDatacenter("dc2"));
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(server_->RegisterService(Web("local-" + std::to_string(i))), "");
  ASSERT_EQ(server_->RegisterService(Dc2(), Web("remote-1")), "");
  const std::uint64_t foreign = Get("/v1/health/service/web").index;
  auto held = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client,
                   "/v1/health/service/web?dc=dc2&wait=300ms&index=" + std::to_string(foreign));
  });
  ASSERT_TRUE(server_->UpdateCheck(Dc2(), "service:remote-1", "critical", "down"));
  const Answer answer = held.get();
  EXPECT_EQ(answer.status, 200);
  EXPECT_LT(answer.index, foreign) << "dc2's own index, below the foreign one passed";
  EXPECT_EQ(answer.body[0]["Checks"][1]["Status"], "critical");
}

TEST_F(ConsulScopesTest, ACutOffDatacenterAnswersNoPathReleasesHeldQueriesAndComesBack) {
  ASSERT_TRUE(server_->AddDatacenter("dc2"));
  ASSERT_EQ(server_->RegisterService(Dc2(), Web("remote-1")), "");
  const Answer before = Get("/v1/health/service/web?dc=dc2");
  ASSERT_EQ(before.status, 200);

  auto held = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client,
                   "/v1/health/service/web?dc=dc2&wait=5m&index=" + std::to_string(before.index));
  });
  // Held until the cut: then the forwarded query fails.
  ASSERT_TRUE(Eventually([&] { return server_->RequestCounts()["/v1/health/service/web"] >= 2; },
                         std::chrono::seconds(10)));
  ASSERT_TRUE(server_->CutDatacenter("dc2", true));
  ASSERT_EQ(held.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const Answer released = held.get();
  EXPECT_EQ(released.status, 500);
  EXPECT_EQ(released.text, "No path to datacenter");

  for (const std::string path : {"/v1/health/service/web?dc=dc2", "/v1/catalog/services?dc=dc2",
                                 "/v1/health/state/any?dc=dc2"}) {
    const Answer answer = Get(path);
    EXPECT_EQ(answer.status, 500) << path;
    EXPECT_EQ(answer.text, "No path to datacenter") << path;
  }
  // Still a datacenter Consul knows of, and the local one is served.
  EXPECT_EQ(Get("/v1/catalog/datacenters").body, json({"dc1", "dc2"}));
  EXPECT_EQ(Get("/v1/health/service/web").status, 200);
  // Life goes on in dc2 while nobody can see it.
  ASSERT_TRUE(server_->UpdateCheck(Dc2(), "service:remote-1", "critical", "down"));

  ASSERT_TRUE(server_->CutDatacenter("dc2", false));
  const Answer after = Get("/v1/health/service/web?dc=dc2");
  ASSERT_EQ(after.status, 200);
  EXPECT_GT(after.index, before.index);
  EXPECT_EQ(after.body[0]["Checks"][1]["Status"], "critical");

  // Consul's other text, for a datacenter whose servers all failed.
  ASSERT_TRUE(server_->CutDatacenter("dc2", true, "Remote DC has no server currently reachable"));
  EXPECT_EQ(Get("/v1/health/service/web?dc=dc2").text,
            "Remote DC has no server currently reachable");
  EXPECT_FALSE(server_->CutDatacenter("dc1", true)) << "the local datacenter cannot be cut off";
  EXPECT_FALSE(server_->CutDatacenter("dc9", true));
}

TEST_F(ConsulScopesTest, PeeringsAreListedWithTheirStateAndWhatTheyImport) {
  ASSERT_TRUE(server_->AddPeer("cluster-02"));
  ASSERT_TRUE(server_->AddPeer("cluster-03", "PENDING"));
  EXPECT_FALSE(server_->AddPeer("cluster-04", "SLEEPY"));
  ASSERT_EQ(server_->RegisterService(ConsulScope{.peer = "cluster-02"}, Web("imported-1")), "");
  EXPECT_NE(server_->RegisterService(ConsulScope{.peer = "nope"}, Web("x")), "");

  const Answer listed = Get("/v1/peerings");
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(listed.body.size(), 2u);
  const json& peering = listed.body[0];
  // The fields of Consul's documented sample (api-docs/peering).
  for (const char* key : {"ID", "Name", "State", "PeerID", "PeerServerName", "PeerServerAddresses",
                          "CreateIndex", "ModifyIndex", "StreamStatus", "Remote"}) {
    EXPECT_TRUE(peering.contains(key)) << key;
  }
  EXPECT_FALSE(peering.contains("Partition")) << "Consul OSS leaves the partition out";
  EXPECT_EQ(peering["Name"], "cluster-02");
  EXPECT_EQ(peering["State"], "ACTIVE");
  EXPECT_EQ(peering["ImportedServiceCount"], 1);
  EXPECT_EQ(peering["StreamStatus"]["ImportedServices"], json({"web"}));
  EXPECT_EQ(listed.body[1]["State"], "PENDING");

  const std::uint64_t modified = peering["ModifyIndex"];
  ASSERT_TRUE(server_->SetPeerState("cluster-02", "FAILING"));
  const Answer one = Get("/v1/peering/cluster-02");
  EXPECT_EQ(one.body["State"], "FAILING");
  EXPECT_GT(one.body["ModifyIndex"].get<std::uint64_t>(), modified);
  // A failing peering's imported data is still served.
  EXPECT_EQ(Get("/v1/health/service/web?peer=cluster-02").body.size(), 1u);

  const Answer missing = Get("/v1/peering/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.text, "Peering not found for \"nope\"");

  ASSERT_TRUE(server_->DeletePeer("cluster-02"));
  EXPECT_EQ(Get("/v1/peerings").body.size(), 1u);
  EXPECT_EQ(Get("/v1/health/service/web?peer=cluster-02").body, json::array());
}

TEST_F(ConsulScopesTest, PeerQueriesAnswerImportedServicesNamingThePeer) {
  ASSERT_TRUE(server_->AddPeer("cluster-02"));
  const ConsulScope imported{.peer = "cluster-02"};
  ASSERT_EQ(server_->RegisterService(Web("web-1")), "");
  ASSERT_EQ(server_->RegisterService(imported, Web("web-1")), "");

  const Answer local = Get("/v1/health/service/web");
  ASSERT_EQ(local.body.size(), 1u);
  EXPECT_FALSE(local.body[0]["Service"].contains("PeerName"));
  const Answer peered = Get("/v1/health/service/web?peer=cluster-02");
  ASSERT_EQ(peered.status, 200);
  ASSERT_EQ(peered.body.size(), 1u);
  EXPECT_EQ(peered.body[0]["Service"]["PeerName"], "cluster-02");
  EXPECT_EQ(peered.body[0]["Node"]["PeerName"], "cluster-02");
  EXPECT_EQ(peered.body[0]["Checks"][1]["PeerName"], "cluster-02");
  EXPECT_EQ(Get("/v1/catalog/services?peer=cluster-02").body, json({{"web", json::array()}}));
  // An unknown peer imports nothing.
  EXPECT_EQ(Get("/v1/health/service/web?peer=nope").body, json::array());
  EXPECT_EQ(Get("/v1/catalog/services?peer=nope").body, json::object());

  // Imported services share the local datacenter's Raft log, with their
  // own blocking queries: a held ?peer= query wakes on its own change.
  auto held = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client, "/v1/health/service/web?peer=cluster-02&wait=5m&index=" +
                                std::to_string(peered.index));
  });
  ASSERT_TRUE(Eventually([&] { return server_->RequestCounts()["/v1/health/service/web"] >= 4; },
                         std::chrono::seconds(10)));
  ASSERT_TRUE(server_->UpdateCheck(imported, "service:web-1", "critical", "down"));
  ASSERT_EQ(held.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const Answer woken = held.get();
  EXPECT_GT(woken.index, peered.index);
  EXPECT_EQ(woken.body[0]["Checks"][1]["Status"], "critical");
  // The local service did not change.
  EXPECT_EQ(Get("/v1/health/service/web").body[0]["Checks"][1]["Status"], "passing");
}

TEST_F(ConsulScopesTest, ConsulOssRefusesNamespacesAndPartitionsWithItsOwnTexts) {
  const Answer ns = Get("/v1/health/service/web?ns=team-a");
  EXPECT_EQ(ns.status, 400);
  EXPECT_EQ(ns.text,
            "Invalid query parameter: \"ns\" - Namespaces are a Consul Enterprise feature");
  const Answer partition = Get("/v1/catalog/services?partition=p2");
  EXPECT_EQ(partition.status, 400);
  EXPECT_EQ(partition.text,
            "Invalid query parameter: \"partition\" - Partitions are a Consul Enterprise feature");
  const Answer header = Get("/v1/health/state/any", {{"X-Consul-Namespace", "team-a"}});
  EXPECT_EQ(header.status, 400);
  EXPECT_EQ(header.text,
            "Invalid header: \"X-Consul-Namespace\" - Namespaces are a Consul Enterprise feature");
  EXPECT_EQ(Get("/v1/peerings?partition=default").status, 400);
  EXPECT_NE(server_->RegisterService(ConsulScope{.ns = "team-a"}, Web("web-1")), "");
  // Endpoints without an enterprise meta do not look.
  EXPECT_EQ(Get("/v1/status/leader?ns=team-a").status, 200);
}

TEST_F(ConsulScopesTest, EnterpriseNamespacesAndPartitionsFilterAndNameThemselves) {
  ConsulTestServerOptions options;
  options.enterprise = true;
  Start(options);
  const ConsulScope team_a{.ns = "team-a"};
  const ConsulScope other_partition{.partition = "p2"};
  ASSERT_TRUE(server_->AddNamespace("", "", "team-a"));
  ASSERT_TRUE(server_->AddPartition("", "p2"));
  ASSERT_EQ(server_->RegisterService(Web("web-default")), "");
  ASSERT_EQ(server_->RegisterService(team_a, Web("web-a")), "");
  ASSERT_EQ(server_->RegisterService(other_partition, Web("web-p2")), "");

  const Answer in_team_a = Get("/v1/health/service/web?ns=team-a");
  ASSERT_EQ(in_team_a.status, 200);
  ASSERT_EQ(in_team_a.body.size(), 1u);
  EXPECT_EQ(in_team_a.body[0]["Service"]["ID"], "web-a");
  EXPECT_EQ(in_team_a.body[0]["Service"]["Namespace"], "team-a");
  EXPECT_EQ(in_team_a.body[0]["Service"]["Partition"], "default");
  EXPECT_EQ(in_team_a.body[0]["Node"]["Partition"], "default");
  // The node's serfHealth is in the default namespace; the service's
  // check in the service's.
  EXPECT_EQ(in_team_a.body[0]["Checks"][0]["CheckID"], "serfHealth");
  EXPECT_EQ(in_team_a.body[0]["Checks"][0]["Namespace"], "default");
  EXPECT_EQ(in_team_a.body[0]["Checks"][1]["Namespace"], "team-a");
  // The header form selects the same.
  EXPECT_EQ(Get("/v1/health/service/web", {{"X-Consul-Namespace", "team-a"}}).body, in_team_a.body);

  const Answer in_default = Get("/v1/health/service/web");
  ASSERT_EQ(in_default.body.size(), 1u);
  EXPECT_EQ(in_default.body[0]["Service"]["ID"], "web-default");
  EXPECT_EQ(in_default.body[0]["Service"]["Namespace"], "default");

  const Answer in_p2 = Get("/v1/health/service/web?partition=p2");
  ASSERT_EQ(in_p2.body.size(), 1u);
  EXPECT_EQ(in_p2.body[0]["Service"]["ID"], "web-p2");
  EXPECT_EQ(in_p2.body[0]["Service"]["Partition"], "p2");
  EXPECT_EQ(in_p2.body[0]["Node"]["Partition"], "p2");

  // ns=* on the checks list: every namespace of the default partition.
  const Answer every = Get("/v1/health/state/any?ns=*");
  ASSERT_EQ(every.status, 200);
  std::set<std::string> service_ids;
  for (const json& check : every.body) {
    if (!check["ServiceID"].get<std::string>().empty()) service_ids.insert(check["ServiceID"]);
  }
  EXPECT_THAT(service_ids, UnorderedElementsAre("web-default", "web-a"));
  EXPECT_EQ(Get("/v1/catalog/services?ns=*").body, json({{"web", json::array()}}));
  // Not on one service's health.
  EXPECT_EQ(Get("/v1/health/service/web?ns=*").status, 400);
  EXPECT_EQ(Get("/v1/health/service/web?ns=bad/name").status, 400);
  // A namespace nothing was written to is empty, not an error.
  EXPECT_EQ(Get("/v1/health/service/web?ns=team-b").body, json::array());
}

TEST_F(ConsulScopesTest, TheAgentRegistersAndUpdatesServicesInTheNamespaceItIsGiven) {
  // OSS first: a namespace in the body is not quietly dropped.
  auto refused =
      http_->Put("/v1/agent/service/register",
                 json{{"Name", "web"}, {"Namespace", "team-a"}}.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);

  ConsulTestServerOptions options;
  options.enterprise = true;
  Start(options);
  ASSERT_TRUE(server_->AddNamespace("", "", "team-a"));
  json body = Web("web-a", "critical");
  body["Namespace"] = "team-a";
  auto registered = http_->Put("/v1/agent/service/register", body.dump(), "application/json");
  ASSERT_EQ(registered->status, 200) << registered->body;
  EXPECT_EQ(Get("/v1/health/service/web").body, json::array());
  // The check is found in the namespace the request names, not elsewhere.
  EXPECT_EQ(http_->Put("/v1/agent/check/pass/service:web-a", "", "text/plain")->status, 404);
  ASSERT_EQ(http_->Put("/v1/agent/check/pass/service:web-a?ns=team-a", "", "text/plain")->status,
            200);
  const Answer in_team_a = Get("/v1/health/service/web?ns=team-a");
  ASSERT_EQ(in_team_a.body.size(), 1u);
  EXPECT_EQ(in_team_a.body[0]["Checks"][1]["Status"], "passing");
  // Agent endpoints serve the agent's own datacenter whatever ?dc= says.
  ASSERT_TRUE(server_->AddDatacenter("dc2"));
  ASSERT_EQ(
      http_->Put("/v1/agent/service/deregister/web-a?ns=team-a&dc=dc2", "", "text/plain")->status,
      200);
  EXPECT_EQ(Get("/v1/health/service/web?ns=team-a").body, json::array());
}

TEST_F(ConsulScopesTest, BlockingQueriesOfOneNamespaceIgnoreWritesToAnother) {
  ConsulTestServerOptions options;
  options.enterprise = true;
  Start(options);
  const ConsulScope team_a{.ns = "team-a"};
  ASSERT_TRUE(server_->AddNamespace("", "", "team-a"));
  ASSERT_EQ(server_->RegisterService(team_a, Web("web-a")), "");
  ASSERT_EQ(server_->RegisterService(Web("web-default")), "");
  const Answer first = Get("/v1/health/service/web?ns=team-a");
  auto held = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client, "/v1/health/service/web?ns=team-a&wait=300ms&index=" +
                                std::to_string(first.index));
  });
  ASSERT_TRUE(server_->UpdateCheck("service:web-default", "critical", "down"));
  const Answer unchanged = held.get();
  EXPECT_EQ(unchanged.index, first.index) << "woken only by its own namespace, at the wait's end";

  auto woken = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client,
                   "/v1/health/service/web?ns=team-a&wait=5m&index=" + std::to_string(first.index));
  });
  ASSERT_TRUE(Eventually([&] { return server_->RequestCounts()["/v1/health/service/web"] >= 3; },
                         std::chrono::seconds(10)));
  ASSERT_TRUE(server_->UpdateCheck(team_a, "service:web-a", "critical", "down"));
  ASSERT_EQ(woken.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_GT(woken.get().index, first.index);
}

// Consul Enterprise refuses a write into a namespace or partition that does
// not exist (the servers' RPC error, hashicorp/consul#8123: `Namespace
// "luke" does not exist`, which the HTTP API answers as a 500 with that
// text); only creating one makes it.
TEST_F(ConsulScopesTest, WritesToANamespaceOrPartitionThatDoesNotExistAreRefused) {
  ConsulTestServerOptions options;
  options.enterprise = true;
  Start(options);
  const std::string node =
      R"({"Node": "node-b", "Address": "10.0.0.2", "Service": {"Service": "web"}})";
  const auto put = [&](const std::string& path, const std::string& body) {
    auto result = http_->Put(path, body, "application/json");
    EXPECT_TRUE(result) << path;
    return result ? std::make_pair(result->status, result->body) : std::make_pair(0, std::string());
  };
  EXPECT_EQ(put("/v1/catalog/register?ns=missing", node),
            std::make_pair(500, std::string(R"(Namespace "missing" does not exist)")));
  EXPECT_EQ(put("/v1/agent/service/register?ns=missing", Web("web-1").dump()),
            std::make_pair(500, std::string(R"(Namespace "missing" does not exist)")));
  json in_body = Web("web-1");
  in_body["Namespace"] = "missing";
  EXPECT_EQ(put("/v1/agent/service/register", in_body.dump()),
            std::make_pair(500, std::string(R"(Namespace "missing" does not exist)")));
  EXPECT_EQ(put("/v1/catalog/register?partition=nowhere", node),
            std::make_pair(500, std::string(R"(Partition "nowhere" does not exist)")));
  EXPECT_EQ(server_->RegisterService({.ns = "missing"}, Web("web-1")),
            R"(Namespace "missing" does not exist)");
  // A namespace of one partition does not exist in another.
  ASSERT_TRUE(server_->AddNamespace("", "", "team-a"));
  ASSERT_TRUE(server_->AddPartition("", "eu"));
  EXPECT_EQ(server_->RegisterService({.partition = "eu", .ns = "team-a"}, Web("web-1")),
            R"(Namespace "team-a" does not exist)");
  // Nothing was created by the refused writes.
  const auto names = [](const json& list) {
    std::vector<std::string> out;
    for (const json& entry : list) out.push_back(entry["Name"]);
    return out;
  };
  EXPECT_THAT(names(Get("/v1/namespaces").body), ::testing::ElementsAre("default", "team-a"));
  EXPECT_THAT(names(Get("/v1/partitions").body), ::testing::ElementsAre("default", "eu"));
  EXPECT_EQ(Get("/v1/catalog/services?ns=missing").body, json::object());

  // Once created, the same writes are taken.
  EXPECT_EQ(put("/v1/agent/service/register?ns=team-a", Web("web-1").dump()).first, 200);
  EXPECT_EQ(put("/v1/catalog/register?partition=eu", node).first, 200);

  // One marked for deletion takes no writes either, and its name is taken
  // until the deletion finishes.
  ASSERT_TRUE(server_->RemoveNamespace("", "", "team-a"));
  EXPECT_EQ(put("/v1/agent/service/register?ns=team-a", Web("web-2").dump()),
            std::make_pair(500, std::string(R"(Namespace "team-a" does not exist)")));
  EXPECT_FALSE(server_->AddNamespace("", "", "team-a"));
  EXPECT_EQ(server_->FinishTenancyDeletions(), 1U);
  EXPECT_TRUE(server_->AddNamespace("", "", "team-a"));
  EXPECT_EQ(put("/v1/agent/service/register?ns=team-a", Web("web-2").dump()).first, 200);
}

// Consul deletes a namespace or partition in two steps: marked (DeletedAt
// set, ModifyIndex moved, still listed) while its data is deleted in the
// background, then gone from the list.
TEST_F(ConsulScopesTest, DeletingANamespaceOrPartitionMarksItBeforeItLeavesTheList) {
  ConsulTestServerOptions options;
  options.enterprise = true;
  Start(options);
  ASSERT_TRUE(server_->AddNamespace("", "", "team-a"));
  ASSERT_TRUE(server_->AddPartition("", "eu"));
  ASSERT_TRUE(server_->AddNamespace("", "eu", "team-b"));
  ASSERT_EQ(server_->RegisterService({.ns = "team-a"}, Web("web-a")), "");
  ASSERT_EQ(server_->RegisterService({.partition = "eu", .ns = "team-b"}, Web("web-b")), "");
  const Answer before = Get("/v1/namespaces");
  ASSERT_EQ(before.body.size(), 2U);
  EXPECT_FALSE(before.body[1].contains("DeletedAt"));

  ASSERT_TRUE(server_->RemoveNamespace("", "", "team-a"));
  const Answer marked = Get("/v1/namespaces");
  ASSERT_EQ(marked.body.size(), 2U) << marked.text;
  const json& team_a = marked.body[1];
  EXPECT_EQ(team_a["Name"], "team-a");
  ASSERT_TRUE(team_a.contains("DeletedAt"));
  EXPECT_THAT(team_a["DeletedAt"].get<std::string>(),
              ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"));
  EXPECT_GT(team_a["ModifyIndex"].get<std::uint64_t>(), team_a["CreateIndex"].get<std::uint64_t>());
  EXPECT_GT(marked.index, before.index);
  EXPECT_EQ(Get("/v1/health/service/web?ns=team-a").body, json::array()) << "its data is deleted";
  EXPECT_FALSE(marked.body[0].contains("DeletedAt")) << "default is never deleted";

  // A partition takes its namespaces with it.
  ASSERT_TRUE(server_->RemovePartition("", "eu"));
  const Answer partitions = Get("/v1/partitions");
  ASSERT_EQ(partitions.body.size(), 2U);
  EXPECT_TRUE(partitions.body[1].contains("DeletedAt"));
  EXPECT_FALSE(partitions.body[1].contains("Partition")) << "partitions do not name one";
  const Answer in_eu = Get("/v1/namespaces?partition=eu");
  ASSERT_EQ(in_eu.body.size(), 2U);
  EXPECT_EQ(in_eu.body[1]["Name"], "team-b");
  EXPECT_EQ(in_eu.body[1]["Partition"], "eu");
  EXPECT_TRUE(in_eu.body[1].contains("DeletedAt"));
  EXPECT_EQ(Get("/v1/health/service/web?partition=eu&ns=team-b").body, json::array());

  EXPECT_EQ(server_->FinishTenancyDeletions(), 3U);
  const Answer gone = Get("/v1/namespaces");
  ASSERT_EQ(gone.body.size(), 1U);
  EXPECT_GT(gone.index, marked.index) << "leaving the list moves its index";
  EXPECT_EQ(Get("/v1/partitions").body.size(), 1U);
  // A reader of the gone partition's list sees its index go forward.
  EXPECT_GT(Get("/v1/namespaces?partition=eu").index, in_eu.index);
  EXPECT_EQ(server_->FinishTenancyDeletions(), 0U);
}

// Consul's API docs: /v1/namespaces supports blocking queries ("Blocking
// Queries: YES"), /v1/partitions does not ("Blocking queries: No").
TEST_F(ConsulScopesTest, TheNamespaceListBlocksAndThePartitionListDoesNot) {
  ConsulTestServerOptions options;
  options.enterprise = true;
  Start(options);
  const Answer first = Get("/v1/namespaces");
  ASSERT_EQ(first.status, 200);
  ASSERT_GT(first.index, 0U);

  // Held until the list moves, then answered with the new index.
  auto held = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client, "/v1/namespaces?wait=10m&index=" + std::to_string(first.index));
  });
  ASSERT_TRUE(Eventually([&] { return server_->BlockedQueries() >= 1; }, std::chrono::seconds(10)));
  // A write elsewhere does not end it early.
  ASSERT_EQ(server_->RegisterService(Web("web-1")), "");
  ASSERT_TRUE(server_->AddNamespace("", "", "team-a"));
  ASSERT_EQ(held.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const Answer woken = held.get();
  EXPECT_EQ(woken.status, 200);
  EXPECT_GT(woken.index, first.index);
  ASSERT_EQ(woken.body.size(), 2U);
  EXPECT_EQ(woken.body[1]["Name"], "team-a");

  // Marking and finishing a deletion wake it as well.
  auto marked = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client, "/v1/namespaces?index=" + std::to_string(woken.index));
  });
  ASSERT_TRUE(Eventually([&] { return server_->BlockedQueries() >= 1; }, std::chrono::seconds(10)));
  ASSERT_TRUE(server_->RemoveNamespace("", "", "team-a"));
  ASSERT_EQ(marked.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const Answer deleted = marked.get();
  EXPECT_GT(deleted.index, woken.index);
  EXPECT_TRUE(deleted.body[1].contains("DeletedAt"));

  // /v1/partitions ignores ?index=: answered at once however far ahead.
  auto partitions = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client, "/v1/partitions?wait=10m&index=999999");
  });
  ASSERT_EQ(partitions.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(partitions.get().body.size(), 1U);
  EXPECT_EQ(server_->BlockedQueries(), 0U);
}

// ?wait= on /v1/namespaces is capped like every blocking query's, and a
// partition's list is woken by changes to that partition's list only.
TEST_F(ConsulScopesTest, TheNamespaceListWaitIsCappedAndPerPartition) {
  ConsulTestServerOptions options;
  options.enterprise = true;
  options.max_wait = std::chrono::milliseconds(400);
  Start(options);
  const Answer first = Get("/v1/namespaces");
  // With nothing changing, the query ends unchanged (10m asked, 400 ms
  // served).
  auto capped = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client, "/v1/namespaces?wait=10m&index=" + std::to_string(first.index));
  });
  ASSERT_EQ(capped.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const Answer unchanged = capped.get();
  EXPECT_EQ(unchanged.status, 200);
  EXPECT_EQ(unchanged.index, first.index);

  ASSERT_TRUE(server_->AddPartition("", "eu"));
  const Answer eu = Get("/v1/namespaces?partition=eu");
  auto other = std::async(std::launch::async, [&] {
    auto client = MakeClient();
    return GetWith(*client, "/v1/namespaces?partition=eu&index=" + std::to_string(eu.index));
  });
  ASSERT_TRUE(Eventually([&] { return server_->BlockedQueries() >= 1; }, std::chrono::seconds(10)));
  ASSERT_TRUE(server_->AddNamespace("", "", "team-c"));
  const Answer other_answer = other.get();
  EXPECT_EQ(other_answer.index, eu.index) << "ended by the wait cap, not by the default partition";
  EXPECT_EQ(other_answer.body.size(), 1U);
}

TEST_F(ConsulScopesTest, ScriptsReachEveryScopeOverHttp) {
  // /_test/ routes for the demo and scripts, and Consul's own catalog
  // register with ?dc= for writes to another datacenter.
  ASSERT_EQ(http_->Put("/_test/datacenter?name=dc2", "", "text/plain")->status, 200);
  auto registered = http_->Put(
      "/v1/catalog/register?dc=dc2",
      json{{"Node", "remote-node"},
           {"Address", "10.1.0.1"},
           {"Service", {{"ID", "api-1"}, {"Service", "api"}, {"Port", 80}}},
           {"Checks", {{{"CheckID", "api-alive"}, {"ServiceID", "api-1"}, {"Status", "passing"}}}}}
          .dump(),
      "application/json");
  ASSERT_EQ(registered->status, 200) << registered->body;
  const Answer remote = Get("/v1/health/service/api?dc=dc2");
  ASSERT_EQ(remote.body.size(), 1u);
  EXPECT_EQ(remote.body[0]["Node"]["Node"], "remote-node");
  EXPECT_EQ(Get("/v1/health/service/api").body, json::array());

  ASSERT_EQ(http_->Put("/_test/datacenter?name=dc2&cut=true", "", "text/plain")->status, 200);
  EXPECT_EQ(Get("/v1/health/service/api?dc=dc2").status, 500);
  ASSERT_EQ(http_->Put("/_test/datacenter?name=dc2&cut=false", "", "text/plain")->status, 200);
  EXPECT_EQ(Get("/v1/health/service/api?dc=dc2").status, 200);

  ASSERT_EQ(http_->Put("/_test/peer?name=cluster-02", "", "text/plain")->status, 200);
  ASSERT_EQ(
      http_->Put("/_test/peer/register?peer=cluster-02", Web("web-1").dump(), "application/json")
          ->status,
      200);
  ASSERT_EQ(http_
                ->Put("/_test/peer/check?peer=cluster-02&id=service:web-1&status=warning", "",
                      "text/plain")
                ->status,
            200);
  EXPECT_EQ(Get("/v1/health/service/web?peer=cluster-02").body[0]["Checks"][1]["Status"],
            "warning");
  ASSERT_EQ(http_->Put("/_test/peer?name=cluster-02&state=TERMINATED", "", "text/plain")->status,
            200);
  EXPECT_EQ(Get("/v1/peering/cluster-02").body["State"], "TERMINATED");
  EXPECT_EQ(http_->Put("/_test/peer?name=cluster-02&state=ASLEEP", "", "text/plain")->status, 400);
}

// A datacenter taken off the WAN is unlisted and has no path; added again
// it is listed and serves what it held.
TEST_F(ConsulScopesTest, ARemovedDatacenterIsUnlistedAndHasNoPathUntilItRejoins) {
  ASSERT_TRUE(server_->AddDatacenter("dc2"));
  ASSERT_EQ(server_->RegisterService(Dc2(), Web("web-1")), "");
  EXPECT_FALSE(server_->RemoveDatacenter("dc1")) << "the local datacenter cannot leave";
  ASSERT_TRUE(server_->RemoveDatacenter("dc2"));
  EXPECT_FALSE(server_->RemoveDatacenter("dc2"));
  EXPECT_EQ(Get("/v1/catalog/datacenters").body, json::array({"dc1"}));
  const Answer gone = Get("/v1/health/service/web?dc=dc2");
  EXPECT_EQ(gone.status, 500);
  EXPECT_EQ(gone.text, "No path to datacenter");
  // Writes still reach it (its agents go on), as Consul's own datacenter does.
  ASSERT_TRUE(server_->UpdateCheck(Dc2(), "service:web-1", "critical"));
  EXPECT_EQ(http_->Put("/_test/datacenter?name=dc2", "", "text/plain")->status, 200);
  EXPECT_EQ(Get("/v1/catalog/datacenters").body, json::array({"dc1", "dc2"}));
  const Answer back = Get("/v1/health/service/web?dc=dc2");
  ASSERT_EQ(back.status, 200);
  std::string status;
  for (const json& check : back.body[0]["Checks"]) {
    if (check["CheckID"] == "service:web-1") status = check["Status"];
  }
  EXPECT_EQ(status, "critical");
  EXPECT_EQ(http_->Delete("/_test/datacenter?name=dc2")->status, 200);
  EXPECT_EQ(http_->Delete("/_test/datacenter?name=dc2")->status, 404);
}

// /v1/partitions and /v1/namespaces as Consul Enterprise documents them:
// the builtin default first, then those created, each with Name,
// Description and its indexes (a namespace names its partition); deleting
// one deletes what it holds. Consul OSS has neither endpoint.
TEST_F(ConsulScopesTest, EnterpriseListsPartitionsAndNamespacesAsTheyComeAndGo) {
  EXPECT_EQ(Get("/v1/namespaces").status, 404);
  EXPECT_EQ(Get("/v1/partitions").status, 404);
  EXPECT_FALSE(server_->AddNamespace("", "", "team-a")) << "Consul OSS";

  ConsulTestServerOptions options;
  options.enterprise = true;
  Start(options);
  ASSERT_TRUE(server_->AddDatacenter("dc2"));
  const Answer partitions = Get("/v1/partitions");
  ASSERT_EQ(partitions.status, 200);
  ASSERT_EQ(partitions.body.size(), 1U);
  EXPECT_EQ(partitions.body[0]["Name"], "default");
  EXPECT_EQ(partitions.body[0]["Description"], "Builtin Default Partition");
  EXPECT_TRUE(partitions.body[0].contains("CreateIndex"));
  EXPECT_TRUE(partitions.body[0].contains("ModifyIndex"));

  ASSERT_TRUE(server_->AddPartition("", "eu"));
  EXPECT_FALSE(server_->AddPartition("", "eu"));
  ASSERT_TRUE(server_->AddNamespace("", "", "team-a"));
  ASSERT_TRUE(server_->AddNamespace("", "eu", "team-b"));
  EXPECT_FALSE(server_->AddNamespace("", "us", "team-c")) << "no such partition";
  EXPECT_EQ(http_->Put("/_test/namespace?name=team-c&dc=dc2", "", "text/plain")->status, 200);
  EXPECT_EQ(http_->Put("/_test/namespace?name=team-d", "", "text/plain")->status, 200);
  ASSERT_EQ(server_->RegisterService({.ns = "team-d"}, Web("web-1")), "");

  const auto names = [](const json& list) {
    std::vector<std::string> out;
    for (const json& entry : list) out.push_back(entry["Name"]);
    return out;
  };
  EXPECT_THAT(names(Get("/v1/partitions").body), ::testing::ElementsAre("default", "eu"));
  EXPECT_TRUE(Get("/v1/partitions?dc=dc2").body.size() == 1U) << "partitions are per datacenter";
  const Answer namespaces = Get("/v1/namespaces");
  ASSERT_EQ(namespaces.status, 200);
  EXPECT_GT(namespaces.index, 0U);
  EXPECT_THAT(names(namespaces.body), ::testing::ElementsAre("default", "team-a", "team-d"));
  EXPECT_EQ(namespaces.body[0]["Description"], "Builtin Default Namespace");
  EXPECT_EQ(namespaces.body[1]["Partition"], "default");
  EXPECT_THAT(names(Get("/v1/namespaces?partition=eu").body),
              ::testing::ElementsAre("default", "team-b"));
  EXPECT_THAT(names(Get("/v1/namespaces?dc=dc2").body),
              ::testing::ElementsAre("default", "team-c"));

  // Deleting a namespace deletes its services; it leaves the list once
  // the deletion finishes.
  ASSERT_TRUE(server_->RemoveNamespace("", "", "team-d"));
  EXPECT_FALSE(server_->RemoveNamespace("", "", "team-d")) << "already marked";
  EXPECT_EQ(Get("/v1/catalog/services?ns=team-d").body, json::object());
  EXPECT_EQ(http_->Delete("/_test/partition?name=eu")->status, 200);
  EXPECT_EQ(http_->Delete("/_test/partition?name=eu")->status, 404) << "already marked";
  auto finished = http_->Put("/_test/tenancy/finish-deletions", "", "text/plain");
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->body, "3") << "team-d, eu and eu's team-b";
  EXPECT_THAT(names(Get("/v1/namespaces").body), ::testing::ElementsAre("default", "team-a"));
  EXPECT_THAT(names(Get("/v1/partitions").body), ::testing::ElementsAre("default"));
  EXPECT_EQ(Get("/v1/namespaces?dc=dc9").status, 500) << "No path to datacenter";
}

}  // namespace
}  // namespace hb::test_support
