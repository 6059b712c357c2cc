#include "bridge/state/transition_engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/fake_clock.h"
#include "tests/unit/state/engine_test_util.h"

namespace hb {
namespace {

using test_support::Describe;
using test_support::FakeClock;
using test_support::MakeInstance;
using test_support::NodeCheck;
using test_support::Snapshot;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr auto kPassing = HealthStatus::kPassing;
constexpr auto kWarning = HealthStatus::kWarning;
constexpr auto kCritical = HealthStatus::kCritical;

// The events that notify: what every sink gets (silent ones describe state).
std::vector<Event> Notifying(std::vector<Event> events) {
  std::erase_if(events, [](const Event& event) { return event.silent; });
  return events;
}

// An engine past its initial sync, holding `instances` of payments.
class EngineTest : public ::testing::Test {
 protected:
  TransitionEngine& Engine(const EngineOptions& options = {}) {
    engine_ = std::make_unique<TransitionEngine>(options, clock_);
    return *engine_;
  }
  TransitionEngine& SyncedEngine(std::vector<Instance> instances,
                                 const EngineOptions& options = {}) {
    auto& engine = Engine(options);
    engine.Apply(Snapshot(10, std::move(instances)));
    EXPECT_THAT(Notifying(engine.CompleteInitialSync()), IsEmpty());
    return engine;
  }

  FakeClock clock_;
  std::unique_ptr<TransitionEngine> engine_;
};

TEST_F(EngineTest, InitialSyncWithoutSavedStateIsSilent) {
  auto& engine = Engine();
  auto events = engine.Apply(
      Snapshot(10, {MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kCritical)}));
  EXPECT_THAT(Describe(events),
              ElementsAre("instance.registered payments-1", "instance.up payments-1",
                          "instance.registered payments-2", "service.up payments"));
  for (const auto& event : events) EXPECT_TRUE(event.silent) << Describe(event);
  EXPECT_THAT(Notifying(engine.CompleteInitialSync()), IsEmpty());
}

TEST_F(EngineTest, InitialEventsOptionMakesTheInitialSyncNotify) {
  EngineOptions options;
  options.initial_events = true;
  auto events =
      Notifying(Engine(options).Apply(Snapshot(10, {MakeInstance("payments-1", kPassing)})));
  ASSERT_EQ(events.size(), 3u);
}

TEST_F(EngineTest, ChangeSeenLaterInTheInitialSyncIsNotSilent) {
  auto& engine = Engine();
  engine.Apply(Snapshot(10, {MakeInstance("payments-1", kPassing)}));
  auto events = engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical)}));
  ASSERT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  EXPECT_FALSE(events[0].silent);
}

TEST_F(EngineTest, NewInstanceEmitsRegisteredThenUpThenServiceUp) {
  auto& engine = SyncedEngine({});
  auto events = engine.Apply(Snapshot(11, {MakeInstance("payments-1", kPassing)}));
  EXPECT_THAT(Describe(events), ElementsAre("instance.registered payments-1",
                                            "instance.up payments-1", "service.up payments"));
  EXPECT_FALSE(events[1].previous_status.has_value());
  EXPECT_EQ(events[2].instances_up, 1);
  EXPECT_EQ(events[2].instances_total, 1);
}

TEST_F(EngineTest, NewInstanceStartingCriticalEmitsNoDownAndNoStatusChange) {
  auto& engine = SyncedEngine({});
  EXPECT_THAT(Describe(engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical)}))),
              ElementsAre("instance.registered payments-1"));
  // Its checks start critical after registration; then it passes.
  EXPECT_THAT(Describe(engine.Apply(Snapshot(12, {MakeInstance("payments-1", kPassing)}))),
              ElementsAre("instance.up payments-1", "service.up payments"));
}

TEST_F(EngineTest, TtlExpiryOfTheLastUpInstanceEmitsDownAndServiceDown) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  auto expired = MakeInstance("payments-1", kCritical);
  expired.checks[1].output = "TTL expired";
  auto events = engine.Apply(Snapshot(11, {expired}));
  ASSERT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  EXPECT_EQ(events[0].status, kCritical);
  EXPECT_EQ(events[0].previous_status, kPassing);
  EXPECT_EQ(events[0].checks[1].output, "TTL expired");
  EXPECT_EQ(events[1].instances_up, 0);
  EXPECT_EQ(events[1].instances_total, 1);
}

