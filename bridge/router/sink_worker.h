#pragma once

// One sink's bounded queue and the thread that delivers it: at least once,
// per-instance order kept through retries, exponential backoff with jitter,
// dead-letter when attempts or age run out. With a spool, every queued event
// is on disk first and acknowledged there once delivered or dead-lettered.
//
// The publisher never waits for the sink. With a spool, a full queue
// overflows to it: from then on new events go to the spool only, and the
// worker pages them back in, oldest first, as the queue drains (the spool
// left by an earlier run is read the same way). Without a spool, or when
// the spool refuses an event, the event is dead-lettered at once; a silent
// event (the engine's state restated for a sink that holds state) is
// queued past the capacity instead, at most one per instance.
//
// Memory: at most queue_capacity queued events (plus, without a spool, the
// silent events of one restatement: one per instance), one batch in
// delivery and one retrying event per instance; a page read from the spool
// never takes the queue past its capacity.

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory_resource>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bridge/common/backoff.h"
#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/router/delivery_observer.h"
#include "bridge/router/sink.h"
#include "bridge/router/sink_storage.h"
#include "bridge/router/sink_worker_options.h"

namespace hb {

// How a sink's deliveries go, for /v1/sinks.
struct SinkDeliveryStatus {
  // "starting": nothing attempted yet; "unreachable": nothing attempted
  // yet, and the sink's probe could not reach its destination; "ok": the
  // last attempt delivered something; "failing": the last attempts all
  // failed and wait for their backoff (the destination is down or refuses).
  std::string_view state = "starting";
  std::optional<WallTime> last_success;
  // The last failure (a retry, a rejection, a drop): never a secret.
  std::string last_error;
  std::optional<WallTime> last_error_at;
  int consecutive_failures = 0;  // attempts in a row that delivered nothing
  std::size_t queue_depth = 0;   // waiting: queued, retrying, in delivery, in the spool only
  std::size_t spooled = 0;       // of those, the ones waiting in the spool only
};

// What Shutdown() does with the events it could not deliver in time.
enum class Leftovers {
  kKeepInSpool,  // they stay in the spool for the next start (dead-lettered without one)
  kDeadLetter,   // the sink goes away for good
};

// Enqueue() and QueueDepth() are thread-safe; the sink runs on the worker's
// own thread only. The worker owns the sink.
class SinkWorker {
 public:
  // `storage` and `clock` must outlive the worker; `observer` may be null.
  // `backlog` (already in storage's spool) comes first, in order, whatever
  // the capacity; without one, every event left in the spool does.
  SinkWorker(SinkWorkerOptions options, SinkPtr sink, SinkStorage& storage, const Clock& clock,
             DeliveryObserver* observer, std::optional<SinkBacklog> backlog = std::nullopt);
  // Shuts down without a grace period if Shutdown() was not called.
  ~SinkWorker();

  SinkWorker(const SinkWorker&) = delete;
  SinkWorker& operator=(const SinkWorker&) = delete;

  std::string_view name() const { return name_; }
  bool wants_silent_events() const { return wants_silent_; }

  // Queues `event`, or stores it in the spool only when the queue is full
  // (or already overflowed); never waits for the sink. False when it was
  // dead-lettered instead: the queue is full and there is no spool, or the
  // spool refused it. Events of one instance must be enqueued in order.
  bool Enqueue(EventPtr event);
  // Enqueue() for each of `events` in order, under one lock; returns how
  // many were taken (the rest were dead-lettered).
  std::size_t Enqueue(std::span<const EventPtr> events);

  // Stops taking events, keeps delivering for up to `timeout`, deals with
  // what is left as `leftovers` says (dead-letter reason "undelivered at
  // shutdown") and shuts the sink down. Returns the number left.
  std::size_t Shutdown(std::chrono::milliseconds timeout,
                       Leftovers leftovers = Leftovers::kKeepInSpool);

  // Stops at once and returns every undelivered event, oldest first, for the
  // worker that replaces this one (a config reload changed the sink).
  SinkBacklog Release();

  // Events waiting: queued, retrying, being delivered and in the spool only.
  std::size_t QueueDepth() const;
  // The part of QueueDepth() held in memory.
  std::size_t InMemory() const;
  // Thread-safe.
  SinkDeliveryStatus DeliveryStatus() const;

 private:
  // Equal for events of one instance (a hash: see OrderKeyOf()).
  using OrderKey = std::uint64_t;

  struct Pending {
    EventPtr event;
    std::uint64_t spool_seq = 0;
    OrderKey key = 0;
    SteadyTime queued_at{};  // max_age counts from it
    int attempts = 0;
    SteadyTime next_attempt{};
    std::string last_error{};
  };

