#pragma once

// Kafka peers for tests: librdkafka's mock cluster (a real Kafka protocol
// broker on loopback, with fault injection) and an independent consumer that
// reads back what a producer wrote.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hb::test_support {

struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* handle) const { rd_kafka_destroy(handle); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;

class MockKafkaCluster {
 public:
  explicit MockKafkaCluster(int brokers = 3);
  ~MockKafkaCluster();

  MockKafkaCluster(const MockKafkaCluster&) = delete;
  MockKafkaCluster& operator=(const MockKafkaCluster&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  std::string bootstraps() const;
  void CreateTopic(const std::string& topic, int partitions, int replication = 1);
  // Broker ids are 1..brokers.
  void SetBrokerDown(int broker);
  void SetBrokerUp(int broker);
  // Metadata answers for `topic` carry `error` (UNKNOWN_TOPIC_OR_PART: the
  // topic is missing, whatever auto-creation would do).
  void SetTopicError(const std::string& topic, rd_kafka_resp_err_t error);
  // The next requests of `api_key` (0 = Produce) fail with `errors`, in order.
  void PushRequestErrors(int16_t api_key, const std::vector<rd_kafka_resp_err_t>& errors);

 private:
  KafkaHandle owner_;  // the mock cluster lives inside this handle's lifetime
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  int brokers_;
};

struct ConsumedMessage {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::multimap<std::string, std::string> headers;

  std::string Header(const std::string& name) const;
};

// Reads `topic` from the beginning with its own librdkafka consumer;
// `settings` are consumer properties on top of librdkafka's defaults.
class TopicReader {
 public:
  TopicReader(const std::string& bootstraps, std::string topic, int partitions,
              const std::map<std::string, std::string>& settings = {});

  // Everything until `count` messages were read in all or `timeout` passed.
  std::vector<ConsumedMessage> ReadAtLeast(std::size_t count, std::chrono::milliseconds timeout);
  // Reads for `quiet` more and returns what arrived (to prove there are no
  // duplicates after the expected count).
  std::vector<ConsumedMessage> ReadFor(std::chrono::milliseconds quiet);

 private:
  KafkaHandle consumer_;
  std::string topic_;
};

}  // namespace hb::test_support
