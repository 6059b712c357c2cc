#pragma once

// The /v1/sinks document: each sink's name, type, target (secrets masked),
// delivery state, last success, last error, queue depth and spooled events,
// so an operator sees a sink that cannot deliver without reading metrics.

#include <string>
#include <vector>

#include "bridge/router/router.h"

namespace hb {

// {"sinks": [{"name", "type", "target", "state", "last_success",
//   "last_error": {"message", "time"} or null, "consecutive_failures",
//   "queue_depth", "spooled"}, ...]}; times are RFC 3339 UTC, null when
// there was none since the start.
std::string SinksJson(const std::vector<SinkStatusReport>& sinks);

}  // namespace hb
