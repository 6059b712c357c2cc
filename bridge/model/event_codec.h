#pragma once

// The spool's encoding of an Event: every field the sinks read, so an event
// replayed after a restart is delivered exactly as it would have been.
// (SerializeCloudEvent is the wire format; this is storage, and round-trips.)

#include <optional>
#include <string>
#include <string_view>

#include "bridge/common/status.h"
#include "bridge/model/event.h"

namespace hb {

// `queued_at`: when the event entered its sink's queue, stored (as field
// `queued_ms`, wall clock) so that a sink's max_age keeps counting across a
// restart. Records without it (written before it existed) still decode.
std::string EncodeEvent(const Event& event, std::optional<WallTime> queued_at = std::nullopt);
// kDataLoss naming the first field that is missing or of the wrong type.
// observed_at is not stored (it is a steady-clock reading of another run).
// `queued_at`, when given, receives the stored queued time (none without).
StatusOr<Event> DecodeEvent(std::string_view encoded, std::optional<WallTime>* queued_at = nullptr);

}  // namespace hb