TEST_F(EngineTest, DownOfOneOfTwoInstancesKeepsTheServiceUp) {
  auto& engine =
      SyncedEngine({MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kPassing)});
  EXPECT_THAT(Describe(engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical),
                                                  MakeInstance("payments-2", kPassing)}))),
              ElementsAre("instance.down payments-1 critical"));
}

TEST_F(EngineTest, GracefulDeregistrationEmitsDownDeregisteredThenDeregistered) {
  auto& engine =
      SyncedEngine({MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kPassing)});
  auto events = engine.Apply(Snapshot(11, {MakeInstance("payments-2", kPassing)}));
  ASSERT_THAT(Describe(events), ElementsAre("instance.down payments-1 deregistered",
                                            "instance.deregistered payments-1"));
  EXPECT_EQ(events[0].consul_index, 11u);
  // It left: no status is claimed for it, its last one is the previous.
  for (const Event& event : events) {
    EXPECT_FALSE(event.status.has_value()) << Describe(event);
    EXPECT_EQ(event.previous_status, kPassing) << Describe(event);
  }
}

TEST_F(EngineTest, LastInstanceDeregisteredEmitsServiceDown) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  EXPECT_THAT(Describe(engine.Apply(Snapshot(11, {}))),
              ElementsAre("instance.down payments-1 deregistered",
                          "instance.deregistered payments-1", "service.down payments"));
}

TEST_F(EngineTest, ReapedCriticalInstanceEmitsOnlyDeregistered) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical)}));
  auto events = engine.Apply(Snapshot(12, {}));
  ASSERT_THAT(Describe(events), ElementsAre("instance.deregistered payments-1"));
  EXPECT_EQ(events[0].previous_status, kCritical);
  EXPECT_FALSE(events[0].status.has_value());
}

TEST_F(EngineTest, ServiceMaintenanceIsDownWithReasonMaintenanceAndOffIsUp) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  auto maintenance = MakeInstance("payments-1", kPassing);
  maintenance.checks.push_back(NodeCheck("_service_maintenance:payments-1", kCritical));
  EXPECT_THAT(Describe(engine.Apply(Snapshot(11, {maintenance}))),
              ElementsAre("instance.down payments-1 maintenance", "service.down payments"));
  EXPECT_THAT(Describe(engine.Apply(Snapshot(12, {MakeInstance("payments-1", kPassing)}))),
              ElementsAre("instance.up payments-1", "service.up payments"));
}

TEST_F(EngineTest, NodeCheckAppliesToEveryInstanceOnItsNode) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing, "node-a"),
                               MakeInstance("payments-2", kPassing, "node-a"),
                               MakeInstance("payments-3", kPassing, "node-b")});
  auto on_dead_node = [](const std::string& id) {
    auto instance = MakeInstance(id, kPassing, "node-a");
    instance.checks[0] = NodeCheck("serfHealth", kCritical);  // the agent died
    return instance;
  };
  EXPECT_THAT(
      Describe(engine.Apply(Snapshot(11, {on_dead_node("payments-1"), on_dead_node("payments-2"),
                                          MakeInstance("payments-3", kPassing, "node-b")}))),
      ElementsAre("instance.down payments-1 critical", "instance.down payments-2 critical"));
}

TEST_F(EngineTest, StatusChangeWithinUpOrWithinDownIsStatusChanged) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  auto events = engine.Apply(Snapshot(11, {MakeInstance("payments-1", kWarning)}));
  ASSERT_THAT(Describe(events), ElementsAre("instance.status_changed payments-1"));
  EXPECT_EQ(events[0].previous_status, kPassing);
  EXPECT_EQ(events[0].status, kWarning);

  engine.Apply(Snapshot(12, {MakeInstance("payments-1", kCritical)}));
  auto maintenance = MakeInstance("payments-1", kCritical);
  maintenance.checks.push_back(NodeCheck("_node_maintenance", kCritical));
  events = engine.Apply(Snapshot(13, {maintenance}));
  ASSERT_THAT(Describe(events), ElementsAre("instance.status_changed payments-1"));
  EXPECT_EQ(events[0].status, HealthStatus::kMaintenance);
}

TEST_F(EngineTest, WarningIsDownWhenNotConfiguredAsUp) {
  EngineOptions options;
  options.up_statuses = {kPassing};
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)}, options);
  EXPECT_THAT(Describe(engine.Apply(Snapshot(11, {MakeInstance("payments-1", kWarning)}))),
              ElementsAre("instance.down payments-1 warning", "service.down payments"));
}

