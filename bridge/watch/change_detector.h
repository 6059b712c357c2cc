#pragma once

// Finds which services changed from successive answers of the one blocking
// query on /v1/health/state/any, for the services that have no blocking
// query of their own (the connection budget holds fewer than the catalog
// has). That endpoint lists every check in the datacenter and its index
// moves on any check write, so one connection sees every health change;
// what it cannot say is the rest of an instance (address, tags, meta) or
// anything about instances without checks, which the catalog's index
// covers (see Watcher).
//
// Pure and single-threaded: the watcher feeds it answers and reads.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bridge/consul/answer_parsers.h"
#include "bridge/model/health.h"

namespace hb {

class ChangeDetector {
 public:
  using Services = std::set<std::string, std::less<>>;

  // A complete answer. Returns the services whose checks were written
  // (status or ModifyIndex moved), added or removed since the previous
  // answer: a service check names its service; a node check (serfHealth,
  // node maintenance) names every service with an instance on that node, as
  // known from RecordInstances(). The first answer after construction or
  // Reset() is the baseline and names nothing. Content is compared, never
  // the answer's index: an index that went backwards (a snapshot restore)
  // is diffed like any other answer.
  Services OnChecks(const std::vector<CheckRow>& rows, std::uint64_t index = 0);
  bool has_baseline() const { return has_baseline_; }

  // Whether the last answer shows a write at raft index `index`: a check's
  // ModifyIndex, or its own index when it named a service (checks removed). A
  // registration writes a service and its checks at one index, so a catalog
  // move to `index` that this explains was a change of a service whose
  // checks the diff already named.
  bool Explains(std::uint64_t index) const;

  // What a read of `service` showed, so a node check can be traced to the
  // services with an instance on that node.
  void RecordInstances(const std::string& service, const std::vector<Instance>& instances);
  // `service` is no longer covered: forget its nodes.
  void Forget(const std::string& service);
  // The query stopped: the next answer is a new baseline. Known instances stay.
  void Reset();

 private:
  using CheckKey = std::pair<std::string, std::string>;  // node, check id
  void Touch(const CheckRow& row, Services& out) const;

  bool has_baseline_ = false;
  std::uint64_t index_ = 0;
  bool last_diff_named_ = false;  // the last answer named a service
  std::set<std::uint64_t> modify_indexes_;
  std::map<CheckKey, CheckRow> checks_;
  std::map<std::string, Services, std::less<>> services_by_node_;
  std::map<std::string, std::set<std::string>, std::less<>> nodes_by_service_;
};

}  // namespace hb
