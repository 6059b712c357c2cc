#include "bridge/app/loop_heartbeat.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

namespace hb {
namespace {

using std::chrono::milliseconds;

// Polls `condition` until it holds or 10 s passed.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(LoopHeartbeatTest, TheTimeSinceTheLastTurnGrowsWhileTheLoopIsStuckAndRecoversAfter) {
  SystemClock clock;
  EventLoop loop;
  LoopHeartbeat heartbeat(loop, clock, milliseconds(5));
  EXPECT_EQ(heartbeat.SinceLastTurn(), milliseconds(0)) << "not started";
  heartbeat.Start();

  // A callback that does not return, as a watch stuck on a lock would.
  std::mutex mutex;
  std::condition_variable changed;
  bool release = false;
  bool entered = false;
  loop.Post([&] {
    std::unique_lock lock(mutex);
    entered = true;
    changed.notify_all();
    changed.wait_for(lock, std::chrono::seconds(30), [&] { return release; });
  });
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  EXPECT_TRUE(Eventually([&] { return heartbeat.SinceLastTurn() > milliseconds(200); }));
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  changed.notify_all();
  EXPECT_TRUE(Eventually([&] { return heartbeat.SinceLastTurn() < milliseconds(100); }));
}

TEST(LoopHeartbeatTest, AStoppedHeartbeatCanGoWhileItsTaskIsStillScheduled) {
  SystemClock clock;
  EventLoop loop;
  {
    LoopHeartbeat heartbeat(loop, clock, milliseconds(1));
    heartbeat.Start();
    heartbeat.Start();  // idempotent
    EXPECT_TRUE(Eventually([&] { return heartbeat.SinceLastTurn() < milliseconds(1000); }));
  }  // destroyed with a turn pending: the task must not touch it
  // A later turn of the loop runs whatever was due, harmlessly.
  std::mutex mutex;
  bool ran = false;
  loop.RunAt(clock.Now() + milliseconds(5), [&] {
    std::lock_guard lock(mutex);
    ran = true;
  });
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard lock(mutex);
    return ran;
  }));
}

}  // namespace
}  // namespace hb
