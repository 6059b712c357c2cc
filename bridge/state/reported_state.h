#pragma once

// What a service's events have reported, as a consumer that applied every
// one of them holds it: per instance its up-ness, status and the index its
// last event carried, and whether the service is up. Cluster mode keeps the
// part every sink acknowledged in Consul KV, so a replica that takes the
// service over can emit exactly what happened since
// (TransitionEngine::ReconcileFrom()).

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "bridge/model/event.h"
#include "bridge/model/health.h"

namespace hb {

struct ReportedInstance {
  bool up = false;
  HealthStatus status = HealthStatus::kCritical;
  // The index of the last event about it (the one in its id).
  std::uint64_t index = 0;
  bool operator==(const ReportedInstance&) const = default;
};

struct ReportedService {
  bool up = false;
  // By (node, instance id).
  std::map<std::pair<std::string, std::string>, ReportedInstance> instances;
  bool operator==(const ReportedService&) const = default;
};

// Applies one event of the service to what was reported. Silent events
// restating the state (a view) apply like any other.
void FoldEvent(ReportedService& reported, const Event& event);

}  // namespace hb
