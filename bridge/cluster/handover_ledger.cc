#include "bridge/cluster/handover_ledger.h"

#include <spdlog/spdlog.h>

#include "bridge/model/event_codec.h"

namespace hb {
namespace {

// What FoldEvent() needs of an event, so a pending one costs little.
Event Slim(const Event& event) {
  Event slim;
  slim.type = event.type;
  slim.service = event.service;
  slim.node = event.node;
  slim.instance_id = event.instance_id;
  slim.status = event.status;
  slim.consul_index = event.consul_index;
  return slim;
}

bool Followable(const Event& event) { return event.epoch.has_value() && !event.silent; }

}  // namespace

void HandoverLedger::Begin(const std::string& service, ReportedService acknowledged, bool changed) {
  MutexLock lock(&mutex_);
  Followed& followed = followed_[service];
  for (auto& pending : followed.queue) pending->done = true;  // of an earlier tenure
  followed.queue.clear();
  followed.acknowledged = std::move(acknowledged);
  followed.changed = changed;
  followed.overflowed = false;
  followed.encoded_bytes = 0;
  followed.encoded_dropped = 0;
}

void HandoverLedger::End(const std::string& service) {
  MutexLock lock(&mutex_);
  auto it = followed_.find(service);
  if (it == followed_.end()) return;
  // by_id_ entries of its events go as their acknowledgements arrive (or
  // stay until the id is seen again: bounded by kMaxPending).
  for (auto& pending : it->second.queue) pending->done = true;
  followed_.erase(it);
  settled_.SignalAll();
}

void HandoverLedger::Emitting(const std::vector<Event>& events) {
  MutexLock lock(&mutex_);
  for (const Event& event : events) {
    if (!Followable(event)) continue;
    auto it = followed_.find(event.service);
    if (it == followed_.end() || it->second.overflowed) continue;
    if (pending_ >= kMaxPending) {
      it->second.overflowed = true;
      spdlog::warn(
          "cluster: more than {} events wait for their sinks; the handover state of {} stops "
          "moving until it is handed over (its successor then re-emits everything since)",
          kMaxPending, event.service);
      continue;
    }
    auto pending = std::make_shared<Pending>();
    pending->event = Slim(event);
    pending->encoded = EncodeEvent(event);
    Followed& followed = it->second;
    followed.encoded_bytes += pending->encoded.size();
    followed.queue.push_back(pending);
    // Only the newest fit in the write-ahead: the others' encodings go.
    while (followed.encoded_bytes > kMaxPendingEventsBytes &&
           followed.encoded_dropped + 1 < followed.queue.size()) {
      std::string& oldest = followed.queue[followed.encoded_dropped]->encoded;
      followed.encoded_bytes -= oldest.size();
      std::string().swap(oldest);
      ++followed.encoded_dropped;
    }
    by_id_[event.id].push_back(std::move(pending));
    ++pending_;
  }
}

void HandoverLedger::Acknowledge(const Event& event, std::int64_t routed_sinks, bool acknowledged) {
  if (!Followable(event)) return;
  MutexLock lock(&mutex_);
  auto ids = by_id_.find(event.id);
  if (ids == by_id_.end()) return;
  auto& candidates = ids->second;
  std::shared_ptr<Pending> pending;
  for (const auto& candidate : candidates) {
    if (candidate->done) continue;
    if (routed_sinks >= 0 ? !candidate->routed : true) {
      pending = candidate;
      break;
    }
  }
  if (pending == nullptr) return;
  if (routed_sinks >= 0) {
    pending->routed = true;
    pending->outstanding += routed_sinks;
  } else if (acknowledged) {
    --pending->outstanding;
  } else {
    // Not delivered and never will be by this replica: nothing after it
    // counts as acknowledged either, so the successor re-emits from here.
    return;
  }
  if (!pending->routed || pending->outstanding > 0) return;
  pending->done = true;
  std::erase_if(candidates, [](const auto& candidate) { return candidate->done; });
  if (candidates.empty()) by_id_.erase(ids);
  if (auto followed = followed_.find(event.service); followed != followed_.end()) {
    FoldDone(followed->second);
  }
}

void HandoverLedger::FoldDone(Followed& followed) {
  while (!followed.queue.empty() && followed.queue.front()->done) {
    FoldEvent(followed.acknowledged, followed.queue.front()->event);
    if (followed.encoded_dropped > 0) {
      --followed.encoded_dropped;
    } else {
      followed.encoded_bytes -= followed.queue.front()->encoded.size();
    }
    followed.queue.pop_front();
    --pending_;
    followed.changed = true;
  }
  if (followed.queue.empty()) settled_.SignalAll();
}

bool HandoverLedger::WaitSettled(const std::vector<std::string>& services,
                                 std::chrono::steady_clock::time_point deadline) {
  MutexLock lock(&mutex_);
  const auto unsettled = [&]() REQUIRES(mutex_) {
    for (const std::string& service : services) {
      auto it = followed_.find(service);
      if (it != followed_.end() && !it->second.queue.empty()) return true;
    }
    return false;
  };
  while (unsettled()) {
    if (!settled_.WaitUntil(&mutex_, deadline)) return !unsettled();
  }
  return true;
}

std::vector<std::pair<std::string, ReportedService>> HandoverLedger::TakeChanged(
    std::size_t limit) {
  std::vector<std::pair<std::string, ReportedService>> changed;
  MutexLock lock(&mutex_);
  for (auto& [service, followed] : followed_) {
    if (changed.size() >= limit) break;
    if (!followed.changed) continue;
    followed.changed = false;
    changed.emplace_back(service, followed.acknowledged);
  }
  return changed;
}

std::optional<ReportedService> HandoverLedger::TakeChanged(const std::string& service) {
  MutexLock lock(&mutex_);
  auto it = followed_.find(service);
  if (it == followed_.end() || !it->second.changed) return std::nullopt;
  it->second.changed = false;
  return it->second.acknowledged;
}

void HandoverLedger::MarkChanged(const std::string& service) {
  MutexLock lock(&mutex_);
  if (auto it = followed_.find(service); it != followed_.end()) it->second.changed = true;
}

std::optional<ReportedService> HandoverLedger::Acknowledged(const std::string& service) const {
  MutexLock lock(&mutex_);
  auto it = followed_.find(service);
  if (it == followed_.end()) return std::nullopt;
  return it->second.acknowledged;
}

std::size_t HandoverLedger::pending() const {
  MutexLock lock(&mutex_);
  return pending_;
}

std::optional<std::size_t> HandoverLedger::UnacknowledgedCount(const std::string& service) const {
  MutexLock lock(&mutex_);
  auto it = followed_.find(service);
  if (it == followed_.end()) return std::nullopt;
  return it->second.queue.size();
}

HandoverLedger::Unacknowledged HandoverLedger::UnacknowledgedOf(const std::string& service) const {
  Unacknowledged out;
  MutexLock lock(&mutex_);
  auto it = followed_.find(service);
  if (it == followed_.end()) return out;
  const Followed& followed = it->second;
  out.followed = true;
  out.left_out = followed.encoded_dropped;
  out.encoded.reserve(followed.queue.size() - followed.encoded_dropped);
  for (std::size_t i = followed.encoded_dropped; i < followed.queue.size(); ++i) {
    out.encoded.push_back(followed.queue[i]->encoded);
  }
  return out;
}

void HandoverLedger::OnRouted(const Event& event, std::size_t sinks) {
  Acknowledge(event, static_cast<std::int64_t>(sinks), false);
  if (next_ != nullptr) next_->OnRouted(event, sinks);
}

void HandoverLedger::OnDelivered(std::string_view sink, const Event& event, SteadyTime acked_at) {
  Acknowledge(event, -1, true);
  if (next_ != nullptr) next_->OnDelivered(sink, event, acked_at);
}

void HandoverLedger::OnRetry(std::string_view sink, const Event& event, std::string_view error) {
  if (next_ != nullptr) next_->OnRetry(sink, event, error);
}

void HandoverLedger::OnDeadLettered(std::string_view sink, const Event& event,
                                    std::string_view reason) {
  // The sink worker's reasons when the bridge stops ("sink is shutting
  // down", "undelivered at shutdown"): the event was never given up on.
  const bool stopping = reason.find("shutdown") != std::string_view::npos ||
                        reason.find("shutting down") != std::string_view::npos;
  Acknowledge(event, -1, !stopping);
  if (next_ != nullptr) next_->OnDeadLettered(sink, event, reason);
}

void HandoverLedger::OnQueueDepth(std::string_view sink, std::size_t depth) {
  if (next_ != nullptr) next_->OnQueueDepth(sink, depth);
}
void HandoverLedger::OnSpoolBytes(std::string_view sink, std::uint64_t bytes) {
  if (next_ != nullptr) next_->OnSpoolBytes(sink, bytes);
}
void HandoverLedger::OnSpoolFull(std::string_view sink) {
  if (next_ != nullptr) next_->OnSpoolFull(sink);
}
void HandoverLedger::OnSpoolWriteError(std::string_view sink) {
  if (next_ != nullptr) next_->OnSpoolWriteError(sink);
}
void HandoverLedger::OnSpoolDropped(std::string_view sink, std::uint64_t bytes) {
  if (next_ != nullptr) next_->OnSpoolDropped(sink, bytes);
}

}  // namespace hb
