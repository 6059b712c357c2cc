#pragma once

// The way back from the wire format: a structured-mode CloudEvent that this
// bridge wrote (a dead letter, a captured webhook body) as the Event it was
// made from, so it can be delivered again exactly as it first was.

#include <string_view>

#include "bridge/common/status.h"
#include "bridge/model/event.h"

namespace hb {

// kInvalidArgument naming the first attribute or data field that is missing
// or of the wrong kind. `time` keeps its milliseconds; checks' output is
// what the event carried (possibly cut). observed_at is not known.
StatusOr<Event> ReadCloudEvent(std::string_view json);

}  // namespace hb
