#pragma once

// A service's write-ahead in Consul KV: the events its owner is about to
// hand, or has handed, to its sinks without every sink having acknowledged
// them yet, under `<prefix>/pending/<encoded service>`. The owner writes it
// before the events leave (EmissionGate), so a replica killed with
// undelivered events in its queues or spool (lost with a pod that has no
// persistent volume) leaves them to its successor, which re-emits them with
// their ids. The value is JSON, version 1:
//   {"v":1,"events":[<event as bridge/model/event_codec.h encodes it>,...]}
// oldest first.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"
#include "bridge/model/event.h"

namespace hb {

// Per service, well below Consul's 512 KiB per value and per transaction
// (the value travels base64-encoded, a third larger), so a transaction
// carries the write-ahead of two services at the cap.
inline constexpr std::size_t kMaxPendingEventsBytes = 128 * 1024;

std::string PendingEventsKey(std::string_view prefix, std::string_view service);

struct PendingEventsValue {
  std::string value;
  std::size_t kept = 0;
  // The oldest events that did not fit under the limit.
  std::size_t left_out = 0;
};

// `encoded`: EncodeEvent() of each event, oldest first. Keeps the newest
// events that fit in `limit` bytes; an empty list encodes as an empty list.
PendingEventsValue EncodePendingEvents(const std::vector<std::string>& encoded,
                                       std::size_t limit = kMaxPendingEventsBytes);
// Strict: anything but a version-1 value written as above is an error
// naming what is wrong (the value is another process's writing).
StatusOr<std::vector<Event>> DecodePendingEvents(std::string_view value);

}  // namespace hb
