#include "config/source_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>

#include "config/config_reader.h"
#include "config/duration.h"

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

// `wildcard` is how the key names every one of its kind ("all" for
// datacenters and peers, "*" for namespaces and partitions, as Consul's own
// ?ns=* does); `all` is set when the entry uses it.
std::string ReadName(ConfigReader& entry, std::string_view key, std::string_view kind,
                     std::string_view wildcard, bool& all) {
  all = false;
  if (!entry.Has(key)) return "";
  std::string name = entry.String(key);
  if (name == wildcard) {
    all = true;
    return "";
  }
  if (name == "all" || name == "*") {
    entry.Error(key, "every " + std::string(kind) + " is written " + Quote(wildcard) + ", got " +
                         Quote(name));
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
  std::string text = source.all_datacenters      ? "every datacenter"
                     : source.datacenter.empty() ? "the agent's datacenter"
                                                 : "datacenter " + source.datacenter;
  if (source.all_peers) text += ", every peer";
  if (!source.peer.empty()) text += ", peer " + source.peer;
  if (source.all_namespaces) text += ", every namespace";
  if (!source.ns.empty()) text += ", namespace " + source.ns;
  if (source.all_partitions) text += ", every partition";
  if (!source.partition.empty()) text += ", partition " + source.partition;
  return text;
}

bool SameScope(const WatchSource& a, const WatchSource& b) {
  return a.datacenter == b.datacenter && a.peer == b.peer && a.ns == b.ns &&
         a.partition == b.partition && a.all_datacenters == b.all_datacenters &&
         a.all_peers == b.all_peers && a.all_namespaces == b.all_namespaces &&
         a.all_partitions == b.all_partitions;
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
    source.datacenter = ReadName(entry, "datacenter", "datacenter", "all", source.all_datacenters);
    source.peer = ReadName(entry, "peer", "peer", "all", source.all_peers);
    source.ns = ReadName(entry, "namespace", "namespace", "*", source.all_namespaces);
    source.partition = ReadName(entry, "partition", "partition", "*", source.all_partitions);
    // Consul serves a peer's imported services from the local datacenter's
    // catalog: a query cannot name both.
    if ((!source.peer.empty() || source.all_peers) &&
        (!source.datacenter.empty() || source.all_datacenters)) {
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

void ReadSourceSettings(ConfigReader& watch, WatcherOptions& watcher) {
  watcher.sources = ReadSources(watch, watcher.services);
  const bool templates = std::any_of(watcher.sources.begin(), watcher.sources.end(),
                                     [](const WatchSource& source) { return source.IsTemplate(); });
  for (const char* key : {"max_sources", "source_grace", "source_list_interval"}) {
    if (watch.Has(key) && !templates) {
      watch.Error(key,
                  "applies to sources found at run time only: no entry of watch.sources uses "
                  "datacenter: all, peer: all, namespace: \"*\" or partition: \"*\"");
    }
  }
  if (!templates) return;
  watcher.max_sources = static_cast<std::size_t>(
      watch.Int("max_sources", static_cast<std::int64_t>(watcher.max_sources), 1, 1000));
  watcher.source_grace = watch.Duration("source_grace", watcher.source_grace);
  watcher.source_list_interval =
      watch.Duration("source_list_interval", watcher.source_list_interval);
  if (watcher.source_list_interval < std::chrono::seconds(1)) {
    watch.Error("source_list_interval",
                "must be at least 1s, got " + FormatDuration(watcher.source_list_interval));
  }
}

void CheckSourceBudget(const WatcherOptions& watcher, int max_connections, ConfigErrors& errors) {
  const std::vector<WatchSource>& sources = watcher.sources;
  const bool templates = std::any_of(sources.begin(), sources.end(),
                                     [](const WatchSource& source) { return source.IsTemplate(); });
  if (templates) {
    // At most max_sources sources share the budget, each at least 3
    // however many there are, and the lister of datacenters, peerings,
    // partitions and namespaces has one connection of its own.
    const std::size_t needed = 1 + 3 * watcher.max_sources;
    if (static_cast<std::size_t>(max_connections) < needed) {
      errors.Add("consul.max_connections",
                 "must be at least 3 per source plus one for listing the sources found at run "
                 "time: watch.max_sources " +
                     std::to_string(watcher.max_sources) + " needs " + std::to_string(needed) +
                     ", got " + std::to_string(max_connections));
    }
    return;
  }
  const std::size_t needed = 3 * std::max<std::size_t>(sources.size(), 1);
  if (static_cast<std::size_t>(max_connections) < needed) {
    errors.Add("consul.max_connections",
               "must be at least 3 per source (a catalog watch, a change detector and a "
               "read each): " +
                   std::to_string(sources.size()) + " sources need " + std::to_string(needed) +
                   ", got " + std::to_string(max_connections));
  }
}

void EmitSources(YAML::Emitter& out, const WatcherOptions& watcher) {
  const std::vector<WatchSource>& sources = watcher.sources;
  if (sources.empty()) return;
  if (std::any_of(sources.begin(), sources.end(),
                  [](const WatchSource& source) { return source.IsTemplate(); })) {
    out << YAML::Key << "max_sources" << YAML::Value << watcher.max_sources;
    out << YAML::Key << "source_grace" << YAML::Value << FormatDuration(watcher.source_grace);
    out << YAML::Key << "source_list_interval" << YAML::Value
        << FormatDuration(watcher.source_list_interval);
  }
  out << YAML::Key << "sources" << YAML::Value << YAML::BeginSeq;
  for (const WatchSource& source : sources) {
    out << YAML::BeginMap;
    if (source.all_datacenters) out << YAML::Key << "datacenter" << YAML::Value << "all";
    if (!source.datacenter.empty())
      out << YAML::Key << "datacenter" << YAML::Value << source.datacenter;
    if (source.all_peers) out << YAML::Key << "peer" << YAML::Value << "all";
    if (!source.peer.empty()) out << YAML::Key << "peer" << YAML::Value << source.peer;
    if (source.all_namespaces) out << YAML::Key << "namespace" << YAML::Value << "*";
    if (!source.ns.empty()) out << YAML::Key << "namespace" << YAML::Value << source.ns;
    if (source.all_partitions) out << YAML::Key << "partition" << YAML::Value << "*";
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
