#pragma once

// What the engine remembers across restarts: the reported state of every
// instance, so the first sync after a start can be diffed against it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/status.h"
#include "bridge/model/health.h"
#include "bridge/model/source_scope.h"

namespace hb {

struct SavedInstance {
  std::string datacenter;
  std::string service;
  Instance instance;  // last known details (address, port, tags, meta, checks)
  HealthStatus reported_status = HealthStatus::kCritical;
  bool reported_up = false;
  std::uint64_t index = 0;  // Consul index of the last applied snapshot
  WallTime since{};         // last reported up/down change, or first seen
  SourceScope scope{};      // peer, namespace, partition: absent from the file when default

  bool operator==(const SavedInstance&) const = default;
};

struct SavedService {
  std::string datacenter;
  std::string service;
  SourceScope scope{};
  bool operator==(const SavedService&) const = default;
};

struct SavedState {
  // Services known, including those without instances: a service that had
  // none and then vanished still needs no event, but one that had some does.
  std::vector<SavedService> services;
  std::vector<SavedInstance> instances;

  bool operator==(const SavedState&) const = default;
};

// JSON codec for state.dir. Decoding validates every field; a corrupt file is
// an error naming what is wrong, never a partial state.
std::string EncodeSavedState(const SavedState& state);
StatusOr<SavedState> DecodeSavedState(std::string_view json);

}  // namespace hb
