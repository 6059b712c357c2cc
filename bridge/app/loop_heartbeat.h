#pragma once

// A heartbeat on the watch's event loop: a timer task that records when it
// last ran and schedules itself again. While the loop is busy for good (a
// callback that never returns, a lock it waits on) the task does not run,
// so the time since its last turn says the watch is stuck even when every
// socket is fine; /readyz, a metric and an alert follow it.

#include <atomic>
#include <chrono>
#include <memory>

#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/consul/event_loop.h"

namespace hb {

// Start(), Stop() and SinceLastTurn() may be called from any thread.
class LoopHeartbeat {
 public:
  // `loop` and `clock` must outlive the heartbeat. The task runs every
  // `interval`.
  LoopHeartbeat(EventLoop& loop, const Clock& clock, std::chrono::milliseconds interval);
  ~LoopHeartbeat();

  LoopHeartbeat(const LoopHeartbeat&) = delete;
  LoopHeartbeat& operator=(const LoopHeartbeat&) = delete;

  void Start();
  // No task runs the heartbeat's code afterwards. Idempotent.
  void Stop();

  // Time since the loop last ran the heartbeat (since Start() before its
  // first turn); zero before Start().
  std::chrono::milliseconds SinceLastTurn() const;

 private:
  // Shared with the scheduled task, which the loop may still hold (and
  // drop without running) after the heartbeat is gone.
  struct Beat {
    Mutex mutex;
    bool running GUARDED_BY(mutex) = false;
    EventLoop::TimerId timer GUARDED_BY(mutex) = 0;
    std::atomic<SteadyTime::rep> last_turn{0};
  };
  static void Schedule(const std::shared_ptr<Beat>& beat, EventLoop& loop, const Clock& clock,
                       std::chrono::milliseconds interval) REQUIRES(beat->mutex);

  EventLoop& loop_;
  const Clock& clock_;
  const std::chrono::milliseconds interval_;
  const std::shared_ptr<Beat> beat_ = std::make_shared<Beat>();
};

}  // namespace hb
