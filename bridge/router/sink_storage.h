#pragma once

// What a sink's events are kept in besides its memory queue: the
// dead-letter file (always) and the spool (with state.dir). Both outlive the
// sink's worker, so a sink whose settings change keeps them.

#include <cstdint>
#include <memory>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/router/dead_letter.h"
#include "bridge/router/sink.h"
#include "bridge/spool/spool.h"

namespace hb {

struct SinkStorage {
  std::unique_ptr<DeadLetterFile> dead_letter;
  std::unique_ptr<Spool> spool;  // null without state.dir
};

// An event waiting for a sink, with its place in the sink's spool (0 when
// not spooled) and when it entered the sink's queue (its max_age counts
// from there).
struct QueuedEvent {
  EventPtr event;
  std::uint64_t spool_seq = 0;
  SteadyTime queued_at{};
};

// What a sink's worker hands to the worker of its new settings.
struct SinkBacklog {
  std::vector<QueuedEvent> queued;  // in memory, oldest first
  // Events only in the spool, not paged in yet: every unacknowledged one
  // with a sequence number in (paged_through, spilled_through].
  std::uint64_t paged_through = 0;
  std::uint64_t spilled_through = 0;
  std::size_t spilled = 0;
};

}  // namespace hb
