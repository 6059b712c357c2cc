// The write-ahead of unacknowledged events: its encoding in Consul KV
// (round trip, the byte cap keeping the newest, strict decoding) and the
// ledger's list of what is unacknowledged, trimmed as the sinks
// acknowledge and capped in bytes per service.

#include "bridge/cluster/pending_events.h"

#include <gtest/gtest.h>

#include "bridge/cluster/handover_ledger.h"
#include "bridge/model/event_codec.h"
#include "tests/unit/cluster/handover_events.h"

namespace hb {
namespace {

using test_support::InstanceEvent;
using test_support::UpState;

std::vector<std::string> Ids(const std::vector<Event>& events) {
  std::vector<std::string> ids;
  for (const Event& event : events) ids.push_back(event.id);
  return ids;
}

TEST(PendingEventsTest, KeyEncodesTheServiceIntoOneSegment) {
  EXPECT_EQ(PendingEventsKey("hb", "pay/ments"), "hb/pending/pay%2Fments");
}

TEST(PendingEventsTest, RoundTripsEveryEventWithItsId) {
  const Event down = InstanceEvent(EventType::kInstanceDown, "p-1", HealthStatus::kCritical, 9);
  const Event up = InstanceEvent(EventType::kInstanceUp, "p-1", HealthStatus::kPassing, 12);
  const PendingEventsValue value = EncodePendingEvents({EncodeEvent(down), EncodeEvent(up)});
  EXPECT_EQ(value.kept, 2u);
  EXPECT_EQ(value.left_out, 0u);
  auto decoded = DecodePendingEvents(value.value);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ(Ids(*decoded), (std::vector<std::string>{down.id, up.id}));
  EXPECT_EQ((*decoded)[0].type, EventType::kInstanceDown);
  EXPECT_EQ((*decoded)[1].status, HealthStatus::kPassing);
  EXPECT_EQ((*decoded)[1].consul_index, 12u);
  EXPECT_EQ((*decoded)[1].epoch, 7u);
}

TEST(PendingEventsTest, AnEmptyListRoundTrips) {
  const PendingEventsValue value = EncodePendingEvents({});
  auto decoded = DecodePendingEvents(value.value);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->empty());
}

TEST(PendingEventsTest, TheCapKeepsTheNewestAndCountsTheOthers) {
  std::vector<std::string> encoded;
  for (std::uint64_t i = 1; i <= 10; ++i) {
    encoded.push_back(
        EncodeEvent(InstanceEvent(EventType::kInstanceUp, "p-1", HealthStatus::kPassing, i)));
  }
  // Room for the wrapper and three events.
  const std::size_t limit = 32 + 3 * (encoded.back().size() + 1);
  const PendingEventsValue value = EncodePendingEvents(encoded, limit);
  EXPECT_LE(value.value.size(), limit);
  EXPECT_EQ(value.kept + value.left_out, 10u);
  EXPECT_GE(value.kept, 3u);
  auto decoded = DecodePendingEvents(value.value);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ASSERT_EQ(decoded->size(), value.kept);
  EXPECT_EQ(decoded->back().consul_index, 10u);  // the newest is kept
  EXPECT_EQ(decoded->front().consul_index, value.left_out + 1);

  // Nothing fits: an empty list, every event counted.
  const PendingEventsValue none = EncodePendingEvents(encoded, 20);
  EXPECT_EQ(none.kept, 0u);
  EXPECT_EQ(none.left_out, 10u);
  ASSERT_TRUE(DecodePendingEvents(none.value).ok());
}

TEST(PendingEventsTest, DecodingRefusesWhatIsNotAWriteAheadNamingWhy) {
  const auto why = [](std::string_view value) {
    auto decoded = DecodePendingEvents(value);
    return decoded.ok() ? std::string("ok") : decoded.status().message();
  };
  EXPECT_NE(why("not json").find("not a JSON object"), std::string::npos);
  EXPECT_NE(why(R"({"v":2,"events":[]})").find("\"v\" must be 1"), std::string::npos);
  EXPECT_NE(why(R"({"v":1})").find("\"events\" must be an array"), std::string::npos);
  EXPECT_NE(why(R"({"v":1,"events":[3]})").find("events[0]: not an object"), std::string::npos);
  EXPECT_NE(why(R"({"v":1,"events":[{"type":"instance.up"}]})").find("events[0]:"),
            std::string::npos);
  EXPECT_NE(why(std::string(2 * kMaxPendingEventsBytes + 1, ' ')).find("larger than"),
            std::string::npos);
}

TEST(PendingEventsTest, TheLedgerListsWhatIsUnacknowledgedAndTrimsWhatIsAcknowledged) {
  HandoverLedger ledger(nullptr);
  EXPECT_FALSE(ledger.UnacknowledgedOf("payments").followed);
  ledger.Begin("payments", UpState("p-1", 5), false);
  const Event down = InstanceEvent(EventType::kInstanceDown, "p-1", HealthStatus::kCritical, 9);
  const Event up = InstanceEvent(EventType::kInstanceUp, "p-1", HealthStatus::kPassing, 12);
  ledger.Emitting({down, up});
  auto pending = ledger.UnacknowledgedOf("payments");
  ASSERT_TRUE(pending.followed);
  ASSERT_EQ(pending.encoded.size(), 2u);
  EXPECT_EQ(pending.left_out, 0u);
  auto decoded = DecodePendingEvents(EncodePendingEvents(pending.encoded).value);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(Ids(*decoded), (std::vector<std::string>{down.id, up.id}));

  // The first acknowledged: only the second is left.
  ledger.OnRouted(down, 1);
  ledger.OnDelivered("hooks", down, {});
  pending = ledger.UnacknowledgedOf("payments");
  ASSERT_EQ(pending.encoded.size(), 1u);
  EXPECT_EQ(DecodeEvent(pending.encoded[0])->id, up.id);

  // A refused delivery leaves it listed; its acknowledgement empties it.
  ledger.OnRouted(up, 1);
  ledger.OnRetry("hooks", up, "503");
  EXPECT_EQ(ledger.UnacknowledgedOf("payments").encoded.size(), 1u);
  ledger.OnDelivered("hooks", up, {});
  pending = ledger.UnacknowledgedOf("payments");
  EXPECT_TRUE(pending.followed);
  EXPECT_TRUE(pending.encoded.empty());

  ledger.End("payments");
  EXPECT_FALSE(ledger.UnacknowledgedOf("payments").followed);
}

TEST(PendingEventsTest, TheLedgerKeepsTheNewestEncodingsWithinTheCap) {
  HandoverLedger ledger(nullptr);
  ledger.Begin("payments", UpState("p-1", 5), false);
  std::vector<Event> events;
  // Well over the cap in all.
  Event sample = InstanceEvent(EventType::kInstanceUp, "p-1", HealthStatus::kPassing, 6);
  const std::size_t count = 3 * kMaxPendingEventsBytes / EncodeEvent(sample).size();
  for (std::uint64_t i = 0; i < count; ++i) {
    events.push_back(
        InstanceEvent(i % 2 == 0 ? EventType::kInstanceDown : EventType::kInstanceUp, "p-1",
                      i % 2 == 0 ? HealthStatus::kCritical : HealthStatus::kPassing, 10 + i));
  }
  ledger.Emitting(events);
  auto pending = ledger.UnacknowledgedOf("payments");
  EXPECT_EQ(pending.left_out + pending.encoded.size(), count);
  EXPECT_GT(pending.left_out, 0u);
  std::size_t bytes = 0;
  for (const std::string& encoded : pending.encoded) bytes += encoded.size();
  EXPECT_LE(bytes, kMaxPendingEventsBytes);
  EXPECT_EQ(DecodeEvent(pending.encoded.back())->id, events.back().id);

  // Acknowledging the oldest (whose encodings were left out) in order
  // shrinks the left-out count first, then the list.
  for (std::size_t i = 0; i < pending.left_out + 1; ++i) {
    ledger.OnRouted(events[i], 1);
    ledger.OnDelivered("hooks", events[i], {});
  }
  auto after = ledger.UnacknowledgedOf("payments");
  EXPECT_EQ(after.left_out, 0u);
  EXPECT_EQ(after.encoded.size(), pending.encoded.size() - 1);
  EXPECT_EQ(DecodeEvent(after.encoded.front())->id, events[pending.left_out + 1].id);
}

}  // namespace
}  // namespace hb
