// Stateful sinks get the silent events (the engine's view) through the
// router, and the tracker knows when each has attempted the last of its
// view: what /readyz and a reload wait for.

#include "bridge/app/view_seeding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/dead_letters.h"
#include "tests/support/sample_events.h"
#include "tests/support/test_dir.h"
#include "tests/unit/router/recording_sink.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using test_support::InstanceEvent;
using test_support::RecordingSink;
using ::testing::ElementsAre;

constexpr milliseconds kWait{5000};
constexpr milliseconds kForever{std::chrono::hours(1)};

Event Silent(Event event) {
  event.silent = true;
  return event;
}

class ViewSeedingTest : public ::testing::Test {
 protected:
  void Add(const std::string& name, RecordingSink::Log& log, bool stateful,
           RecordingSink::Script script = {}) {
    SinkRoute route;
    route.worker.retry.initial_backoff = milliseconds(1);
    route.worker.retry.max_backoff = milliseconds(5);
    router_.AddSink(route,
                    std::make_unique<RecordingSink>(name, log, std::move(script), 16, stateful),
                    test_support::DeadLetterStorage(dir_.path(), name));
  }

  SystemClock clock_;
  test_support::TestDir dir_{"view_seeding_test"};
  // What the sinks record; they outlive the router that delivers to them.
  RecordingSink::Log gauges_;
  RecordingSink::Log hooks_;
  RecordingSink::Log alerts_;
  ViewTracker tracker_{nullptr, clock_};
  Router router_{clock_, &tracker_};
  ViewPublisher publisher_{router_, tracker_};
};

TEST_F(ViewSeedingTest, SilentEventsReachOnlyStatefulSinksAfterTheNotifyingOnes) {
  RecordingSink::Log& gauges = gauges_;
  RecordingSink::Log& hooks = hooks_;
  gauges.SetRelease(false);
  Add("gauges", gauges, /*stateful=*/true);
  Add("hooks", hooks, /*stateful=*/false);

  publisher_.Publish({InstanceEvent("payments-1", EventType::kInstanceDown, 7),
                      Silent(InstanceEvent("payments-2", EventType::kInstanceUp, 5)),
                      Silent(InstanceEvent("payments-3", EventType::kInstanceDown, 6))});
  EXPECT_FALSE(tracker_.Settled(kForever)) << "gauges has not taken its view yet";
  ASSERT_TRUE(hooks.WaitForAcked(1, kWait));

  gauges.SetRelease(true);
  EXPECT_TRUE(tracker_.WaitFor("gauges", kWait));
  EXPECT_TRUE(tracker_.Settled(kForever));
  ASSERT_TRUE(gauges.WaitForAcked(3, kWait));
  EXPECT_THAT(gauges.Acked(), ElementsAre("dc1/node-a/payments-1/7/instance.down",
                                          "dc1/node-a/payments-2/5/instance.up",
                                          "dc1/node-a/payments-3/6/instance.down"));
  EXPECT_THAT(hooks.Acked(), ElementsAre("dc1/node-a/payments-1/7/instance.down"));
}

TEST_F(ViewSeedingTest, AViewTakenAtOnceIsNeverMissed) {
  // The worker may deliver the last event before PublishView returns: the
  // tracker must already know it by then.
  RecordingSink::Log& gauges = gauges_;
  Add("gauges", gauges, /*stateful=*/true);
  for (int round = 0; round < 200; ++round) {
    router_.PublishView({Silent(InstanceEvent("payments-1", EventType::kInstanceUp,
                                              static_cast<std::uint64_t>(round)))},
                        tracker_.Tracking(), "gauges");
    ASSERT_TRUE(tracker_.WaitFor("gauges", kWait)) << "round " << round;
  }
}

TEST_F(ViewSeedingTest, ARetriedOrForgottenViewNoLongerHoldsAnythingBack) {
  Add("alerts", alerts_, /*stateful=*/true,
      [](const Event&, int) { return DeliveryResult::Retry("503"); });
  router_.PublishView({Silent(InstanceEvent("payments-1", EventType::kInstanceDown, 3))},
                      tracker_.Tracking());
  // A destination that answers, even with a failure, has attempted it.
  EXPECT_TRUE(tracker_.WaitFor("alerts", kWait));

  RecordingSink::Log& held = gauges_;
  held.SetRelease(false);
  Add("gauges", held, /*stateful=*/true);
  router_.PublishView({Silent(InstanceEvent("payments-1", EventType::kInstanceUp, 4))},
                      tracker_.Tracking(), "gauges");
  EXPECT_FALSE(tracker_.Settled(kForever));
  EXPECT_TRUE(tracker_.Settled(milliseconds(0))) << "the grace bounds the wait";
  tracker_.Forget("gauges");  // removed by a reload
  EXPECT_TRUE(tracker_.Settled(kForever));
  held.SetRelease(true);
}

TEST_F(ViewSeedingTest, NothingToSendIsNothingToWaitFor) {
  Add("hooks", hooks_, /*stateful=*/false);
  router_.PublishView({Silent(InstanceEvent("payments-1", EventType::kInstanceUp, 1))},
                      tracker_.Tracking());
  EXPECT_TRUE(tracker_.Settled(kForever));
  EXPECT_TRUE(tracker_.WaitFor("hooks", milliseconds(0)));
}

}  // namespace
}  // namespace hb
