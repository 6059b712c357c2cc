#include "tests/support/consul/kv_store.h"

#include <algorithm>

#include "bridge/common/base64.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

}  // namespace

KvStore::Result KvStore::Put(const Write& write, const SessionStore& sessions, TestCatalog& catalog,
                             TestTime now) {
  return PutAt(
      write, sessions, [&catalog] { return catalog.NextIndex(); }, now);
}

void KvStore::Remember(const std::string& key) {
  if (journal_ == nullptr) return;
  Undo undo{key, std::nullopt, std::nullopt};
  if (auto it = entries_.find(key); it != entries_.end()) undo.entry = it->second;
  if (auto it = tombstones_.find(key); it != tombstones_.end()) undo.tombstone = it->second;
  journal_->push_back(std::move(undo));
}

KvStore::Result KvStore::PutAt(const Write& write, const SessionStore& sessions,
                               const IndexSource& next_index, TestTime now) {
  Result result;
  if (write.key.empty()) return {false, 400, "Missing key name"};
  if (write.value.size() > kMaxValueSize) {
    return {false, 413,
            "Request body(" + std::to_string(write.value.size()) +
                " bytes) too large, max size: " + std::to_string(kMaxValueSize) + " bytes."};
  }
  auto existing = entries_.find(write.key);
  KvEntry entry;
  entry.key = write.key;
  entry.value = write.value;
  entry.flags = write.flags;
  // Consul's order: ?release wins over ?acquire, which wins over ?cas.
  if (!write.release.empty()) {
    if (existing == entries_.end() || existing->second.session != write.release) return result;
    entry.session.clear();
    entry.lock_index = existing->second.lock_index;
  } else if (!write.acquire.empty()) {
    if (sessions.Find(write.acquire) == nullptr) {
      return {false, 500, "invalid session \"" + write.acquire + "\""};
    }
    // After a holder's invalidation, nobody may take the lock before its
    // lock-delay has passed: the old holder may not know yet that it lost it.
    if (auto delay = lock_delay_until_.find(write.key);
        delay != lock_delay_until_.end() && now < delay->second) {
      return result;
    }
    if (existing != entries_.end() && existing->second.session == write.acquire) {
      entry.lock_index = existing->second.lock_index;
    } else if (existing != entries_.end() && !existing->second.session.empty()) {
      return result;
    } else {
      entry.lock_index = existing != entries_.end() ? existing->second.lock_index + 1 : 1;
    }
    entry.session = write.acquire;
  } else {
    if (write.cas) {
      if (*write.cas == 0 && existing != entries_.end()) return result;
      if (*write.cas != 0 &&
          (existing == entries_.end() || existing->second.modify_index != *write.cas)) {
        return result;
      }
    }
    if (existing != entries_.end()) {
      entry.session = existing->second.session;
      entry.lock_index = existing->second.lock_index;
    }
  }
  result.done = true;
  if (existing != entries_.end() && existing->second.value == entry.value &&
      existing->second.flags == entry.flags && existing->second.session == entry.session &&
      existing->second.lock_index == entry.lock_index) {
    return result;  // unchanged: Consul writes nothing, no index moves
  }
  const std::uint64_t index = next_index();
  entry.create_index = existing != entries_.end() ? existing->second.create_index : index;
  entry.modify_index = index;
  table_index_ = index;
  Remember(write.key);
  tombstones_.erase(write.key);
  entries_[write.key] = std::move(entry);
  return result;
}

void KvStore::Erase(const std::string& key, std::uint64_t index) {
  Remember(key);
  entries_.erase(key);
  tombstones_[key] = index;
  table_index_ = index;
}

KvStore::Result KvStore::Delete(const std::string& key, bool recurse,
                                std::optional<std::uint64_t> cas, TestCatalog& catalog) {
  if (recurse) {
    std::vector<std::string> doomed;
    for (auto it = entries_.lower_bound(key); it != entries_.end() && it->first.starts_with(key);
         ++it) {
      doomed.push_back(it->first);
    }
    if (!doomed.empty()) {
      const std::uint64_t index = catalog.NextIndex();
      for (const auto& name : doomed) Erase(name, index);
    }
    return {true, 200, ""};
  }
  if (key.empty()) return {false, 400, "Missing key name"};
  auto it = entries_.find(key);
  if (cas && (it == entries_.end() || it->second.modify_index != *cas)) {
    // A key already gone counts as deleted, as in Consul.
    return {it == entries_.end(), 200, ""};
  }
  if (it != entries_.end()) Erase(key, catalog.NextIndex());
  return {true, 200, ""};
}

void KvStore::InvalidateSession(const TestSession& session, TestCatalog& catalog, TestTime now) {
  std::vector<std::string> held;
  for (const auto& [key, entry] : entries_) {
    if (entry.session == session.id) held.push_back(key);
  }
  if (held.empty()) return;
  const std::uint64_t index = catalog.NextIndex();
  for (const auto& key : held) {
    if (session.lock_delay.count() > 0) lock_delay_until_[key] = now + session.lock_delay;
    if (session.behavior == "delete") {
      Erase(key, index);
    } else {
      KvEntry& entry = entries_[key];
      entry.session.clear();
      entry.modify_index = index;
      table_index_ = index;
    }
  }
}

const KvEntry* KvStore::Get(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<const KvEntry*> KvStore::List(const std::string& prefix) const {
  std::vector<const KvEntry*> out;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.starts_with(prefix); ++it) {
    out.push_back(&it->second);
  }
  return out;
}

std::vector<std::string> KvStore::Keys(const std::string& prefix,
                                       const std::string& separator) const {
  std::vector<std::string> out;
  for (const KvEntry* entry : List(prefix)) {
    std::string key = entry->key;
    if (!separator.empty()) {
      const std::size_t at = key.find(separator, prefix.size());
      if (at != std::string::npos) key.resize(at + separator.size());
    }
    if (out.empty() || out.back() != key) out.push_back(std::move(key));
  }
  return out;
}

json KvStore::EntryJson(const KvEntry& entry) {
  json out = {{"LockIndex", entry.lock_index},
              {"Key", entry.key},
              {"Flags", entry.flags},
              {"Value", entry.value.empty() ? json(nullptr) : json(EncodeBase64(entry.value))},
              {"CreateIndex", entry.create_index},
              {"ModifyIndex", entry.modify_index}};
  // Consul leaves Session out when nobody holds the key (omitempty).
  if (!entry.session.empty()) out["Session"] = entry.session;
  return out;
}

std::uint64_t KvStore::KeyIndex(const std::string& key) const {
  if (auto it = entries_.find(key); it != entries_.end()) return it->second.modify_index;
  if (auto it = tombstones_.find(key); it != tombstones_.end()) return it->second;
  return 0;
}

std::uint64_t KvStore::PrefixIndex(const std::string& prefix) const {
  std::uint64_t index = 0;
  for (const KvEntry* entry : List(prefix)) index = std::max(index, entry->modify_index);
  for (auto it = tombstones_.lower_bound(prefix);
       it != tombstones_.end() && it->first.starts_with(prefix); ++it) {
    index = std::max(index, it->second);
  }
  return index;
}

void KvStore::ResetIndex(std::uint64_t to) {
  table_index_ = std::min(table_index_, to);
  for (auto& [key, entry] : entries_) {
    entry.create_index = std::min(entry.create_index, to);
    entry.modify_index = std::min(entry.modify_index, to);
  }
  for (auto& [key, index] : tombstones_) index = std::min(index, to);
}

}  // namespace hb::test_support