TEST_F(EngineTest, OutputAddressTagsOrMetaChangesAloneEmitNothingButRideAlong) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  auto moved = MakeInstance("payments-1", kPassing);
  moved.checks[1].output = "heartbeat at 10:15:03";
  moved.address = "10.0.0.2";
  moved.port = 9090;
  moved.tags = {"v3"};
  moved.meta = {{"version", "3.0.0"}};
  EXPECT_THAT(engine.Apply(Snapshot(11, {moved})), IsEmpty());
  moved.checks[1].status = kCritical;
  auto events = engine.Apply(Snapshot(12, {moved}));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].address, "10.0.0.2");
  EXPECT_EQ(events[0].port, 9090);
  EXPECT_EQ(events[0].tags, std::vector<std::string>{"v3"});
  EXPECT_EQ(events[0].meta.at("version"), "3.0.0");
}

// The engine keeps instances packed: whatever it hands out must be the
// instance of the last answer, field for field.
TEST_F(EngineTest, EventsViewsAndSavedStateCarryTheWholeLastAnswer) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  auto latest = MakeInstance("payments-1", kCritical);
  latest.checks[1].output = std::string(300, 'o');
  latest.checks[1].notes = "deploy 42";
  latest.tags = {"v3", "canary"};
  latest.meta = {{"version", "3.0.0"}, {"zone", "b"}};
  auto events = engine.Apply(Snapshot(11, {latest}));
  ASSERT_FALSE(events.empty());
  const Event& down = events[0];
  EXPECT_EQ(down.node, latest.node);
  EXPECT_EQ(down.instance_id, latest.id);
  EXPECT_EQ(down.address, latest.address);
  EXPECT_EQ(down.port, latest.port);
  EXPECT_EQ(down.tags, latest.tags);
  EXPECT_EQ(down.meta, latest.meta);
  EXPECT_EQ(down.checks, latest.checks);

  const auto views = engine.Instances();
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(*views[0].instance, latest);
  const SavedState saved = engine.Save();
  ASSERT_EQ(saved.instances.size(), 1u);
  EXPECT_EQ(saved.instances[0].instance, latest);

  TransitionEngine restored({}, clock_);
  restored.Restore(saved);
  EXPECT_EQ(*restored.Instances().at(0).instance, latest);
}

TEST_F(EngineTest, IndexChangeWithoutDataChangeEmitsNothing) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  for (std::uint64_t index = 11; index < 20; ++index) {
    EXPECT_THAT(engine.Apply(Snapshot(index, {MakeInstance("payments-1", kPassing)})), IsEmpty());
  }
  // An index that went backwards (snapshot restore) is just another answer.
  EXPECT_THAT(engine.Apply(Snapshot(3, {MakeInstance("payments-1", kPassing)})), IsEmpty());
}

TEST_F(EngineTest, ServiceGoneDeregistersEveryInstanceAndEmitsServiceDown) {
  auto& engine =
      SyncedEngine({MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kCritical)});
  EXPECT_THAT(
      Describe(engine.ServiceGone("dc1", "payments", 11)),
      ElementsAre("instance.down payments-1 deregistered", "instance.deregistered payments-1",
                  "instance.deregistered payments-2", "service.down payments"));
  EXPECT_THAT(engine.ServiceGone("dc1", "payments", 12), IsEmpty());
  EXPECT_THAT(engine.Instances(), IsEmpty());
}

TEST_F(EngineTest, SameServiceIdOnTwoNodesIsTwoInstances) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing, "node-a"),
                               MakeInstance("payments-1", kPassing, "node-b")});
  auto events = engine.Apply(Snapshot(11, {MakeInstance("payments-1", kPassing, "node-a"),
                                           MakeInstance("payments-1", kCritical, "node-b")}));
  ASSERT_THAT(Describe(events), ElementsAre("instance.down payments-1 critical"));
  EXPECT_EQ(events[0].node, "node-b");
  EXPECT_EQ(engine.Instances().size(), 2u);
}

