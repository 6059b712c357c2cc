#pragma once

// Cluster mode's record of what the sinks acknowledged, per owned service:
// the state (ReportedService) after the last event that every sink it was
// routed to acknowledged, with every earlier event of the service
// acknowledged too. It is the handover state the coordinator writes to
// Consul KV, so a successor re-emits exactly what this replica's sinks had
// not confirmed (a spool lost with the pod, a queue cut short by kill -9).
//
// It sits on the router's DeliveryObserver (forwarding every call to the
// observer it wraps): the router reports how many sinks each notification
// went to (OnRouted) and each sink's acknowledgement (OnDelivered). A
// dead-lettered event counts as acknowledged (the bridge will not try it
// again and the dead-letter file keeps it), except one dead-lettered because
// the bridge was stopping: that one a successor must re-emit.
//
// Bounded: at most kMaxPending events wait for acknowledgements. Beyond
// that a service's events are no longer followed and its acknowledged state
// stops moving until it is handed over, so its successor re-emits
// everything since (redeliveries, with the same ids; nothing is lost).
//
// It also keeps each pending event as the spool encodes it (the newest
// kMaxPendingEventsBytes of them per service), for the write-ahead a
// successor re-emits them from (pending_events.h).
//
// Thread-safe: the publishing thread (Begin, Emitting), the router and sink
// workers (the observer calls), the coordinator (End, TakeChanged).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bridge/cluster/pending_events.h"
#include "bridge/common/mutex.h"
#include "bridge/router/delivery_observer.h"
#include "bridge/state/reported_state.h"

namespace hb {

class HandoverLedger final : public DeliveryObserver {
 public:
  static constexpr std::size_t kMaxPending = 200000;

  // `next` (may be null) gets every observer call too.
  explicit HandoverLedger(DeliveryObserver* next) : next_(next) {}

  // This replica took `service` over: what its sinks acknowledged starts at
  // `acknowledged`. `changed`: write it to KV (a first owner's state).
  void Begin(const std::string& service, ReportedService acknowledged, bool changed);
  // The service was handed over or lost: no longer followed.
  void End(const std::string& service);
  // Notifications about to be published for followed services (events of
  // other services are ignored).
  void Emitting(const std::vector<Event>& events);

  // Followed services whose acknowledged state moved since they were last
  // taken, with that state; at most `limit` of them.
  std::vector<std::pair<std::string, ReportedService>> TakeChanged(std::size_t limit);
  // The acknowledged state of one followed service if it moved since it
  // was last taken (and marks it taken).
  std::optional<ReportedService> TakeChanged(const std::string& service);
  // A write of the service's state failed: take it again next time.
  void MarkChanged(const std::string& service);
  // The acknowledged state of one followed service (whether it moved or not).
  std::optional<ReportedService> Acknowledged(const std::string& service) const;
  // Waits until no event of `services` waits for acknowledgements any
  // more, or `deadline`; whether they all settled. Before a service is
  // handed over, so its successor re-emits as little as possible.
  bool WaitSettled(const std::vector<std::string>& services,
                   std::chrono::steady_clock::time_point deadline) EXCLUDES(mutex_);
  // Events waiting for acknowledgements (for tests and logs).
  std::size_t pending() const;

  // The events of a followed service not yet acknowledged by every sink,
  // oldest first, as EncodeEvent() writes them: what its write-ahead holds.
  struct Unacknowledged {
    bool followed = false;
    std::vector<std::string> encoded;
    // Older ones whose encoding was not kept (beyond the byte cap).
    std::size_t left_out = 0;
  };
  Unacknowledged UnacknowledgedOf(const std::string& service) const;
  // How many events of a followed service wait for acknowledgements;
  // nullopt when it is not followed.
  std::optional<std::size_t> UnacknowledgedCount(const std::string& service) const;

  void OnRouted(const Event& event, std::size_t sinks) override;
  void OnDelivered(std::string_view sink, const Event& event, SteadyTime acked_at) override;
  void OnRetry(std::string_view sink, const Event& event, std::string_view error) override;
  void OnDeadLettered(std::string_view sink, const Event& event, std::string_view reason) override;
  void OnQueueDepth(std::string_view sink, std::size_t depth) override;
  void OnSpoolBytes(std::string_view sink, std::uint64_t bytes) override;
  void OnSpoolFull(std::string_view sink) override;
  void OnSpoolWriteError(std::string_view sink) override;
  void OnSpoolDropped(std::string_view sink, std::uint64_t bytes) override;

 private:
  struct Pending {
    Event event;                   // what FoldEvent() reads, nothing more
    std::string encoded;           // the whole event; empty once left out
    std::int64_t outstanding = 0;  // routed minus acknowledged
    bool routed = false;
    bool done = false;
  };
  struct Followed {
    ReportedService acknowledged;
    std::deque<std::shared_ptr<Pending>> queue;  // in emission order
    bool changed = false;
    bool overflowed = false;
    // The bytes of the encodings kept, and how many of the oldest queued
    // events have theirs dropped (always a prefix of the queue).
    std::size_t encoded_bytes = 0;
    std::size_t encoded_dropped = 0;
  };

  void Acknowledge(const Event& event, std::int64_t routed_sinks, bool acknowledged)
      EXCLUDES(mutex_);
  void FoldDone(Followed& followed) REQUIRES(mutex_);

  DeliveryObserver* const next_;
  mutable Mutex mutex_;
  CondVar settled_;  // a service's queue emptied
  std::unordered_map<std::string, Followed> followed_ GUARDED_BY(mutex_);
  // By event id: the pending events of that id, oldest first.
  std::unordered_map<std::string, std::deque<std::shared_ptr<Pending>>> by_id_ GUARDED_BY(mutex_);
  std::size_t pending_ GUARDED_BY(mutex_) = 0;
};

}  // namespace hb
