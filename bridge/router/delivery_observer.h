#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bridge/common/clock.h"
#include "bridge/model/event.h"

namespace hb {

// What happens to events on their way to sinks, for metrics and tests.
// Called from sink worker threads (and the publishing thread for
// OnDropped/OnQueueDepth): implementations must be thread-safe and quick.
class DeliveryObserver {
 public:
  virtual ~DeliveryObserver() = default;
  // A notification (not a silent event) was put on the queues of `sinks`
  // sinks; called once per published event, possibly after some of them
  // already delivered it.
  virtual void OnRouted(const Event& /*event*/, std::size_t /*sinks*/) {}
  // The sink acknowledged `event` at `acked_at`.
  virtual void OnDelivered(std::string_view sink, const Event& event, SteadyTime acked_at) = 0;
  // A transient failure; the event will be tried again.
  virtual void OnRetry(std::string_view sink, const Event& event, std::string_view error) = 0;
  // The event went to the dead-letter file: rejected, out of attempts or
  // age, refused by a full queue without a spool or by a full spool, or
  // undelivered at shutdown.
  virtual void OnDeadLettered(std::string_view sink, const Event& event,
                              std::string_view reason) = 0;
  virtual void OnQueueDepth(std::string_view sink, std::size_t depth) = 0;

  // The sink's spool (state.dir): its size after a change, an event refused
  // because it was full (the event is dead-lettered), a write the disk
  // refused (the event is kept in memory and the write retried), and bytes
  // of a torn or corrupt spool dropped when it was opened.
  virtual void OnSpoolBytes(std::string_view /*sink*/, std::uint64_t /*bytes*/) {}
  virtual void OnSpoolFull(std::string_view /*sink*/) {}
  virtual void OnSpoolWriteError(std::string_view /*sink*/) {}
  virtual void OnSpoolDropped(std::string_view /*sink*/, std::uint64_t /*bytes*/) {}
};

}  // namespace hb
