#include "bridge/app/checkpointer.h"

#include <spdlog/spdlog.h>

#include "bridge/state/state_file.h"

namespace hb {

Checkpointer::Checkpointer(std::filesystem::path file, std::chrono::milliseconds interval,
                           Watcher& watcher, Router& router, BridgeMetrics& metrics)
    : file_(std::move(file)),
      interval_(interval),
      watcher_(watcher),
      router_(router),
      metrics_(metrics) {}

Checkpointer::~Checkpointer() { StopThread(); }

void Checkpointer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Checkpointer::Stop() {
  StopThread();
  SaveIfChanged();
}

void Checkpointer::StopThread() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void Checkpointer::Run() {
  MutexLock lock(&mutex_);
  while (true) {
    const auto next_save = std::chrono::steady_clock::now() + interval_;
    while (!stopping_ && wake_.WaitUntil(&mutex_, next_save)) {
    }
    if (stopping_) return;
    lock.Unlock();
    SaveIfChanged();
    lock.Lock();
  }
}

void Checkpointer::SaveIfChanged() {
  // Read before the copy: events published meanwhile trigger the next save.
  const std::uint64_t published = router_.published();
  if (published == saved_published_) return;
  SavedState state;
  watcher_.WithEngine([&state](const TransitionEngine& engine) { state = engine.Save(); });
  Status saved = router_.SyncSpools();
  if (saved.ok()) saved = SaveStateFile(file_, state);
  metrics_.OnStateSaved(saved.ok());
  if (!saved.ok()) {
    // Logged once per streak; the next interval tries again.
    if (!failing_) {
      spdlog::error("cannot save state to {}: {}; retrying every {} ms", file_.string(),
                    saved.message(), interval_.count());
    }
    failing_ = true;
    return;
  }
  if (failing_) spdlog::info("state saved to {} again", file_.string());
  failing_ = false;
  saved_published_ = published;
}

}  // namespace hb
