// The Kafka sink against a real Apache Kafka broker (single-node KRaft on
// loopback, tests/support/kafka/kafka_broker.h): what librdkafka's mock
// cluster cannot show, namely real restarts, SASL/SCRAM and ACLs. One broker
// serves every test of this binary; each test has topics of its own.

#include "tests/support/kafka/kafka_broker.h"

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bridge/router/sink_worker.h"
#include "sinks/kafka/kafka_sink.h"
#include "tests/support/kafka/checked_topic_reader.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using test_support::ConsumedMessage;
using test_support::InstanceEvent;
using test_support::KafkaBroker;
using test_support::Shared;
// Every event read is checked against the event contract.
using TopicReader = test_support::CheckedTopicReader;

constexpr int kPartitions = 3;
constexpr char kUser[] = "bridge";
constexpr char kPassword[] = "bridge-secret";
// Measured here: format and start took 5.4 to 6.6 s on two cores at a load
// average of 10 to 13 (the whole binary: about 90 s, the 30 s outage
// included); the margin is for a slower CI machine.
constexpr seconds kBrokerStartTimeout{120};

// The broker of this binary, started before the first test. When it cannot
// start (no jars: scripts/bootstrap was not run, or Java is missing) the
// environment fails, gtest runs no test and the binary fails with the
// reason: never a silent skip.
class BrokerEnvironment : public ::testing::Environment {
 public:
  static KafkaBroker& Broker() { return *broker_; }

  void SetUp() override {
    const auto started = steady_clock::now();
    try {
      KafkaBroker::Options options;
      options.scram_users = {{kUser, kPassword}};
      options.authorizer = true;
      broker_ = std::make_unique<KafkaBroker>(options);
    } catch (const std::exception& error) {
      GTEST_FAIL() << "the Kafka broker did not start: " << error.what();
    }
    ASSERT_TRUE(broker_->WaitReady(kBrokerStartTimeout))
        << "the Kafka broker did not become ready:\n"
        << broker_->Log();
    std::cout << "Kafka broker ready in "
              << std::chrono::duration_cast<milliseconds>(steady_clock::now() - started).count()
              << " ms (format and start)\n";
  }

  void TearDown() override { broker_.reset(); }

 private:
  static inline std::unique_ptr<KafkaBroker> broker_;
};

[[maybe_unused]] ::testing::Environment* const kBrokerEnvironment =
    ::testing::AddGlobalTestEnvironment(new BrokerEnvironment);

class KafkaBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A test that restarted the broker leaves it running; one that failed
    // half-way may not have.
    broker().Start();
    ASSERT_TRUE(broker().WaitReady(kBrokerStartTimeout)) << broker().Log();
    topic_ = std::string("hb.") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  static KafkaBroker& broker() { return BrokerEnvironment::Broker(); }

  KafkaSinkSettings Settings(std::map<std::string, std::string> properties = {}) const {
    KafkaSinkSettings settings;
    settings.brokers = broker().bootstraps();
    settings.topic = topic_;
    settings.properties = std::move(properties);
    return settings;
  }

  // Through the SASL_PLAINTEXT listener as kUser, configured the way a
  // user configures it: the sink's `properties`.
  KafkaSinkSettings SaslSettings(std::map<std::string, std::string> properties = {}) const {
    KafkaSinkSettings settings = Settings(std::move(properties));
    settings.brokers = broker().sasl_bootstraps();
    settings.properties.insert({{"security.protocol", "SASL_PLAINTEXT"},
                                {"sasl.mechanisms", "SCRAM-SHA-256"},
                                {"sasl.username", kUser},
                                {"sasl.password", kPassword}});
    return settings;
  }

  std::unique_ptr<KafkaSink> NewSink(const KafkaSinkSettings& settings) {
    auto sink = KafkaSink::Create("events", settings, CloudEventOptions{});
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return std::move(sink).value();
  }

  // The router's path: a worker with fast retries in front of the sink.
  std::unique_ptr<SinkWorker> NewWorker(const KafkaSinkSettings& settings) {
    SinkWorkerOptions options;
    options.retry.initial_backoff = milliseconds(200);
    options.retry.max_backoff = seconds(1);
    return std::make_unique<SinkWorker>(options, NewSink(settings), storage_, clock_, nullptr);
  }

  TopicReader Reader() const { return TopicReader(broker().bootstraps(), topic_, kPartitions); }

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

  // What is read until `count` arrived, plus a quiet while to catch
  // duplicates behind them.
  static std::vector<ConsumedMessage> ReadAllOf(TopicReader& reader, std::size_t count,
                                                seconds timeout) {
    auto consumed = reader.ReadAtLeast(count, timeout);
    const auto extra = reader.ReadFor(seconds(2));
    consumed.insert(consumed.end(), extra.begin(), extra.end());
    return consumed;
  }

  std::string topic_;
  SystemClock clock_;
  SinkStorage storage_{DeadLetterFile::Open("events", "",
                                            [](const Event& event) {
                                              return nlohmann::json{{"id", event.id}}.dump();
                                            })
                           .value(),
                       nullptr};
};

