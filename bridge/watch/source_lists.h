#pragma once

// The lists that expand watch.sources templates (`datacenter: all`,
// `peer: all`, `namespace: "*"`, `partition: "*"`): Consul's answers read
// into names, and the expansion of the templates against them.
//
// Every name read is checked as Consul names them (a DNS label, '_' and '.'
// allowed), since it goes into query strings, event ids, CloudEvents
// sources and metric labels: an answer with anything else is refused whole
// rather than half used. A list holds at most kMaxListed names.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"
#include "bridge/watch/source_watch.h"

namespace hb {

inline constexpr std::size_t kMaxListed = 1000;

// GET /v1/catalog/datacenters: a list of names.
StatusOr<std::vector<std::string>> ParseDatacenterList(std::string_view body);
// GET /v1/namespaces, GET /v1/partitions: objects with Name; one with
// DeletedAt set is being deleted and is left out.
StatusOr<std::vector<std::string>> ParseNamedList(std::string_view body, std::string_view what);
// GET /v1/peerings: the names of the ACTIVE peerings.
StatusOr<std::vector<std::string>> ParseActivePeerings(std::string_view body);

// One list a template needs read.
struct SourceList {
  enum class Kind { kDatacenters, kPartitions, kPeerings, kNamespaces };
  Kind kind = Kind::kDatacenters;
  std::string datacenter;  // kPartitions, kNamespaces: ?dc= ("" = local)
  std::string partition;   // kPeerings, kNamespaces: ?partition= ("" = default)
  std::string Key() const;
  std::string Path() const;  // "/v1/catalog/datacenters", ...
};

// A concrete source the expansion found, with the configured entry it
// came from (the first that names it).
struct FoundSource {
  WatchSource source;  // no wildcards; datacenter is a name
  std::size_t entry = 0;
  std::string key;  // SourceKey()
};

// Expands `entries` with the lists read so far (`lists`, by Key(); an
// absent key was not read yet, nullopt could not be read). Returns the
// first list still to read, or nullopt when the expansion is complete.
// `local_datacenter` stands for an entry without a datacenter. Consul's
// "default" namespace or partition is the same source as none named.
std::optional<SourceList> ExpandSources(
    const std::vector<WatchSource>& entries, const std::string& local_datacenter,
    const std::map<std::string, std::optional<std::vector<std::string>>, std::less<>>& lists,
    std::vector<FoundSource>& found);

}  // namespace hb
