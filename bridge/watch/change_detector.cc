#include "bridge/watch/change_detector.h"

#include <algorithm>

namespace hb {

void ChangeDetector::Touch(const CheckRow& row, Services& out) const {
  if (!row.service_id.empty()) {
    out.insert(row.service_name);
    return;
  }
  TouchNode(row.node, out);
}

void ChangeDetector::Touch(const CheckTable::Change& change, Services& out) const {
  if (!change.service.empty()) {
    out.insert(change.service);
    return;
  }
  TouchNode(change.node, out);
}

void ChangeDetector::TouchNode(const std::string& node, Services& out) const {
  // A node check is part of every instance on its node.
  if (auto it = services_by_node_.find(node); it != services_by_node_.end()) {
    out.insert(it->second.begin(), it->second.end());
  }
}

bool ChangeDetector::Explains(const View& view, std::uint64_t index) {
  // The answer's own index explains a write only when the answer changed
  // something: Consul also moves the checks table's index when it deletes a
  // service that had no checks.
  return view.has_baseline &&
         ((index == view.index && view.last_diff_named) || view.modify_indexes.contains(index));
}

bool ChangeDetector::Explains(std::uint64_t index) const {
  return Explains(unhealthy_, index) ||
         (table_.has_baseline &&
          ((index == table_.index && table_.last_diff_named) || table_.table.Wrote(index) ||
           (table_.last_diff_named && index > table_.previous_index &&
            index <= table_.latest_write)));
}

ChangeDetector::Services ChangeDetector::OnChecks(const std::vector<CheckRow>& rows,
                                                  std::uint64_t index) {
  return Diff(unhealthy_, rows, index);
}

ChangeDetector::Services ChangeDetector::OnTable(const std::vector<CheckRow>& rows,
                                                 std::uint64_t index) {
  return ApplyTable(DiffTable(rows, index, TakeTable()));
}

ChangeDetector::TableBase ChangeDetector::TakeTable() {
  return TableBase{std::move(table_.table), table_.has_baseline, generation_};
}

ChangeDetector::TableRead ChangeDetector::DiffTable(const std::vector<CheckRow>& rows,
                                                    std::uint64_t index, const TableBase& base) {
  TableRead read;
  read.table = CheckTable(rows, index);
  read.baseline = !base.has_baseline;
  if (base.has_baseline) read.changes = read.table.ChangesSince(base.table, &read.latest_write);
  read.index = index;
  read.generation = base.generation;
  return read;
}

ChangeDetector::Services ChangeDetector::ApplyTable(TableRead read) {
  Services changed;
  if (read.generation != generation_) return changed;  // from before a Reset()
  for (const CheckTable::Change& change : read.changes) Touch(change, changed);
  table_.table = std::move(read.table);
  table_.previous_index = table_.index;
  table_.index = read.index;
  table_.latest_write = read.latest_write;
  table_.last_diff_named = !read.baseline && !changed.empty();
  table_.has_baseline = true;
  return changed;
}

void ChangeDetector::RestoreTable(TableBase base) {
  if (base.generation != generation_) return;
  table_.table = std::move(base.table);
}

ChangeDetector::Services ChangeDetector::Diff(View& view, const std::vector<CheckRow>& rows,
                                              std::uint64_t index) const {
  std::map<CheckKey, CheckRow> next;
  view.modify_indexes.clear();
  for (const CheckRow& row : rows) {
    next.emplace(CheckKey{row.node, row.check_id}, row);
    view.modify_indexes.insert(row.modify_index);
  }
  view.index = index;
  Services changed;
  if (view.has_baseline) {
    // Both maps are ordered by key: one merge walk finds added, removed and
    // written checks.
    auto old_it = view.checks.begin();
    auto new_it = next.begin();
    while (old_it != view.checks.end() || new_it != next.end()) {
      if (new_it == next.end() || (old_it != view.checks.end() && old_it->first < new_it->first)) {
        Touch(old_it->second, changed);  // removed (or, filtered, passing again)
        ++old_it;
      } else if (old_it == view.checks.end() || new_it->first < old_it->first) {
        Touch(new_it->second, changed);  // added (or, filtered, no longer passing)
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
  view.checks = std::move(next);
  view.last_diff_named = view.has_baseline && !changed.empty();
  view.has_baseline = true;
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
  unhealthy_ = View{};
  table_ = TableView{};
  ++generation_;
}

}  // namespace hb
