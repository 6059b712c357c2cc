#include "bridge/watch/source_lists.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "bridge/common/peer_text.h"
#include "bridge/model/source_scope.h"

namespace hb {
namespace {

bool IsConsulName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

StatusOr<simdjson::dom::array> ListOf(simdjson::dom::parser& parser, std::string_view body,
                                      std::string_view what) {
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) {
    return Status::InvalidArgument(std::string(what) + " answer is not JSON");
  }
  simdjson::dom::array list;
  if (root.get_array().get(list) != simdjson::SUCCESS) {
    return Status::InvalidArgument(std::string(what) + " answer: expected a list");
  }
  if (list.size() > kMaxListed) {
    return Status::ResourceExhausted(std::string(what) + " answer lists more than " +
                                     std::to_string(kMaxListed));
  }
  return list;
}

// The name is the peer's: it reaches the log and /readyz as one printable
// line only.
Status BadName(std::string_view what, std::string_view name) {
  return Status::InvalidArgument(std::string(what) + " answer: not a Consul name: \"" +
                                 SummarizePeerText(name, 80) + "\"");
}

// Consul's default namespace and partition are what a source names by
// leaving them out.
std::string Normalized(const std::string& name) { return name == "default" ? "" : name; }

}  // namespace

StatusOr<std::vector<std::string>> ParseDatacenterList(std::string_view body) {
  simdjson::dom::parser parser;
  auto list = ListOf(parser, body, "datacenters");
  if (!list.ok()) return list.status();
  std::vector<std::string> names;
  for (simdjson::dom::element entry : *list) {
    std::string_view name;
    if (entry.get_string().get(name) != simdjson::SUCCESS) {
      return Status::InvalidArgument("datacenters answer: expected a list of names");
    }
    if (!IsConsulName(name)) return BadName("datacenters", name);
    names.emplace_back(name);
  }
  return names;
}

StatusOr<std::vector<std::string>> ParseNamedList(std::string_view body, std::string_view what) {
  simdjson::dom::parser parser;
  auto list = ListOf(parser, body, what);
  if (!list.ok()) return list.status();
  std::vector<std::string> names;
  for (simdjson::dom::element entry : *list) {
    std::string_view name;
    if (!entry.is_object() || entry["Name"].get_string().get(name) != simdjson::SUCCESS) {
      return Status::InvalidArgument(std::string(what) + " answer: expected objects with a Name");
    }
    if (!IsConsulName(name)) return BadName(what, name);
    simdjson::dom::element deleted;
    if (entry["DeletedAt"].get(deleted) == simdjson::SUCCESS && !deleted.is_null()) continue;
    names.emplace_back(name);
  }
  return names;
}

StatusOr<std::vector<std::string>> ParseActivePeerings(std::string_view body) {
  simdjson::dom::parser parser;
  auto list = ListOf(parser, body, "peerings");
  if (!list.ok()) return list.status();
  std::vector<std::string> names;
  for (simdjson::dom::element entry : *list) {
    std::string_view name;
    std::string_view state;
    if (!entry.is_object() || entry["Name"].get_string().get(name) != simdjson::SUCCESS ||
        entry["State"].get_string().get(state) != simdjson::SUCCESS) {
      return Status::InvalidArgument("peerings answer: expected objects with a Name and State");
    }
    if (!IsConsulName(name)) return BadName("peerings", name);
    if (state == "ACTIVE") names.emplace_back(name);
  }
  return names;
}

std::string SourceList::Key() const {
  switch (kind) {
    case Kind::kDatacenters:
      return "datacenters";
    case Kind::kPartitions:
      return "partitions@" + datacenter;
    case Kind::kPeerings:
      return "peerings@" + partition;
    case Kind::kNamespaces:
      return "namespaces@" + datacenter + "/" + partition;
  }
  return "";
}

std::string SourceList::Path() const {
  switch (kind) {
    case Kind::kDatacenters:
      return "/v1/catalog/datacenters";
    case Kind::kPartitions:
      return "/v1/partitions";
    case Kind::kPeerings:
      return "/v1/peerings";
    case Kind::kNamespaces:
      return "/v1/namespaces";
  }
  return "";
}

std::optional<SourceList> ExpandSources(
    const std::vector<WatchSource>& entries, const std::string& local_datacenter,
    const std::map<std::string, std::optional<std::vector<std::string>>, std::less<>>& lists,
    std::vector<FoundSource>& found) {
  found.clear();
  std::set<std::string, std::less<>> seen;
  std::optional<SourceList> missing;
  // The names a list gave, or nothing yet (and the list is wanted).
  const auto names = [&](const SourceList& list) -> std::vector<std::string> {
    auto it = lists.find(list.Key());
    if (it == lists.end()) {
      if (!missing) missing = list;
      return {};
    }
    return it->second ? *it->second : std::vector<std::string>{};
  };
  const auto one = [](const std::string& name) { return std::vector<std::string>{name}; };
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const WatchSource& entry = entries[i];
    const std::vector<std::string> datacenters =
        entry.all_datacenters ? names({SourceList::Kind::kDatacenters, "", ""})
                              : one(entry.datacenter.empty() ? local_datacenter : entry.datacenter);
    for (const std::string& datacenter : datacenters) {
      const std::string dc_param = datacenter == local_datacenter ? "" : datacenter;
      const std::vector<std::string> partitions =
          entry.all_partitions ? names({SourceList::Kind::kPartitions, dc_param, ""})
                               : one(entry.partition);
      for (const std::string& listed_partition : partitions) {
        const std::string partition = Normalized(listed_partition);
        // Peerings belong to the local datacenter (peer and datacenter are
        // never both set).
        const std::vector<std::string> peers =
            entry.all_peers ? names({SourceList::Kind::kPeerings, "", partition}) : one(entry.peer);
        for (const std::string& peer : peers) {
          const std::vector<std::string> namespaces =
              entry.all_namespaces ? names({SourceList::Kind::kNamespaces, dc_param, partition})
                                   : one(entry.ns);
          for (const std::string& listed_ns : namespaces) {
            FoundSource source;
            source.entry = i;
            source.source.datacenter = datacenter;
            source.source.peer = peer;
            source.source.ns = Normalized(listed_ns);
            source.source.partition = partition;
            source.source.services = entry.services;
            source.key = SourceKey(datacenter, SourceScope{peer, source.source.ns, partition});
            if (!seen.insert(source.key).second) continue;  // an earlier entry names it
            found.push_back(std::move(source));
          }
        }
      }
    }
  }
  return missing;
}

}  // namespace hb
