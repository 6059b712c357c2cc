#pragma once

// What a sink's events are kept in besides its memory queue: the
// dead-letter file (always) and the spool (with state.dir). Both outlive the
// sink's worker, so a sink whose settings change keeps them.

#include <cstdint>
#include <memory>

#include "bridge/router/dead_letter.h"
#include "bridge/spool/spool.h"
#include "sinks/sink.h"

namespace hb {

struct SinkStorage {
  std::unique_ptr<DeadLetterFile> dead_letter;
  std::unique_ptr<Spool> spool;  // null without state.dir
};

// An event waiting for a sink, with its place in the sink's spool (0 when
// not spooled): recovered from the spool at start, or handed over by the
// worker of the sink's previous settings.
struct QueuedEvent {
  EventPtr event;
  std::uint64_t spool_seq = 0;
};

}  // namespace hb