TEST_F(EngineTest, DatacentersNeverShareState) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  auto events =
      engine.Apply(Snapshot(5, {MakeInstance("payments-1", kPassing)}, "payments", "dc2"));
  EXPECT_THAT(Describe(events), ElementsAre("instance.registered payments-1",
                                            "instance.up payments-1", "service.up payments"));
  EXPECT_EQ(events[0].datacenter, "dc2");
  EXPECT_THAT(engine.Apply(Snapshot(11, {MakeInstance("payments-1", kPassing)})), IsEmpty());
}

TEST_F(EngineTest, EventIdsNameTheInstanceIndexAndEventAndAreStable) {
  auto run = [&] {
    TransitionEngine engine({}, clock_);
    engine.Apply(Snapshot(10, {MakeInstance("payments-1", kPassing)}));
    engine.CompleteInitialSync();
    return engine.Apply(Snapshot(2731, {}));
  };
  auto first = run();
  auto second = run();
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].id, "dc1/node-a/payments-1/2731/instance.down");
  EXPECT_EQ(first[1].id, "dc1/node-a/payments-1/2731/instance.deregistered");
  EXPECT_EQ(first[2].id, "dc1/payments/2731/service.down");
  for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].id, second[i].id);
}

TEST_F(EngineTest, EventCarriesWallTimeAndTheAnswersArrivalTime) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)});
  auto snapshot = Snapshot(11, {MakeInstance("payments-1", kCritical)});
  snapshot.received_at = clock_.Now();
  clock_.Advance(std::chrono::milliseconds(3));
  auto events = engine.Apply(snapshot);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].observed_at, snapshot.received_at);
  EXPECT_EQ(events[0].time, clock_.WallNow());
}

// --- Dampening ---

EngineOptions Dampened() {
  EngineOptions options;
  options.down_after = std::chrono::seconds(30);
  options.up_after = std::chrono::seconds(10);
  return options;
}

TEST_F(EngineTest, BlipShorterThanDownAfterEmitsNothing) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)}, Dampened());
  EXPECT_THAT(engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical)})), IsEmpty());
  ASSERT_TRUE(engine.NextDeadline().has_value());
  clock_.Advance(std::chrono::seconds(29));
  EXPECT_THAT(engine.Tick(), IsEmpty());
  EXPECT_THAT(engine.Apply(Snapshot(12, {MakeInstance("payments-1", kPassing)})), IsEmpty());
  EXPECT_FALSE(engine.NextDeadline().has_value());
  clock_.Advance(std::chrono::seconds(60));
  EXPECT_THAT(engine.Tick(), IsEmpty());
}

TEST_F(EngineTest, PendingDownFiresOnTickWhenConsulIsSilent) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)}, Dampened());
  const SteadyTime started = clock_.Now();
  EXPECT_THAT(engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical)})), IsEmpty());
  EXPECT_EQ(engine.NextDeadline(), started + std::chrono::seconds(30));
  clock_.Advance(std::chrono::seconds(30));
  auto events = engine.Tick();
  ASSERT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  // The id names the index at which the down state was first seen.
  EXPECT_EQ(events[0].id, "dc1/node-a/payments-1/11/instance.down");
  EXPECT_FALSE(engine.NextDeadline().has_value());
}

TEST_F(EngineTest, PendingDownTakesTheLatestDownStatus) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)}, Dampened());
  engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical)}));
  clock_.Advance(std::chrono::seconds(20));
  auto maintenance = MakeInstance("payments-1", kCritical);
  maintenance.checks.push_back(NodeCheck("_service_maintenance:payments-1", kCritical));
  EXPECT_THAT(engine.Apply(Snapshot(12, {maintenance})), IsEmpty());
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_THAT(Describe(engine.Tick()),
              ElementsAre("instance.down payments-1 maintenance", "service.down payments"));
}

TEST_F(EngineTest, UpAfterDelaysRecovery) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kCritical)}, Dampened());
  EXPECT_THAT(engine.Apply(Snapshot(11, {MakeInstance("payments-1", kPassing)})), IsEmpty());
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_THAT(Describe(engine.Tick()),
              ElementsAre("instance.up payments-1", "service.up payments"));
}

TEST_F(EngineTest, DeregistrationIsNeverDampened) {
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)}, Dampened());
  engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical)}));
  EXPECT_THAT(Describe(engine.Apply(Snapshot(12, {}))),
              ElementsAre("instance.down payments-1 deregistered",
                          "instance.deregistered payments-1", "service.down payments"));
  EXPECT_FALSE(engine.NextDeadline().has_value());
}

// --- Saved state and reconciliation ---

