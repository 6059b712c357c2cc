#pragma once

// Cluster mode in the daemon: the coordinator, the emission gate between the
// watch and the router, the handover (the ledger of what the sinks
// acknowledged, on the router's delivery observer; takeovers run on the
// watch's thread with its engine), and the cluster's metrics, built from
// the config.

#include <prometheus/registry.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge/cluster/cluster_coordinator.h"
#include "bridge/cluster/emission_gate.h"
#include "bridge/cluster/handover_ledger.h"
#include "bridge/cluster/write_ahead.h"
#include "bridge/common/status.h"
#include "bridge/consul/event_loop.h"
#include "bridge/watch/watcher.h"
#include "config/bridge_config.h"

namespace hb {

class ClusterMetrics;

class ClusterRuntime {
 public:
  // `next` is where owned events go (the router's publisher); `ledger` is
  // the router's delivery observer (it must outlive the runtime).
  static StatusOr<std::unique_ptr<ClusterRuntime>> Create(const BridgeConfig& config,
                                                          ConsulClient& reads, EventPublisher& next,
                                                          HandoverLedger& ledger,
                                                          const Clock& clock,
                                                          prometheus::Registry& registry);
  ~ClusterRuntime();

  // The watch whose engine takeovers diff against, and the loop it runs
  // on; before Start(). Both must outlive the runtime.
  void UseWatch(Watcher& watcher, EventLoop& loop) {
    watcher_ = &watcher;
    loop_ = &loop;
  }
  Status Start();
  // After the sinks drained: writes what they acknowledged to Consul KV,
  // then releases the services at once.
  void Leave();
  EventPublisher& gate() { return *gate_; }
  // Why this replica is not ready in cluster mode; "" when it is.
  std::string NotReadyReason() const;
  const std::string& member_id() const { return member_id_; }

  ClusterRuntime(std::string member_id, std::unique_ptr<ClusterMetrics> metrics);

 private:
  struct PendingTakeOver {
    std::string service;
    std::uint64_t epoch = 0;
    std::optional<std::string> state;
    std::optional<std::string> pending;
  };
  // Takeovers waiting for the watch's thread. The task posted to the loop
  // checks `closed` before touching the runtime: the loop may run it after
  // the runtime is gone.
  struct TakeOverGuard {
    Mutex mutex;
    bool closed GUARDED_BY(mutex) = false;
    bool scheduled GUARDED_BY(mutex) = false;  // a task is posted
    std::vector<PendingTakeOver> queue GUARDED_BY(mutex);
  };

  // The coordinator's take_over: queues the takeover for the watch's thread.
  void ScheduleTakeOver(std::string service, std::uint64_t epoch, std::optional<std::string> state,
                        std::optional<std::string> pending);
  // On the watch's thread: every queued takeover, once the engine synced.
  void RunTakeOvers(const std::shared_ptr<TakeOverGuard>& guard);
  void CloseTakeOvers();
  // On the watch's thread, once per retry interval: deletes the
  // write-ahead of services whose events were all acknowledged since.
  void ScheduleTrim(const std::shared_ptr<TakeOverGuard>& guard);
  std::shared_ptr<TakeOverGuard> guard_ = std::make_shared<TakeOverGuard>();
  Watcher* watcher_ = nullptr;
  EventLoop* loop_ = nullptr;
  std::string member_id_;
  std::unique_ptr<ClusterMetrics> metrics_;
  std::unique_ptr<ClusterCoordinator> coordinator_;
  std::unique_ptr<WriteAhead> write_ahead_;
  std::unique_ptr<EmissionGate> gate_;
};

}  // namespace hb
