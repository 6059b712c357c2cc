// Event ids from the instances' own raft indexes, and reconciling a service
// from what another replica's sinks acknowledged: what cluster mode's
// handover relies on.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bridge/state/reported_state.h"
#include "bridge/state/transition_engine.h"
#include "tests/support/fake_clock.h"
#include "tests/unit/state/engine_test_util.h"

namespace hb {
namespace {

using test_support::Describe;
using test_support::FakeClock;
using test_support::MakeInstance;
using test_support::Snapshot;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr auto kPassing = HealthStatus::kPassing;
constexpr auto kCritical = HealthStatus::kCritical;

Instance WithIndex(Instance instance, std::uint64_t modify_index) {
  instance.modify_index = modify_index;
  return instance;
}

std::vector<std::string> Ids(const std::vector<Event>& events) {
  std::vector<std::string> ids;
  for (const Event& event : events) {
    if (!event.silent) ids.push_back(event.id);
  }
  return ids;
}

ReportedService FoldAll(ReportedService reported, const std::vector<Event>& events) {
  for (const Event& event : events) FoldEvent(reported, event);
  return reported;
}

class HandoverEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<TransitionEngine> Synced(std::vector<Instance> instances, std::uint64_t index) {
    auto engine = std::make_unique<TransitionEngine>(EngineOptions{}, clock_);
    engine->Apply(Snapshot(index, std::move(instances)));
    engine->CompleteInitialSync();
    return engine;
  }
  FakeClock clock_;
};

TEST_F(HandoverEngineTest, IdsCarryTheInstancesOwnIndexNotTheAnswers) {
  auto engine = Synced(
      {WithIndex(MakeInstance("p-1", kPassing), 5), WithIndex(MakeInstance("p-2", kPassing), 6)},
      6);
  auto events = engine->Apply(Snapshot(40, {WithIndex(MakeInstance("p-1", kCritical), 30),
                                            WithIndex(MakeInstance("p-2", kPassing), 6)}));
  EXPECT_THAT(Ids(events), ElementsAre("dc1/node-a/p-1/30/instance.down"));
}

TEST_F(HandoverEngineTest, TwoReplicasReadingAtDifferentMomentsGiveTheSameIds) {
  // One reads each write as it happens; the other reads both at once.
  auto early = Synced(
      {WithIndex(MakeInstance("p-1", kPassing), 5), WithIndex(MakeInstance("p-2", kPassing), 6)},
      6);
  auto late = Synced(
      {WithIndex(MakeInstance("p-1", kPassing), 5), WithIndex(MakeInstance("p-2", kPassing), 6)},
      6);
  std::vector<std::string> early_ids =
      Ids(early->Apply(Snapshot(30, {WithIndex(MakeInstance("p-1", kCritical), 30),
                                     WithIndex(MakeInstance("p-2", kPassing), 6)})));
  for (auto& id :
       Ids(early->Apply(Snapshot(31, {WithIndex(MakeInstance("p-1", kCritical), 30),
                                      WithIndex(MakeInstance("p-2", kCritical), 31)})))) {
    early_ids.push_back(id);
  }
  const auto late_ids =
      Ids(late->Apply(Snapshot(31, {WithIndex(MakeInstance("p-1", kCritical), 30),
                                    WithIndex(MakeInstance("p-2", kCritical), 31)})));
  EXPECT_THAT(late_ids, ::testing::UnorderedElementsAreArray(early_ids));
  EXPECT_THAT(late_ids, ::testing::Contains("dc1/payments/31/service.down"));
}

TEST_F(HandoverEngineTest, DepartureCarriesTheInstancesLastOwnIndex) {
  auto engine = Synced({WithIndex(MakeInstance("p-1", kPassing), 5)}, 5);
  auto events = engine->Apply(Snapshot(50, {}));
  EXPECT_THAT(Ids(events),
              ElementsAre("dc1/node-a/p-1/5/instance.down",
                          "dc1/node-a/p-1/5/instance.deregistered", "dc1/payments/5/service.down"));
}

TEST_F(HandoverEngineTest, ReconcileEmitsWhatHappenedSinceTheAcknowledgedStateWithTheSameIds) {
  // The previous owner: its sinks acknowledged the state after the sync,
  // then it emitted three transitions nobody acknowledged, and died.
  auto previous = Synced(
      {WithIndex(MakeInstance("p-1", kPassing), 5), WithIndex(MakeInstance("p-2", kPassing), 6),
       WithIndex(MakeInstance("p-3", kCritical), 7)},
      7);
  const ReportedService acknowledged = *previous->Reported("dc1", "payments");
  const auto unacknowledged =
      previous->Apply(Snapshot(20, {WithIndex(MakeInstance("p-1", kCritical), 12),
                                    WithIndex(MakeInstance("p-3", kPassing), 15),
                                    WithIndex(MakeInstance("p-4", kPassing), 20)}));
  // The successor watched all along, silently.
  auto successor = Synced(
      {WithIndex(MakeInstance("p-1", kCritical), 12), WithIndex(MakeInstance("p-3", kPassing), 15),
       WithIndex(MakeInstance("p-4", kPassing), 20)},
      20);
  const auto reconciled = successor->ReconcileFrom("dc1", "payments", acknowledged);
  EXPECT_THAT(Describe(reconciled),
              ElementsAre("instance.down p-1 critical", "instance.up p-3",
                          "instance.registered p-4", "instance.up p-4",
                          "instance.down p-2 deregistered", "instance.deregistered p-2"));
  for (const Event& event : reconciled) {
    EXPECT_TRUE(event.reconciled) << event.id;
    EXPECT_FALSE(event.silent) << event.id;
  }
  EXPECT_THAT(Ids(reconciled), ::testing::UnorderedElementsAreArray(Ids(unacknowledged)));
  // Applied on top of the acknowledged state, they give what the engine reports.
  EXPECT_EQ(FoldAll(acknowledged, reconciled), *successor->Reported("dc1", "payments"));
}

TEST_F(HandoverEngineTest, ReconcileOfAnUnchangedServiceEmitsNothing) {
  auto engine = Synced({WithIndex(MakeInstance("p-1", kPassing), 5)}, 5);
  EXPECT_THAT(engine->ReconcileFrom("dc1", "payments", *engine->Reported("dc1", "payments")),
              IsEmpty());
}

TEST_F(HandoverEngineTest, ReconcileOfAServiceThatLeftDeregistersItsInstances) {
  auto previous = Synced({WithIndex(MakeInstance("p-1", kPassing), 5)}, 5);
  const ReportedService acknowledged = *previous->Reported("dc1", "payments");
  auto successor = Synced({}, 9);
  EXPECT_THAT(Ids(successor->ReconcileFrom("dc1", "gone-service", ReportedService{})), IsEmpty());
  const auto events = successor->ReconcileFrom("dc1", "payments", acknowledged);
  EXPECT_THAT(Ids(events),
              ElementsAre("dc1/node-a/p-1/5/instance.down",
                          "dc1/node-a/p-1/5/instance.deregistered", "dc1/payments/5/service.down"));
  EXPECT_THAT(Ids(previous->Apply(Snapshot(9, {}))), ::testing::ElementsAreArray(Ids(events)));
}

}  // namespace
}  // namespace hb
