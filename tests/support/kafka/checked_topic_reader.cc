#include "tests/support/kafka/checked_topic_reader.h"

#include <gtest/gtest.h>

#include "tests/support/schema/event_schema.h"

namespace hb::test_support {

std::string KafkaEventSchemaViolations(const std::vector<ConsumedMessage>& messages) {
  std::vector<std::string> structured;
  std::vector<std::string> binary;
  for (const ConsumedMessage& message : messages) {
    if (message.Header("content-type") == "application/cloudevents+json") {
      structured.push_back(message.value);
    } else if (!message.Header("ce_specversion").empty()) {
      binary.push_back(message.value);
    }
  }
  return EventSchemaViolations(structured) + EventSchemaViolations(binary, /*data_only=*/true);
}

namespace {

std::vector<ConsumedMessage> Checked(std::vector<ConsumedMessage> messages) {
  if (const std::string violations = KafkaEventSchemaViolations(messages); !violations.empty()) {
    ADD_FAILURE() << violations;
  }
  return messages;
}

}  // namespace

std::vector<ConsumedMessage> CheckedTopicReader::ReadAtLeast(std::size_t count,
                                                             std::chrono::milliseconds timeout) {
  return Checked(reader_.ReadAtLeast(count, timeout));
}

std::vector<ConsumedMessage> CheckedTopicReader::ReadFor(std::chrono::milliseconds quiet) {
  return Checked(reader_.ReadFor(quiet));
}

}  // namespace hb::test_support