TEST_F(KafkaBrokerTest, StructuredModeDeliversEachEventKeyedByInstance) {
  broker().CreateTopic(topic_, kPartitions);
  const auto events = Transitions();
  auto worker = NewWorker(Settings());
  for (const auto& event : events) ASSERT_TRUE(worker->Enqueue(event));

  TopicReader reader = Reader();
  const auto consumed = ReadAllOf(reader, events.size(), seconds(30));
  ExpectExactlyOnceInOrder(events, consumed);
  std::map<std::string, EventPtr> by_id;
  for (const auto& event : events) by_id[event->id] = event;
  std::map<std::string, std::set<int32_t>> partitions_by_key;
  for (const auto& message : consumed) {
    const Event& event = *by_id.at(nlohmann::json::parse(message.value)["id"]);
    EXPECT_EQ(message.key, "payments/" + event.instance_id);
    EXPECT_EQ(message.Header("content-type"), "application/cloudevents+json");
    EXPECT_EQ(message.value, SerializeCloudEvent(event, CloudEventOptions{}));
    partitions_by_key[message.key].insert(message.partition);
  }
  // The key is what keeps an instance's events in order: one partition each.
  for (const auto& [key, partitions] : partitions_by_key) EXPECT_EQ(partitions.size(), 1U) << key;
  EXPECT_EQ(worker->Shutdown(seconds(5)), 0U);
}

TEST_F(KafkaBrokerTest, BinaryModeCarriesAttributesAsCeHeadersAndDataAsTheValue) {
  broker().CreateTopic(topic_, kPartitions);
  KafkaSinkSettings settings = Settings();
  settings.mode = "binary";
  const Event event = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  auto sink = NewSink(settings);
  std::vector<EventPtr> batch{Shared(event)};
  std::vector<DeliveryResult> results(1);
  sink->Deliver(batch, results);
  ASSERT_EQ(results[0].kind, DeliveryResult::Kind::kOk) << results[0].error;

  TopicReader reader = Reader();
  const auto consumed = ReadAllOf(reader, 1, seconds(30));
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

TEST_F(KafkaBrokerTest, IdempotentProducerWithAcksAllWritesEachEventOnceInOrder) {
  broker().CreateTopic(topic_, kPartitions);
  // Spelled out as a user would; they are the sink's defaults as well.
  auto worker = NewWorker(Settings({{"enable.idempotence", "true"}, {"acks", "all"}}));
  std::vector<EventPtr> events;
  for (std::uint64_t round = 0; round < 50; ++round) {
    const auto batch = Transitions(10 + round * 10);
    events.insert(events.end(), batch.begin(), batch.end());
  }
  for (const auto& event : events) ASSERT_TRUE(worker->Enqueue(event));

  TopicReader reader = Reader();
  const auto consumed = ReadAllOf(reader, events.size(), seconds(60));
  ExpectExactlyOnceInOrder(events, consumed);
  // No gap and no duplicate in any partition's log.
  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const auto& message : consumed) offsets[message.partition].push_back(message.offset);
  for (const auto& [partition, list] : offsets) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      EXPECT_EQ(list[i], static_cast<int64_t>(i)) << "partition " << partition;
    }
  }
  EXPECT_EQ(worker->Shutdown(seconds(5)), 0U);
}

