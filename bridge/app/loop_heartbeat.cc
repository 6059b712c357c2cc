#include "bridge/app/loop_heartbeat.h"

namespace hb {

LoopHeartbeat::LoopHeartbeat(EventLoop& loop, const Clock& clock,
                             std::chrono::milliseconds interval)
    : loop_(loop), clock_(clock), interval_(interval) {}

LoopHeartbeat::~LoopHeartbeat() { Stop(); }

void LoopHeartbeat::Start() {
  MutexLock lock(&beat_->mutex);
  if (beat_->running) return;
  beat_->running = true;
  beat_->last_turn.store(clock_.Now().time_since_epoch().count(), std::memory_order_release);
  Schedule(beat_, loop_, clock_, interval_);
}

void LoopHeartbeat::Stop() {
  MutexLock lock(&beat_->mutex);
  if (!beat_->running) return;
  beat_->running = false;
  loop_.CancelTimer(beat_->timer);
}

void LoopHeartbeat::Schedule(const std::shared_ptr<Beat>& beat, EventLoop& loop, const Clock& clock,
                             std::chrono::milliseconds interval) {
  // `loop` and `clock` are only touched while running,
  // that is while the heartbeat (which they outlive) exists.
  beat->timer = loop.RunAt(clock.Now() + interval, [beat, &loop, &clock, interval] {
    MutexLock lock(&beat->mutex);
    if (!beat->running) return;
    beat->last_turn.store(clock.Now().time_since_epoch().count(), std::memory_order_release);
    Schedule(beat, loop, clock, interval);
  });
}

std::chrono::milliseconds LoopHeartbeat::SinceLastTurn() const {
  const SteadyTime::rep last = beat_->last_turn.load(std::memory_order_acquire);
  if (last == 0) return std::chrono::milliseconds(0);
  const SteadyTime::duration since = clock_.Now() - SteadyTime(SteadyTime::duration(last));
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(since));
}

}  // namespace hb
