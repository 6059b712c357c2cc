// The Kafka sink against librdkafka's mock cluster (a real Kafka protocol
// broker on loopback), read back by an independent consumer.

#include "sinks/kafka/kafka_sink.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>

#include "bridge/router/sink_worker.h"
#include "tests/support/eventually.h"
#include "tests/support/kafka/checked_topic_reader.h"
#include "tests/support/kafka/mock_kafka.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::ConsumedMessage;
using test_support::Eventually;
using test_support::InstanceEvent;
using test_support::MockKafkaCluster;
using test_support::Shared;
// Every event read is checked against the event contract.
using TopicReader = test_support::CheckedTopicReader;

constexpr char kTopic[] = "consul.health.events";
constexpr int kPartitions = 3;
constexpr int16_t kProduceApi = 0;

// The Kafka sink as its worker drives it, for tests that wait until a
// delivery is under way or has failed instead of sleeping.
class WatchedSink final : public Sink {
 public:
  explicit WatchedSink(SinkPtr sink) : sink_(std::move(sink)) {}

  std::string_view Name() const override { return sink_->Name(); }
  std::size_t MaxBatch() const override { return sink_->MaxBatch(); }
  void Deliver(std::span<const EventPtr> events,
               std::span<DeliveryResult> results) noexcept override {
    delivering_ = true;
    sink_->Deliver(events, results);
    for (const auto& result : results) {
      if (result.kind == DeliveryResult::Kind::kRetry) retried_.fetch_add(1);
    }
  }
  bool Shutdown(std::chrono::milliseconds timeout) noexcept override {
    return sink_->Shutdown(timeout);
  }
  void Interrupt() noexcept override { sink_->Interrupt(); }

  // A Deliver() call has started (and may be waiting for acknowledgements).
  bool delivering() const { return delivering_.load(); }
  // Events the sink handed back to be retried so far.
  std::size_t retried() const { return retried_.load(); }

 private:
  const SinkPtr sink_;
  std::atomic<bool> delivering_{false};
  std::atomic<std::size_t> retried_{0};
};

class KafkaSinkTest : public ::testing::Test {
 protected:
  explicit KafkaSinkTest(int brokers = 3) : cluster_(brokers) {
    cluster_.CreateTopic(kTopic, kPartitions);
  }

  KafkaSinkSettings Settings(std::map<std::string, std::string> properties = {}) const {
    KafkaSinkSettings settings;
    settings.brokers = cluster_.bootstraps();
    settings.topic = kTopic;
    settings.properties = std::move(properties);
    return settings;
  }

  std::unique_ptr<KafkaSink> NewSink(const KafkaSinkSettings& settings) {
    auto sink = KafkaSink::Create("offline-topic", settings, CloudEventOptions{});
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return std::move(sink).value();
  }

  // The router's path: a worker with fast retries in front of the sink.
  // `watch`, when given, is pointed at the sink as the worker sees it.
  std::unique_ptr<SinkWorker> NewWorker(const KafkaSinkSettings& settings,
                                        WatchedSink** watch = nullptr) {
    SinkWorkerOptions options;
    options.retry.initial_backoff = milliseconds(200);
    options.retry.max_backoff = seconds(1);
    SinkPtr sink = NewSink(settings);
    if (watch != nullptr) {
      auto watched = std::make_unique<WatchedSink>(std::move(sink));
      *watch = watched.get();
      sink = std::move(watched);
    }
    return std::make_unique<SinkWorker>(options, std::move(sink), storage_, clock_, nullptr);
  }

  // Four transitions for each of three instances, in per-instance order.
  static std::vector<EventPtr> Transitions(std::uint64_t first_index = 10) {
    std::vector<EventPtr> events;
    const EventType cycle[] = {EventType::kInstanceRegistered, EventType::kInstanceUp,
                               EventType::kInstanceDown, EventType::kInstanceUp};
    for (std::uint64_t step = 0; step < 4; ++step) {
      for (const char* instance : {"payments-1", "payments-2", "payments-3"}) {
        events.push_back(Shared(InstanceEvent(instance, cycle[step], first_index + step)));
      }
    }
    return events;
  }

