#include "bridge/watch/change_detector.h"

namespace hb {

void ChangeDetector::Touch(const CheckRow& row, Services& out) const {
  if (!row.service_id.empty()) {
    out.insert(row.service_name);
    return;
  }
  // A node check is part of every instance on its node.
  if (auto it = services_by_node_.find(row.node); it != services_by_node_.end()) {
    out.insert(it->second.begin(), it->second.end());
  }
}

bool ChangeDetector::Explains(std::uint64_t index) const {
  // The answer's own index explains a write only when the answer changed
  // something: Consul also moves the checks table's index when it deletes a
  // service that had no checks.
  return has_baseline_ &&
         ((index == index_ && last_diff_named_) || modify_indexes_.contains(index));
}

ChangeDetector::Services ChangeDetector::OnChecks(const std::vector<CheckRow>& rows,
                                                  std::uint64_t index) {
  std::map<CheckKey, CheckRow> next;
  modify_indexes_.clear();
  for (const CheckRow& row : rows) {
    next.emplace(CheckKey{row.node, row.check_id}, row);
    modify_indexes_.insert(row.modify_index);
  }
  index_ = index;
  Services changed;
  if (has_baseline_) {
    // Both maps are ordered by key: one merge walk finds added, removed and
    // written checks.
    auto old_it = checks_.begin();
    auto new_it = next.begin();
    while (old_it != checks_.end() || new_it != next.end()) {
      if (new_it == next.end() || (old_it != checks_.end() && old_it->first < new_it->first)) {
        Touch(old_it->second, changed);  // removed
        ++old_it;
      } else if (old_it == checks_.end() || new_it->first < old_it->first) {
        Touch(new_it->second, changed);  // added
        ++new_it;
      } else {
        if (!(old_it->second == new_it->second)) {
          // Moved to another service (a re-registration) or written.
          Touch(old_it->second, changed);
          Touch(new_it->second, changed);
        }
        ++old_it;
        ++new_it;
      }
    }
  }
  checks_ = std::move(next);
  last_diff_named_ = has_baseline_ && !changed.empty();
  has_baseline_ = true;
  return changed;
}

void ChangeDetector::RecordInstances(const std::string& service,
                                     const std::vector<Instance>& instances) {
  std::set<std::string> nodes;
  for (const Instance& instance : instances) nodes.insert(instance.node);
  auto& known = nodes_by_service_[service];
  for (const std::string& node : known) {
    if (nodes.contains(node)) continue;
    auto it = services_by_node_.find(node);
    if (it == services_by_node_.end()) continue;
    it->second.erase(service);
    if (it->second.empty()) services_by_node_.erase(it);
  }
  for (const std::string& node : nodes) services_by_node_[node].insert(service);
  if (nodes.empty()) {
    nodes_by_service_.erase(service);
  } else {
    known = std::move(nodes);
  }
}

void ChangeDetector::Forget(const std::string& service) { RecordInstances(service, {}); }

void ChangeDetector::Reset() {
  has_baseline_ = false;
  index_ = 0;
  modify_indexes_.clear();
  checks_.clear();
}

}  // namespace hb
