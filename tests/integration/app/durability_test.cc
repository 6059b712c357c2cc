// Durability through the health-bridge executable with state.dir set: a
// crash (kill -9) while a sink is down, a restart that reconciles what
// changed while the bridge was stopped, damaged spool and state files, and
// configuration reloads (SIGHUP).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"
#include "tests/support/schema/event_schema.h"
#include "tests/support/test_dir.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::Answer;
using test_support::BridgeProcess;
using test_support::ReceivedRequest;
using test_support::ScriptedHttpPeer;
using ::testing::HasSubstr;

using test_support::kBridge;
constexpr char kTopic[] = "consul.health.events";

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.front() == '{') lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

std::set<std::string> IdsOf(const std::vector<nlohmann::json>& events) {
  std::set<std::string> ids;
  for (const auto& event : events) ids.insert(event["id"].get<std::string>());
  return ids;
}

using test_support::Eventually;
using test_support::NothingElseArrives;

class DurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(consul_.Start(), 0);
    for (int i = 1; i <= 3; ++i) Register("payments-" + std::to_string(i));
  }

  void Register(const std::string& id) {
    consul_.RegisterService(nlohmann::json{
        {"ID", id},
        {"Name", "payments"},
        {"Port", 8000},
        {"Check", {{"CheckID", "service:" + id}, {"TTL", "10m"}, {"Status", "passing"}}}});
  }

  // The common part of every config: Consul, state.dir and a log sink on
  // stdout that witnesses every event the bridge produced.
  std::string BaseConfig() const {
    std::ostringstream config;
    config << "consul: {address: " << consul_.address() << "}\n"
           << "state: {dir: " << state_dir_.path().string()
           << ", save_interval: 100ms, shutdown_timeout: 1s}\n"
           << "sinks:\n"
           << "  - name: witness\n"
           << "    type: log\n";
    return config.str();
  }
  std::string WebhookSink() const {
    return "  - name: ops-hooks\n"
           "    type: webhook\n"
           "    url: " +
           receiver_.url() +
           "\n"
           "    retry: {initial_backoff: 100ms, max_backoff: 500ms}\n";
  }

  std::unique_ptr<BridgeProcess> Start(const std::string& config) {
    auto bridge = std::make_unique<BridgeProcess>(kBridge, config);
    EXPECT_TRUE(bridge->ok()) << bridge->process().Stderr();
    return bridge;
  }

  // Each instance goes down, then up: 8 events per round (3 down, service
  // down, service up, 3 up). Each half waits for its 4 events on the
  // witness log sink, so the watch sees every state and none is merged
  // into the next.
  void Flap(BridgeProcess& bridge, int rounds) {
    std::size_t printed = JsonLines(bridge.process().Stdout()).size();
    for (int round = 0; round < rounds; ++round) {
      for (const char* status : {"critical", "passing"}) {
        for (int i = 1; i <= 3; ++i) {
          consul_.UpdateCheck("service:payments-" + std::to_string(i), status, "flap");
        }
        printed += 4;
        ASSERT_TRUE(Eventually(
            [&] { return JsonLines(bridge.process().Stdout()).size() >= printed; }, seconds(10)))
            << bridge.process().Stderr();
      }
    }
  }

  // Waits until `sink` holds `count` undelivered events (all spooled).
  static bool WaitForQueued(BridgeProcess& bridge, const std::string& sink, double count) {
    return Eventually(
        [&] {
          return bridge.Metric("health_bridge_sink_queue_depth", "sink=\"" + sink + "\"") == count;
        },
        seconds(20));
  }

  static std::set<std::string> AcceptedIds(const ScriptedHttpPeer& receiver) {
    std::set<std::string> ids;
    for (const auto& request : receiver.Accepted()) ids.insert(request.Header("webhook-id"));
    return ids;
  }

  test_support::TestDir state_dir_{"hb-durability"};
  test_support::ConsulTestServer consul_;
  ScriptedHttpPeer receiver_;
};

TEST_F(DurabilityTest, KillNineWhileTheWebhookIsDownLosesNoEvent) {
  receiver_.SetScript([](std::size_t, const ReceivedRequest&) { return Answer(503); });
  auto bridge = Start(BaseConfig() + WebhookSink());
  Flap(*bridge, 2);
  const auto produced = IdsOf(JsonLines(bridge->process().Stdout()));
  ASSERT_EQ(produced.size(), 16U) << bridge->process().Stderr();
  EXPECT_EQ(test_support::LogLinesSchemaViolations(bridge->process().Stdout()), "");
  ASSERT_TRUE(WaitForQueued(*bridge, "ops-hooks", 16)) << bridge->process().Stderr();
  bridge->Kill();

  receiver_.SetScript({});
  bridge = Start(BaseConfig() + WebhookSink());
  ASSERT_TRUE(
      Eventually([&] { return AcceptedIds(receiver_).size() >= produced.size(); }, seconds(20)))
      << bridge->process().Stderr();
  EXPECT_EQ(AcceptedIds(receiver_), produced) << "every event at least once, none invented";
  EXPECT_THAT(bridge->process().Stderr(), HasSubstr("16 undelivered events from the last run"));
  EXPECT_EQ(bridge->Stop(), 0);
}

