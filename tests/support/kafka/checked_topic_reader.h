#pragma once

// A TopicReader that checks every message it reads against the event
// contract (docs/contract/events.schema.json), as the webhook receiver does
// for what it accepts: a structured message (content-type
// application/cloudevents+json) whole, a binary one (ce_specversion header)
// by its data. A violation fails the running test.

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/kafka/mock_kafka.h"

namespace hb::test_support {

// "" when every event among `messages` keeps the contract, else the
// validator's findings. Messages that are no CloudEvent are skipped.
std::string KafkaEventSchemaViolations(const std::vector<ConsumedMessage>& messages);

class CheckedTopicReader {
 public:
  CheckedTopicReader(const std::string& bootstraps, std::string topic, int partitions,
                     const std::map<std::string, std::string>& settings = {})
      : reader_(bootstraps, std::move(topic), partitions, settings) {}

  std::vector<ConsumedMessage> ReadAtLeast(std::size_t count, std::chrono::milliseconds timeout);
  std::vector<ConsumedMessage> ReadFor(std::chrono::milliseconds quiet);

 private:
  TopicReader reader_;
};

}  // namespace hb::test_support
