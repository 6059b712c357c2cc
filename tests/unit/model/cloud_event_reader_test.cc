#include "bridge/model/cloud_event_reader.h"

#include <gtest/gtest.h>

#include "bridge/model/cloud_event.h"
#include "tests/support/sample_events.h"

namespace hb {
namespace {

using test_support::InstanceEvent;

TEST(ReadCloudEventTest, WhatTheBridgeWroteReadsBackToTheSameText) {
  CloudEventOptions options;
  std::vector<Event> events;
  Event down = InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  down.reason = DownReason::kCritical;
  down.status = HealthStatus::kCritical;
  down.previous_status = HealthStatus::kPassing;
  down.tags = {"v2", "canary"};
  down.meta = {{"version", "2.4.1"}};
  down.checks.push_back({"service:payments-1", "Service TTL", HealthStatus::kCritical,
                         "TTL expired \"x\"\n", "", "payments-1", "ttl"});
  down.reconciled = true;
  events.push_back(down);
  events.push_back(InstanceEvent("p\r\nX-Injected: 1", EventType::kInstanceRegistered, 7));
  Event service;
  service.type = EventType::kServiceDown;
  service.service = "payments";
  service.datacenter = "dc1";
  service.id = "dc1/payments/9/service.down";
  service.instances_total = 3;
  service.consul_index = 9;
  service.time = std::chrono::system_clock::from_time_t(1764583200) + std::chrono::milliseconds(45);
  events.push_back(service);
  for (const Event& event : events) {
    const std::string text = SerializeCloudEvent(event, options);
    const auto read = ReadCloudEvent(text);
    ASSERT_TRUE(read.ok()) << read.status().ToString() << "\n" << text;
    EXPECT_EQ(SerializeCloudEvent(*read, options), text);
  }
}

TEST(ReadCloudEventTest, SaysWhichFieldIsWrong) {
  auto error = [](std::string_view text) {
    const auto read = ReadCloudEvent(text);
    return read.ok() ? std::string("(read)") : read.status().message();
  };
  EXPECT_EQ(error("[]"), "not a JSON object");
  EXPECT_EQ(error("{not json"), "not a JSON object");
  EXPECT_EQ(error(R"({"id":"a","time":"2026-01-01T00:00:00.000Z"})"), "data is missing");
  EXPECT_EQ(error(R"({"id":"a","time":"yesterday","data":{}})"), "time is not RFC 3339: yesterday");
  EXPECT_EQ(error(R"({"id":"a","time":"2026-01-01T00:00:00.000Z","data":{"event":"x.y"}})"),
            "data.event is not an event type");
  EXPECT_EQ(error(R"({"id":"a","time":"2026-01-01T00:00:00.000Z","data":{"event":"service.up",
                      "service":"s","datacenter":"d","consul_index":"9","reconciled":false,
                      "instances_up":1,"instances_total":1}})"),
            "data.consul_index is not a number");
}

}  // namespace
}  // namespace hb