TEST_F(DurabilityTest, KillNineWhileTheKafkaBrokerIsDownLosesNoEvent) {
  test_support::MockKafkaCluster kafka(1);
  kafka.CreateTopic(kTopic, 1);
  const std::string config = BaseConfig() +
                             "  - name: offline-topic\n"
                             "    type: kafka\n"
                             "    brokers: " +
                             kafka.bootstraps() + "\n    topic: " + kTopic +
                             "\n    retry: {initial_backoff: 100ms, max_backoff: 500ms}\n"
                             "    properties: {message.timeout.ms: 1000}\n";
  auto bridge = Start(config);
  kafka.SetBrokerDown(1);
  Flap(*bridge, 1);
  const auto produced = IdsOf(JsonLines(bridge->process().Stdout()));
  ASSERT_EQ(produced.size(), 8U) << bridge->process().Stderr();
  ASSERT_TRUE(WaitForQueued(*bridge, "offline-topic", 8)) << bridge->process().Stderr();
  bridge->Kill();

  kafka.SetBrokerUp(1);
  bridge = Start(config);
  test_support::TopicReader reader(kafka.bootstraps(), kTopic, 1);
  std::set<std::string> consumed;
  for (const auto& message : reader.ReadAtLeast(produced.size(), seconds(30))) {
    consumed.insert(nlohmann::json::parse(message.value)["id"].get<std::string>());
  }
  EXPECT_EQ(consumed, produced) << bridge->process().Stderr();
  EXPECT_EQ(bridge->Stop(), 0);
}

TEST_F(DurabilityTest, ARestartReportsExactlyWhatChangedWhileStoppedAsReconciled) {
  auto bridge = Start(BaseConfig());
  ASSERT_EQ(bridge->Stop(), 0) << bridge->process().Stderr();
  ASSERT_TRUE(std::filesystem::exists(state_dir_ / "state.json"));

  consul_.DeregisterService("payments-3");
  consul_.UpdateCheck("service:payments-2", "critical", "disk full");
  bridge = Start(BaseConfig());
  ASSERT_TRUE(
      Eventually([&] { return JsonLines(bridge->process().Stdout()).size() >= 3; }, seconds(10)));
  // Nothing else may follow: a live change after the restart (payments-1,
  // the last one passing, goes down) comes after anything the restart
  // could still report.
  consul_.UpdateCheck("service:payments-1", "critical", "marker");
  const auto lines = [&] { return JsonLines(bridge->process().Stdout()); };
  const auto is_marker = [](const nlohmann::json& event) {
    const auto& data = event.at("data");
    return data.value("instance_id", "") == "payments-1" &&
           data.value("event", "") == "instance.down" && !data.value("reconciled", true);
  };
  ASSERT_TRUE(NothingElseArrives(lines, is_marker, 3, seconds(10))) << bridge->process().Stdout();
  const auto before_marker = test_support::ArrivedBeforeMarker(lines, is_marker, seconds(10));
  ASSERT_TRUE(before_marker);
  std::vector<std::string> seen;
  EXPECT_EQ(test_support::LogLinesSchemaViolations(bridge->process().Stdout()), "");
  for (const auto& event : *before_marker) {
    EXPECT_TRUE(event["data"]["reconciled"].get<bool>()) << event.dump();
    seen.push_back(event["data"]["instance_id"].get<std::string>() + " " +
                   event["data"]["event"].get<std::string>());
  }
  EXPECT_THAT(
      seen, ::testing::UnorderedElementsAre("payments-2 instance.down", "payments-3 instance.down",
                                            "payments-3 instance.deregistered"));
  EXPECT_EQ(bridge->Stop(), 0);
}

