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
  // The body budget leaves room for the list's own brackets and commas.
  constexpr std::size_t kBodyBudget = ConsulKvClient::kMaxTxnBodyBytes - 4096;
  bool all = true;
  std::size_t next = 0;
  while (next < groups.size()) {
    std::vector<std::size_t> batch;
    std::size_t ops = 0;
    std::size_t bytes = 0;
    while (next < groups.size()) {
      std::size_t group_bytes = 0;
      for (const KvTxnOp& op : groups[next].ops) group_bytes += ConsulKvClient::TxnOpBytes(op);
      if (!batch.empty() && (ops + groups[next].ops.size() > ConsulKvClient::kMaxTxnOps ||
                             bytes + group_bytes > kBodyBudget)) {
        break;
      }
      batch.push_back(next);
      ops += groups[next].ops.size();
      bytes += group_bytes;
      ++next;
    }
    // Each attempt commits or drops at least one group, so this ends.
    while (!batch.empty()) {
      std::vector<KvTxnOp> txn;
      std::vector<std::size_t> owner;  // operation -> position in `batch`
      for (std::size_t at = 0; at < batch.size(); ++at) {
        for (const KvTxnOp& op : groups[batch[at]].ops) {
          txn.push_back(op);
          owner.push_back(at);
        }
      }
      auto answer = client_->Txn(txn);
      if (!answer.ok()) {
        if (!std::exchange(failing_, true)) {
          spdlog::warn(
              "cluster: the write-ahead of {} services failed ({}); their events are emitted "
              "all the same, but a successor would not know them if this replica died now",
              batch.size(), answer.status().message());
        }
        return false;  // the next ones would wait as long: the events must go
      }
      if (answer->committed) {
        for (const std::size_t at : batch) {
          const Group& group = groups[at];
          if (group.erase) {
            written_.erase(group.service);
          } else {
            written_.insert(group.service);
          }
        }
        break;
      }
      // A failed check-session: the lock is no longer this session's (the
      // gate closes for the service at the coordinator's next round).
      std::vector<bool> refused(batch.size(), false);
      for (const std::size_t op : answer->failed) {
        if (op < owner.size()) refused[owner[op]] = true;
      }
      std::vector<std::size_t> rest;
      for (std::size_t at = 0; at < batch.size(); ++at) {
        if (refused[at]) {
          all = false;
          written_.erase(groups[batch[at]].service);
          spdlog::warn("cluster: the write-ahead of {} was refused ({}); not written",
                       groups[batch[at]].service, answer->why);
        } else {
          rest.push_back(batch[at]);
        }
      }
      if (rest.size() == batch.size()) {
        // Consul named no operation of ours: nothing to drop, so give up.
        spdlog::warn("cluster: the write-ahead was refused ({}); not written", answer->why);
        return false;
      }
      batch = std::move(rest);
    }
  }
  return all;
}

}  // namespace hb
