#pragma once

// Cluster mode in the daemon: the coordinator, the emission gate between the
// watch and the router, and the cluster's metrics, built from the config.

#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "bridge/cluster/cluster_coordinator.h"
#include "bridge/cluster/emission_gate.h"
#include "bridge/common/status.h"
#include "config/bridge_config.h"

namespace hb {

class ClusterMetrics;

class ClusterRuntime {
 public:
  // `next` is where owned events go (the router's publisher).
  static StatusOr<std::unique_ptr<ClusterRuntime>> Create(const BridgeConfig& config,
                                                          ConsulClient& reads, EventPublisher& next,
                                                          const Clock& clock,
                                                          prometheus::Registry& registry);
  ~ClusterRuntime();

  Status Start() { return coordinator_->Start(); }
  // After the sinks drained: releases the services at once.
  void Leave() { coordinator_->Leave(); }
  EventPublisher& gate() { return *gate_; }
  // Why this replica is not ready in cluster mode; "" when it is.
  std::string NotReadyReason() const;
  const std::string& member_id() const { return member_id_; }

  ClusterRuntime(std::string member_id, std::unique_ptr<ClusterMetrics> metrics);

 private:
  std::string member_id_;
  std::unique_ptr<ClusterMetrics> metrics_;
  std::unique_ptr<ClusterCoordinator> coordinator_;
  std::unique_ptr<EmissionGate> gate_;
};

}  // namespace hb
