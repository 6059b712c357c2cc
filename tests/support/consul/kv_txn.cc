// KvStore::Txn: the KV operations of Consul's /v1/txn, with Consul's
// verbs, error texts and all-or-nothing rule (kv_store.h).

#include <algorithm>

#include "tests/support/consul/kv_store.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

std::string Quoted(const std::string& text) { return json(text).dump(); }

}  // namespace

bool KvStore::IsTxnWrite(const std::string& verb) {
  return verb == "set" || verb == "delete" || verb == "delete-cas" || verb == "delete-tree" ||
         verb == "cas" || verb == "lock" || verb == "unlock";
}

KvStore::TxnOutcome KvStore::Txn(const std::vector<TxnOp>& ops, const SessionStore& sessions,
                                 TestCatalog& catalog, TestTime now) {
  TxnOutcome outcome;
  // Checked on the leader before the transaction enters Raft, for every
  // operation: a missing key, and a lock within its lock-delay (wall time
  // cannot be judged alike on every server after the commit).
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const TxnOp& op = ops[i];
    if (op.none) continue;
    if (op.key.empty() && op.verb != "delete-tree") {
      outcome.errors.push_back({i, "Must provide key"});
    } else if (op.verb == "lock") {
      if (auto delay = lock_delay_until_.find(op.key);
          delay != lock_delay_until_.end() && now < delay->second) {
        outcome.errors.push_back(
            {i, "failed to lock key " + Quoted(op.key) + " due to lock delay"});
      }
    }
  }
  if (!outcome.errors.empty()) return outcome;

  std::vector<Undo> journal;
  const std::uint64_t table_before = table_index_;
  journal_ = &journal;
  std::uint64_t txn_index = 0;
  const IndexSource next_index = [&catalog, &txn_index] {
    if (txn_index == 0) txn_index = catalog.NextIndex();
    return txn_index;
  };
  // Every operation runs, even after one failed, so the errors name all
  // of them.
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (auto error = TxnApply(ops[i], i, sessions, next_index, now, outcome.results)) {
      outcome.errors.push_back(std::move(*error));
    }
  }
  journal_ = nullptr;
  if (!outcome.errors.empty()) {
    // Rolled back: the keys as they were, newest change undone first. The
    // Raft index a write took stays taken, as a failed apply's log entry.
    for (auto it = journal.rbegin(); it != journal.rend(); ++it) {
      if (it->entry) {
        entries_[it->key] = *it->entry;
      } else {
        entries_.erase(it->key);
      }
      if (it->tombstone) {
        tombstones_[it->key] = *it->tombstone;
      } else {
        tombstones_.erase(it->key);
      }
    }
    table_index_ = table_before;
    outcome.results.clear();
  }
  return outcome;
}

std::optional<KvStore::TxnError> KvStore::TxnApply(const TxnOp& op, std::size_t at,
                                                   const SessionStore& sessions,
                                                   const IndexSource& next_index, TestTime now,
                                                   std::vector<json>& results) {
  const auto fail = [at](std::string what) {
    return std::optional<TxnError>({at, std::move(what)});
  };
  const std::string key = Quoted(op.key);
  // Results of writes carry no value, to keep the answer small.
  const auto result_of = [this, &op, &results](bool with_value) {
    const KvEntry* entry = Get(op.key);
    json out = KvStore::EntryJson(*entry);
    if (!with_value) out["Value"] = nullptr;
    results.push_back(std::move(out));
  };
  const auto put = [&](Write write) -> Result {
    write.key = op.key;
    write.value = op.value;
    write.flags = op.flags;
    return PutAt(write, sessions, next_index, now);
  };

  if (op.none) return fail("no operation specified");
  if (op.verb == "set") {
    put({});
    result_of(false);
  } else if (op.verb == "cas") {
    Write write;
    write.cas = op.index;
    if (!put(write).done) return fail("failed to set key " + key + ", index is stale");
    result_of(false);
  } else if (op.verb == "lock") {
    if (op.session.empty()) return fail("missing session");
    if (sessions.Find(op.session) == nullptr) return fail("invalid session " + Quoted(op.session));
    Write write;
    write.acquire = op.session;
    // The lock-delay was checked before the transaction ran.
    if (!put(write).done) return fail("failed to lock key " + key + ", lock is already held");
    result_of(false);
  } else if (op.verb == "unlock") {
    if (op.session.empty()) return fail("missing session");
    Write write;
    write.release = op.session;
    if (!put(write).done) {
      return fail("failed to unlock key " + key +
                  ", lock isn't held, or is held by another session");
    }
    result_of(false);
  } else if (op.verb == "get") {
    if (Get(op.key) == nullptr) return fail("key " + key + " doesn't exist");
    result_of(true);
  } else if (op.verb == "get-or-empty") {
    if (Get(op.key) != nullptr) {
      result_of(true);
    } else {
      // Consul answers with the operation's own entry, without a value.
      KvEntry absent;
      absent.key = op.key;
      absent.flags = op.flags;
      absent.session = op.session;
      absent.modify_index = op.index;
      results.push_back(KvStore::EntryJson(absent));
    }
  } else if (op.verb == "get-tree") {
    for (const KvEntry* entry : List(op.key)) results.push_back(KvStore::EntryJson(*entry));
  } else if (op.verb == "check-index") {
    const KvEntry* entry = Get(op.key);
    if (entry == nullptr) return fail("failed to check index, key " + key + " doesn't exist");
    if (entry->modify_index != op.index) {
      return fail("failed index check for key " + key + ", current modify index " +
                  std::to_string(entry->modify_index) + " != " + std::to_string(op.index));
    }
    result_of(false);
  } else if (op.verb == "check-session") {
    const KvEntry* entry = Get(op.key);
    if (entry == nullptr) return fail("failed to check session, key " + key + " doesn't exist");
    if (entry->session != op.session) {
      return fail("failed session check for key " + key + ", current session " +
                  Quoted(entry->session) + " != " + Quoted(op.session));
    }
    result_of(false);
  } else if (op.verb == "check-not-exists") {
    if (Get(op.key) != nullptr) return fail("key " + key + " exists");
  } else if (op.verb == "delete") {
    if (Get(op.key) != nullptr) Erase(op.key, next_index());
  } else if (op.verb == "delete-cas") {
    const KvEntry* entry = Get(op.key);
    // A key already gone counts as deleted, as for DELETE ?cas.
    if (entry != nullptr) {
      if (entry->modify_index != op.index) {
        return fail("failed to delete key " + key + ", index is stale");
      }
      Erase(op.key, next_index());
    }
  } else if (op.verb == "delete-tree") {
    std::vector<std::string> doomed;
    for (const KvEntry* entry : List(op.key)) doomed.push_back(entry->key);
    if (!doomed.empty()) {
      const std::uint64_t index = next_index();
      for (const auto& name : doomed) Erase(name, index);
    }
  } else {
    return fail("unknown KV verb " + Quoted(op.verb));
  }
  return std::nullopt;
}

}  // namespace hb::test_support