TEST_F(EngineTest, RestartReportsOnlyWhatChangedWhileAwayMarkedReconciled) {
  auto& before =
      SyncedEngine({MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kPassing),
                    MakeInstance("payments-3", kPassing)});
  before.Apply(Snapshot(3, {MakeInstance("orders-1", kPassing, "node-a", "orders")}, "orders"));
  const SavedState saved = before.Save();

  TransitionEngine after({}, clock_);
  after.Restore(saved);
  // While away: payments-1 was deregistered, payments-2 went critical, the
  // orders service vanished, payments-3 is unchanged.
  auto events = Notifying(after.Apply(
      Snapshot(20, {MakeInstance("payments-2", kCritical), MakeInstance("payments-3", kPassing)})));
  EXPECT_THAT(Describe(events), ElementsAre("instance.down payments-2 critical",
                                            "instance.down payments-1 deregistered",
                                            "instance.deregistered payments-1"));
  for (const auto& event : events) EXPECT_TRUE(event.reconciled);
  auto gone = Notifying(after.CompleteInitialSync());
  EXPECT_THAT(Describe(gone), ElementsAre("instance.down orders-1 deregistered",
                                          "instance.deregistered orders-1", "service.down orders"));
  for (const auto& event : gone) EXPECT_TRUE(event.reconciled);
  // After the initial sync, changes are ordinary again.
  auto later = after.Apply(Snapshot(21, {MakeInstance("payments-3", kPassing)}));
  ASSERT_FALSE(later.empty());
  EXPECT_FALSE(later[0].reconciled);
}

TEST_F(EngineTest, UnchangedRestartEmitsNothing) {
  auto& before =
      SyncedEngine({MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kCritical)});
  TransitionEngine after({}, clock_);
  after.Restore(before.Save());
  EXPECT_THAT(Notifying(after.Apply(Snapshot(30, {MakeInstance("payments-1", kPassing),
                                                  MakeInstance("payments-2", kCritical)}))),
              IsEmpty());
  EXPECT_THAT(after.CompleteInitialSync(), IsEmpty());
}

// --- The view: the whole reported state, for sinks that hold state ---

TEST_F(EngineTest, ViewHoldsEveryInstanceAndServiceAsSilentEvents) {
  auto& engine = Engine();
  auto maintenance = MakeInstance("payments-3", kPassing);
  maintenance.checks.push_back(NodeCheck("_service_maintenance:payments-3", kCritical));
  engine.Apply(Snapshot(10, {MakeInstance("payments-1", kPassing),
                             MakeInstance("payments-2", kCritical), maintenance}));
  engine.Apply(Snapshot(4, {MakeInstance("orders-1", kCritical, "node-a", "orders")}, "orders"));
  EXPECT_THAT(engine.CompleteInitialSync(), IsEmpty())
      << "without saved state, the sync's silent events already said all of it";
  auto view = engine.View();
  EXPECT_THAT(Describe(view),
              ElementsAre("instance.down orders-1 critical", "service.down orders",
                          "instance.up payments-1", "instance.down payments-2 critical",
                          "instance.down payments-3 maintenance", "service.up payments"));
  for (const Event& event : view) {
    EXPECT_TRUE(event.silent) << Describe(event);
    EXPECT_FALSE(event.reconciled) << Describe(event);
  }
  EXPECT_EQ(view[2].status, kPassing);
  EXPECT_EQ(view[4].status, HealthStatus::kMaintenance);
  EXPECT_EQ(view[5].instances_up, 1);
  EXPECT_EQ(view[5].instances_total, 3);
  EXPECT_EQ(view[2].id, "dc1/node-a/payments-1/10/instance.up");
}

TEST_F(EngineTest, RestoredEngineTellsTheCurrentStateSilentlyAfterTheReconciledChanges) {
  auto& before =
      SyncedEngine({MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kPassing)});
  TransitionEngine after({}, clock_);
  after.Restore(before.Save());
  // Nothing changed for payments-1; payments-2 went critical while away.
  auto events = after.Apply(
      Snapshot(30, {MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kCritical)}));
  ASSERT_THAT(Describe(events),
              ElementsAre("instance.down payments-2 critical", "instance.up payments-1",
                          "instance.down payments-2 critical", "service.up payments"));
  EXPECT_FALSE(events[0].silent);
  EXPECT_TRUE(events[0].reconciled);
  for (std::size_t i = 1; i < events.size(); ++i) {
    EXPECT_TRUE(events[i].silent) << Describe(events[i]);
    EXPECT_FALSE(events[i].reconciled) << Describe(events[i]);
  }
  EXPECT_THAT(after.CompleteInitialSync(), IsEmpty());
  // Later answers are ordinary.
  EXPECT_THAT(after.Apply(Snapshot(31, {MakeInstance("payments-1", kPassing),
                                        MakeInstance("payments-2", kCritical)})),
              IsEmpty());
}

