#pragma once

// Saves the engine's state to state.dir while the bridge runs, so that a
// restart (even after kill -9) diffs Consul against what was reported and
// emits only what changed meanwhile.
//
// Every save_interval, if events were published since the last save: copy
// the engine's state on the watch thread, fdatasync every spool, then
// replace the state file. Spools first: the saved state may then be older
// than the spools (events after it are re-derived by reconciliation), but
// never newer (it would claim events a power cut could have lost).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <thread>

#include "bridge/common/mutex.h"
#include "bridge/router/router.h"
#include "bridge/telemetry/bridge_metrics.h"
#include "bridge/watch/watcher.h"

namespace hb {

class Checkpointer {
 public:
  // All references must outlive the checkpointer.
  Checkpointer(std::filesystem::path file, std::chrono::milliseconds interval, Watcher& watcher,
               Router& router, BridgeMetrics& metrics);
  ~Checkpointer();

  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  void Start();
  // Stops the periodic saves and saves once more if anything changed: call
  // it once the watcher has stopped, so that save is the last word.
  void Stop();

 private:
  void Run() EXCLUDES(mutex_);
  void StopThread() EXCLUDES(mutex_);
  void SaveIfChanged();

  const std::filesystem::path file_;
  const std::chrono::milliseconds interval_;
  Watcher& watcher_;
  Router& router_;
  BridgeMetrics& metrics_;

  Mutex mutex_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
  // Saving thread only (or Stop() after it joined).
  std::uint64_t saved_published_ = 0;
  bool failing_ = false;
};

}  // namespace hb
