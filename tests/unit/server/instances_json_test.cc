// /v1/instances is served from snapshots the watch thread publishes: a
// request never reads the engine, and a refresh copies only what changed.

#include "bridge/server/instances_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bridge/state/transition_engine.h"
#include "tests/support/fake_clock.h"
#include "tests/unit/state/engine_test_util.h"

namespace hb {
namespace {

using test_support::FakeClock;
using test_support::MakeInstance;
using test_support::Snapshot;

std::vector<Instance> Instances(const std::string& service, int count, HealthStatus status) {
  std::vector<Instance> instances;
  for (int i = 0; i < count; ++i) {
    instances.push_back(MakeInstance(service + "-" + std::to_string(i), status, "node-a", service));
  }
  return instances;
}

nlohmann::json Listed(const InstancesEndpoint& endpoint, QueryParams query = {}) {
  return nlohmann::json::parse(endpoint.Json(query))["instances"];
}

TEST(InstancesEndpointTest, ARequestReadsTheLastPublishedSnapshotNeverTheEngine) {
  FakeClock clock;
  TransitionEngine engine(EngineOptions{}, clock);
  InstancesEndpoint endpoint(InstancesDocumentOptions{{"version"}});
  EXPECT_TRUE(Listed(endpoint).empty()) << "nothing published yet";

  engine.Apply(Snapshot(10, Instances("payments", 2, HealthStatus::kPassing)));
  EXPECT_TRUE(Listed(endpoint).empty()) << "a request must not read the engine itself";
  EXPECT_EQ(endpoint.Refresh(engine), 2U);
  const auto listed = Listed(endpoint);
  ASSERT_EQ(listed.size(), 2U);
  EXPECT_EQ(listed[0]["id"], "payments-0");
  EXPECT_EQ(listed[0]["status"], "passing");
  EXPECT_EQ(listed[0]["meta"]["version"], "2.4.1");

  // The engine moves on; requests see the published snapshot until the
  // watch thread publishes the next one.
  engine.Apply(Snapshot(11, Instances("payments", 2, HealthStatus::kCritical)));
  EXPECT_EQ(Listed(endpoint)[0]["status"], "passing");
  endpoint.Refresh(engine);
  EXPECT_EQ(Listed(endpoint)[0]["status"], "critical");
}

// Two sources with the same service and instance: both listed, each with
// its peer or namespace.
TEST(InstancesEndpointTest, InstancesOfOtherSourcesNameTheirPeerAndNamespace) {
  FakeClock clock;
  TransitionEngine engine(EngineOptions{}, clock);
  InstancesEndpoint endpoint(InstancesDocumentOptions{});
  engine.Apply(Snapshot(10, Instances("payments", 1, HealthStatus::kPassing)));
  ServiceSnapshot peered = Snapshot(7, Instances("payments", 1, HealthStatus::kCritical));
  peered.scope = {"east", "team-a", "", true};
  engine.Apply(std::move(peered));
  endpoint.Refresh(engine);
  const auto listed = Listed(endpoint);
  ASSERT_EQ(listed.size(), 2U);
  EXPECT_FALSE(listed[0].contains("peer"));
  EXPECT_EQ(listed[1]["peer"], "east");
  EXPECT_EQ(listed[1]["namespace"], "team-a");
  EXPECT_FALSE(listed[1].contains("partition"));
  EXPECT_EQ(listed[1]["status"], "critical");
}

TEST(InstancesEndpointTest, ARefreshCopiesOnlyTheServicesThatChanged) {
  FakeClock clock;
  TransitionEngine engine(EngineOptions{}, clock);
  InstancesEndpoint endpoint(InstancesDocumentOptions{});
  engine.Apply(Snapshot(10, Instances("big", 1000, HealthStatus::kPassing), "big"));
  engine.Apply(Snapshot(10, Instances("small", 1, HealthStatus::kPassing), "small"));
  EXPECT_EQ(endpoint.Refresh(engine), 1001U);
  EXPECT_EQ(endpoint.Refresh(engine), 0U) << "nothing changed: nothing copied";

  engine.Apply(Snapshot(11, Instances("small", 1, HealthStatus::kCritical), "small"));
  EXPECT_EQ(endpoint.Refresh(engine), 1U) << "the big service is shared, not copied";
  EXPECT_EQ(Listed(endpoint, {{"service", "small"}})[0]["status"], "critical");
  EXPECT_EQ(Listed(endpoint).size(), 1001U);

  engine.ServiceGone("dc1", "small", 12);
  EXPECT_EQ(endpoint.Refresh(engine), 0U);
  EXPECT_EQ(Listed(endpoint).size(), 1000U) << "a service that left is gone from the next one";
  EXPECT_TRUE(Listed(endpoint, {{"service", "small"}}).empty());
}

}  // namespace
}  // namespace hb
