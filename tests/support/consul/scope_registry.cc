#include "tests/support/consul/scope_registry.h"

#include <algorithm>
#include <cstdio>
#include <functional>

namespace hb::test_support {
namespace {

// Stable, UUID-shaped, different per name.
std::string UuidOf(const std::string& seed) {
  const std::size_t hash = std::hash<std::string>{}(seed);
  char id[40];
  std::snprintf(id, sizeof(id), "%08zx-%04zx-4%03zx-8000-%012zx", hash & 0xffffffff,
                (hash >> 32) & 0xffff, (hash >> 48) & 0xfff, hash & 0xffffffffffff);
  return id;
}

}  // namespace

ScopeRegistry::ScopeRegistry(Settings settings) : settings_(std::move(settings)) {
  datacenters_[settings_.local_datacenter] = Datacenter{};
  ConsulScope local;
  local.datacenter = settings_.local_datacenter;
  local_ = Create(local).catalog.get();
}

std::string ScopeRegistry::Key(const ConsulScope& scope, const std::string& local_datacenter) {
  const std::string& datacenter = scope.datacenter.empty() ? local_datacenter : scope.datacenter;
  if (datacenter == local_datacenter && scope.partition == "default" && scope.ns == "default" &&
      scope.peer.empty()) {
    return "";
  }
  // '@' and '/' cannot occur in the names (the server refuses them), so
  // no two scopes share a prefix and no scope's prefix is a plain key.
  return "@" + datacenter + "/" + scope.partition + "/" + scope.ns + "/" + scope.peer + "/";
}

ConsulScope ScopeRegistry::Resolve(ConsulScope scope) const {
  if (scope.datacenter.empty()) scope.datacenter = settings_.local_datacenter;
  return scope;
}

ScopeRegistry::Entry& ScopeRegistry::Create(const ConsulScope& resolved) {
  Datacenter& datacenter = datacenters_.at(resolved.datacenter);
  CatalogPlacement placement;
  placement.ns = resolved.ns;
  placement.partition = settings_.enterprise ? resolved.partition : std::string();
  placement.peer = resolved.peer;
  Entry entry;
  entry.key = Key(resolved);
  entry.datacenter = resolved.datacenter;
  entry.catalog = std::make_unique<TestCatalog>(
      resolved.datacenter, settings_.check_update_interval, datacenter.raft_index, placement);
  const std::string key = entry.key;
  return entries_.emplace(key, std::move(entry)).first->second;
}

ScopeRegistry::Datacenter* ScopeRegistry::FindDatacenter(const std::string& name) {
  auto it = datacenters_.find(name);
  return it == datacenters_.end() ? nullptr : &it->second;
}

bool ScopeRegistry::AddDatacenter(const std::string& name) {
  if (auto it = datacenters_.find(name); it != datacenters_.end() && !it->second.listed) {
    it->second.listed = true;
    return true;
  }
  if (name.empty() || datacenters_.contains(name) || datacenters_.size() >= kMaxDatacenters) {
    return false;
  }
  Datacenter datacenter;
  datacenter.order = datacenters_.size();
  datacenters_.emplace(name, std::move(datacenter));
  return true;
}

bool ScopeRegistry::RemoveDatacenter(const std::string& name) {
  Datacenter* found = FindDatacenter(name);
  if (found == nullptr || name == settings_.local_datacenter || !found->listed) return false;
  found->listed = false;
  return true;
}

bool ScopeRegistry::HasDatacenter(const std::string& name) const {
  auto it = datacenters_.find(name);
  return it != datacenters_.end() && it->second.listed;
}

std::optional<std::string> ScopeRegistry::MissingTenancy(const ConsulScope& resolved) const {
  if (!settings_.enterprise) return std::nullopt;
  auto datacenter = datacenters_.find(resolved.datacenter);
  if (datacenter == datacenters_.end()) return std::nullopt;
  // One being deleted is refused as well: Consul deletes everything in it
  // in the background and a write there would outlive it.
  if (resolved.partition != "default") {
    auto partition = datacenter->second.partitions.find(resolved.partition);
    if (partition == datacenter->second.partitions.end() || partition->second.deleted_at) {
      return "Partition \"" + resolved.partition + "\" does not exist";
    }
  }
  if (resolved.ns != "default") {
    auto namespaces = datacenter->second.namespaces.find(resolved.partition);
    if (namespaces == datacenter->second.namespaces.end()) {
      return "Namespace \"" + resolved.ns + "\" does not exist";
    }
    auto ns = namespaces->second.find(resolved.ns);
    if (ns == namespaces->second.end() || ns->second.deleted_at) {
      return "Namespace \"" + resolved.ns + "\" does not exist";
    }
  }
  return std::nullopt;
}

bool ScopeRegistry::AddPartition(const std::string& datacenter, const std::string& name) {
  Datacenter* found = FindDatacenter(datacenter);
  // A name still marked for deletion is taken until the deletion finishes.
  if (found == nullptr || name.empty() || name == "default" || found->partitions.contains(name) ||
      tenancies_ >= kMaxTenancies) {
    return false;
  }
  const std::uint64_t index = ++*found->raft_index;
  found->partitions[name] = Tenancy{.name = name, .create_index = index, .modify_index = index};
  ++tenancies_;
  return true;
}

void ScopeRegistry::RemoveServicesOf(const std::string& datacenter, const std::string& partition,
                                     const std::string* ns) {
  // Catalogs are never destroyed (blocked readers hold pointers to them):
  // their services are deregistered, which moves their indexes.
  for (auto& [key, entry] : entries_) {
    const CatalogPlacement& placement = entry.catalog->placement();
    const std::string entry_partition =
        placement.partition.empty() ? "default" : placement.partition;
    if (entry.datacenter == datacenter && entry_partition == partition &&
        (ns == nullptr || placement.ns == *ns)) {
      entry.catalog->RemoveAllServices();
    }
  }
}

bool ScopeRegistry::RemovePartition(const std::string& datacenter, const std::string& name,
                                    std::chrono::system_clock::time_point now) {
  Datacenter* found = FindDatacenter(datacenter);
  if (found == nullptr) return false;
  auto partition = found->partitions.find(name);
  if (partition == found->partitions.end() || partition->second.deleted_at) return false;
  const std::uint64_t index = ++*found->raft_index;
  partition->second.deleted_at = now;
  partition->second.modify_index = index;
  // Its namespaces go with it.
  auto& namespaces = found->namespaces[name];
  for (auto& [ns_name, ns] : namespaces) {
    if (ns.deleted_at) continue;
    ns.deleted_at = now;
    ns.modify_index = index;
  }
  found->namespaces_index[name] = index;
  RemoveServicesOf(datacenter, name, nullptr);
  return true;
}

bool ScopeRegistry::AddNamespace(const std::string& datacenter, const std::string& partition,
                                 const std::string& name) {
  Datacenter* found = FindDatacenter(datacenter);
  if (found == nullptr || name.empty() || name == "default" || tenancies_ >= kMaxTenancies) {
    return false;
  }
  if (partition != "default") {
    auto it = found->partitions.find(partition);
    if (it == found->partitions.end() || it->second.deleted_at) return false;
  }
  auto& namespaces = found->namespaces[partition];
  if (namespaces.contains(name)) return false;
  const std::uint64_t index = ++*found->raft_index;
  namespaces[name] = Tenancy{.name = name, .create_index = index, .modify_index = index};
  found->namespaces_index[partition] = index;
  ++tenancies_;
  return true;
}

bool ScopeRegistry::RemoveNamespace(const std::string& datacenter, const std::string& partition,
                                    const std::string& name,
                                    std::chrono::system_clock::time_point now) {
  Datacenter* found = FindDatacenter(datacenter);
  if (found == nullptr) return false;
  auto namespaces = found->namespaces.find(partition);
  if (namespaces == found->namespaces.end()) return false;
  auto ns = namespaces->second.find(name);
  if (ns == namespaces->second.end() || ns->second.deleted_at) return false;
  const std::uint64_t index = ++*found->raft_index;
  ns->second.deleted_at = now;
  ns->second.modify_index = index;
  found->namespaces_index[partition] = index;
  RemoveServicesOf(datacenter, partition, &name);
  return true;
}

std::size_t ScopeRegistry::FinishDeletions() {
  std::size_t finished = 0;
  for (auto& [datacenter_name, datacenter] : datacenters_) {
    bool moved = false;
    for (auto& [partition, namespaces] : datacenter.namespaces) {
      const std::size_t before = namespaces.size();
      std::erase_if(namespaces,
                    [](const auto& item) { return item.second.deleted_at.has_value(); });
      if (namespaces.size() != before) {
        finished += before - namespaces.size();
        // The list lost entries: its index moves, as Consul's does when
        // the namespace row is finally deleted.
        datacenter.namespaces_index[partition] = *datacenter.raft_index + 1;
        moved = true;
      }
    }
    const std::size_t before = datacenter.partitions.size();
    for (auto it = datacenter.partitions.begin(); it != datacenter.partitions.end();) {
      if (it->second.deleted_at) {
        datacenter.namespaces.erase(it->first);
        // Kept, and moved: a reader held on the gone partition's list
        // must see its index go forward, never back.
        datacenter.namespaces_index[it->first] = *datacenter.raft_index + 1;
        it = datacenter.partitions.erase(it);
      } else {
        ++it;
      }
    }
    if (datacenter.partitions.size() != before) {
      finished += before - datacenter.partitions.size();
      moved = true;
    }
    if (moved) ++*datacenter.raft_index;
  }
  tenancies_ -= std::min(tenancies_, finished);
  return finished;
}

std::vector<ScopeRegistry::Tenancy> ScopeRegistry::Partitions(const std::string& datacenter) const {
  std::vector<Tenancy> out;
  auto it = datacenters_.find(datacenter);
  if (it == datacenters_.end()) return out;
  out.push_back(Tenancy{.name = "default", .create_index = 1, .modify_index = 1});
  for (const auto& [name, partition] : it->second.partitions) out.push_back(partition);
  return out;
}

std::vector<ScopeRegistry::Tenancy> ScopeRegistry::Namespaces(const std::string& datacenter,
                                                              const std::string& partition) const {
  std::vector<Tenancy> out;
  auto it = datacenters_.find(datacenter);
  if (it == datacenters_.end()) return out;
  if (partition != "default" && !it->second.partitions.contains(partition)) return out;
  out.push_back(Tenancy{.name = "default", .create_index = 1, .modify_index = 1});
  auto namespaces = it->second.namespaces.find(partition);
  if (namespaces == it->second.namespaces.end()) return out;
  for (const auto& [name, ns] : namespaces->second) out.push_back(ns);
  return out;
}

std::uint64_t ScopeRegistry::NamespacesIndex(const std::string& datacenter,
                                             const std::string& partition) const {
  auto it = datacenters_.find(datacenter);
  if (it == datacenters_.end()) return 1;
  auto index = it->second.namespaces_index.find(partition);
  return index == it->second.namespaces_index.end() ? 1 : index->second;
}

std::vector<std::string> ScopeRegistry::Datacenters() const {
  std::vector<std::pair<std::size_t, std::string>> ordered;
  ordered.reserve(datacenters_.size());
  for (const auto& [name, datacenter] : datacenters_) {
    if (datacenter.listed) ordered.emplace_back(datacenter.order, name);
  }
  std::sort(ordered.begin(), ordered.end());
  std::vector<std::string> names;
  names.reserve(ordered.size());
  for (auto& [order, name] : ordered) names.push_back(std::move(name));
  return names;
}

const std::string* ScopeRegistry::CutError(const std::string& datacenter) const {
  auto it = datacenters_.find(datacenter);
  if (it == datacenters_.end() || !it->second.cut_error) return nullptr;
  return &*it->second.cut_error;
}

bool ScopeRegistry::SetCut(const std::string& datacenter, std::optional<std::string> error) {
  Datacenter* found = FindDatacenter(datacenter);
  if (found == nullptr || datacenter == settings_.local_datacenter) return false;
  found->cut_error = std::move(error);
  return true;
}

std::uint64_t ScopeRegistry::Index(const std::string& datacenter) const {
  auto it = datacenters_.find(datacenter.empty() ? settings_.local_datacenter : datacenter);
  return it == datacenters_.end() ? 0 : *it->second.raft_index;
}

TestCatalog* ScopeRegistry::ForWrite(const ConsulScope& scope, std::string& error, int* status) {
  const ConsulScope resolved = Resolve(scope);
  // Consul's HTTP layer answers a failed RPC with 500 and its text; the
  // request's own mistakes are 400s.
  if (status != nullptr) *status = 400;
  if (!datacenters_.contains(resolved.datacenter)) {
    if (status != nullptr) *status = 500;
    error = "No path to datacenter";
    return nullptr;
  }
  if (!settings_.enterprise && (resolved.ns != "default" || resolved.partition != "default")) {
    error = "Namespaces and partitions are a Consul Enterprise feature";
    return nullptr;
  }
  if (!resolved.peer.empty()) {
    // Imported services live in the local datacenter's state store, under
    // the peering's partition.
    const TestPeering* peering = FindPeer(resolved.peer);
    if (peering == nullptr || resolved.datacenter != settings_.local_datacenter ||
        peering->partition != resolved.partition) {
      error = "no peering \"" + resolved.peer + "\" in partition " + resolved.partition +
              " of datacenter " + resolved.datacenter;
      return nullptr;
    }
  }
  if (auto missing = MissingTenancy(resolved)) {
    if (status != nullptr) *status = 500;
    error = std::move(*missing);
    return nullptr;
  }
  TestCatalog* catalog = Find(resolved);
  if (catalog == nullptr) {
    if (entries_.size() >= kMaxScopes) {
      error = "test server: at most " + std::to_string(kMaxScopes) + " scopes";
      return nullptr;
    }
    catalog = Create(resolved).catalog.get();
  }
  catalog->EnsureNode(settings_.node, settings_.node_address);
  return catalog;
}

std::vector<TestCatalog*> ScopeRegistry::Matching(const ConsulScope& scope) {
  const ConsulScope resolved = Resolve(scope);
  if (resolved.ns != "*") {
    TestCatalog* catalog = Find(resolved);
    return catalog == nullptr ? std::vector<TestCatalog*>{} : std::vector<TestCatalog*>{catalog};
  }
  std::vector<TestCatalog*> out;
  for (auto& [key, entry] : entries_) {
    const CatalogPlacement& placement = entry.catalog->placement();
    const std::string partition = placement.partition.empty() ? "default" : placement.partition;
    if (entry.datacenter == resolved.datacenter && partition == resolved.partition &&
        placement.peer == resolved.peer) {
      out.push_back(entry.catalog.get());
    }
  }
  return out;
}

std::vector<TestCatalog*> ScopeRegistry::CatalogsOf(const std::string& datacenter) {
  std::vector<TestCatalog*> out;
  for (auto& [key, entry] : entries_) {
    if (entry.datacenter == datacenter) out.push_back(entry.catalog.get());
  }
  return out;
}

bool ScopeRegistry::IsPeeringState(const std::string& state) {
  static const std::set<std::string> kStates = {"PENDING", "ESTABLISHING", "ACTIVE",
                                                "FAILING", "DELETING",     "TERMINATED"};
  return kStates.contains(state);
}

bool ScopeRegistry::AddPeer(const std::string& name, const std::string& state,
                            const std::string& remote_datacenter, const std::string& partition) {
  if (name.empty() || peers_.contains(name) || peers_.size() >= kMaxPeers ||
      !IsPeeringState(state)) {
    return false;
  }
  TestPeering peering;
  peering.name = name;
  peering.id = UuidOf("peering/" + settings_.local_datacenter + "/" + name);
  peering.peer_id = UuidOf("peer/" + name);
  peering.partition = partition;
  peering.state = state;
  peering.remote_datacenter = remote_datacenter;
  // A peering is a write to the local datacenter's state store.
  const std::uint64_t index = ++*datacenters_.at(settings_.local_datacenter).raft_index;
  peering.create_index = peering.modify_index = index;
  peers_.emplace(name, std::move(peering));
  return true;
}

bool ScopeRegistry::SetPeerState(const std::string& name, const std::string& state) {
  auto it = peers_.find(name);
  if (it == peers_.end() || !IsPeeringState(state)) return false;
  if (it->second.state == state) return true;
  it->second.state = state;
  it->second.modify_index = ++*datacenters_.at(settings_.local_datacenter).raft_index;
  return true;
}

bool ScopeRegistry::DeletePeer(const std::string& name) {
  auto it = peers_.find(name);
  if (it == peers_.end()) return false;
  // Catalogs are never destroyed (blocked readers hold pointers to them):
  // the imported data is deregistered, which moves their indexes.
  for (auto& [key, entry] : entries_) {
    if (entry.catalog->placement().peer == name) entry.catalog->RemoveAllServices();
  }
  peers_.erase(it);
  return true;
}

const TestPeering* ScopeRegistry::FindPeer(const std::string& name) const {
  auto it = peers_.find(name);
  return it == peers_.end() ? nullptr : &it->second;
}

std::vector<const TestPeering*> ScopeRegistry::Peers(const std::string& partition) const {
  std::vector<const TestPeering*> out;
  for (const auto& [name, peering] : peers_) {
    if (peering.partition == partition) out.push_back(&peering);
  }
  return out;
}

std::set<std::string> ScopeRegistry::ImportedServices(const std::string& peer) {
  std::set<std::string> names;
  for (auto& [key, entry] : entries_) {
    if (entry.catalog->placement().peer != peer) continue;
    for (const std::string& name : entry.catalog->ServiceNames()) names.insert(name);
  }
  return names;
}

}  // namespace hb::test_support