TEST_F(EngineTest, InitialEventsStillRestateTheStateSilently) {
  EngineOptions options;
  options.initial_events = true;
  auto events = Engine(options).Apply(Snapshot(10, {MakeInstance("payments-1", kPassing)}));
  EXPECT_THAT(Describe(Notifying(events)),
              ElementsAre("instance.registered payments-1", "instance.up payments-1",
                          "service.up payments"));
  ASSERT_EQ(events.size(), 5u);
  EXPECT_TRUE(events[3].silent);
  EXPECT_TRUE(events[4].silent);
}

TEST_F(EngineTest, ViewHoldsWhatEventsReportedNotADampenedTransitionStillPending) {
  EngineOptions options;
  options.down_after = std::chrono::seconds(30);
  auto& engine = SyncedEngine({MakeInstance("payments-1", kPassing)}, options);
  EXPECT_THAT(engine.Apply(Snapshot(11, {MakeInstance("payments-1", kCritical)})), IsEmpty());
  auto view = engine.View();
  ASSERT_THAT(Describe(view), ElementsAre("instance.up payments-1", "service.up payments"));
  EXPECT_EQ(view[0].status, kPassing);
}

TEST_F(EngineTest, ViewRestatesARecentDepartureUntilItExpiresOrComesBack) {
  auto& engine =
      SyncedEngine({MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kPassing)});
  const WallTime left_at = clock_.WallNow();
  engine.Apply(Snapshot(11, {MakeInstance("payments-1", kPassing)}));
  clock_.Advance(std::chrono::minutes(2));
  auto view = engine.View();
  ASSERT_THAT(Describe(view), ElementsAre("instance.up payments-1", "service.up payments",
                                          "instance.deregistered payments-2"));
  EXPECT_TRUE(view[2].silent);
  EXPECT_FALSE(view[2].status.has_value());
  EXPECT_EQ(view[2].previous_status, kPassing);
  EXPECT_EQ(view[2].time, left_at) << "a new sink counts its series' time from the departure";
  EXPECT_EQ(view[2].id, "dc1/node-a/payments-2/11/instance.deregistered");

  // Back in the catalog: the live instance is the whole story.
  engine.Apply(
      Snapshot(12, {MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kPassing)}));
  EXPECT_THAT(
      Describe(engine.View()),
      ElementsAre("instance.up payments-1", "instance.up payments-2", "service.up payments"));

  // Gone again, and past the retention: forgotten.
  engine.Apply(Snapshot(13, {MakeInstance("payments-1", kPassing)}));
  clock_.Advance(TransitionEngine::kDepartedRetention + std::chrono::minutes(1));
  EXPECT_THAT(Describe(engine.View()),
              ElementsAre("instance.up payments-1", "service.up payments"));
}

TEST_F(EngineTest, DeparturesRememberedForTheViewAreBounded) {
  auto& engine = SyncedEngine({});
  const std::size_t extra = 5;
  std::uint64_t index = 11;
  for (std::size_t i = 0; i < TransitionEngine::kDepartedLimit + extra; ++i) {
    const std::string id = "payments-" + std::to_string(i);
    engine.Apply(Snapshot(index++, {MakeInstance(id, kPassing)}));
    engine.Apply(Snapshot(index++, {}));
  }
  const auto view = engine.View();
  // The service itself, then the most recent departures only.
  ASSERT_EQ(view.size(), 1 + TransitionEngine::kDepartedLimit);
  EXPECT_EQ(view[1].instance_id, "payments-" + std::to_string(extra));
  EXPECT_EQ(view.back().instance_id,
            "payments-" + std::to_string(TransitionEngine::kDepartedLimit + extra - 1));
}