  void Run() EXCLUDES(mutex_);
  // Asks the sink whether its destination can be reached, before the first
  // delivery; worker thread, without mutex_.
  void ProbeDestination() EXCLUDES(mutex_);
  // Due retries first (they are older), then queued events whose instance
  // has nothing in retry, at most one per instance.
  // Fills the empty `batch`.
  void TakeBatch(SteadyTime now, std::vector<Pending>& batch) REQUIRES(mutex_);
  // Moves every event of `batch` on: delivered, retried or dead-lettered.
  void Settle(std::vector<Pending>& batch, const std::vector<DeliveryResult>& results)
      REQUIRES(mutex_);
  // At log.level debug, one line per event of a settled batch.
  void LogOutcome(const Pending& pending, const DeliveryResult& result) const;
  void NoteErrorLocked(std::string error) REQUIRES(mutex_);
  std::chrono::milliseconds Backoff(int attempts);
  std::optional<SteadyTime> NextWake() const REQUIRES(mutex_);
  bool Expired(const Pending& pending, SteadyTime now) const;
  SteadyTime ExpiresAt(const Pending& pending) const;
  // "expired: not delivered within max_age (...)", with the attempts made.
  std::string ExpiredReason(const Pending& pending) const;
  // Dead-letters the queued events (never attempted, or back in the queue
  // from a reload) that reached max_age.
  void ExpireQueuedLocked(SteadyTime now) REQUIRES(mutex_);
  void DeadLetter(const Pending& pending, std::string_view reason);
  // Stores `event` (`encoded`) in the spool, if any; false (dead-lettered)
  // when it is full.
  bool AddToSpool(const EventPtr& event, std::string_view encoded, std::uint64_t& seq)
      REQUIRES(mutex_);
  void Acknowledge(std::span<const std::uint64_t> seqs);
  void ReportDepth(std::size_t depth);
  std::size_t DepthLocked() const REQUIRES(mutex_);
  bool OverflowingLocked() const REQUIRES(mutex_) { return spilled_through_ > paged_through_; }
  // Whether the queue has room for a page from the spool.
  bool RoomForPageLocked() const REQUIRES(mutex_);
  // Reads the next page of spilled events into the queue; lets go of
  // mutex_ (held on entry and return) while reading the disk.
  void PageIn() REQUIRES(mutex_);
  // Reads up to `max` spilled events after `after` and decodes them;
  // records that do not decode are acknowledged and reported. Worker
  // thread, without mutex_.
  // `through` is where the read stopped, `consumed` the spilled events it
  // used up (returned or dropped).
  std::vector<Pending> ReadSpilled(std::uint64_t after, std::size_t max, std::uint64_t& through,
                                   std::size_t& consumed);
  // What Shutdown(kDeadLetter) does with the events only in the spool.
  void DeadLetterSpilled(std::uint64_t after, std::uint64_t through);
  void Stop(std::chrono::milliseconds timeout, Leftovers leftovers, bool release) EXCLUDES(mutex_);

  const SinkWorkerOptions options_;
  const SinkPtr sink_;
  const std::string name_;
  const bool wants_silent_;
  const std::size_t max_batch_;
  SinkStorage& storage_;
  const Clock& clock_;
  DeliveryObserver* const observer_;

  mutable Mutex mutex_;
  CondVar work_;      // something to deliver, or stopping
  CondVar finished_;  // Run() returned
  std::deque<Pending> queue_ GUARDED_BY(mutex_);
  // At most one per instance; a multimap for the instances whose keys collide.
  std::multimap<OrderKey, Pending> retrying_ GUARDED_BY(mutex_);
  // Consecutive batches that failed entirely: the destination is probably
  // down, so nothing is tried before gate_until_ (one probe per backoff).
  int failed_batches_ GUARDED_BY(mutex_) = 0;
  SteadyTime gate_until_ GUARDED_BY(mutex_) = {};
  bool stopping_ GUARDED_BY(mutex_) = false;
  SteadyTime drain_deadline_ GUARDED_BY(mutex_) = {};
  Leftovers leftovers_ GUARDED_BY(mutex_) = Leftovers::kKeepInSpool;
  bool release_ GUARDED_BY(mutex_) = false;
  SinkBacklog released_ GUARDED_BY(mutex_);
  // Spool events up to paged_through_ are (or were) in memory; those after
  // it, up to spilled_through_, are only on disk (spilled_ of them).
  std::uint64_t paged_through_ GUARDED_BY(mutex_) = 0;
  std::uint64_t spilled_through_ GUARDED_BY(mutex_) = 0;
  std::size_t spilled_ GUARDED_BY(mutex_) = 0;
  std::size_t in_flight_ GUARDED_BY(mutex_) = 0;  // the batch in Deliver()
  std::size_t left_at_shutdown_ GUARDED_BY(mutex_) = 0;
  bool run_finished_ GUARDED_BY(mutex_) = false;
  bool spool_failing_ GUARDED_BY(mutex_) = false;
  bool unreachable_ GUARDED_BY(mutex_) = false;  // until an attempt
  std::optional<WallTime> last_success_ GUARDED_BY(mutex_);
  std::string last_error_ GUARDED_BY(mutex_);
  std::optional<WallTime> last_error_at_ GUARDED_BY(mutex_);
  JitterRng rng_;                                  // worker thread only
  std::pmr::monotonic_buffer_resource key_arena_;  // TakeBatch() only
  std::thread thread_;
};

}  // namespace hb
