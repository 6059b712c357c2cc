// Randomized sequences of snapshots (fixed seeds, so failures reproduce)
// checked against the invariants every consumer relies on.

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "bridge/state/transition_engine.h"
#include "tests/support/fake_clock.h"
#include "tests/support/sanitizer_build.h"
#include "tests/unit/state/engine_test_util.h"

namespace hb {
namespace {

using test_support::Describe;
using test_support::MakeInstance;
using test_support::NodeCheck;
using test_support::Snapshot;

struct InstanceTrack {
  bool registered = false;
  bool up = false;
  std::uint64_t last_index = 0;
};

// Replays events as a consumer would and fails on the first broken rule.
class InvariantChecker {
 public:
  void Check(const std::vector<Event>& events, const std::string& context) {
    const int up_before = up_count_;
    int service_events = 0;
    for (const auto& event : events) {
      const std::string what = context + ": " + Describe(event);
      if (!event.IsInstanceEvent()) {
        ++service_events;
        if (event.type == EventType::kServiceUp) {
          EXPECT_EQ(up_before, 0) << what;
          EXPECT_GT(up_count_, 0) << what;
        } else {
          EXPECT_GT(up_before, 0) << what;
          EXPECT_EQ(up_count_, 0) << what;
        }
        EXPECT_EQ(event.instances_up, up_count_) << what;
        continue;
      }
      auto& track = instances_[event.node + "/" + event.instance_id];
      // Events of one instance are in order.
      EXPECT_GE(event.consul_index, track.last_index) << what;
      track.last_index = event.consul_index;
      switch (event.type) {
        case EventType::kInstanceRegistered:
          EXPECT_FALSE(track.registered) << what;
          track = InstanceTrack{.registered = true, .up = false, .last_index = event.consul_index};
          break;
        case EventType::kInstanceUp:
          EXPECT_TRUE(track.registered) << what;
          EXPECT_FALSE(track.up) << "up twice without a down: " << what;
          track.up = true;
          ++up_count_;
          break;
        case EventType::kInstanceDown:
          EXPECT_TRUE(track.up) << "down without an up before it: " << what;
          track.up = false;
          --up_count_;
          break;
        case EventType::kInstanceStatusChanged:
          EXPECT_TRUE(track.registered) << what;
          EXPECT_NE(event.status, event.previous_status) << what;
          break;
        case EventType::kInstanceDeregistered:
          EXPECT_TRUE(track.registered) << what;
          EXPECT_FALSE(track.up) << "deregistered while up: " << what;
          track = InstanceTrack{};
          break;
        default:
          break;
      }
    }
    // service.down exactly when the up count reaches zero (and service.up
    // exactly when it leaves zero), once per call.
    const bool crossed = (up_before == 0) != (up_count_ == 0);
    EXPECT_EQ(service_events, crossed ? 1 : 0) << context;
  }

  int up_count() const { return up_count_; }

 private:
  std::map<std::string, InstanceTrack> instances_;
  int up_count_ = 0;
};

Instance RandomInstance(std::mt19937& rng, int which) {
  static const HealthStatus kStatuses[] = {HealthStatus::kPassing, HealthStatus::kWarning,
                                           HealthStatus::kCritical};
  const std::string node = which % 2 == 0 ? "node-a" : "node-b";
  // Two instance ids shared by both nodes: identity is node + id.
  auto instance = MakeInstance("payments-" + std::to_string(which / 2), kStatuses[rng() % 3], node);
  switch (rng() % 8) {
    case 0:
      instance.checks.push_back(
          NodeCheck("_service_maintenance:" + instance.id, HealthStatus::kCritical));
      break;
    case 1:
      instance.checks[0] = NodeCheck("serfHealth", HealthStatus::kCritical);
      break;
    case 2:
      instance.checks[1].output = "note " + std::to_string(rng());
      break;
    default:
      break;
  }
  return instance;
}

// The release pass runs every sequence in under a second; under ASan at -O0
// each costs about a hundred times more.
constexpr std::uint32_t kSequences = test_support::kSanitizerBuild ? 150 : 3000;

TEST(EngineInvariants, HoldForThousandsOfRandomSnapshotSequences) {
  for (std::uint32_t seed = 1; seed <= kSequences; ++seed) {
    std::mt19937 rng(seed);
    test_support::FakeClock clock;
    EngineOptions options;
    if (rng() % 2) options.up_statuses = {HealthStatus::kPassing};
    if (rng() % 2) {
      options.down_after = std::chrono::seconds(rng() % 20);
      options.up_after = std::chrono::seconds(rng() % 20);
    }
    options.initial_events = rng() % 2;
    TransitionEngine engine(options, clock);
    InvariantChecker checker;
    std::uint64_t index = 1;
    for (int step = 0; step < 40; ++step) {
      const std::string context = "seed " + std::to_string(seed) + " step " + std::to_string(step);
      std::vector<Event> events;
      const auto action = rng() % 10;
      if (action == 0) {
        events = engine.ServiceGone("dc1", "payments", ++index);
      } else if (action <= 2) {
        clock.Advance(std::chrono::seconds(rng() % 25));
        events = engine.Tick();
      } else {
        std::vector<Instance> instances;
        for (int which = 0; which < 4; ++which) {
          if (rng() % 4 != 0) instances.push_back(RandomInstance(rng, which));
        }
        clock.Advance(std::chrono::seconds(rng() % 5));
        events = engine.Apply(Snapshot(++index, std::move(instances)));
        // With initial_events, the sync's first answer also restates the
        // state silently, after its events: a view, not transitions.
        if (options.initial_events) {
          std::erase_if(events, [](const Event& event) { return event.silent; });
        }
      }
      if (step == 3) {
        auto more = engine.CompleteInitialSync();
        events.insert(events.end(), more.begin(), more.end());
      }
      checker.Check(events, context);
      if (::testing::Test::HasFailure()) return;
      int engine_up = 0;
      for (const auto& view : engine.Instances()) engine_up += view.up ? 1 : 0;
      ASSERT_EQ(engine_up, checker.up_count()) << context;
    }
  }
}

}  // namespace
}  // namespace hb
