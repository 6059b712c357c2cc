// The checkpointer saves the engine's state to state.dir while the bridge
// runs: only when events were published since the last save, once more when
// it stops, and a save that fails is counted and tried again.

#include "bridge/app/checkpointer.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <filesystem>
#include <memory>

#include "bridge/state/state_file.h"
#include "tests/support/eventually.h"
#include "tests/support/sample_events.h"
#include "tests/support/test_dir.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using test_support::Eventually;
using test_support::InstanceEvent;

constexpr milliseconds kWait{5000};

SavedState SampleState() {
  SavedState state;
  state.services.push_back({"dc1", "payments"});
  SavedInstance instance;
  instance.datacenter = "dc1";
  instance.service = "payments";
  instance.instance.node = "node-a";
  instance.instance.id = "payments-1";
  instance.instance.service = "payments";
  instance.instance.address = "10.1.2.3";
  instance.instance.port = 8080;
  instance.reported_status = HealthStatus::kPassing;
  instance.reported_up = true;
  instance.index = 42;
  state.instances.push_back(instance);
  return state;
}

// A watcher that is never started: the checkpointer only copies its
// engine's state (restored from SampleState()).
class CheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConsulClientOptions options;
    options.address = "http://127.0.0.1:1";  // never asked: the watcher does not start
    auto client = ConsulClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
    auto engine = std::make_unique<TransitionEngine>(EngineOptions{}, clock_);
    engine->Restore(SampleState());
    watcher_ =
        std::make_unique<Watcher>(WatcherOptions{}, *client_, std::move(engine), router_, clock_);
  }

  std::unique_ptr<Checkpointer> NewCheckpointer(const std::filesystem::path& file,
                                                milliseconds interval) {
    return std::make_unique<Checkpointer>(file, interval, *watcher_, router_, metrics_);
  }

  // health_bridge_state_saves_total{outcome}.
  double Saves(const std::string& outcome) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "health_bridge_state_saves_total") continue;
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.name == "outcome" && label.value == outcome) return metric.counter.value;
        }
      }
    }
    return 0;
  }

  // What the engine saves now (its restored SampleState()).
  SavedState EngineState() {
    SavedState state;
    watcher_->WithEngine([&](const TransitionEngine& engine) { state = engine.Save(); });
    EXPECT_FALSE(state.instances.empty());
    return state;
  }

  std::optional<SavedState> Load(const std::filesystem::path& file) {
    auto loaded = LoadStateFile(file);
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    return loaded.ok() ? *loaded : std::nullopt;
  }

  SystemClock clock_;
  test_support::TestDir dir_{"checkpointer_test"};
  prometheus::Registry registry_;
  BridgeMetrics metrics_{registry_, clock_};
  Router router_{clock_};
  std::unique_ptr<ConsulClient> client_;
  std::unique_ptr<Watcher> watcher_;
};

TEST_F(CheckpointerTest, SavesTheEnginesStateOnceEventsWerePublished) {
  const auto file = dir_.path() / "state.json";
  auto checkpointer = NewCheckpointer(file, milliseconds(20));
  checkpointer->Start();
  router_.Publish({InstanceEvent("payments-1", EventType::kInstanceUp, 42)});
  ASSERT_TRUE(Eventually([&] { return Saves("ok") >= 1; }, kWait));
  EXPECT_EQ(Load(file), EngineState());
  checkpointer->Stop();
}

TEST_F(CheckpointerTest, NothingPublishedMeansNothingWritten) {
  const auto file = dir_.path() / "state.json";
  auto checkpointer = NewCheckpointer(file, milliseconds(1));
  checkpointer->Start();
  // Stop() joins the saving thread and saves once more if anything moved:
  // afterwards no save can be pending.
  checkpointer->Stop();
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_EQ(Saves("ok") + Saves("error"), 0);
}

TEST_F(CheckpointerTest, StopSavesWhatThePeriodicSavesHaveNotYet) {
  const auto file = dir_.path() / "state.json";
  auto checkpointer = NewCheckpointer(file, std::chrono::hours(1));
  checkpointer->Start();
  router_.Publish({InstanceEvent("payments-1", EventType::kInstanceUp, 42)});
  checkpointer->Stop();
  EXPECT_EQ(Load(file), EngineState());
  EXPECT_EQ(Saves("ok"), 1);
}

TEST_F(CheckpointerTest, AFailedSaveIsCountedAndTriedAgain) {
  // The directory does not exist: every save fails until it does.
  const auto file = dir_.path() / "missing" / "state.json";
  auto checkpointer = NewCheckpointer(file, milliseconds(10));
  checkpointer->Start();
  router_.Publish({InstanceEvent("payments-1", EventType::kInstanceUp, 42)});
  ASSERT_TRUE(Eventually([&] { return Saves("error") >= 2; }, kWait)) << "tried again";
  EXPECT_EQ(Saves("ok"), 0);

  std::filesystem::create_directories(file.parent_path());
  ASSERT_TRUE(Eventually([&] { return Saves("ok") >= 1; }, kWait));
  EXPECT_EQ(Load(file), EngineState());
  checkpointer->Stop();
}

}  // namespace
}  // namespace hb
