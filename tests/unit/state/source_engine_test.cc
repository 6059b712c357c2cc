// The engine with several sources (watch.sources): each keeps its own state
// and its own initial sync.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bridge/state/saved_state.h"
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

std::vector<Event> Notifying(std::vector<Event> events) {
  std::erase_if(events, [](const Event& event) { return event.silent; });
  return events;
}

ServiceSnapshot In(SourceScope scope, ServiceSnapshot snapshot) {
  snapshot.scope = std::move(scope);
  return snapshot;
}

const SourceScope kEast{"east", "", "", true};
const SourceScope kDefault{"", "", "", true};

TEST(SourceEngine, SourcesWithTheSameServiceKeepApartState) {
  FakeClock clock;
  TransitionEngine engine({}, clock);
  engine.ExpectSources(2);
  engine.Apply(In(kDefault, Snapshot(5, {MakeInstance("payments-1", kPassing)})));
  engine.Apply(In(kEast, Snapshot(9, {MakeInstance("payments-1", kPassing)})));
  EXPECT_THAT(Notifying(engine.CompleteInitialSync("dc1", kDefault, {})), IsEmpty());
  EXPECT_THAT(Notifying(engine.CompleteInitialSync("dc1", kEast, {})), IsEmpty());
  ASSERT_TRUE(engine.initial_sync_complete());
  EXPECT_EQ(engine.Instances().size(), 2U);

  // The peer's instance goes down; the local one with the same name and ID
  // is not touched.
  auto events = engine.Apply(In(kEast, Snapshot(10, {MakeInstance("payments-1", kCritical)})));
  EXPECT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  EXPECT_EQ(events[0].scope, kEast);
  EXPECT_EQ(events[0].id, "dc1/peer:east/node-a/payments-1/10/instance.down");
  EXPECT_EQ(events[1].id, "dc1/peer:east/payments/10/service.down");
  EXPECT_EQ(events[0].Subject(), "dc1/peer:east/payments/payments-1");

  // The local service leaving takes only its own instance.
  events = engine.ServiceGone("dc1", kDefault, "payments", 11);
  EXPECT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 deregistered",
                          "instance.deregistered payments-1", "service.down payments"));
  EXPECT_EQ(events[0].scope, kDefault);
  EXPECT_EQ(engine.Instances().size(), 1U);
}

// One source still syncing does not turn another's first answers into
// notifications, nor the other way round.
TEST(SourceEngine, EachSourceHasItsOwnInitialSync) {
  FakeClock clock;
  TransitionEngine engine({}, clock);
  engine.ExpectSources(2);
  engine.Apply(In(kDefault, Snapshot(5, {MakeInstance("web-1", kPassing)}, "web")));
  engine.CompleteInitialSync("dc1", kDefault, {});
  EXPECT_FALSE(engine.initial_sync_complete());
  // The peer's first answer, after the local source synced: still silent.
  EXPECT_THAT(
      Notifying(engine.Apply(In(kEast, Snapshot(9, {MakeInstance("web-1", kPassing)}, "web")))),
      IsEmpty());
  engine.CompleteInitialSync("dc1", kEast, {});
  EXPECT_TRUE(engine.initial_sync_complete());
  // And the local source's changes notify meanwhile.
  EXPECT_THAT(
      Describe(engine.Apply(In(kDefault, Snapshot(6, {MakeInstance("web-1", kCritical)}, "web")))),
      ElementsAre("instance.down web-1 critical", "service.down web"));
}

// Saved state keeps each source's scope; on restart a source's services
// are reconciled by that source's sync only, and those of a source no
// longer watched go once every watched source synced.
TEST(SourceEngine, SavedStateKeepsSourcesApart) {
  FakeClock clock;
  SavedState saved;
  {
    TransitionEngine engine({}, clock);
    engine.ExpectSources(2);
    engine.Apply(In(kDefault, Snapshot(5, {MakeInstance("payments-1", kPassing)})));
    engine.Apply(In(kEast, Snapshot(9, {MakeInstance("payments-1", kPassing)})));
    engine.CompleteInitialSync("dc1", kDefault, {});
    engine.CompleteInitialSync("dc1", kEast, {});
    saved = engine.Save();
  }
  auto decoded = DecodeSavedState(EncodeSavedState(saved));
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(*decoded, saved);

  TransitionEngine engine({}, clock);
  engine.Restore(*decoded);
  engine.ExpectSources(1);  // the peer is no longer configured
  auto events =
      Notifying(engine.Apply(In(kDefault, Snapshot(6, {MakeInstance("payments-1", kCritical)}))));
  EXPECT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  for (const Event& event : events) EXPECT_TRUE(event.reconciled);
  events = Notifying(engine.CompleteInitialSync("dc1", kDefault, {}));
  EXPECT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 deregistered",
                          "instance.deregistered payments-1", "service.down payments"));
  for (const Event& event : events) {
    EXPECT_EQ(event.scope, kEast);
    EXPECT_TRUE(event.reconciled);
  }
}

