#include "bridge/watch/check_table.h"

#include <algorithm>

namespace hb {

std::string CheckTable::Key(const CheckRow& row) {
  std::string key = std::to_string(row.node.size());
  key.reserve(key.size() + 1 + row.node.size() + row.check_id.size());
  key.push_back(':');
  key += row.node;
  key += row.check_id;
  return key;
}

CheckTable::Change CheckTable::ChangeOf(const std::string& key, const Check& check) {
  Change change;
  change.service = check.service;
  if (check.service.empty()) {
    // Only a node check needs its node: recover it from the key.
    const std::size_t colon = key.find(':');
    const std::size_t length = std::stoul(key.substr(0, colon));
    change.node = key.substr(colon + 1, length);
  }
  return change;
}

CheckTable::CheckTable(const std::vector<CheckRow>& rows, std::uint64_t index) : index_(index) {
  checks_.reserve(rows.size());
  modify_indexes_.reserve(rows.size());
  for (const CheckRow& row : rows) {
    // A check listed twice (Consul never does) keeps its last row.
    checks_.insert_or_assign(Key(row),
                             Check{row.modify_index, row.service_id,
                                   row.service_id.empty() ? "" : row.service_name, row.status});
    modify_indexes_.push_back(row.modify_index);
  }
  std::sort(modify_indexes_.begin(), modify_indexes_.end());
  modify_indexes_.erase(std::unique(modify_indexes_.begin(), modify_indexes_.end()),
                        modify_indexes_.end());
  modify_indexes_.shrink_to_fit();
}

std::vector<CheckTable::Change> CheckTable::ChangesSince(const CheckTable& before,
                                                         std::uint64_t* latest_write) const {
  std::vector<Change> changes;
  std::uint64_t latest = 0;
  for (const auto& [key, check] : checks_) {
    auto old = before.checks_.find(key);
    if (old == before.checks_.end()) {
      changes.push_back(ChangeOf(key, check));  // added
      latest = std::max(latest, check.modify_index);
    } else if (!(old->second == check)) {
      changes.push_back(ChangeOf(key, old->second));  // written: its old owner
      if (old->second.service != check.service) changes.push_back(ChangeOf(key, check));
      latest = std::max(latest, check.modify_index);
    }
  }
  if (latest_write != nullptr) *latest_write = latest;
  for (const auto& [key, check] : before.checks_) {
    if (checks_.contains(key)) continue;
    changes.push_back(ChangeOf(key, check));  // removed
    // No ModifyIndex is left of a removal: this read's index is the
    // latest it can have been at.
    if (latest_write != nullptr) *latest_write = std::max(*latest_write, index_);
  }
  return changes;
}

bool CheckTable::Wrote(std::uint64_t index) const {
  return std::binary_search(modify_indexes_.begin(), modify_indexes_.end(), index);
}

}  // namespace hb
