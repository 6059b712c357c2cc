#pragma once

// Finds which services changed, for the services that have no blocking
// query of their own (the connection budget holds fewer than the catalog
// has), from two views of Consul's checks table:
// - the answers of one blocking query on /v1/health/state/any filtered to
//   the checks that are not passing (`Status != "passing"`): the endpoint's
//   index moves on every check write, but the answer is only the unhealthy
//   set, usually tiny, so a health change costs a small answer instead of
//   the whole table. A check entering the set, leaving it or written within
//   it is a health transition of its service;
// - occasional plain reads of the whole table, taken when the catalog's index
//   moves (a registration or deregistration, whose checks may all be
//   passing and so never appear in the filtered set). The table is megabytes
//   in a large datacenter, so a read is kept as a CheckTable and diffed off
//   the watch thread: TakeTable() hands the last read out, DiffTable() runs
//   anywhere, ApplyTable() takes the result back.
// What no check shows (address, tags, meta, instances without checks) the
// catalog's index covers (see Watcher).
//
// Single-threaded (the watch thread) but for the static DiffTable().

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bridge/consul/answer_parsers.h"
#include "bridge/model/health.h"
#include "bridge/watch/check_table.h"

namespace hb {

class ChangeDetector {
 public:
  using Services = std::set<std::string, std::less<>>;

  // An answer of the filtered (not passing) query. Returns the services whose
  // checks entered, left or were written within the set since its previous
  // answer: a service check names its service; a node check (serfHealth,
  // node maintenance) names every service with an instance on that node, as
  // known from RecordInstances(). The first answer after construction or
  // Reset() is the baseline and names nothing. Content is compared, never
  // the answer's index: an index that went backwards (a snapshot restore)
  // is diffed like any other answer.
  Services OnChecks(const std::vector<CheckRow>& rows, std::uint64_t index = 0);
  // A read of the whole table: the same diff against the previous read of
  // the whole table (checks added, removed or written whatever their
  // status). The first read after construction or Reset() names nothing.
  // On this thread; the three steps below do the same with the diff on
  // another.
  Services OnTable(const std::vector<CheckRow>& rows, std::uint64_t index = 0);

  // The last read of the whole table, handed out to be diffed elsewhere
  // (moved out: the detector keeps no copy until ApplyTable() or
  // RestoreTable() hands it back).
  struct TableBase {
    CheckTable table;
    bool has_baseline = false;
    std::uint64_t generation = 0;  // of Reset()s: a stale result is dropped
  };
  TableBase TakeTable();
  // A read of the whole table, diffed against `base`: pure, any thread.
  struct TableRead {
    CheckTable table;
    std::vector<CheckTable::Change> changes;  // none for a baseline
    bool baseline = false;                    // the first read: names nothing
    std::uint64_t index = 0;
    // The highest raft index of a write it found: a check's ModifyIndex, or
    // the read's own index when checks were removed.
    std::uint64_t latest_write = 0;
    std::uint64_t generation = 0;
  };
  static TableRead DiffTable(const std::vector<CheckRow>& rows, std::uint64_t index,
                             const TableBase& base);
  // Back on the detector's thread: the services the read names. A read
  // started before the last Reset() is dropped (and names nothing).
  Services ApplyTable(TableRead read);
  // The read failed: the last good read stays the baseline.
  void RestoreTable(TableBase base);

  // Both baselines are taken: a change after them shows in a later answer.
  bool has_baseline() const { return unhealthy_.has_baseline && table_.has_baseline; }
  bool has_table() const { return table_.has_baseline; }
  // The index of the last answer of the filtered query (0 before the first).
  std::uint64_t checks_index() const { return unhealthy_.index; }

  // Whether the last answer of either view shows a write at raft index
  // `index`: a check's ModifyIndex, or the answer's own index when it named
  // a service (checks removed). A registration writes a service and its
  // checks at one index, so a catalog move to `index` that this explains
  // was a change of a service whose checks the diff already named. For the
  // whole table, read at most every few moves, a check written at `index`
  // may have been written again before the read: any move after the read
  // before and up to the latest write the diff named counts as explained
  // (a write no check shows hiding among them is left to the safety sweep).
  bool Explains(std::uint64_t index) const;

  // What a read of `service` showed, so a node check can be traced to the
  // services with an instance on that node.
  void RecordInstances(const std::string& service, const std::vector<Instance>& instances);
  // `service` is no longer covered: forget its nodes.
  void Forget(const std::string& service);
  // The query stopped: the next answer and the next table read are new
  // baselines. Known instances stay.
  void Reset();

 private:
  using CheckKey = std::pair<std::string, std::string>;  // node, check id
  // One view of the checks table and what its last answer showed.
  struct View {
    bool has_baseline = false;
    std::uint64_t index = 0;
    bool last_diff_named = false;  // the last answer named a service
    std::set<std::uint64_t> modify_indexes;
    std::map<CheckKey, CheckRow> checks;
  };
  // The last read of the whole table.
  struct TableView {
    bool has_baseline = false;
    std::uint64_t index = 0;
    std::uint64_t previous_index = 0;  // of the read before
    bool last_diff_named = false;
    std::uint64_t latest_write = 0;  // of what the last diff named
    CheckTable table;
  };
  Services Diff(View& view, const std::vector<CheckRow>& rows, std::uint64_t index) const;
  static bool Explains(const View& view, std::uint64_t index);
  void Touch(const CheckRow& row, Services& out) const;
  void Touch(const CheckTable::Change& change, Services& out) const;
  void TouchNode(const std::string& node, Services& out) const;

  View unhealthy_;
  TableView table_;
  std::uint64_t generation_ = 0;
  std::map<std::string, Services, std::less<>> services_by_node_;
  std::map<std::string, std::set<std::string>, std::less<>> nodes_by_service_;
};

}  // namespace hb
