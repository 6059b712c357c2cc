#include "bridge/cluster/write_ahead.h"

#include <spdlog/spdlog.h>

#include "bridge/cluster/pending_events.h"

namespace hb {

WriteAhead::WriteAhead(std::string prefix, std::unique_ptr<ConsulKvClient> client,
                       ClusterCoordinator& cluster, HandoverLedger& ledger,
                       ClusterObserver* observer)
    : prefix_(std::move(prefix)),
      client_(std::move(client)),
      cluster_(cluster),
      ledger_(ledger),
      observer_(observer) {}

void WriteAhead::Record(const std::set<std::string>& services, std::size_t max_trims) {
  const std::optional<std::string> session = cluster_.LiveSessionId();
  if (!session) return;  // nothing passes the gate either
  MutexLock lock(&mutex_);
  // What the batch waits for: collecting and encoding too, not only Consul.
  const auto started = std::chrono::steady_clock::now();
  std::vector<Group> groups;
  const auto guarded = [&groups, &session, this](const std::string& service, KvTxnOp write,
                                                 bool erase) {
    Group group{service, erase, {}};
    group.ops.push_back({"check-session", ServiceLockKey(prefix_, service), "", 0, *session});
    group.ops.push_back(std::move(write));
    groups.push_back(std::move(group));
  };
  for (const std::string& service : services) {
    if (!cluster_.EpochFor(service)) continue;
    HandoverLedger::Unacknowledged pending = ledger_.UnacknowledgedOf(service);
    if (!pending.followed) continue;
    if (pending.encoded.empty()) {
      if (written_.contains(service)) {
        guarded(service, {"delete", PendingEventsKey(prefix_, service), "", 0, ""}, true);
      }
      continue;
    }
    PendingEventsValue value = EncodePendingEvents(pending.encoded);
    const std::size_t left_out = pending.left_out + value.left_out;
    if (left_out == 0) {
      overflowing_.erase(service);
    } else {
      if (observer_ != nullptr) observer_->OnPendingLeftOut(left_out);
      if (overflowing_.insert(service).second) {
        spdlog::warn(
            "cluster: {} events of {} wait for their sinks; the oldest {} do not fit in its "
            "write-ahead ({} bytes): a successor would re-emit only the newest",
            pending.left_out + pending.encoded.size(), service, left_out, kMaxPendingEventsBytes);
      }
    }
    guarded(service, {"set", PendingEventsKey(prefix_, service), std::move(value.value), 0, ""},
            false);
  }
  // Services acknowledged since their last write: their keys go.
  std::size_t trims = 0;
  for (auto it = written_.begin(); it != written_.end() && trims < max_trims;) {
    const std::string& service = *it;
    if (services.contains(service)) {
      ++it;
      continue;
    }
    const std::optional<std::size_t> waiting = ledger_.UnacknowledgedCount(service);
    if (!waiting || !cluster_.EpochFor(service)) {
      // Handed over or lost: the key is its next owner's now.
      it = written_.erase(it);
      continue;
    }
    if (*waiting == 0) {
      guarded(service, {"delete", PendingEventsKey(prefix_, service), "", 0, ""}, true);
      ++trims;
    }
    ++it;
  }
  if (groups.empty()) return;
  const bool sent = Send(std::move(groups));
  if (observer_ != nullptr) {
    observer_->OnWriteAhead(std::chrono::steady_clock::now() - started);
  }
  if (sent) {
    if (std::exchange(failing_, false)) spdlog::info("cluster: the write-ahead works again");
    return;
  }
  if (observer_ != nullptr) observer_->OnWriteAheadFailed();
}

bool WriteAhead::Send(std::vector<Group> groups) {
  std::vector<std::vector<KvTxnOp>> ops;
  ops.reserve(groups.size());
  for (Group& group : groups) ops.push_back(std::move(group.ops));
  Status failure;
  const std::vector<KvTxnGroupOutcome> outcomes = SendTxnGroups(
      *client_, ops, [] { return true; }, &failure);
  bool all = true;
  for (std::size_t at = 0; at < groups.size(); ++at) {
    const Group& group = groups[at];
    if (outcomes[at].committed) {
      if (group.erase) {
        written_.erase(group.service);
      } else {
        written_.insert(group.service);
      }
    } else if (outcomes[at].refused) {
      // A failed check-session: the lock is no longer this session's (the
      // gate closes for the service at the coordinator's next round).
      all = false;
      written_.erase(group.service);
      spdlog::warn("cluster: the write-ahead of {} was refused ({}); not written", group.service,
                   outcomes[at].why);
    }
  }
  if (!failure.ok()) {
    if (!std::exchange(failing_, true)) {
      spdlog::warn(
          "cluster: the write-ahead of {} services failed ({}); their events are emitted all "
          "the same, but a successor would not know them if this replica died now",
          groups.size(), failure.message());
    }
    return false;  // the rest would wait as long: the events must go
  }
  return all;
}

}  // namespace hb