TEST_F(KafkaBrokerTest, BrokerRestartLosesAndDuplicatesNothing) {
  broker().CreateTopic(topic_, kPartitions);
  auto worker = NewWorker(Settings({{"message.timeout.ms", "5000"}}));
  const auto before = Transitions(10);
  for (const auto& event : before) ASSERT_TRUE(worker->Enqueue(event));
  TopicReader reader = Reader();
  auto consumed = reader.ReadAtLeast(before.size(), seconds(30));
  ASSERT_EQ(consumed.size(), before.size());

  // Events keep coming while the broker shuts down and starts again.
  const auto during_stop = Transitions(100);
  for (const auto& event : during_stop) ASSERT_TRUE(worker->Enqueue(event));
  broker().Stop();
  const auto while_stopped = Transitions(200);
  for (const auto& event : while_stopped) ASSERT_TRUE(worker->Enqueue(event));
  broker().Start();
  ASSERT_TRUE(broker().WaitReady(kBrokerStartTimeout)) << broker().Log();

  std::vector<EventPtr> all = before;
  all.insert(all.end(), during_stop.begin(), during_stop.end());
  all.insert(all.end(), while_stopped.begin(), while_stopped.end());
  const auto after = ReadAllOf(reader, all.size() - consumed.size(), seconds(60));
  consumed.insert(consumed.end(), after.begin(), after.end());
  ExpectExactlyOnceInOrder(all, consumed);
  EXPECT_EQ(worker->Shutdown(seconds(10)), 0U);
}

TEST_F(KafkaBrokerTest, BrokerDownForThirtySecondsLosesNothingAndKeepsEachInstancesOrder) {
  broker().CreateTopic(topic_, kPartitions);
  // A message timeout well below the outage: librdkafka gives up on the
  // messages several times over, and the router's retries keep them.
  auto worker = NewWorker(Settings({{"message.timeout.ms", "5000"}}));
  const auto before = Transitions(10);
  for (const auto& event : before) ASSERT_TRUE(worker->Enqueue(event));
  TopicReader reader = Reader();
  auto consumed = reader.ReadAtLeast(before.size(), seconds(30));
  ASSERT_EQ(consumed.size(), before.size());

  broker().Stop();
  // Transitions arrive all through the outage (every 10 s, as instances
  // keep failing); the outage is the condition under test, so its length
  // is a duration, not a wait for something.
  const auto outage_end = steady_clock::now() + seconds(30);
  std::vector<EventPtr> during;
  for (std::uint64_t round = 0; round < 3; ++round) {
    const auto batch = Transitions(100 + round * 10);
    for (const auto& event : batch) ASSERT_TRUE(worker->Enqueue(event));
    during.insert(during.end(), batch.begin(), batch.end());
    std::this_thread::sleep_until(std::min(outage_end, steady_clock::now() + seconds(10)));
  }
  std::this_thread::sleep_until(outage_end);
  EXPECT_GT(worker->QueueDepth(), 0U) << "nothing held during the outage?";
  broker().Start();
  ASSERT_TRUE(broker().WaitReady(kBrokerStartTimeout)) << broker().Log();

  const auto after = ReadAllOf(reader, during.size(), seconds(60));
  consumed.insert(consumed.end(), after.begin(), after.end());
  std::vector<EventPtr> all = before;
  all.insert(all.end(), during.begin(), during.end());
  ExpectExactlyOnceInOrder(all, consumed);
  EXPECT_EQ(worker->Shutdown(seconds(10)), 0U);
}

