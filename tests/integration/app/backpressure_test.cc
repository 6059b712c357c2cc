// Back-pressure through the health-bridge executable: a webhook sink that
// fails every delivery, with a queue of two, beside a healthy one. The dead
// sink must hold back neither the watch, nor the healthy sink, nor the
// HTTP API, nor shutdown; its events wait in its spool and are delivered,
// in order, once it recovers after a restart.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/test_dir.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::Answer;
using test_support::BridgeProcess;
using test_support::ReceivedRequest;
using test_support::ScriptedHttpPeer;

using test_support::kBridge;
constexpr int kInstances = 30;
constexpr int kAnswers = 12;
constexpr seconds kShutdownTimeout{1};

::testing::AssertionResult WaitFor(const std::function<bool()>& done,
                                   std::chrono::milliseconds timeout) {
  return test_support::Eventually(done, timeout);
}

std::size_t InstanceEvents(const std::vector<ReceivedRequest>& requests) {
  std::size_t count = 0;
  for (const auto& request : requests) {
    const std::string type = nlohmann::json::parse(request.body)["type"];
    if (type.find(".instance.") != std::string::npos) ++count;
  }
  return count;
}

// Event ids per partition key (instance), in arrival order.
std::map<std::string, std::vector<std::string>> ByInstance(
    const std::vector<ReceivedRequest>& requests) {
  std::map<std::string, std::vector<std::string>> ids;
  for (const auto& request : requests) {
    const auto event = nlohmann::json::parse(request.body);
    ids[event["partitionkey"]].push_back(event["id"]);
  }
  return ids;
}

class BackpressureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(consul_.Start(), 0);
    for (int i = 1; i <= kInstances; ++i) {
      const std::string id = "payments-" + std::to_string(i);
      consul_.RegisterService(nlohmann::json{
          {"ID", id},
          {"Name", "payments"},
          {"Port", 8000},
          {"Check", {{"CheckID", "service:" + id}, {"TTL", "10m"}, {"Status", "passing"}}}});
    }
  }

  std::string Config() const {
    std::ostringstream config;
    config << "consul: {address: " << consul_.address() << "}\n"
           << "server: {listen: '127.0.0.1:0', instances: {enabled: true}}\n"
           << "state: {dir: " << state_dir_.path().string()
           << ", shutdown_timeout: " << kShutdownTimeout.count() << "s}\n"
           << "sinks:\n"
           << "  - name: dead-hooks\n"
           << "    type: webhook\n"
           << "    url: " << dead_.url() << "\n"
           << "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
           << "    queue: {capacity: 2}\n"
           << "    retry: {initial_backoff: 100ms, max_backoff: 500ms}\n"
           << "  - name: healthy-hooks\n"
           << "    type: webhook\n"
           << "    url: " << healthy_.url() << "\n"
           << "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
    return config.str();
  }

  static httplib::Result Get(const BridgeProcess& bridge, const std::string& path) {
    httplib::Client client("127.0.0.1", bridge.port());
    client.set_connection_timeout(seconds(2));
    client.set_read_timeout(seconds(2));
    return client.Get(path);
  }

  test_support::ConsulTestServer consul_;
  ScriptedHttpPeer dead_{[](std::size_t, const ReceivedRequest&) { return Answer(503); }};
  ScriptedHttpPeer healthy_;
  test_support::TestDir state_dir_{"hb-backpressure"};
};

TEST_F(BackpressureTest, ADeadSinkHoldsBackNeitherTheWatchNorAHealthySinkNorShutdown) {
  auto bridge = std::make_unique<BridgeProcess>(kBridge, Config());
  ASSERT_TRUE(bridge->ok()) << bridge->process().Stderr();

  // A dozen Consul answers, each turning every instance at once (node
  // maintenance on, then off): each answer is many events for both sinks.
  for (int answer = 1; answer <= kAnswers; ++answer) {
    consul_.SetNodeMaintenance(answer % 2 == 1, "kernel upgrade");
    const std::size_t expected = static_cast<std::size_t>(kInstances * answer);
    ASSERT_TRUE(
        WaitFor([&] { return InstanceEvents(healthy_.Accepted()) >= expected; }, seconds(10)))
        << "answer " << answer << ": the healthy sink has " << InstanceEvents(healthy_.Accepted())
        << " instance events of " << expected << "\n"
        << bridge->process().Stderr();
    // The API and readiness answer within their normal short timeouts.
    const auto instances = Get(*bridge, "/v1/instances");
    ASSERT_TRUE(instances) << "GET /v1/instances: " << httplib::to_string(instances.error());
    EXPECT_EQ(instances->status, 200);
    EXPECT_EQ(nlohmann::json::parse(instances->body)["instances"].size(),
              static_cast<std::size_t>(kInstances));
    const auto ready = Get(*bridge, "/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200) << ready->body;
  }
  const std::vector<ReceivedRequest> delivered = healthy_.Accepted();
  EXPECT_EQ(InstanceEvents(delivered), static_cast<std::size_t>(kInstances * kAnswers));
  EXPECT_TRUE(dead_.Accepted().empty());
  EXPECT_GT(dead_.RequestCount(), 0U) << "the dead sink was tried";
  // Every event of the dead sink waits (in its queue of two and in its
  // spool); none was dropped for lack of room.
  EXPECT_TRUE(WaitFor(
      [&] {
        return bridge->Metric("health_bridge_sink_queue_depth", "sink=\"dead-hooks\"") ==
               static_cast<double>(delivered.size());
      },
      seconds(10)))
      << bridge->Metric("health_bridge_sink_queue_depth", "sink=\"dead-hooks\"").value_or(-1);
  EXPECT_GT(
      bridge
          ->Metric("health_bridge_sink_deliveries_total", "outcome=\"retried\",sink=\"dead-hooks\"")
          .value_or(0),
      0);
  EXPECT_EQ(bridge
                ->Metric("health_bridge_sink_deliveries_total",
                         "outcome=\"dead_lettered\",sink=\"dead-hooks\"")
                .value_or(0),
            0);

  // SIGTERM with a sink still failing: out within shutdown_timeout plus a
  // few seconds' margin for a loaded machine.
  const auto exit_code = bridge->Stop(kShutdownTimeout + seconds(5));
  ASSERT_TRUE(exit_code.has_value()) << "still running after SIGTERM\n"
                                     << bridge->process().Stderr();
  EXPECT_EQ(*exit_code, 0);
  bridge.reset();

  // The destination recovers; the next start delivers every event it
  // missed, from the spool, in each instance's order.
  dead_.SetScript({});
  bridge = std::make_unique<BridgeProcess>(kBridge, Config());
  ASSERT_TRUE(bridge->ok()) << bridge->process().Stderr();
  ASSERT_TRUE(dead_.WaitForAccepted(delivered.size(), seconds(30)))
      << dead_.Accepted().size() << " of " << delivered.size() << "\n"
      << bridge->process().Stderr();
  EXPECT_EQ(ByInstance(dead_.Accepted()), ByInstance(delivered));
  EXPECT_EQ(bridge->Stop(), 0);
}

}  // namespace
}  // namespace hb
