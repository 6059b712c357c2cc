#include "config/source_config.h"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "config/config_reader.h"

namespace hb {
namespace {

// Consul names datacenters, peers, namespaces and partitions as DNS labels
// (a partition or namespace may also hold '_'); the bridge puts them in
// query strings, event ids, CloudEvents sources and metric labels, so
// anything else is refused here rather than escaped everywhere.
bool IsName(const std::string& text) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9_-]{0,62}");
  return std::regex_match(text, kName);
}

std::string ReadName(ConfigReader& entry, std::string_view key, std::string_view kind) {
  if (!entry.Has(key)) return "";
  std::string name = entry.String(key);
  if (name == "all" || name == "*") {
    entry.Error(key, std::string("every ") + std::string(kind) + " at once (" + Quote(name) +
                         ") is not supported: list each " + std::string(kind) + " by name");
    return "";
  }
  if (!IsName(name)) {
    entry.Error(key, "expected a " + std::string(kind) +
                         " name (letters, digits, '-' and '_', starting with a letter or digit, "
                         "at most 63 characters), got " +
                         Quote(name));
    return "";
  }
  return name;
}

// What tells two sources apart, as text for an error message.
std::string Describe(const WatchSource& source) {
  std::string text =
      source.datacenter.empty() ? "the agent's datacenter" : "datacenter " + source.datacenter;
  if (!source.peer.empty()) text += ", peer " + source.peer;
  if (!source.ns.empty()) text += ", namespace " + source.ns;
  if (!source.partition.empty()) text += ", partition " + source.partition;
  return text;
}

bool SameScope(const WatchSource& a, const WatchSource& b) {
  return a.datacenter == b.datacenter && a.peer == b.peer && a.ns == b.ns &&
         a.partition == b.partition;
}

}  // namespace

std::vector<WatchSource> ReadSources(ConfigReader& watch, const ServiceFilterOptions& services) {
  std::vector<WatchSource> sources;
  const YAML::Node list = watch.Raw("sources");
  if (!list.IsDefined() || list.IsNull()) return sources;
  if (!list.IsSequence()) {
    watch.Error("sources", "expected a list of sources (datacenter, peer, namespace, partition)");
    return sources;
  }
  if (list.size() == 0) {
    watch.Error("sources",
                "must list at least one source (leave it out to watch the agent's "
                "datacenter)");
    return sources;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = watch.PathOf("sources") + "[" + std::to_string(i) + "]";
    if (!list[i].IsMap()) {
      watch.errors().Add(path,
                         "expected a mapping with datacenter, peer, namespace, partition "
                         "and services keys");
      continue;
    }
    ConfigReader entry(list[i], path, watch.errors(), watch.env());
    WatchSource source;
    source.datacenter = ReadName(entry, "datacenter", "datacenter");
    source.peer = ReadName(entry, "peer", "peer");
    source.ns = ReadName(entry, "namespace", "namespace");
    source.partition = ReadName(entry, "partition", "partition");
    // Consul serves a peer's imported services from the local datacenter's
    // catalog: a query cannot name both.
    if (!source.peer.empty() && !source.datacenter.empty()) {
      entry.Error("peer",
                  "a peer's services are imported into the local datacenter: set "
                  "datacenter or peer, not both");
    }
    ConfigReader own = entry.Section("services");
    source.services.include = own.StringList("include", services.include);
    source.services.exclude = own.StringList("exclude", services.exclude);
    source.services.tags = own.StringList("tags", services.tags);
    own.Finish();
    entry.Finish();
    for (std::size_t j = 0; j < sources.size(); ++j) {
      if (SameScope(sources[j], source)) {
        watch.errors().Add(path, Describe(source) + " is already watched by " +
                                     watch.PathOf("sources") + "[" + std::to_string(j) + "]");
      }
    }
    sources.push_back(std::move(source));
  }
  return sources;
}

void CheckSourceBudget(const std::vector<WatchSource>& sources, int max_connections,
                       ConfigErrors& errors) {
  const std::size_t needed = 3 * std::max<std::size_t>(sources.size(), 1);
  if (static_cast<std::size_t>(max_connections) < needed) {
    errors.Add("consul.max_connections",
               "must be at least 3 per source (a catalog watch, a change detector and a "
               "read each): " +
                   std::to_string(sources.size()) + " sources need " + std::to_string(needed) +
                   ", got " + std::to_string(max_connections));
  }
}

void EmitSources(YAML::Emitter& out, const std::vector<WatchSource>& sources) {
  if (sources.empty()) return;
  out << YAML::Key << "sources" << YAML::Value << YAML::BeginSeq;
  for (const WatchSource& source : sources) {
    out << YAML::BeginMap;
    if (!source.datacenter.empty())
      out << YAML::Key << "datacenter" << YAML::Value << source.datacenter;
    if (!source.peer.empty()) out << YAML::Key << "peer" << YAML::Value << source.peer;
    if (!source.ns.empty()) out << YAML::Key << "namespace" << YAML::Value << source.ns;
    if (!source.partition.empty())
      out << YAML::Key << "partition" << YAML::Value << source.partition;
    out << YAML::Key << "services" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "include" << YAML::Value << YAML::Flow << source.services.include;
    out << YAML::Key << "exclude" << YAML::Value << YAML::Flow << source.services.exclude;
    out << YAML::Key << "tags" << YAML::Value << YAML::Flow << source.services.tags;
    out << YAML::EndMap << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

}  // namespace hb
