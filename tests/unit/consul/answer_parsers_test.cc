#include "bridge/consul/answer_parsers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace hb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(HB_SOURCE_DIR) + "/tests/fixtures/consul/" + name);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_FALSE(text.str().empty()) << name;
  return text.str();
}

TEST(ParseHealthService, ReadsTheDocumentedExample) {
  auto answer = ParseHealthService(Fixture("health_service.json"));
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  ASSERT_EQ(answer->instances.size(), 1u);
  const Instance& redis = answer->instances[0];
  EXPECT_EQ(redis.node, "foobar");
  EXPECT_EQ(redis.id, "redis");
  EXPECT_EQ(redis.service, "redis");
  EXPECT_EQ(redis.address, "10.1.10.12");
  EXPECT_EQ(redis.port, 8000);
  EXPECT_THAT(redis.tags, ElementsAre("primary"));
  EXPECT_EQ(redis.meta.at("redis_version"), "4.0");
  ASSERT_EQ(redis.checks.size(), 2u);
  EXPECT_EQ(redis.checks[0].id, "service:redis");
  EXPECT_EQ(redis.checks[1].id, "serfHealth");
  EXPECT_EQ(redis.checks[1].service_id, "");  // a node check
  EXPECT_EQ(AggregateStatus(redis.checks), HealthStatus::kPassing);
}

TEST(ParseHealthService, HandlesNullsMaintenanceAndTheSameIdOnTwoNodes) {
  auto answer = ParseHealthService(Fixture("health_service_variants.json"));
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  ASSERT_EQ(answer->instances.size(), 2u);
  const Instance& a = answer->instances[0];
  const Instance& b = answer->instances[1];
  EXPECT_EQ(a.id, b.id);
  EXPECT_NE(a.node, b.node);
  EXPECT_THAT(a.tags, IsEmpty());
  EXPECT_THAT(a.meta, IsEmpty());
  EXPECT_EQ(a.address, "10.1.10.12");  // empty service address: the node's
  EXPECT_EQ(b.address, "10.1.10.99");
  EXPECT_EQ(AggregateStatus(a.checks), HealthStatus::kMaintenance);
  EXPECT_EQ(a.checks[2].notes, "deploy 2.4.2");
  EXPECT_EQ(AggregateStatus(b.checks), HealthStatus::kMaintenance);  // node maintenance
  EXPECT_EQ(b.checks[1].status, HealthStatus::kWarning);
}

TEST(ParseHealthService, EmptyArrayMeansNoInstances) {
  auto answer = ParseHealthService(Fixture("health_service_empty.json"));
  ASSERT_TRUE(answer.ok());
  EXPECT_THAT(answer->instances, IsEmpty());
}

TEST(ParseHealthService, MalformedBodiesAreErrorsNamingThePathNeverEmptyLists) {
  struct Case {
    const char* body;
    const char* error;
  };
  const Case cases[] = {
      {"", "health answer: body is not valid JSON"},
      {"[{\"Node\": ", "health answer: body is not valid JSON"},
      {"{}", "health answer: expected an array, got object"},
      {"null", "health answer: expected an array, got null"},
      {"[42]", "health answer: [0]: expected an object, got number"},
      {R"([{"Service": {}}])", "health answer: [0].Node: missing"},
      {R"([{"Node": {"Node": "a"}, "Service": {"ID": "x", "Service": "s", "Port": "80"}}])",
       "health answer: [0].Service.Port: expected an integer, got string"},
      {R"([{"Node": {"Node": "a"}, "Service": {"ID": "x", "Service": "s", "Port": 80,
            "Tags": [1]}}])",
       "health answer: [0].Service.Tags[0]: expected a string, got number"},
      {R"([{"Node": {"Node": "a"}, "Service": {"ID": "x", "Service": "s", "Port": 80,
            "Meta": {"v": 2}}}])",
       "health answer: [0].Service.Meta.v: expected a string, got number"},
      {R"([{"Node": {"Node": "a"}, "Service": {"ID": "x", "Service": "s", "Port": 80},
            "Checks": [{"CheckID": "c", "Status": "dead"}]}])",
       "health answer: [0].Checks[0].Status: expected passing, warning or critical, got \"dead\""},
      {R"([{"Node": {"Node": "a"}, "Service": {"ID": "x", "Service": "s", "Port": 80},
            "Checks": {"CheckID": "c"}}])",
       "health answer: [0].Checks: expected an array, got object"},
      {R"([{"Node": {"Node": 42}, "Service": "broken")", "health answer: body is not valid JSON"},
      {R"([{"Node": {"Node": "a"}, "Service": {"ID": "", "Service": "s", "Port": 80}}])",
       "health answer: [0].Service.ID: expected a non-empty string"},
  };
  for (const auto& c : cases) {
    auto answer = ParseHealthService(c.body);
    ASSERT_FALSE(answer.ok()) << c.body;
    EXPECT_EQ(answer.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(answer.status().message(), c.error) << c.body;
  }
}