TEST_F(KafkaBrokerTest, SaslScramThroughPropertiesDelivers) {
  broker().CreateTopic(topic_, kPartitions);
  broker().AllowOnTopic(kUser, topic_, RD_KAFKA_ACL_OPERATION_DESCRIBE);
  broker().AllowOnTopic(kUser, topic_, RD_KAFKA_ACL_OPERATION_WRITE);
  const auto events = Transitions();
  // Through the worker: the broker applies a new ACL a moment after
  // accepting it, and a first denial is retried like any other.
  auto worker = NewWorker(SaslSettings());
  for (const auto& event : events) ASSERT_TRUE(worker->Enqueue(event));

  TopicReader reader = Reader();
  ExpectExactlyOnceInOrder(events, ReadAllOf(reader, events.size(), seconds(30)));
  EXPECT_EQ(worker->Shutdown(seconds(5)), 0U);
}

TEST_F(KafkaBrokerTest, WrongScramPasswordIsReportedAsRefusedCredentials) {
  broker().CreateTopic(topic_, kPartitions);
  KafkaSinkSettings settings = SaslSettings({{"message.timeout.ms", "5000"}});
  settings.properties["sasl.password"] = "not-the-password";
  auto sink = NewSink(settings);
  std::vector<EventPtr> batch{Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 7))};
  std::vector<DeliveryResult> results(1);
  sink->Deliver(batch, results);
  EXPECT_EQ(results[0].kind, DeliveryResult::Kind::kRetry);
  // librdkafka only says the message timed out; the sink adds why.
  EXPECT_EQ(results[0].error,
            "not acknowledged within message.timeout.ms; last error: the brokers refused the "
            "credentials of User:bridge: check properties sasl.username, sasl.password and "
            "sasl.mechanisms");
}

TEST_F(KafkaBrokerTest, MissingTopicIsAClearRetriableError) {
  // Never created, and the broker does not auto-create topics.
  auto sink = NewSink(
      Settings({{"message.timeout.ms", "5000"}, {"topic.metadata.propagation.max.ms", "1000"}}));
  std::vector<EventPtr> batch{Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 7))};
  std::vector<DeliveryResult> results(1);
  sink->Deliver(batch, results);
  EXPECT_EQ(results[0].kind, DeliveryResult::Kind::kRetry);
  EXPECT_EQ(results[0].error, "topic \"" + topic_ +
                                  "\" does not exist in the cluster: create it, or let the "
                                  "brokers auto-create topics");
}

TEST_F(KafkaBrokerTest, TopicWithoutWriteAclIsAClearRetriableError) {
  // The user may write elsewhere (so it gets a producer id) and may see
  // this topic, but not write to it.
  const std::string writable = topic_ + ".writable";
  broker().CreateTopic(writable, 1);
  broker().AllowOnTopic(kUser, writable, RD_KAFKA_ACL_OPERATION_WRITE);
  broker().CreateTopic(topic_, kPartitions);
  broker().AllowOnTopic(kUser, topic_, RD_KAFKA_ACL_OPERATION_DESCRIBE);
  auto sink = NewSink(SaslSettings({{"message.timeout.ms", "5000"}}));
  std::vector<EventPtr> batch{Shared(InstanceEvent("payments-1", EventType::kInstanceDown, 7))};
  std::vector<DeliveryResult> results(1);
  sink->Deliver(batch, results);
  // Retried: granting the ACL fixes it without restarting the bridge.
  EXPECT_EQ(results[0].kind, DeliveryResult::Kind::kRetry);
  EXPECT_NE(
      results[0].error.find("the brokers deny User:bridge writing to topic \"" + topic_ + "\""),
      std::string::npos)
      << results[0].error;

  TopicReader reader = Reader();
  EXPECT_TRUE(reader.ReadFor(seconds(2)).empty()) << "a denied write landed";
}

}  // namespace
}  // namespace hb
