#pragma once

// Consul's KV store for the test server: reads of a key or a prefix, writes
// with check-and-set, session locks (acquire/release) with their LockIndex
// and lock-delay, deletes, and what a session's invalidation does to the
// keys it holds. Pure and synchronous; indexes come from TestCatalog (one
// Raft index for every table, as in Consul).
//
// What the bridge relies on, as Consul documents and implements it:
// - A write with ?acquire=<session> takes the key's lock when nobody holds
//   it (LockIndex + 1, Session set), or refreshes it when the same session
//   holds it (LockIndex kept); it answers false when another session holds
//   it, or within the lock-delay after a holder was invalidated.
// - ?release=<session> frees the lock only for its holder (LockIndex kept).
// - ?cas=<ModifyIndex> writes only if the key is unchanged (0: absent).
// - A plain write keeps the key's Session.
// - A read's index: a key's watch moves only when that key (or its
//   deletion) does; a prefix's with anything under it; the table's with
//   anything. Reads answer with the table's index for a key, the prefix's
//   highest index for a prefix (the table's when nothing is under it).
// - Values are at most 512 KiB.
// - A transaction (/v1/txn, Txn()) runs its KV operations in order on one
//   Raft index; when any fails, none of its writes stays, and the errors
//   name every failed operation. Lock-delays and keys are checked before
//   anything runs, as Consul's leader does.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/consul/session_store.h"
#include "tests/support/consul/test_catalog.h"

namespace hb::test_support {

struct KvEntry {
  std::string key;
  std::string value;  // raw bytes
  std::uint64_t flags = 0;
  std::string session;  // the lock holder, "" when free
  std::uint64_t lock_index = 0;
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
};

class KvStore {
 public:
  // Consul's kv_max_value_size default.
  static constexpr std::size_t kMaxValueSize = 512 * 1024;

  struct Write {
    std::string key;
    std::string value;
    std::uint64_t flags = 0;
    std::optional<std::uint64_t> cas;
    std::string acquire;  // session id, or ""
    std::string release;  // session id, or ""
  };
  // Whether the write happened (the body Consul answers: true/false), or an
  // error with its HTTP status.
  struct Result {
    bool done = false;
    int status = 200;
    std::string error;
  };

  Result Put(const Write& write, const SessionStore& sessions, TestCatalog& catalog, TestTime now);

  // One KV operation of a transaction, as Consul decodes it.
  struct TxnOp {
    std::string verb;
    std::string key;
    std::string value;  // decoded
    std::uint64_t flags = 0;
    std::uint64_t index = 0;
    std::string session;
    bool none = false;  // an element without any operation in it
  };
  struct TxnError {
    std::size_t op_index = 0;
    std::string what;
  };
  struct TxnOutcome {
    std::vector<nlohmann::json> results;  // committed: each result's "KV" object
    std::vector<TxnError> errors;         // rolled back: why, per failed operation
  };
  // Whether Consul counts `verb` as a write (a transaction without one is
  // served as a read).
  static bool IsTxnWrite(const std::string& verb);
  TxnOutcome Txn(const std::vector<TxnOp>& ops, const SessionStore& sessions, TestCatalog& catalog,
                 TestTime now);
  // DELETE /v1/kv/<key> (?recurse: every key under the prefix; ?cas: only
  // when unchanged, and true when the key is already gone).
  Result Delete(const std::string& key, bool recurse, std::optional<std::uint64_t> cas,
                TestCatalog& catalog);
  // `session` was destroyed, reaped or lost a check: its keys are released
  // (behavior "release") or deleted ("delete"), and none of them can be
  // acquired again before its lock-delay has passed.
  void InvalidateSession(const TestSession& session, TestCatalog& catalog, TestTime now);

  const KvEntry* Get(const std::string& key) const;
  std::vector<const KvEntry*> List(const std::string& prefix) const;
  // ?keys: the keys under `prefix`, cut after the first `separator` past
  // the prefix (none when empty), without repeats.
  std::vector<std::string> Keys(const std::string& prefix, const std::string& separator) const;
  static nlohmann::json EntryJson(const KvEntry& entry);

  std::uint64_t TableIndex() const { return table_index_; }
  // Moves only when `key` is written or deleted (0 while it never existed).
  std::uint64_t KeyIndex(const std::string& key) const;
  // The highest index of the entries and deletions under `prefix`, or 0.
  std::uint64_t PrefixIndex(const std::string& prefix) const;

  // Snapshot restore: every index above `to` becomes `to`.
  void ResetIndex(std::uint64_t to);

 private:
  // What a key looked like before a transaction's write, to undo it.
  struct Undo {
    std::string key;
    std::optional<KvEntry> entry;
    std::optional<std::uint64_t> tombstone;
  };
  // The index of the current write: a plain write takes the next one, all
  // writes of a transaction share the one its first write took.
  using IndexSource = std::function<std::uint64_t()>;

  Result PutAt(const Write& write, const SessionStore& sessions, const IndexSource& next_index,
               TestTime now);
  void Erase(const std::string& key, std::uint64_t index);
  void Remember(const std::string& key);
  std::optional<TxnError> TxnApply(const TxnOp& op, std::size_t at, const SessionStore& sessions,
                                   const IndexSource& next_index, TestTime now,
                                   std::vector<nlohmann::json>& results);

  std::vector<Undo>* journal_ = nullptr;  // set while a transaction runs

  std::map<std::string, KvEntry> entries_;
  std::map<std::string, std::uint64_t> tombstones_;   // deleted key -> index of the deletion
  std::map<std::string, TestTime> lock_delay_until_;  // key -> no acquisition before
  std::uint64_t table_index_ = 0;
};

}  // namespace hb::test_support
