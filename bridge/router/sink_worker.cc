#include "bridge/router/sink_worker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory_resource>
#include <unordered_set>

#include "bridge/common/backoff.h"
#include "bridge/model/event_codec.h"

namespace hb {
namespace {

// Instance identity is datacenter + node + service ID (docs/consul-semantics.md
// rule 15): the same ID on two nodes is two instances with independent order.
// Hashed rather than spelled out (no allocation per event): two instances
// whose hashes collide only wait for each other, which never reorders.
std::uint64_t OrderKeyOf(const Event& event) {
  std::uint64_t key = 0xcbf29ce484222325;  // FNV-1a, each part ended by a NUL
  auto add = [&key](std::string_view part) {
    for (const char c : part) key = (key ^ static_cast<unsigned char>(c)) * 0x100000001b3;
    key *= 0x100000001b3;
  };
  add(event.datacenter);
  if (event.IsInstanceEvent()) {
    add(event.node);
    add(event.instance_id);
  } else {
    add({});  // no node: a service event
    add(event.service);
  }
  return key;
}

// Spilled events read back per disk read; also bounds the memory a page
// takes beyond the queue while it is decoded.
constexpr std::size_t kPageEvents = 1024;

// max_age as configured ("24h", "90s", "300ms"), for dead-letter reasons.
std::string DescribeMaxAge(std::chrono::milliseconds age) {
  const auto ms = age.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1'000 == 0) return std::to_string(ms / 1'000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace

SinkWorker::SinkWorker(SinkWorkerOptions options, SinkPtr sink, SinkStorage& storage,
                       const Clock& clock, DeliveryObserver* observer,
                       std::optional<SinkBacklog> backlog)
    : options_(std::move(options)),
      sink_(std::move(sink)),
      name_(sink_->Name()),
      wants_silent_(sink_->WantsSilentEvents()),
      max_batch_(std::max<std::size_t>(1, sink_->MaxBatch())),
      storage_(storage),
      clock_(clock),
      observer_(observer),
      rng_(std::random_device{}()) {
  if (backlog) {
    for (auto& queued : backlog->queued) {
      const OrderKey key = OrderKeyOf(*queued.event);
      // The age goes on: a reload must not give an event a new max_age.
      queue_.push_back(Pending{.event = std::move(queued.event),
                               .spool_seq = queued.spool_seq,
                               .key = key,
                               .queued_at = queued.queued_at});
    }
    paged_through_ = backlog->paged_through;
    spilled_through_ = backlog->spilled_through;
    spilled_ = backlog->spilled;
  } else if (storage_.spool != nullptr && storage_.spool->unacknowledged() > 0) {
    // What an earlier run left is paged in like any overflow.
    spilled_through_ = storage_.spool->last_seq();
    spilled_ = storage_.spool->unacknowledged();
    spdlog::info("sink {}: {} undelivered events from the last run resume from the spool", name_,
                 spilled_);
  }
  ReportDepth(DepthLocked());
  thread_ = std::thread([this] { Run(); });
}

SinkWorker::~SinkWorker() {
  if (thread_.joinable()) Shutdown(std::chrono::milliseconds(0));
}

bool SinkWorker::Enqueue(EventPtr event) { return Enqueue(std::span(&event, 1)) == 1; }

std::size_t SinkWorker::Enqueue(std::span<const EventPtr> events) {
  // Spool records are encoded before taking the lock the worker thread
  // needs, and the lock is taken once per batch, not per event.
  // max_age counts from here; the spool keeps the wall-clock reading so
  // that it goes on counting after a restart.
  const SteadyTime queued_at = clock_.Now();
  std::vector<std::string> encoded;
  if (storage_.spool != nullptr) {
    const WallTime queued_wall = clock_.WallNow();
    encoded.reserve(events.size());
    for (const EventPtr& event : events) encoded.push_back(EncodeEvent(*event, queued_wall));
  }
  std::size_t taken = 0;
  MutexLock lock(&mutex_);
  for (std::size_t i = 0; i < events.size(); ++i) {
    Pending pending{.event = events[i], .key = OrderKeyOf(*events[i]), .queued_at = queued_at};
    if (stopping_) {
      DeadLetter(pending, "sink is shutting down");
      continue;
    }
    if (storage_.spool == nullptr) {
      // Silent events restate the engine's state for a sink that holds it
      // (metrics): dropping one would leave that state wrong until the
      // instance changes again. There is at most one per instance per
      // restatement, so they may pass the capacity.
      if (queue_.size() >= options_.queue_capacity && !pending.event->silent) {
        // Dead-lettered at once, never waited for: the publisher is the
        // watch, which must not stall behind one sink.
        const std::string reason = "queue full (capacity " +
                                   std::to_string(options_.queue_capacity) +
                                   ") and no spool to overflow to (state.dir is not set)";
        spdlog::warn("sink {}: dropped event {} to the dead-letter file: {}", name_,
                     pending.event->id, reason);
        NoteErrorLocked("event " + pending.event->id + " dropped: " + reason);
        DeadLetter(pending, reason);
        continue;
      }
      queue_.push_back(std::move(pending));
      ++taken;
      continue;
    }
    if (!AddToSpool(pending.event, encoded[i], pending.spool_seq)) continue;
    ++taken;
    // Once one event is only on disk, every later one is too until the
    // worker has paged them in: that keeps them in order.
    if (!OverflowingLocked() && queue_.size() < options_.queue_capacity) {
      paged_through_ = pending.spool_seq;
      queue_.push_back(std::move(pending));
    } else {
      if (!OverflowingLocked()) {
        spdlog::warn("sink {}: queue full (capacity {}); new events wait in the spool", name_,
                     options_.queue_capacity);
      }
      spilled_through_ = pending.spool_seq;
      ++spilled_;
    }
  }
  // Reported under the lock: reported after it, this depth could overwrite
  // a smaller one the worker reported meanwhile, and stay stale.
  ReportDepth(DepthLocked());
  lock.Unlock();
  if (taken > 0) work_.Signal();
  return taken;
}

std::size_t SinkWorker::DepthLocked() const {
  return queue_.size() + retrying_.size() + in_flight_ + spilled_;
}

std::size_t SinkWorker::QueueDepth() const {
  MutexLock lock(&mutex_);
  return DepthLocked();
}

std::size_t SinkWorker::InMemory() const {
  MutexLock lock(&mutex_);
  return queue_.size() + retrying_.size() + in_flight_;
}

SinkDeliveryStatus SinkWorker::DeliveryStatus() const {
  MutexLock lock(&mutex_);
  SinkDeliveryStatus status;
  if (failed_batches_ > 0) {
    status.state = "failing";
  } else if (last_success_) {
    status.state = "ok";
  } else if (unreachable_) {
    status.state = "unreachable";
  }
  status.last_success = last_success_;
  status.last_error = last_error_;
  status.last_error_at = last_error_at_;
  status.consecutive_failures = failed_batches_;
  status.queue_depth = DepthLocked();
  status.spooled = spilled_;
  return status;
}

void SinkWorker::NoteErrorLocked(std::string error) {
  last_error_ = std::move(error);
  last_error_at_ = clock_.WallNow();
}

void SinkWorker::LogOutcome(const Pending& pending, const DeliveryResult& result) const {
  switch (result.kind) {
    case DeliveryResult::Kind::kOk:
      spdlog::debug("sink {}: event {} delivered (attempt {})", name_, pending.event->id,
                    pending.attempts);
      break;
    case DeliveryResult::Kind::kReject:
      spdlog::debug("sink {}: event {} rejected (attempt {}): {}", name_, pending.event->id,
                    pending.attempts, result.error);
      break;
    case DeliveryResult::Kind::kRetry:
      spdlog::debug("sink {}: event {} failed (attempt {}), will be retried: {}", name_,
                    pending.event->id, pending.attempts, result.error);
      break;
  }
}

std::size_t SinkWorker::Shutdown(std::chrono::milliseconds timeout, Leftovers leftovers) {
  Stop(timeout, leftovers, /*release=*/false);
  MutexLock lock(&mutex_);
  return left_at_shutdown_;
}

SinkBacklog SinkWorker::Release() {
  Stop(std::chrono::milliseconds(0), Leftovers::kKeepInSpool, /*release=*/true);
  MutexLock lock(&mutex_);
  return std::move(released_);
}

void SinkWorker::Stop(std::chrono::milliseconds timeout, Leftovers leftovers, bool release) {
  SteadyTime drain_deadline;
  {
    MutexLock lock(&mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    leftovers_ = leftovers;
    release_ = release;
    drain_deadline = drain_deadline_ = clock_.Now() + timeout;
  }
  work_.SignalAll();
  {
    // A Deliver() in progress may outlast the grace period (a Kafka batch
    // waits up to message.timeout.ms): past the deadline, cut it short so
    // shutdown stays bounded and its events are kept, not lost to a SIGKILL.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&mutex_);
    while (!run_finished_ && finished_.WaitUntil(&mutex_, deadline)) {
    }
    if (!run_finished_) {
      lock.Unlock();
      sink_->Interrupt();
    }
  }
  thread_.join();
  const auto remaining = std::max(
      std::chrono::milliseconds(0),
      std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline - clock_.Now()));
  if (!sink_->Shutdown(remaining)) {
    spdlog::warn("sink {}: shutdown did not finish within its timeout", name_);
  }
}

void SinkWorker::ProbeDestination() {
  {
    MutexLock lock(&mutex_);
    if (stopping_) return;
  }
  std::string problem = sink_->Probe();
  if (problem.empty()) return;
  spdlog::warn("sink {}: {}; its events wait and are retried (see /v1/sinks)", name_, problem);
  MutexLock lock(&mutex_);
  // A delivery may have been attempted meanwhile: it is more recent.
  if (last_error_at_ || last_success_) return;
  unreachable_ = true;
  NoteErrorLocked(std::move(problem));
}

void SinkWorker::Run() {
  ProbeDestination();
  // Kept from batch to batch: allocating and freeing a thousand-event batch
  // each time made glibc consolidate its heap over and over.
  std::vector<Pending> batch;
  std::vector<EventPtr> events;
  std::vector<DeliveryResult> results;
  batch.reserve(max_batch_);
  MutexLock lock(&mutex_);
  while (true) {
    const SteadyTime now = clock_.Now();
    if (stopping_ && (now >= drain_deadline_ || release_ ||
                      (queue_.empty() && retrying_.empty() && !OverflowingLocked()))) {
      break;
    }
    // Whatever the destination does (down, or asking to wait a day), no
    // event stays queued past its max_age; not even one never attempted.
    ExpireQueuedLocked(now);
    if (OverflowingLocked() && RoomForPageLocked()) {
      PageIn();
      continue;
    }
    if (now >= gate_until_) TakeBatch(now, batch);
    if (batch.empty()) {
      auto wake = NextWake();
      if (stopping_) wake = wake ? std::min(*wake, drain_deadline_) : drain_deadline_;
      if (wake) {
        // `now` is the injected clock's; the wait runs on the real one.
        work_.WaitUntil(&mutex_, std::chrono::steady_clock::now() + (*wake - now));
      } else {
        work_.Wait(&mutex_);
      }
      continue;
    }
    in_flight_ = batch.size();
    lock.Unlock();
    events.clear();
    for (const auto& pending : batch) events.push_back(pending.event);
    results.assign(batch.size(), DeliveryResult{});
    sink_->Deliver(events, results);
    lock.Lock();
    in_flight_ = 0;
    Settle(batch, results);
    batch.clear();
  }

  // Retries first: each is older than every queued event of its instance.
  std::vector<Pending> left;
  left.reserve(queue_.size() + retrying_.size());
  for (auto& [key, pending] : retrying_) left.push_back(std::move(pending));
  for (auto& pending : queue_) left.push_back(std::move(pending));
  queue_.clear();
  retrying_.clear();
  left_at_shutdown_ = left.size() + spilled_;
  const std::size_t left_at_shutdown = left_at_shutdown_;
  const bool release = release_;
  const bool keep = storage_.spool != nullptr && leftovers_ == Leftovers::kKeepInSpool;
  const std::uint64_t paged_through = paged_through_;
  const std::uint64_t spilled_through = spilled_through_;
  if (release_) {
    for (auto& pending : left) {
      released_.queued.push_back({std::move(pending.event), pending.spool_seq, pending.queued_at});
    }
    released_.paged_through = paged_through_;
    released_.spilled_through = spilled_through_;
    released_.spilled = spilled_;
  }
  lock.Unlock();
  if (!release && left_at_shutdown > 0) {
    if (keep) {
      spdlog::warn("sink {}: {} undelivered events stay in the spool for the next start", name_,
                   left_at_shutdown);
    } else {
      spdlog::warn("sink {}: {} events undelivered at shutdown went to the dead-letter file", name_,
                   left_at_shutdown);
      for (const auto& pending : left) DeadLetter(pending, "undelivered at shutdown");
      if (spilled_through > paged_through) DeadLetterSpilled(paged_through, spilled_through);
    }
  }
  lock.Lock();
  run_finished_ = true;
  finished_.SignalAll();
}

bool SinkWorker::RoomForPageLocked() const {
  if (queue_.size() >= options_.queue_capacity) return false;
  // Half the queue free (or a whole page): fewer, larger reads.
  const std::size_t room = options_.queue_capacity - queue_.size();
  return room >= std::min(kPageEvents, std::max<std::size_t>(1, options_.queue_capacity / 2));
}

void SinkWorker::PageIn() {
  const std::uint64_t after = paged_through_;
  const std::size_t want = std::min(kPageEvents, options_.queue_capacity - queue_.size());
  mutex_.Unlock();
  // Only this thread pages in, and the publisher only spills while there is
  // something to page in: nothing overtakes these events meanwhile.
  std::uint64_t through = after;
  std::size_t consumed = 0;
  std::vector<Pending> paged = ReadSpilled(after, want, through, consumed);
  mutex_.Lock();
  if (through == after) {
    // Nothing left to read although events were spilled: the spool lost
    // them. Stop looking rather than spin.
    spdlog::error("sink {}: {} spilled events could not be read back from the spool", name_,
                  spilled_);
    paged_through_ = spilled_through_;
    spilled_ = 0;
  } else {
    paged_through_ = std::max(paged_through_, through);
    spilled_ -= std::min(spilled_, consumed);
    for (auto& pending : paged) {
      // The queue stays in queued_at order, which ExpireQueuedLocked()
      // relies on; a wall clock set back between two runs could break it.
      if (!queue_.empty()) pending.queued_at = std::max(pending.queued_at, queue_.back().queued_at);
      queue_.push_back(std::move(pending));
    }
    if (!OverflowingLocked()) {
      spilled_ = 0;
      spdlog::info("sink {}: the events that waited in the spool are all back in the queue", name_);
    }
  }
  ReportDepth(DepthLocked());
}

std::vector<SinkWorker::Pending> SinkWorker::ReadSpilled(std::uint64_t after, std::size_t max,
                                                         std::uint64_t& through,
                                                         std::size_t& consumed) {
  SpoolPage page = storage_.spool->ReadAfter(after, max);
  through = page.through;
  consumed = page.records.size() + page.problems.size();
  for (const auto& problem : page.problems) {
    spdlog::error("sink {}: spooled event dropped: {}", name_, problem);
  }
  std::uint64_t dropped = page.dropped_bytes;
  std::vector<std::uint64_t> undecodable;
  std::vector<Pending> paged;
  paged.reserve(page.records.size());
  // Stored queued times are wall-clock readings (perhaps of an earlier
  // run): the event's age so far is carried over to the steady clock.
  const SteadyTime now = clock_.Now();
  const WallTime wall_now = clock_.WallNow();
  std::optional<WallTime> queued_wall;
  for (auto& record : page.records) {
    auto event = DecodeEvent(record.payload, &queued_wall);
    if (!event.ok()) {
      spdlog::error("sink {}: spooled event #{} dropped: {}", name_, record.seq,
                    event.status().message());
      dropped += record.payload.size();
      undecodable.push_back(record.seq);
      continue;
    }
    auto shared = std::make_shared<const Event>(std::move(*event));
    const OrderKey key = OrderKeyOf(*shared);
    // A record of a version that did not store it counts from now; a clock
    // set back (a queued time in the future) counts as no age at all. The
    // result may lie before the steady clock's epoch (the machine rebooted
    // since): that is still a valid time point. Ages past max_age are all
    // alike (expired), so capped there, far from any overflow.
    SteadyTime queued_at = now;
    if (queued_wall && *queued_wall < wall_now) {
      const auto age = std::min<SteadyTime::duration>(
          std::chrono::duration_cast<SteadyTime::duration>(wall_now - *queued_wall),
          options_.retry.max_age);
      queued_at = now - age;
    }
    paged.push_back(Pending{
        .event = std::move(shared), .spool_seq = record.seq, .key = key, .queued_at = queued_at});
  }
  storage_.spool->Acknowledge(undecodable);
  if (observer_ != nullptr && dropped > 0) observer_->OnSpoolDropped(name_, dropped);
  return paged;
}

void SinkWorker::DeadLetterSpilled(std::uint64_t after, std::uint64_t through) {
  while (after < through) {
    std::uint64_t read_through = after;
    std::size_t consumed = 0;
    std::vector<Pending> paged = ReadSpilled(after, kPageEvents, read_through, consumed);
    if (read_through == after) return;
    for (const auto& pending : paged) DeadLetter(pending, "undelivered at shutdown");
    after = read_through;
  }
}

void SinkWorker::TakeBatch(SteadyTime now, std::vector<Pending>& batch) {
  // Its nodes come from a few large blocks, not one malloc each.
  key_arena_.release();
  std::pmr::unordered_set<OrderKey> keys(&key_arena_);
  keys.reserve(max_batch_);
  for (auto it = retrying_.begin(); it != retrying_.end() && batch.size() < max_batch_;) {
    if (it->second.next_attempt > now) {
      ++it;
      continue;
    }
    // Due because it reached max_age (Settle() never lets a retry wait
    // past it): dead-lettered without another attempt, whatever
    // Retry-After the destination asked for.
    if (Expired(it->second, now)) {
      DeadLetter(it->second, ExpiredReason(it->second));
      it = retrying_.erase(it);
      continue;
    }
    batch.push_back(std::move(it->second));
    keys.insert(batch.back().key);
    it = retrying_.erase(it);
  }
  // A later event of an instance waits while an earlier one is in retry or
  // in this batch: per-instance order holds whatever the results.
  for (auto it = queue_.begin(); it != queue_.end() && batch.size() < max_batch_;) {
    if (keys.contains(it->key) || retrying_.contains(it->key)) {
      ++it;
      continue;
    }
    batch.push_back(std::move(*it));
    keys.insert(batch.back().key);
    it = queue_.erase(it);
  }
  for (auto& pending : batch) ++pending.attempts;
}

bool SinkWorker::Expired(const Pending& pending, SteadyTime now) const {
  return now - pending.queued_at >= options_.retry.max_age;
}

SteadyTime SinkWorker::ExpiresAt(const Pending& pending) const {
  return pending.queued_at + options_.retry.max_age;
}

std::string SinkWorker::ExpiredReason(const Pending& pending) const {
  std::string reason =
      "expired: not delivered within max_age (" + DescribeMaxAge(options_.retry.max_age) + ")";
  if (pending.attempts == 0) return reason + ", never attempted";
  return reason + "; gave up after " + std::to_string(pending.attempts) +
         " attempts: " + pending.last_error;
}

void SinkWorker::ExpireQueuedLocked(SteadyTime now) {
  // The queue is in queued_at order (events are queued as they come, and
  // paged in from the spool only after every older one): the expired ones
  // are at its front.
  std::size_t expired = 0;
  while (!queue_.empty() && Expired(queue_.front(), now)) {
    DeadLetter(queue_.front(), ExpiredReason(queue_.front()));
    queue_.pop_front();
    ++expired;
  }
  if (expired == 0) return;
  spdlog::warn(
      "sink {}: {} queued events reached max_age ({}) undelivered and went to the "
      "dead-letter file",
      name_, expired, DescribeMaxAge(options_.retry.max_age));
  NoteErrorLocked(std::to_string(expired) + " events expired undelivered (max_age " +
                  DescribeMaxAge(options_.retry.max_age) + ")");
  ReportDepth(DepthLocked());
}

void SinkWorker::Settle(std::vector<Pending>& batch, const std::vector<DeliveryResult>& results) {
  const SteadyTime now = clock_.Now();
  bool any_ok = false;
  bool all_retry = true;
  std::optional<std::chrono::milliseconds> retry_after;
  std::vector<std::uint64_t> delivered;
  const DeliveryResult* batch_failure = nullptr;  // one per batch is enough for /v1/sinks
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Pending& pending = batch[i];
    const DeliveryResult& result = results[i];
    all_retry = all_retry && result.kind == DeliveryResult::Kind::kRetry;
    LogOutcome(pending, result);
    if (result.kind != DeliveryResult::Kind::kOk && batch_failure == nullptr) {
      batch_failure = &result;
    }
    switch (result.kind) {
      case DeliveryResult::Kind::kOk:
        any_ok = true;
        if (pending.spool_seq != 0) delivered.push_back(pending.spool_seq);
        if (observer_ != nullptr) observer_->OnDelivered(name_, *pending.event, now);
        break;
      case DeliveryResult::Kind::kReject:
        spdlog::error("sink {}: event {} rejected permanently: {}", name_, pending.event->id,
                      result.error);
        DeadLetter(pending, "rejected: " + result.error);
        break;
      case DeliveryResult::Kind::kRetry: {
        pending.last_error = result.error;
        if (Expired(pending, now)) {
          DeadLetter(pending, ExpiredReason(pending));
          break;
        }
        if (options_.retry.max_attempts > 0 && pending.attempts >= options_.retry.max_attempts) {
          DeadLetter(pending, "gave up after " + std::to_string(pending.attempts) +
                                  " attempts: " + result.error);
          break;
        }
        auto delay = Backoff(pending.attempts);
        if (result.retry_after) {
          delay = std::max(delay, *result.retry_after);
          retry_after = std::max(retry_after.value_or(delay), *result.retry_after);
        }
        // However long the destination asks to wait, the event is due again
        // when it reaches max_age, and TakeBatch() dead-letters it then:
        // max_age holds on a timer, not only after an attempt.
        pending.next_attempt = std::min(now + delay, std::max(now, ExpiresAt(pending)));
        if (observer_ != nullptr) observer_->OnRetry(name_, *pending.event, result.error);
        const OrderKey key = pending.key;
        retrying_.emplace(key, std::move(pending));
        break;
      }
    }
  }

  Acknowledge(delivered);
  unreachable_ = false;  // an attempt tells more than the probe
  if (batch_failure != nullptr) NoteErrorLocked(batch_failure->error);

  if (any_ok) {
    last_success_ = clock_.WallNow();
    if (failed_batches_ > 0) {
      spdlog::info("sink {}: delivering again after {} failed attempts", name_, failed_batches_);
      // The destination is back: what waited for its backoff goes now
      // instead of minutes later.
      for (auto& [key, pending] : retrying_) pending.next_attempt = now;
    }
    failed_batches_ = 0;
    gate_until_ = SteadyTime{};
  } else if (all_retry) {
    if (failed_batches_++ == 0) {
      spdlog::warn("sink {}: delivery failed: {}; retrying with backoff", name_,
                   results.front().error);
    }
    gate_until_ = now + std::max(Backoff(failed_batches_),
                                 retry_after.value_or(std::chrono::milliseconds(0)));
    // ... nor past the moment an event reaches max_age.
    for (const auto& [key, pending] : retrying_) {
      gate_until_ = std::min(gate_until_, std::max(now, ExpiresAt(pending)));
    }
  }
  ReportDepth(DepthLocked());
}

std::chrono::milliseconds SinkWorker::Backoff(int attempts) {
  return ExponentialBackoff(attempts, options_.retry.initial_backoff, options_.retry.max_backoff,
                            rng_);
}

std::optional<SteadyTime> SinkWorker::NextWake() const {
  std::optional<SteadyTime> earliest;
  // The oldest queued event's max_age, gate or not.
  if (!queue_.empty()) earliest = ExpiresAt(queue_.front());
  const bool has_work = !queue_.empty() || !retrying_.empty();
  if (has_work && clock_.Now() < gate_until_)
    return std::min(earliest.value_or(gate_until_), gate_until_);
  for (const auto& [key, pending] : retrying_) {
    if (!earliest || pending.next_attempt < *earliest) earliest = pending.next_attempt;
  }
  return earliest;
}

void SinkWorker::DeadLetter(const Pending& pending, std::string_view reason) {
  storage_.dead_letter->Write(*pending.event, reason, pending.attempts, clock_.WallNow());
  if (pending.spool_seq != 0) Acknowledge(std::span(&pending.spool_seq, 1));
  if (observer_ != nullptr) observer_->OnDeadLettered(name_, *pending.event, reason);
}

bool SinkWorker::AddToSpool(const EventPtr& event, std::string_view encoded, std::uint64_t& seq) {
  if (storage_.spool == nullptr) return true;
  auto appended = storage_.spool->Append(encoded);
  if (!appended.ok()) {
    spdlog::error("sink {}: event {} went to the dead-letter file: {}", name_, event->id,
                  appended.status().message());
    if (observer_ != nullptr) observer_->OnSpoolFull(name_);
    DeadLetter(Pending{.event = event}, appended.status().message());
    return false;
  }
  seq = *appended;
  // A refused write keeps the event in memory and is retried by the spool;
  // log once per streak, count every one.
  const Status write_error = storage_.spool->last_write_error();
  if (!write_error.ok()) {
    if (observer_ != nullptr) observer_->OnSpoolWriteError(name_);
    if (!spool_failing_) {
      spdlog::error(
          "sink {}: spool write failed: {}; events are kept in memory and the write "
          "retried",
          name_, write_error.message());
    }
  } else if (spool_failing_) {
    spdlog::info("sink {}: spool writes succeed again", name_);
  }
  spool_failing_ = !write_error.ok();
  if (observer_ != nullptr) observer_->OnSpoolBytes(name_, storage_.spool->bytes());
  return true;
}

void SinkWorker::Acknowledge(std::span<const std::uint64_t> seqs) {
  if (storage_.spool == nullptr || seqs.empty()) return;
  storage_.spool->Acknowledge(seqs);
  if (observer_ != nullptr) observer_->OnSpoolBytes(name_, storage_.spool->bytes());
}

void SinkWorker::ReportDepth(std::size_t depth) {
  if (observer_ != nullptr) observer_->OnQueueDepth(name_, depth);
}

}  // namespace hb
