#pragma once

// A read of Consul's whole checks table (/v1/health/state/any), kept to say
// what was written before the next read: which checks were added, removed
// or written between two reads, whatever their status. A registration or
// deregistration whose checks all pass shows nowhere else.
//
// The table grows with the datacenter (about 320 bytes of JSON a check, so
// 3 MB at 10,000 instances and 32 MB at 100,000): building one and diffing
// two are meant to run off the watch thread. Each check is kept as the few
// fields that say whose it is and whether it was written (about 200 bytes),
// never as its answer.
//
// A value type without shared state: a table built on one thread may be read
// and destroyed on another once handed over.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/consul/answer_parsers.h"

namespace hb {

class CheckTable {
 public:
  // A check added, removed or written between two reads: the service it
  // belongs to, or for a node check (serfHealth, node maintenance; no
  // service) the node, whose every instance it is part of.
  struct Change {
    std::string service;  // "" for a node check
    std::string node;
    bool operator==(const Change&) const = default;
  };

  CheckTable() = default;
  // `index`: the read's X-Consul-Index.
  explicit CheckTable(const std::vector<CheckRow>& rows, std::uint64_t index = 0);

  // What was written since `before`: a check in one and not the other names
  // its owner, a check written in between names its old owner and its new
  // one (a re-registration can move a check id to another service). In no
  // particular order; an owner may be named more than once. With
  // `latest_write`, also the highest raft index of those writes: a check's
  // ModifyIndex, or this read's index for a removal (0 if none).
  std::vector<Change> ChangesSince(const CheckTable& before,
                                   std::uint64_t* latest_write = nullptr) const;

  // Whether some check's last write was at raft index `index`.
  bool Wrote(std::uint64_t index) const;

  std::size_t size() const { return checks_.size(); }

 private:
  struct Check {
    std::uint64_t modify_index = 0;
    std::string service_id;
    std::string service;  // its name; "" for a node check
    std::string status;
    bool operator==(const Check&) const = default;
  };
  // The key is the node and the check id, length-prefixed so that no two
  // pairs of names share a key whatever bytes they hold.
  static std::string Key(const CheckRow& row);
  static Change ChangeOf(const std::string& key, const Check& check);

  std::unordered_map<std::string, Check> checks_;
  std::vector<std::uint64_t> modify_indexes_;  // sorted, unique
  std::uint64_t index_ = 0;
};

}  // namespace hb
