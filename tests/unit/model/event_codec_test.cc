#include "bridge/model/event_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/sample_events.h"

namespace hb {
namespace {

using ::testing::HasSubstr;

// Everything but observed_at, which belongs to the run that made the event.
void ExpectSameEvent(const Event& decoded, const Event& original) {
  Event expected = original;
  expected.observed_at = {};
  expected.time = std::chrono::time_point_cast<std::chrono::milliseconds>(original.time);
  const Event& actual = decoded;
  EXPECT_EQ(EncodeEvent(actual), EncodeEvent(expected));
  EXPECT_EQ(actual.checks, expected.checks);
  EXPECT_EQ(actual.time, expected.time);
  EXPECT_EQ(actual.reason, expected.reason);
  EXPECT_EQ(actual.previous_status, expected.previous_status);
}

TEST(EventCodecTest, InstanceEventsRoundTripWithEveryField) {
  Event event = test_support::InstanceEvent("payments-1", EventType::kInstanceDown, 2731);
  event.previous_status = HealthStatus::kPassing;
  event.reconciled = true;
  event.checks.push_back(
      {"serfHealth", "Serf Health Status", HealthStatus::kPassing, "Agent alive", "", "", ""});
  auto decoded = DecodeEvent(EncodeEvent(event));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSameEvent(*decoded, event);
  EXPECT_TRUE(decoded->reconciled);
  EXPECT_EQ(decoded->reason, DownReason::kCritical);
}

TEST(EventCodecTest, ServiceEventsRoundTripWithTheirCounts) {
  Event event;
  event.type = EventType::kServiceDown;
  event.id = "dc1/payments/9/service.down";
  event.datacenter = "dc1";
  event.service = "payments";
  event.instances_up = 0;
  event.instances_total = 3;
  event.consul_index = 9;
  event.silent = true;
  auto decoded = DecodeEvent(EncodeEvent(event));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSameEvent(*decoded, event);
  EXPECT_FALSE(decoded->IsInstanceEvent());
  EXPECT_EQ(decoded->instances_total, 3);
}

// A sink's max_age counts from when the event was queued, across restarts:
// the spool record carries that time; records written before it did still
// decode, without one.
TEST(EventCodecTest, TheQueuedTimeRoundTripsAndIsOptional) {
  const Event event = test_support::InstanceEvent("payments-1", EventType::kInstanceDown, 7);
  const WallTime queued{std::chrono::milliseconds(1795515303123)};
  std::optional<WallTime> read;
  auto decoded = DecodeEvent(EncodeEvent(event, queued), &read);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSameEvent(*decoded, event);
  EXPECT_EQ(read, queued);

  read = queued;
  decoded = DecodeEvent(EncodeEvent(event), &read);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(read, std::nullopt) << "a record of an older version";
  EXPECT_EQ(EncodeEvent(event).find("queued_ms"), std::string::npos);
  EXPECT_TRUE(DecodeEvent(EncodeEvent(event, queued)).ok()) << "the time is not required";
}

TEST(EventCodecTest, DamagedRecordsAreDataLossNamingTheField) {
  EXPECT_EQ(DecodeEvent("{\"type\":").status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(DecodeEvent(R"({"type":"instance.up","id":7})").status().message(),
              HasSubstr("'id'"));
  EXPECT_THAT(DecodeEvent(R"({"type":"instance.sideways"})").status().message(),
              HasSubstr("'type'"));
}

}  // namespace
}  // namespace hb
