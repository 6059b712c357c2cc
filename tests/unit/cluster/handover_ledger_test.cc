// The handover ledger: a service's acknowledged state moves only past
// events every sink they were routed to acknowledged, in emission order;
// and the state's encoding in Consul KV.

#include "bridge/cluster/handover_ledger.h"

#include <gtest/gtest.h>

#include <thread>

#include "bridge/cluster/handover_state.h"
#include "tests/unit/cluster/handover_events.h"

namespace hb {
namespace {

using test_support::InstanceEvent;
using test_support::UpState;

TEST(HandoverLedgerTest, MovesOnlyOnceEverySinkAcknowledged) {
  HandoverLedger ledger(nullptr);
  ledger.Begin("payments", UpState("p-1", 5), false);
  const Event down = InstanceEvent(EventType::kInstanceDown, "p-1", HealthStatus::kCritical, 9);
  ledger.Emitting({down});
  ledger.OnDelivered("hooks", down, {});  // before the router said where it went
  ledger.OnRouted(down, 2);
  EXPECT_FALSE(ledger.TakeChanged("payments"));
  ledger.OnDelivered("kafka", down, {});
  auto state = ledger.TakeChanged("payments");
  ASSERT_TRUE(state);
  EXPECT_FALSE(state->instances.at({"node-a", "p-1"}).up);
  EXPECT_EQ(state->instances.at({"node-a", "p-1"}).index, 9u);
  EXPECT_EQ(ledger.pending(), 0u);
}

TEST(HandoverLedgerTest, AnUnacknowledgedEventHoldsBackTheOnesAfterIt) {
  HandoverLedger ledger(nullptr);
  ledger.Begin("payments", UpState("p-1", 5), false);
  const Event down = InstanceEvent(EventType::kInstanceDown, "p-1", HealthStatus::kCritical, 9);
  const Event up = InstanceEvent(EventType::kInstanceUp, "p-1", HealthStatus::kPassing, 12);
  ledger.Emitting({down, up});
  ledger.OnRouted(down, 1);
  ledger.OnRouted(up, 1);
  ledger.OnDelivered("hooks", up, {});
  EXPECT_FALSE(ledger.TakeChanged("payments"));
  // Dead-lettered at shutdown: never delivered, so it stays pending.
  ledger.OnDeadLettered("hooks", down, "undelivered at shutdown");
  EXPECT_FALSE(ledger.TakeChanged("payments"));
  EXPECT_EQ(ledger.Acknowledged("payments"), UpState("p-1", 5));
  // Rejected for good: the bridge gave up on it, the state moves past it.
  ledger.OnDeadLettered("hooks", down, "rejected: HTTP 400");
  EXPECT_EQ(ledger.TakeChanged("payments"), UpState("p-1", 12));
}

TEST(HandoverLedgerTest, FollowsOnlyTakenServicesAndNotifications) {
  HandoverLedger ledger(nullptr);
  Event other = InstanceEvent(EventType::kInstanceDown, "p-1", HealthStatus::kCritical, 9);
  ledger.Emitting({other});  // nobody took payments over
  EXPECT_EQ(ledger.pending(), 0u);
  ledger.Begin("payments", {}, true);
  other.silent = true;
  ledger.Emitting({other});
  other.silent = false;
  other.epoch.reset();
  ledger.Emitting({other});
  EXPECT_EQ(ledger.pending(), 0u);
  // A first owner's state is written once.
  EXPECT_TRUE(ledger.TakeChanged("payments"));
  EXPECT_FALSE(ledger.TakeChanged("payments"));
  ledger.End("payments");
  EXPECT_FALSE(ledger.Acknowledged("payments"));
}

TEST(HandoverLedgerTest, AcknowledgementsFromManySinkThreads) {
  HandoverLedger ledger(nullptr);
  ledger.Begin("payments", UpState("p-1", 1), false);
  std::vector<Event> events;
  for (std::uint64_t i = 2; i < 2002; ++i) {
    events.push_back(
        InstanceEvent(i % 2 == 0 ? EventType::kInstanceDown : EventType::kInstanceUp, "p-1",
                      i % 2 == 0 ? HealthStatus::kCritical : HealthStatus::kPassing, i));
  }
  ledger.Emitting(events);
  std::vector<std::thread> sinks;
  for (int sink = 0; sink < 4; ++sink) {
    sinks.emplace_back([&ledger, &events, sink] {
      for (const Event& event : events) {
        ledger.OnDelivered("sink-" + std::to_string(sink), event, {});
      }
    });
  }
  for (const Event& event : events) ledger.OnRouted(event, 4);
  for (auto& sink : sinks) sink.join();
  EXPECT_EQ(ledger.pending(), 0u);
  const auto state = ledger.TakeChanged("payments");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->instances.at({"node-a", "p-1"}).index, 2001u);
  EXPECT_TRUE(state->instances.at({"node-a", "p-1"}).up);
}

TEST(HandoverLedgerTest, WaitSettledReturnsOnceTheLastAcknowledgementCame) {
  HandoverLedger ledger(nullptr);
  ledger.Begin("payments", UpState("p-1", 5), false);
  const Event down = InstanceEvent(EventType::kInstanceDown, "p-1", HealthStatus::kCritical, 9);
  ledger.Emitting({down});
  ledger.OnRouted(down, 1);
  EXPECT_FALSE(ledger.WaitSettled({"payments"}, std::chrono::steady_clock::now()));
  std::thread sink([&] { ledger.OnDelivered("hooks", down, {}); });
  EXPECT_TRUE(ledger.WaitSettled({"payments"},
                                 std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  sink.join();
  EXPECT_TRUE(ledger.WaitSettled({"unknown"}, std::chrono::steady_clock::now()));
}

TEST(HandoverStateTest, RoundTripsAndRefusesWhatItDidNotWrite) {
  ReportedService state = UpState("p-1", 5);
  state.instances[{"node-b", "p-2"}] = {false, HealthStatus::kWarning, 8};
  const std::string encoded = EncodeHandoverState(state);
  auto decoded = DecodeHandoverState(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, state);

  for (const char* bad :
       {"", "[]", "{\"v\":2,\"up\":true,\"instances\":[]}", "{\"v\":1,\"up\":1,\"instances\":[]}",
        "{\"v\":1,\"up\":true,\"instances\":[[\"n\",\"i\",true,\"sleepy\",1]]}",
        "{\"v\":1,\"up\":true,\"instances\":[[\"n\",\"i\",true,\"passing\",-1]]}",
        "{\"v\":1,\"up\":true,\"instances\":[[\"n\",\"i\",true,\"passing\",1],"
        "[\"n\",\"i\",false,\"critical\",2]]}"}) {
    EXPECT_FALSE(DecodeHandoverState(bad).ok()) << bad;
  }
  EXPECT_EQ(HandoverStateKey("hb", "a/b c"), "hb/state/a%2Fb%20c");
}

TEST(HandoverStateTest, AStateTooLargeForConsulIsNotEncoded) {
  ReportedService state;
  for (int i = 0; i < 100; ++i) {
    state.instances[{"node", "instance-" + std::to_string(i)}] = {true, HealthStatus::kPassing, 1};
  }
  EXPECT_FALSE(EncodeHandoverState(state).empty());
  EXPECT_TRUE(EncodeHandoverState(state, 1000).empty());
}

}  // namespace
}  // namespace hb
