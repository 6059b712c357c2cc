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

}  // namespace

SinkWorker::SinkWorker(SinkWorkerOptions options, SinkPtr sink, SinkStorage& storage,
                       const Clock& clock, DeliveryObserver* observer,
                       std::vector<QueuedEvent> backlog)
    : options_(std::move(options)),
      sink_(std::move(sink)),
      name_(sink_->Name()),
      wants_silent_(sink_->WantsSilentEvents()),
      max_batch_(std::max<std::size_t>(1, sink_->MaxBatch())),
      storage_(storage),
      clock_(clock),
      observer_(observer),
      rng_(std::random_device{}()) {
  for (auto& queued : backlog) {
    const OrderKey key = OrderKeyOf(*queued.event);
    queue_.push_back(
        Pending{.event = std::move(queued.event), .spool_seq = queued.spool_seq, .key = key});
  }
  ReportDepth(queue_.size());
  thread_ = std::thread([this] { Run(); });
}

SinkWorker::~SinkWorker() {
  if (thread_.joinable()) Shutdown(std::chrono::milliseconds(0));
}

bool SinkWorker::Enqueue(EventPtr event) { return Enqueue(std::span(&event, 1)) == 1; }

std::size_t SinkWorker::Enqueue(std::span<const EventPtr> events) {
  // Spool records are encoded before taking the lock the worker thread
  // needs, and the lock is taken once per batch, not per event.
  std::vector<std::string> encoded;
  if (storage_.spool != nullptr) {
    encoded.reserve(events.size());
    for (const EventPtr& event : events) encoded.push_back(EncodeEvent(*event));
  }
  std::size_t queued = 0;
  std::unique_lock lock(mutex_);
  for (std::size_t i = 0; i < events.size(); ++i) {
    Pending pending{.event = events[i], .key = OrderKeyOf(*events[i])};
    if (!stopping_ && queue_.size() >= options_.queue_capacity) {
      // Back-pressure for this sink only, bounded: past the limit the event
      // goes to the dead-letter file rather than stalling the watch. The
      // worker may not know yet of what this batch queued.
      work_.notify_one();
      space_.wait_for(lock, options_.block_timeout,
                      [&] { return queue_.size() < options_.queue_capacity || stopping_; });
    }
    if (stopping_ || queue_.size() >= options_.queue_capacity) {
      const std::string reason =
          stopping_ ? "sink is shutting down"
                    : "queue full (capacity " + std::to_string(options_.queue_capacity) + ")";
      spdlog::warn("sink {}: dropped event {} to the dead-letter file: {}", name_,
                   pending.event->id, reason);
      DeadLetter(pending, reason);
      continue;
    }
    if (!AddToSpool(pending.event, encoded.empty() ? std::string_view() : encoded[i],
                    pending.spool_seq)) {
      continue;
    }
    queue_.push_back(std::move(pending));
    ++queued;
  }
  const std::size_t depth = queue_.size() + retrying_.size();
  lock.unlock();
  if (queued > 0) work_.notify_one();
  ReportDepth(depth);
  return queued;
}

std::size_t SinkWorker::QueueDepth() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + retrying_.size();
}

std::size_t SinkWorker::Shutdown(std::chrono::milliseconds timeout, Leftovers leftovers) {
  Stop(timeout, leftovers, /*release=*/false);
  std::lock_guard lock(mutex_);
  return left_at_shutdown_;
}

std::vector<QueuedEvent> SinkWorker::Release() {
  Stop(std::chrono::milliseconds(0), Leftovers::kKeepInSpool, /*release=*/true);
  std::lock_guard lock(mutex_);
  return std::move(released_);
}

void SinkWorker::Stop(std::chrono::milliseconds timeout, Leftovers leftovers, bool release) {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    leftovers_ = leftovers;
    release_ = release;
    drain_deadline_ = clock_.Now() + timeout;
  }
  work_.notify_all();
  space_.notify_all();
  {
    // A Deliver() in progress may outlast the grace period (a Kafka batch
    // waits up to message.timeout.ms): past the deadline, cut it short so
    // shutdown stays bounded and its events are kept, not lost to a SIGKILL.
    std::unique_lock lock(mutex_);
    if (!finished_.wait_for(lock, timeout, [this] { return run_finished_; })) {
      lock.unlock();
      sink_->Interrupt();
    }
  }
  thread_.join();
  const auto remaining = std::max(
      std::chrono::milliseconds(0),
      std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline_ - clock_.Now()));
  if (!sink_->Shutdown(remaining)) {
    spdlog::warn("sink {}: shutdown did not finish within its timeout", name_);
  }
}

