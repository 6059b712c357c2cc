#pragma once

// What one Consul test server holds beyond its own datacenter's default
// namespace: other datacenters (each its own Raft log, so its own
// X-Consul-Index), cluster peerings and the services imported from them,
// and Consul Enterprise namespaces and admin partitions. Each scope is a
// TestCatalog of its own; the catalogs of one datacenter share its Raft
// index. Not thread-safe: the server's mutex guards it.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/consul/test_catalog.h"

namespace hb::test_support {

// Where a service lives. Write it with designated initializers
// (ConsulScope{.datacenter = "dc2"}): a braced list would also convert to
// a string and make overloads ambiguous.
struct ConsulScope {
  std::string datacenter{};  // "" = the server's own datacenter
  std::string partition = "default";
  std::string ns = "default";  // the namespace ("namespace" is a keyword)
  std::string peer{};          // "" = the datacenter's own; else imported from this peer
};

// One cluster peering as GET /v1/peerings lists it.
struct TestPeering {
  std::string name;
  std::string id;       // this side's UUID
  std::string peer_id;  // the other side's UUID
  std::string partition = "default";
  std::string state;  // PENDING, ESTABLISHING, ACTIVE, FAILING, DELETING, TERMINATED
  std::string remote_datacenter;
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
  std::optional<std::chrono::system_clock::time_point> deleted_at;
};

class ScopeRegistry {
 public:
  struct Settings {
    std::string local_datacenter;
    std::string node;          // the agent's node, registered in every scope written to
    std::string node_address;  // its address
    std::chrono::milliseconds check_update_interval{};
    bool enterprise = false;  // answers name the partition (Consul Enterprise)
  };
  // A test server holds at most this many scopes (datacenter, partition,
  // namespace, peer), so a client cannot make it grow without bound.
  static constexpr std::size_t kMaxScopes = 512;
  static constexpr std::size_t kMaxDatacenters = 64;
  static constexpr std::size_t kMaxPeers = 64;

  explicit ScopeRegistry(Settings settings);

  // The local datacenter's default partition and namespace.
  TestCatalog& Local() { return *local_; }
  const std::string& local_datacenter() const { return settings_.local_datacenter; }
  bool enterprise() const { return settings_.enterprise; }

  // Datacenters: the local one first, then in the order added (Consul
  // sorts by round-trip time, and the local one is the nearest).
  // Adds a datacenter, or lists again one RemoveDatacenter() took off the
  // list (a datacenter rejoining the WAN keeps its data).
  bool AddDatacenter(const std::string& name);
  // Takes a datacenter off the WAN: unlisted, and every request for it
  // answers "No path to datacenter" (Consul after a force-leave); its data
  // stays, and writes to it still work. false for the local or an unknown
  // one.
  bool RemoveDatacenter(const std::string& name);
  // Known and on the WAN list.
  bool HasDatacenter(const std::string& name) const;
  std::vector<std::string> Datacenters() const;
  // While cut off, every request for the datacenter answers HTTP 500 with
  // this text; nullptr while it is reachable (or unknown).
  const std::string* CutError(const std::string& datacenter) const;
  // false when the datacenter is unknown or local (the agent's own
  // datacenter cannot be cut off from itself).
  bool SetCut(const std::string& datacenter, std::optional<std::string> error);
  std::uint64_t Index(const std::string& datacenter) const;

  // "" for the local datacenter's default scope, else a prefix that names
  // the scope: the server keys its blocked readers by it.
  static std::string Key(const ConsulScope& scope, const std::string& local_datacenter);
  std::string Key(const ConsulScope& scope) const { return Key(scope, local_datacenter()); }
  // The scope with its datacenter filled in ("" = local).
  ConsulScope Resolve(ConsulScope scope) const;

  // The catalog of `scope` if it exists (nullptr: nothing was ever written
  // to it); by scope or by its Key().
  TestCatalog* Find(const ConsulScope& scope) { return FindByKey(Key(scope)); }
  TestCatalog* FindByKey(const std::string& key) {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second.catalog.get();
  }
  // The catalog of `scope`, created on first use with the agent's node in
  // it; nullptr with `error` set (and `status`, when given, to the HTTP
  // status Consul answers) when the datacenter or peer is unknown, the
  // namespace or partition does not exist or is being deleted (Consul
  // Enterprise refuses those: 500 `Namespace "x" does not exist`), or the
  // scopes are at their bound.
  TestCatalog* ForWrite(const ConsulScope& scope, std::string& error, int* status = nullptr);
  // Why a write to `resolved` (datacenter filled in) is refused because its
  // partition or namespace does not exist or is marked for deletion;
  // nullopt when both exist (always without `enterprise`).
  std::optional<std::string> MissingTenancy(const ConsulScope& resolved) const;
  // The existing catalogs of the scope's datacenter, partition and peer
  // whose namespace is `scope.ns`, or any namespace for "*".
  std::vector<TestCatalog*> Matching(const ConsulScope& scope);