TEST_F(EngineTest, SavedStateRoundTripsThroughJson) {
  auto& engine =
      SyncedEngine({MakeInstance("payments-1", kPassing), MakeInstance("payments-2", kCritical)});
  engine.Apply(Snapshot(2, {}, "empty-service"));
  const SavedState saved = engine.Save();
  auto decoded = DecodeSavedState(EncodeSavedState(saved));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, saved);
  EXPECT_EQ(decoded->services.size(), 2u);
}

TEST_F(EngineTest, CorruptSavedStateIsAnErrorNamingWhatIsWrong) {
  EXPECT_EQ(DecodeSavedState("{not json").status().code(), StatusCode::kDataLoss);
  auto wrong_type = DecodeSavedState(
      R"({"version":1,"services":[],"instances":[{"datacenter":"dc1","service":"s","node":"n",
          "id":"i","address":"a","port":"80","tags":[],"meta":{},"checks":[],
          "reported_status":"passing","reported_up":true,"index":1,"since_ms":0}]})");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.status().message(), "saved state: instances[0].port: wrong type (string)");
  auto bad_status = DecodeSavedState(
      R"({"version":1,"services":[],"instances":[{"datacenter":"dc1","service":"s","node":"n",
          "id":"i","address":"a","port":80,"tags":[],"meta":{},"checks":[],
          "reported_status":"dead","reported_up":true,"index":1,"since_ms":0}]})");
  ASSERT_FALSE(bad_status.ok());
  EXPECT_EQ(bad_status.status().message(),
            "saved state: instances[0].reported_status: unknown status \"dead\"");
}

TEST_F(EngineTest, InstancesViewShowsStatusUpAndSince) {
  auto& engine =
      SyncedEngine({MakeInstance("payments-2", kCritical), MakeInstance("payments-1", kPassing)});
  auto views = engine.Instances();
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].instance->id, "payments-1");
  EXPECT_TRUE(views[0].up);
  EXPECT_EQ(views[1].status, kCritical);
  EXPECT_FALSE(views[1].up);
  EXPECT_EQ(views[0].since, clock_.WallNow());
}

}  // namespace
}  // namespace hb

namespace hb {
namespace {

// A restored service still in the catalog whose answers could not be used
// during the sync (a hostile or broken answer) is not gone: it keeps its
// restored state, and its first usable answer is diffed against that.
TEST(EngineUnreadableAtSyncTest, KeepsTheRestoredStateOfAServiceItCouldNotRead) {
  test_support::FakeClock clock;
  TransitionEngine before({}, clock);
  before.Apply(test_support::Snapshot(
      3, {test_support::MakeInstance("orders-1", HealthStatus::kPassing, "node-a", "orders")},
      "orders"));
  before.CompleteInitialSync();
  TransitionEngine after({}, clock);
  after.Restore(before.Save());
  EXPECT_THAT(after.CompleteInitialSync("dc1", {"orders"}), ::testing::IsEmpty());
  ASSERT_EQ(after.Instances().size(), 1U);
  const auto events = after.Apply(test_support::Snapshot(
      9, {test_support::MakeInstance("orders-1", HealthStatus::kCritical, "node-a", "orders")},
      "orders"));
  EXPECT_THAT(test_support::Describe(events),
              ::testing::ElementsAre("instance.down orders-1 critical", "service.down orders"));
}

// Node names and IDs with NUL bytes (JSON's \u0000) from a hostile Consul:
// node "a\0b" with ID "c" and node "a" with ID "b\0c" are two instances,
// and each comes back out as it went in.
TEST(EngineHostileTextTest, NulBytesInNodesAndIdsNeverMergeOrMangleInstances) {
  test_support::FakeClock clock;
  TransitionEngine engine({}, clock);
  const std::string nul(1, '\0');
  engine.Apply(test_support::Snapshot(
      3, {test_support::MakeInstance("c", HealthStatus::kPassing, "a" + nul + "b"),
          test_support::MakeInstance("b" + nul + "c", HealthStatus::kCritical, "a")}));
  const auto instances = engine.Instances();
  ASSERT_EQ(instances.size(), 2U);
  EXPECT_EQ(instances[0].instance->node, "a");
  EXPECT_EQ(instances[0].instance->id, "b" + nul + "c");
  EXPECT_EQ(instances[0].status, HealthStatus::kCritical);
  EXPECT_EQ(instances[1].instance->node, "a" + nul + "b");
  EXPECT_EQ(instances[1].instance->id, "c");
  EXPECT_EQ(instances[1].status, HealthStatus::kPassing);
}

}  // namespace
}  // namespace hb
