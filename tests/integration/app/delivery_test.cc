// End to end through the health-bridge executable: Consul test server →
// bridge → Kafka (librdkafka's mock cluster, read by an independent
// consumer) and a webhook receiver, both fed by the same transitions.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::Answer;
using test_support::BridgeProcess;
using test_support::ConsumedMessage;
using test_support::ReceivedRequest;
using test_support::ScriptedHttpPeer;
using test_support::TopicReader;
using SteadyClock = std::chrono::steady_clock;

using test_support::kBridge;
constexpr char kTopic[] = "consul.health.events";
constexpr int kPartitions = 3;

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(consul_.Start(), 0);
    kafka_.CreateTopic(kTopic, kPartitions);
    for (int i = 1; i <= 3; ++i) Register("payments-" + std::to_string(i));
    std::ostringstream config;
    config << "consul: {address: " << consul_.address() << "}\n"
           << "sinks:\n"
           << "  - name: offline-topic\n"
           << "    type: kafka\n"
           << "    brokers: " << kafka_.bootstraps() << "\n"
           << "    topic: " << kTopic << "\n"
           << "  - name: ops-hooks\n"
           << "    type: webhook\n"
           << "    url: " << receiver_.url() << "\n"
           << "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
           << "    retry: {initial_backoff: 100ms, max_backoff: 1s}\n";
    bridge_ = std::make_unique<BridgeProcess>(kBridge, config.str());
    ASSERT_TRUE(bridge_->ok()) << bridge_->process().Stderr();
  }

  void TearDown() override {
    if (bridge_) {
      EXPECT_EQ(bridge_->Stop(), 0) << bridge_->process().Stderr();
    }
  }

  void Register(const std::string& id, const std::string& ttl = "30s") {
    consul_.RegisterService(nlohmann::json{
        {"ID", id},
        {"Name", "payments"},
        {"Port", 8000},
        {"Check", {{"CheckID", "service:" + id}, {"TTL", ttl}, {"Status", "passing"}}}});
  }

  static std::string IdOf(const std::string& cloud_event) {
    return nlohmann::json::parse(cloud_event)["id"];
  }

  test_support::ConsulTestServer consul_;
  test_support::MockKafkaCluster kafka_;
  ScriptedHttpPeer receiver_;
  std::unique_ptr<BridgeProcess> bridge_;
};

TEST_F(DeliveryTest, TtlExpiryReachesKafkaAndTheWebhookAsTheSameEvent) {
  TopicReader reader(kafka_.bootstraps(), kTopic, kPartitions);
  Register("payments-ttl", "1s");  // registered passing; nobody heartbeats it
  // instance.registered and instance.up, then the expiry's instance.down.
  ASSERT_TRUE(receiver_.WaitForAccepted(3, seconds(20))) << bridge_->process().Stderr();
  const auto expired_at = consul_.CriticalSince("service:payments-ttl");
  ASSERT_TRUE(expired_at);
  const ReceivedRequest hook = receiver_.Accepted().at(2);
  EXPECT_THAT(hook.body, ::testing::HasSubstr("\"event\":\"instance.down\""));

  std::vector<ConsumedMessage> messages = reader.ReadAtLeast(3, seconds(10));
  const auto consumed_at = SteadyClock::now();
  ASSERT_EQ(messages.size(), 3U);
  EXPECT_EQ(messages[2].key, "payments/payments-ttl");
  EXPECT_EQ(IdOf(messages[2].value), hook.Header("webhook-id")) << "one event, two sinks";
  EXPECT_EQ(IdOf(messages[2].value), IdOf(hook.body));

  // Recorded, not asserted: latency is the benchmarks' job (bench/, docs/
  // benchmarks.md), and a shared CI machine would make a bound here flaky.
  const auto webhook_latency = hook.arrived_at - *expired_at;
  const auto kafka_latency = consumed_at - *expired_at;  // an upper bound: read after the hook
  RecordProperty("webhook_latency_ms",
                 std::to_string(std::chrono::duration_cast<milliseconds>(webhook_latency).count()));
  RecordProperty("kafka_latency_ms",
                 std::to_string(std::chrono::duration_cast<milliseconds>(kafka_latency).count()));
}

TEST_F(DeliveryTest, EveryEventReachesAWebhookThatFailedForThirtySecondsInOrder) {
  TopicReader reader(kafka_.bootstraps(), kTopic, kPartitions);
  receiver_.SetScript([](std::size_t, const ReceivedRequest&) { return Answer(503); });
  const auto outage_end = SteadyClock::now() + seconds(30);

  // Each instance flaps a few times while the receiver is down. Each half
  // waits until Kafka has its events, so the watch saw every state.
  std::size_t expected = 0;
  std::vector<ConsumedMessage> from_kafka;
  const auto read_up_to_expected = [&] {
    const auto read = reader.ReadAtLeast(expected - from_kafka.size(), seconds(20));
    from_kafka.insert(from_kafka.end(), read.begin(), read.end());
    return from_kafka.size();
  };
  for (int round = 0; round < 3; ++round) {
    for (int i = 1; i <= 3; ++i) {
      consul_.UpdateCheck("service:payments-" + std::to_string(i), "critical", "flap");
    }
    expected += 4;  // three instance.down, then service.down
    ASSERT_EQ(read_up_to_expected(), expected) << bridge_->process().Stderr();
    for (int i = 1; i <= 3; ++i) {
      consul_.UpdateCheck("service:payments-" + std::to_string(i), "passing");
    }
    expected += 4;  // service.up with the first instance.up, then two more
    ASSERT_EQ(read_up_to_expected(), expected) << bridge_->process().Stderr();
  }
  EXPECT_TRUE(receiver_.Accepted().empty());

  std::this_thread::sleep_until(outage_end);
  EXPECT_GT(receiver_.RequestCount(), 3U) << "the sink kept probing during the outage";
  receiver_.SetScript({});
  ASSERT_TRUE(receiver_.WaitForAccepted(expected, seconds(20))) << bridge_->process().Stderr();

  // Kafka got every event as it happened: per key, the webhook must show
  // the same events in the same order, none lost, none twice.
  std::map<std::string, std::vector<std::string>> kafka_by_key;
  for (const auto& message : from_kafka) kafka_by_key[message.key].push_back(IdOf(message.value));
  std::map<std::string, std::vector<std::string>> hooks_by_key;
  for (const auto& request : receiver_.Accepted()) {
    const auto event = nlohmann::json::parse(request.body);
    hooks_by_key[event["partitionkey"]].push_back(event["id"]);
  }
  EXPECT_EQ(hooks_by_key, kafka_by_key);
}

}  // namespace
}  // namespace hb