  // Every event exactly once, and each key's events in publication order.
  static void ExpectExactlyOnceInOrder(const std::vector<EventPtr>& published,
                                       const std::vector<ConsumedMessage>& consumed) {
    std::map<std::string, std::vector<std::string>> expected_by_key;
    for (const auto& event : published) expected_by_key[event->Subject()].push_back(event->id);
    std::map<std::string, std::vector<std::string>> consumed_by_key;
    for (const auto& message : consumed) {
      consumed_by_key[message.key].push_back(nlohmann::json::parse(message.value)["id"]);
    }
    EXPECT_EQ(consumed_by_key, expected_by_key);
  }

  SystemClock clock_;
  SinkStorage storage_{DeadLetterFile::Open("offline-topic", "",
                                            [](const Event& event) {
                                              return nlohmann::json{{"id", event.id}}.dump();
                                            })
                           .value(),
                       nullptr};
  MockKafkaCluster cluster_;
};

class SingleBrokerKafkaSinkTest : public KafkaSinkTest {
 protected:
  SingleBrokerKafkaSinkTest() : KafkaSinkTest(1) {}
};

TEST_F(KafkaSinkTest, StructuredModeKeysByInstanceAndCarriesTheCloudEvent) {
  const auto events = Transitions();
  auto worker = NewWorker(Settings());
  for (const auto& event : events) ASSERT_TRUE(worker->Enqueue(event));

  TopicReader reader(cluster_.bootstraps(), kTopic, kPartitions);
  const auto consumed = reader.ReadAtLeast(events.size(), seconds(20));
  ASSERT_EQ(consumed.size(), events.size());
  ExpectExactlyOnceInOrder(events, consumed);

  std::map<std::string, EventPtr> by_id;
  for (const auto& event : events) by_id[event->id] = event;
  for (const auto& message : consumed) {
    const auto body = nlohmann::json::parse(message.value);
    const Event& event = *by_id.at(body["id"]);
    EXPECT_EQ(message.key, "payments/" + event.instance_id);
    EXPECT_EQ(message.Header("content-type"), "application/cloudevents+json");
    EXPECT_EQ(message.value, SerializeCloudEvent(event, CloudEventOptions{}));
    EXPECT_EQ(body["data"]["event"], ToString(event.type));
  }
  EXPECT_EQ(worker->Shutdown(seconds(5)), 0U);
}

TEST_F(KafkaSinkTest, BinaryModeSendsAttributesAsCeHeadersAndDataAsTheValue) {
  KafkaSinkSettings settings = Settings();
  settings.mode = "binary";
  const Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  auto sink = NewSink(settings);
  std::vector<EventPtr> batch{Shared(event)};
  std::vector<DeliveryResult> results(1);
  sink->Deliver(batch, results);
  ASSERT_EQ(results[0].kind, DeliveryResult::Kind::kOk) << results[0].error;

  TopicReader reader(cluster_.bootstraps(), kTopic, kPartitions);
  const auto consumed = reader.ReadAtLeast(1, seconds(20));
  ASSERT_EQ(consumed.size(), 1U);
  const ConsumedMessage& message = consumed[0];
  EXPECT_EQ(message.key, "payments/payments-1");
  EXPECT_EQ(message.Header("ce_specversion"), "1.0");
  EXPECT_EQ(message.Header("ce_id"), event.id);
  EXPECT_EQ(message.Header("ce_type"), "io.healthbridge.instance.down");
  EXPECT_EQ(message.Header("ce_source"), "consul://dc1");
  EXPECT_EQ(message.Header("ce_subject"), "payments/payments-1");
  EXPECT_EQ(message.Header("ce_partitionkey"), "payments/payments-1");
  EXPECT_FALSE(message.Header("ce_time").empty());
  EXPECT_EQ(message.Header("content-type"), "application/json");
  EXPECT_EQ(message.headers.count("ce_datacontenttype"), 0U);
  EXPECT_EQ(nlohmann::json::parse(message.value), CloudEventData(event, CloudEventOptions{}));
}