  // Every scope, for the timers and for waking blocked readers.
  struct Entry {
    std::string key;
    std::string datacenter;
    std::unique_ptr<TestCatalog> catalog;
    std::uint64_t woken_services_index = 0;  // the server's, see WakeChangedLocked
  };
  std::map<std::string, Entry>& entries() { return entries_; }
  // The catalogs of one datacenter (a snapshot restore resets them all).
  std::vector<TestCatalog*> CatalogsOf(const std::string& datacenter);

  // Consul Enterprise admin partitions of a datacenter and namespaces of a
  // partition, as /v1/partitions and /v1/namespaces list them: "default"
  // always, then those added, by name. Only Add*() creates them: a write
  // to a scope whose partition or namespace does not exist is refused, as
  // Consul refuses it. Removing one (not "default") is Consul's two-step
  // delete: it is marked (DeletedAt set, ModifyIndex moved; a partition's
  // namespaces with it), what it holds is deregistered, writes to it are
  // refused, and it stays listed with DeletedAt until FinishDeletions()
  // takes it off the list (Consul does that once its data is gone, in the
  // background). false for an unknown datacenter, an existing (add, a name
  // marked for deletion included) or unknown or already marked (remove)
  // name, or past the bounds.
  struct Tenancy {
    std::string name;
    std::uint64_t create_index = 0;
    std::uint64_t modify_index = 0;
    std::optional<std::chrono::system_clock::time_point> deleted_at{};
  };
  bool AddPartition(const std::string& datacenter, const std::string& name);
  bool RemovePartition(const std::string& datacenter, const std::string& name,
                       std::chrono::system_clock::time_point now);
  bool AddNamespace(const std::string& datacenter, const std::string& partition,
                    const std::string& name);
  bool RemoveNamespace(const std::string& datacenter, const std::string& partition,
                       const std::string& name, std::chrono::system_clock::time_point now);
  // Takes every partition and namespace marked for deletion off the lists;
  // returns how many.
  std::size_t FinishDeletions();
  std::vector<Tenancy> Partitions(const std::string& datacenter) const;
  std::vector<Tenancy> Namespaces(const std::string& datacenter,
                                  const std::string& partition) const;
  // The index of a partition's namespace list: it moves when a namespace
  // is added, marked for deletion or taken off the list (a blocking
  // /v1/namespaces waits on it). 1 while nothing changed.
  std::uint64_t NamespacesIndex(const std::string& datacenter, const std::string& partition) const;
  static constexpr std::size_t kMaxTenancies = 256;

  // Cluster peerings of the local datacenter.
  static bool IsPeeringState(const std::string& state);
  bool AddPeer(const std::string& name, const std::string& state,
               const std::string& remote_datacenter, const std::string& partition = "default");
  bool SetPeerState(const std::string& name, const std::string& state);
  // Marks the peering deleted (state DELETING) and removes what was
  // imported from it; it is gone from the list once that is done, which
  // here is at once.
  bool DeletePeer(const std::string& name);
  const TestPeering* FindPeer(const std::string& name) const;
  std::vector<const TestPeering*> Peers(const std::string& partition) const;
  // Names of the services imported from `peer`.
  std::set<std::string> ImportedServices(const std::string& peer);

 private:
  struct Datacenter {
    std::shared_ptr<std::uint64_t> raft_index = std::make_shared<std::uint64_t>(1);
    std::optional<std::string> cut_error;
    std::size_t order = 0;
    bool listed = true;
    // Partitions, and namespaces by partition (default ones implied).
    std::map<std::string, Tenancy> partitions;
    std::map<std::string, std::map<std::string, Tenancy>> namespaces;
    std::map<std::string, std::uint64_t> namespaces_index;  // by partition
  };
  // Deregisters every service of the partition (of its namespace `ns` only
  // when given) in every catalog of the datacenter.
  void RemoveServicesOf(const std::string& datacenter, const std::string& partition,
                        const std::string* ns);
  std::size_t tenancies_ = 0;
  Entry& Create(const ConsulScope& resolved);
  Datacenter* FindDatacenter(const std::string& name);

  Settings settings_;
  std::map<std::string, Datacenter> datacenters_;
  std::map<std::string, Entry> entries_;  // by Key()
  std::map<std::string, TestPeering> peers_;
  TestCatalog* local_ = nullptr;
};

}  // namespace hb::test_support
