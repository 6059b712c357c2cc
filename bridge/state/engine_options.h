#pragma once

#include <chrono>
#include <vector>

#include "bridge/model/health.h"

namespace hb {

struct EngineOptions {
  // Aggregated statuses that count as up (watch.up_statuses). Maintenance is
  // never up. Default: passing, warning.
  std::vector<HealthStatus> up_statuses{HealthStatus::kPassing, HealthStatus::kWarning};
  // A down transition is emitted only once the instance has stayed down this
  // long; a shorter blip emits nothing (watch.dampening.down_after).
  // Default: 0 (immediately).
  std::chrono::milliseconds down_after{0};
  // Likewise for becoming up (watch.dampening.up_after). Default: 0.
  std::chrono::milliseconds up_after{0};
  // Emit the initial sync's registered/up events as real notifications
  // (watch.initial_events). Default: false: they are marked silent.
  bool initial_events = false;

  bool operator==(const EngineOptions&) const = default;
};

}  // namespace hb