TEST_F(DurabilityTest, DamagedSpoolAndStateFilesAreReportedAndTheRestIsDelivered) {
  receiver_.SetScript([](std::size_t, const ReceivedRequest&) { return Answer(503); });
  auto bridge = Start(BaseConfig() + WebhookSink());
  Flap(*bridge, 1);
  ASSERT_TRUE(WaitForQueued(*bridge, "ops-hooks", 8)) << bridge->process().Stderr();
  ASSERT_EQ(bridge->Stop(seconds(20)), 0);
  EXPECT_THAT(bridge->process().Stderr(), HasSubstr("stay in the spool for the next start"));

  // A crash mid-write tears the spool's tail; a flipped bit spoils the state.
  std::filesystem::path segment;
  for (const auto& entry :
       std::filesystem::directory_iterator(state_dir_ / "spool" / "ops-hooks")) {
    if (std::filesystem::file_size(entry.path()) > 0) segment = entry.path();
  }
  ASSERT_FALSE(segment.empty());
  std::filesystem::resize_file(segment, std::filesystem::file_size(segment) - 7);
  {
    std::fstream state(state_dir_ / "state.json", std::ios::in | std::ios::out | std::ios::binary);
    state.seekg(40);
    const char byte = static_cast<char>(state.get() ^ 0x10);
    state.seekp(40);
    state.put(byte);
  }

  receiver_.SetScript({});
  bridge = Start(BaseConfig() + WebhookSink());
  ASSERT_TRUE(receiver_.WaitForAccepted(7, seconds(20))) << bridge->process().Stderr();
  const std::string log = bridge->process().Stderr();
  EXPECT_THAT(log, HasSubstr("spool damaged"));
  EXPECT_THAT(log, HasSubstr("checksum mismatch"));
  EXPECT_THAT(log, HasSubstr("starting without it"));
  EXPECT_TRUE(std::filesystem::exists(state_dir_ / "state.json.corrupt"));
  EXPECT_GT(bridge->Metric("health_bridge_spool_dropped_bytes_total", "sink=\"ops-hooks\""), 0);
  EXPECT_EQ(bridge->Metric("health_bridge_state_dropped_total"), 1);
  EXPECT_EQ(bridge->Stop(), 0);
}

TEST_F(DurabilityTest, SighupAddsAndRemovesSinksAndKeepsRunningOnAnInvalidFile) {
  auto bridge = Start(BaseConfig());
  ASSERT_TRUE(bridge->Reload(BaseConfig() + WebhookSink())) << bridge->process().Stderr();
  consul_.UpdateCheck("service:payments-1", "critical", "added");
  ASSERT_TRUE(receiver_.WaitForAccepted(1, seconds(10))) << bridge->process().Stderr();

  EXPECT_FALSE(bridge->Reload(BaseConfig() + WebhookSink() + "    colour: blue\n"));
  EXPECT_THAT(bridge->process().Stderr(), HasSubstr("sinks[1].colour"));
  EXPECT_EQ(bridge->Metric("health_bridge_config_reloads_total", "result=\"failed\""), 1)
      << "a refused reload is counted";
  consul_.UpdateCheck("service:payments-1", "passing", "still configured");
  ASSERT_TRUE(receiver_.WaitForAccepted(2, seconds(10))) << bridge->process().Stderr();

  ASSERT_TRUE(bridge->Reload(BaseConfig())) << bridge->process().Stderr();
  // The reload shut the sink's worker down before it said done: an event
  // published after it has no way to the receiver.
  EXPECT_THAT(bridge->process().Stderr(), HasSubstr("reload: removing sink ops-hooks"));
  consul_.UpdateCheck("service:payments-1", "critical", "removed");
  ASSERT_TRUE(
      Eventually([&] { return JsonLines(bridge->process().Stdout()).size() >= 3; }, seconds(10)));
  EXPECT_EQ(receiver_.Accepted().size(), 2U) << "a removed sink gets nothing new";
  EXPECT_FALSE(std::filesystem::exists(state_dir_ / "spool" / "ops-hooks"));
  EXPECT_EQ(bridge->Stop(), 0);
}

TEST_F(DurabilityTest, SighupWithChangedSinkSettingsKeepsItsQueuedEvents) {
  receiver_.SetScript([](std::size_t, const ReceivedRequest&) { return Answer(503); });
  auto bridge = Start(BaseConfig() + WebhookSink());
  Flap(*bridge, 1);
  ASSERT_TRUE(WaitForQueued(*bridge, "ops-hooks", 8)) << bridge->process().Stderr();
  ScriptedHttpPeer healthy;
  std::string moved = BaseConfig() + WebhookSink();
  moved.replace(moved.find(receiver_.url()), receiver_.url().size(), healthy.url());
  ASSERT_TRUE(bridge->Reload(moved)) << bridge->process().Stderr();
  ASSERT_TRUE(healthy.WaitForAccepted(8, seconds(10))) << bridge->process().Stderr();
  std::set<std::string> ids;
  for (const auto& request : healthy.Accepted()) ids.insert(request.Header("webhook-id"));
  EXPECT_EQ(ids, IdsOf(JsonLines(bridge->process().Stdout())));
  EXPECT_EQ(bridge->Stop(), 0);
}

}  // namespace
}  // namespace hb