void SinkWorker::Run() {
  // Kept from batch to batch: allocating and freeing a thousand-event batch
  // each time made glibc consolidate its heap over and over.
  std::vector<Pending> batch;
  std::vector<EventPtr> events;
  std::vector<DeliveryResult> results;
  batch.reserve(max_batch_);
  std::unique_lock lock(mutex_);
  while (true) {
    const SteadyTime now = clock_.Now();
    if (stopping_ && (now >= drain_deadline_ || (queue_.empty() && retrying_.empty()))) break;
    if (now >= gate_until_) TakeBatch(now, batch);
    if (batch.empty()) {
      auto wake = NextWake();
      if (stopping_) wake = wake ? std::min(*wake, drain_deadline_) : drain_deadline_;
      if (wake) {
        work_.wait_for(lock, *wake - now);
      } else {
        work_.wait(lock);
      }
      continue;
    }
    lock.unlock();
    space_.notify_all();
    events.clear();
    for (const auto& pending : batch) events.push_back(pending.event);
    results.assign(batch.size(), DeliveryResult{});
    sink_->Deliver(events, results);
    lock.lock();
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
  left_at_shutdown_ = left.size();
  const bool keep = storage_.spool != nullptr && leftovers_ == Leftovers::kKeepInSpool;
  if (release_) {
    for (auto& pending : left) released_.push_back({std::move(pending.event), pending.spool_seq});
  }
  lock.unlock();
  if (!release_ && !left.empty()) {
    if (keep) {
      spdlog::warn("sink {}: {} undelivered events stay in the spool for the next start", name_,
                   left.size());
    } else {
      spdlog::warn("sink {}: {} events undelivered at shutdown went to the dead-letter file", name_,
                   left.size());
      for (const auto& pending : left) DeadLetter(pending, "undelivered at shutdown");
    }
  }
  space_.notify_all();
  lock.lock();
  run_finished_ = true;
  finished_.notify_all();
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
  for (auto& pending : batch) {
    if (pending.attempts++ == 0) pending.first_attempt = now;
  }
}

void SinkWorker::Settle(std::vector<Pending>& batch, const std::vector<DeliveryResult>& results) {
  const SteadyTime now = clock_.Now();
  bool any_ok = false;
  bool all_retry = true;
  std::optional<std::chrono::milliseconds> retry_after;
  std::vector<std::uint64_t> delivered;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Pending& pending = batch[i];
    const DeliveryResult& result = results[i];
    all_retry = all_retry && result.kind == DeliveryResult::Kind::kRetry;
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
        const bool out_of_attempts =
            options_.retry.max_attempts > 0 && pending.attempts >= options_.retry.max_attempts;
        const bool too_old = now - pending.first_attempt >= options_.retry.max_age;
        if (out_of_attempts || too_old) {
          DeadLetter(pending, "gave up after " + std::to_string(pending.attempts) +
                                  " attempts: " + result.error);
          break;
        }
        auto delay = Backoff(pending.attempts);
        if (result.retry_after) {
          delay = std::max(delay, *result.retry_after);
          retry_after = std::max(retry_after.value_or(delay), *result.retry_after);
        }
        pending.next_attempt = now + delay;
        if (observer_ != nullptr) observer_->OnRetry(name_, *pending.event, result.error);
        const OrderKey key = pending.key;
        retrying_.emplace(key, std::move(pending));
        break;
      }
    }
  }

  Acknowledge(delivered);

  if (any_ok) {
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
  }
  ReportDepth(queue_.size() + retrying_.size());
}

std::chrono::milliseconds SinkWorker::Backoff(int attempts) {
  return ExponentialBackoff(attempts, options_.retry.initial_backoff, options_.retry.max_backoff,
                            rng_);
}

std::optional<SteadyTime> SinkWorker::NextWake() const {
  const bool has_work = !queue_.empty() || !retrying_.empty();
  if (has_work && clock_.Now() < gate_until_) return gate_until_;
  std::optional<SteadyTime> earliest;
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