// Sources found at run time (watch.sources templates): announced one by
// one; a source found after the initial sync starts silent like a first
// start, and one dropped leaves the state silently.
TEST(SourceEngine, SourcesFoundAtRunTimeSyncAndLeaveSilently) {
  FakeClock clock;
  TransitionEngine engine({}, clock);
  const SourceScope west{"west", "", "", true};
  engine.AddSource("dc1", kDefault);
  engine.AddSource("dc1", kEast);
  engine.Apply(In(kDefault, Snapshot(5, {MakeInstance("web-1", kPassing)}, "web")));
  engine.CompleteInitialSync("dc1", kDefault, {});
  EXPECT_FALSE(engine.initial_sync_complete()) << "east, announced, has not synced";
  engine.Apply(In(kEast, Snapshot(9, {MakeInstance("web-1", kPassing)}, "web")));
  engine.CompleteInitialSync("dc1", kEast, {});
  EXPECT_TRUE(engine.initial_sync_complete());

  // A peering found later: its first answers are silent, its changes after
  // its own sync notify.
  engine.AddSource("dc1", west);
  EXPECT_THAT(
      Notifying(engine.Apply(In(west, Snapshot(3, {MakeInstance("web-1", kPassing)}, "web")))),
      IsEmpty());
  engine.CompleteInitialSync("dc1", west, {});
  EXPECT_THAT(
      Describe(engine.Apply(In(west, Snapshot(4, {MakeInstance("web-1", kCritical)}, "web")))),
      ElementsAre("instance.down web-1 critical", "service.down web"));

  // Dropped: every event silent, its instances gone from the state.
  auto events = engine.DropSource("dc1", kEast);
  EXPECT_THAT(Describe(events), ElementsAre("instance.down web-1 deregistered",
                                            "instance.deregistered web-1", "service.down web"));
  EXPECT_THAT(Notifying(events), IsEmpty());
  EXPECT_EQ(engine.Instances().size(), 2U);

  // Found again: a new source, silent again.
  engine.AddSource("dc1", kEast);
  EXPECT_THAT(
      Notifying(engine.Apply(In(kEast, Snapshot(12, {MakeInstance("web-1", kPassing)}, "web")))),
      IsEmpty());
}

// On restart, a source the saved state knows is reconciled as before; the
// saved sources not found again leave silently, not as a burst of downs.
TEST(SourceEngine, SavedSourcesNotFoundAgainLeaveSilently) {
  FakeClock clock;
  SavedState saved;
  {
    TransitionEngine engine({}, clock);
    engine.AddSource("dc1", kDefault);
    engine.AddSource("dc1", kEast);
    engine.Apply(In(kDefault, Snapshot(5, {MakeInstance("payments-1", kPassing)})));
    engine.Apply(In(kEast, Snapshot(9, {MakeInstance("payments-1", kPassing)})));
    engine.CompleteInitialSync("dc1", kDefault, {});
    engine.CompleteInitialSync("dc1", kEast, {});
    saved = engine.Save();
  }
  TransitionEngine engine({}, clock);
  engine.Restore(saved);
  engine.AddSource("dc1", kDefault);  // east is not listed any more
  auto events =
      Notifying(engine.Apply(In(kDefault, Snapshot(6, {MakeInstance("payments-1", kCritical)}))));
  EXPECT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  for (const Event& event : events) EXPECT_TRUE(event.reconciled);
  events = engine.CompleteInitialSync("dc1", kDefault, {});
  EXPECT_THAT(Describe(events),
              ElementsAre("instance.down payments-1 deregistered",
                          "instance.deregistered payments-1", "service.down payments"));
  EXPECT_THAT(Notifying(events), IsEmpty());
  EXPECT_TRUE(engine.initial_sync_complete());
  // Found again later: a new source, its first answer silent, not a
  // reconciliation against state it no longer has.
  engine.AddSource("dc1", kEast);
  EXPECT_THAT(
      Notifying(engine.Apply(In(kEast, Snapshot(15, {MakeInstance("payments-1", kPassing)})))),
      IsEmpty());
}

}  // namespace
}  // namespace hb