TEST(ParseCatalogServices, ReadsTheDocumentedExample) {
  auto services = ParseCatalogServices(Fixture("catalog_services.json"));
  ASSERT_TRUE(services.ok()) << services.status().ToString();
  EXPECT_EQ(services->size(), 3u);
  EXPECT_THAT(services->at("postgresql"), ElementsAre("primary", "secondary"));
  EXPECT_THAT(services->at("consul"), IsEmpty());
}

TEST(ParseCatalogServices, MalformedBodiesAreErrors) {
  EXPECT_EQ(ParseCatalogServices("[]").status().message(),
            "catalog answer: expected an object, got array");
  EXPECT_EQ(ParseCatalogServices(R"({"web": "v1"})").status().message(),
            "catalog answer: web: expected an array of strings, got string");
  EXPECT_EQ(ParseCatalogServices(R"({"web": [true]})").status().message(),
            "catalog answer: web[0]: expected a string, got boolean");
  EXPECT_TRUE(ParseCatalogServices(R"({"web": null})").ok());
  // found by catalog_services_fuzz: it would be watched as /v1/health/service/
  EXPECT_EQ(ParseCatalogServices(R"({"": []})").status().message(),
            "catalog answer: empty service name");
}

TEST(ParseAgentSelf, ReadsDatacenterAndNodeName) {
  auto self = ParseAgentSelf(Fixture("agent_self.json"));
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  EXPECT_EQ(self->datacenter, "dc1");
  EXPECT_EQ(self->node_name, "foobar");
  EXPECT_EQ(ParseAgentSelf("{}").status().message(), "agent/self answer: Config: missing");
}

// Consul's documented shape of GET /v1/peerings (fields trimmed).
TEST(ParsePeerings, ReadsEachPeeringsState) {
  auto peerings = ParsePeerings(R"([
    {"ID": "462c45e8-d7e3-4d26-ae45-d3f1c4e1bf06", "Name": "cluster-east", "State": "ACTIVE",
     "PeerCAPems": null, "PeerServerName": "server.dc2.peering.example", "StreamStatus": {}},
    {"ID": "1fd4ab0c-4e7d-47c2-8d2c-94c77f5e8d84", "Name": "cluster-west", "State": "FAILING"}
  ])");
  ASSERT_TRUE(peerings.ok()) << peerings.status().ToString();
  EXPECT_EQ(*peerings, (PeeringStates{{"cluster-east", "ACTIVE"}, {"cluster-west", "FAILING"}}));
  EXPECT_TRUE(ParsePeerings("[]").ok());
  EXPECT_EQ(ParsePeerings(R"([{"Name": "x"}])").status().message(),
            "peerings answer: [0].State: missing");
  EXPECT_EQ(ParsePeerings("{}").status().message(), "peerings answer: expected a list, got object");
}

TEST(ParseHealthState, ReadsWhichInstanceEachCheckBelongsTo) {
  auto rows = ParseHealthState(R"([
    {"Node": "node-a", "CheckID": "serfHealth", "Name": "Serf Health Status",
     "Status": "passing", "ServiceID": "", "ServiceName": "", "ModifyIndex": 7},
    {"Node": "node-a", "CheckID": "service:web-1", "Status": "critical",
     "ServiceID": "web-1", "ServiceName": "web", "ModifyIndex": 18446744073709551615}
  ])");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0], (CheckRow{"node-a", "serfHealth", "", "", "passing", 7}));
  EXPECT_EQ((*rows)[1], (CheckRow{"node-a", "service:web-1", "web-1", "web", "critical",
                                  18446744073709551615u}));
  EXPECT_TRUE(ParseHealthState("[]")->empty());
}

TEST(ParseHealthState, MalformedBodiesAreErrorsNamingThePath) {
  EXPECT_FALSE(ParseHealthState("{}").ok());
  EXPECT_FALSE(ParseHealthState("[").ok());
  EXPECT_EQ(ParseHealthState(R"([{"Node": "n", "CheckID": "c", "Status": "passing",
                                  "ModifyIndex": -1}])")
                .status()
                .message(),
            "health state answer: [0].ModifyIndex: expected an unsigned integer, got number");
  EXPECT_FALSE(ParseHealthState(R"([{"Node": "", "CheckID": "c", "Status": "passing",
                                     "ModifyIndex": 1}])")
                   .ok());
  // A service check without its service's name could not be traced.
  EXPECT_FALSE(ParseHealthState(R"([{"Node": "n", "CheckID": "c", "Status": "passing",
                                     "ServiceID": "x", "ServiceName": "", "ModifyIndex": 1}])")
                   .ok());
}

}  // namespace
}  // namespace hb
