#pragma once

// The /v1/instances document: every watched instance as the engine sees it.

#include <string>
#include <vector>

#include "bridge/state/transition_engine.h"

namespace hb {

// {"instances": [{"datacenter", "service", "id", "node", "address", "port",
//   "tags", "meta", "status", "up", "since", "checks": [...]}, ...]}
std::string InstancesJson(const std::vector<InstanceView>& instances);

}  // namespace hb