TEST_F(SingleBrokerKafkaSinkTest, BrokerDownPastTheMessageTimeoutLosesAndDuplicatesNothing) {
  // A short message timeout makes the outage outlast librdkafka's own
  // retries, so the router's backoff has to keep the events.
  WatchedSink* sink = nullptr;
  auto worker = NewWorker(Settings({{"message.timeout.ms", "2000"}}), &sink);
  const auto before = Transitions(10);
  for (const auto& event : before) ASSERT_TRUE(worker->Enqueue(event));
  TopicReader reader(cluster_.bootstraps(), kTopic, kPartitions);
  auto consumed = reader.ReadAtLeast(before.size(), seconds(20));
  ASSERT_EQ(consumed.size(), before.size());

  cluster_.SetBrokerDown(1);
  const auto during = Transitions(100);
  for (const auto& event : during) ASSERT_TRUE(worker->Enqueue(event));
  // The outage lasts until librdkafka has given up on a batch and the
  // router holds its events for a retry.
  ASSERT_TRUE(Eventually([&] { return sink->retried() > 0; }, seconds(20)));
  // The mock broker drops its connections asynchronously: a message produced
  // in that moment may still land, but the outage must have held the rest.
  EXPECT_GT(worker->QueueDepth(), during.size() / 2) << "was the broker down at all?";
  cluster_.SetBrokerUp(1);

  auto after = reader.ReadAtLeast(during.size(), seconds(30));
  const auto extra = reader.ReadFor(seconds(2));
  after.insert(after.end(), extra.begin(), extra.end());
  consumed.insert(consumed.end(), after.begin(), after.end());
  std::vector<EventPtr> all = before;
  all.insert(all.end(), during.begin(), during.end());
  ExpectExactlyOnceInOrder(all, consumed);
  EXPECT_EQ(worker->Shutdown(seconds(5)), 0U);
}

TEST_F(SingleBrokerKafkaSinkTest, ShutdownWithTheClusterDownEndsInTimeAndKeepsTheEvents) {
  cluster_.SetBrokerDown(1);
  WatchedSink* sink = nullptr;
  auto worker = NewWorker(Settings(), &sink);  // message.timeout.ms: the default 30 s
  const auto events = Transitions();
  for (const auto& event : events) ASSERT_TRUE(worker->Enqueue(event));
  // A batch is waiting for acknowledgements that cannot come.
  ASSERT_TRUE(Eventually([&] { return sink->delivering(); }, seconds(10)));

  // Every event is accounted for: dead-lettered, since none was delivered.
  EXPECT_EQ(worker->Shutdown(seconds(1)), events.size());
}

TEST_F(KafkaSinkTest, InjectedProduceErrorsAreRetriedWithoutLossOrDuplicates) {
  cluster_.PushRequestErrors(
      kProduceApi, {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE});
  const auto events = Transitions();
  auto worker = NewWorker(Settings());
  for (const auto& event : events) ASSERT_TRUE(worker->Enqueue(event));

  TopicReader reader(cluster_.bootstraps(), kTopic, kPartitions);
  auto consumed = reader.ReadAtLeast(events.size(), seconds(30));
  const auto extra = reader.ReadFor(seconds(2));
  consumed.insert(consumed.end(), extra.begin(), extra.end());
  ExpectExactlyOnceInOrder(events, consumed);
  EXPECT_EQ(worker->Shutdown(seconds(5)), 0U);
}

TEST_F(KafkaSinkTest, MissingTopicIsAClearRetriableError) {
  cluster_.SetTopicError("no-such-topic", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  KafkaSinkSettings settings =
      Settings({{"message.timeout.ms", "5000"}, {"topic.metadata.propagation.max.ms", "500"}});
  settings.topic = "no-such-topic";
  auto sink = NewSink(settings);
  std::vector<EventPtr> batch{Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 7))};
  std::vector<DeliveryResult> results(1);
  sink->Deliver(batch, results);
  EXPECT_EQ(results[0].kind, DeliveryResult::Kind::kRetry);
  EXPECT_NE(results[0].error.find("topic \"no-such-topic\" does not exist"), std::string::npos)
      << results[0].error;
}

TEST(KafkaSinkCreateTest, ConflictingPropertiesFailWithLibrdkafkasReason) {
  KafkaSinkSettings settings;
  settings.brokers = "127.0.0.1:1";
  settings.topic = "t";
  settings.properties = {{"acks", "1"}};  // the idempotent producer needs acks=all
  auto sink = KafkaSink::Create("offline-topic", settings, CloudEventOptions{});
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("offline-topic"), std::string::npos);
  EXPECT_NE(sink.status().message().find("acks"), std::string::npos) << sink.status().message();
}

}  // namespace
}  // namespace hb
