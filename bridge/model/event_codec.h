#pragma once

// The spool's encoding of an Event: every field the sinks read, so an event
// replayed after a restart is delivered exactly as it would have been.
// (SerializeCloudEvent is the wire format; this is storage, and round-trips.)

#include <string>
#include <string_view>

#include "bridge/common/status.h"
#include "bridge/model/event.h"

namespace hb {

std::string EncodeEvent(const Event& event);
// kDataLoss naming the first field that is missing or of the wrong type.
// observed_at is not stored (it is a steady-clock reading of another run).
StatusOr<Event> DecodeEvent(std::string_view encoded);

}  // namespace hb
