#pragma once

// The data behind the Consul test server: nodes, services and checks with
// Consul's index semantics (docs/consul-semantics.md). Pure and synchronous; the
// server adds HTTP, locking, blocking and timers.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/consul/check_filter.h"

namespace hb::test_support {

using TestTime = std::chrono::steady_clock::time_point;

struct TestCheck {
  std::string node;
  std::string id;
  std::string name;
  std::string status = "critical";  // passing, warning, critical
  std::string notes;
  std::string output;
  std::string service_id;  // "" for node checks
  std::string type;        // ttl, tcp, http, "" (serf, maintenance)
  std::optional<std::chrono::milliseconds> ttl;
  std::optional<TestTime> ttl_deadline;
  std::optional<std::chrono::milliseconds> deregister_critical_after;
  std::optional<TestTime> critical_since;
  // The agent's newer output, not yet written to the catalog: an update that
  // keeps the status is written only after check_update_interval.
  std::optional<std::string> deferred_output;
  std::optional<TestTime> deferred_write_at;
  std::string tcp;   // host:port probed every interval
  std::string http;  // URL probed every interval
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds timeout{5000};
  TestTime next_probe{};
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
};

struct TestService {
  std::string node;
  std::string id;
  std::string name;
  std::vector<std::string> tags;
  std::string address;
  int port = 0;
  std::map<std::string, std::string> meta;
  bool via_agent = true;  // the reaper only removes agent-registered services
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
};

struct TestNode {
  std::string name;
  std::string id;
  std::string address;
  std::map<std::string, std::string> meta;
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
};

// Where a catalog's entries live, as its answers name it: the namespace
// (Consul OSS answers "default"), the admin partition (shown only by
// Consul Enterprise: "" leaves the field out) and, for services imported
// from a cluster peer, the peer's name ("" leaves PeerName out).
struct CatalogPlacement {
  std::string ns = "default";
  std::string partition;
  std::string peer;
};

// Errors are returned as text for the HTTP layer's 400/404 bodies.
class TestCatalog {
 public:
  // `check_update_interval`: see ConsulTestServerOptions (0: write every
  // output change at once). `raft_index`: the datacenter's Raft index,
  // shared by every catalog of one datacenter (its namespaces, partitions
  // and imported peer services are tables of one state store); a new one
  // starting at 1 when null.
  explicit TestCatalog(std::string datacenter,
                       std::chrono::milliseconds check_update_interval = std::chrono::minutes(5),
                       std::shared_ptr<std::uint64_t> raft_index = nullptr,
                       CatalogPlacement placement = {});

  std::uint64_t index() const { return *index_; }
  // Takes the next index for a write outside the catalog (sessions, KV):
  // Consul's tables share one Raft index.
  std::uint64_t NextIndex() { return Bump(); }
  bool HasNode(const std::string& name) const { return nodes_.contains(name); }

  // Adds a node with a passing serfHealth check (an agent joined).
  void EnsureNode(const std::string& name, const std::string& address);

  // PUT /v1/agent/service/register (on `node`). Empty string = OK.
  std::string RegisterService(const std::string& node, const nlohmann::json& body, TestTime now);
  // PUT /v1/catalog/register. Empty string = OK.
  std::string CatalogRegister(const nlohmann::json& body, TestTime now);
  bool DeregisterService(const std::string& node, const std::string& id);
  bool CatalogDeregister(const std::string& node, const std::string& service_id);
  // Deregisters every service (a peering's imported data going away).
  // Returns whether there was any.
  bool RemoveAllServices();

  // pass/warn/fail/update; false when the check does not exist.
  bool UpdateCheck(const std::string& node, const std::string& id, const std::string& status,
                   const std::string& output, TestTime now);
  bool SetServiceMaintenance(const std::string& node, const std::string& service_id, bool enable,
                             const std::string& reason, TestTime now);
  void SetNodeMaintenance(const std::string& node, bool enable, const std::string& reason,
                          TestTime now);
  bool SetNodeCheck(const std::string& node, const std::string& check_id, const std::string& status,
                    const std::string& output, TestTime now);

  // Lapsed TTLs turn critical ("TTL expired"). Returns whether anything changed.
  bool ExpireTtls(TestTime now);
  // Writes the deferred outputs whose time has come (the agent's periodic
  // write-back). Returns whether anything changed.
  bool WriteDeferredOutputs(TestTime now);
  // Deregisters agent services critical for longer than their
  // DeregisterCriticalServiceAfter (never below `minimum`).
  bool Reap(TestTime now, std::chrono::milliseconds minimum);
  // Checks whose probe is due: (check id, target, is_http, timeout).
  struct Probe {
    std::string check_id;
    std::string target;
    bool http = false;
    std::chrono::milliseconds timeout{};
  };
  std::vector<Probe> DueProbes(TestTime now);

  // Snapshot restore: every index above `to` becomes `to`.
  void ResetIndex(std::uint64_t to);

  // Reads and their X-Consul-Index.
  nlohmann::json CatalogServices() const;
  std::uint64_t CatalogServicesIndex() const { return services_index_; }
  nlohmann::json HealthService(const std::string& name, bool passing_only,
                               const std::vector<std::string>& tags) const;
  std::uint64_t HealthServiceIndex(const std::string& name) const;
  // Names of the services whose own health index moved since the last call,
  // so the server wakes only their watchers (a move of the services table's
  // index, which unknown services also answer with, is the server's to see).
  std::set<std::string> TakeTouchedServices() { return std::exchange(touched_services_, {}); }
  nlohmann::json HealthState(const std::string& state) const;
  // The same answer as text, written directly: /v1/health/state/any lists
  // every check in the datacenter, and building it as a JSON document cost
  // about 25 us per check (240 ms at 10,000 instances) under the server's
  // lock, where Consul's encoder takes a fraction of that.
  // `filter` (?filter=) keeps only the checks it matches.
  std::string HealthStateText(const std::string& state, const CheckFilter* filter = nullptr) const;
  // The selectors ?filter= accepts on /v1/health/state/<state>.
  static const std::set<std::string, std::less<>>& HealthStateSelectors();
  std::uint64_t ChecksIndex() const { return checks_index_; }

  const std::string& datacenter() const { return datacenter_; }
  const CatalogPlacement& placement() const { return placement_; }
  // Names of the services with at least one instance.
  std::set<std::string> ServiceNames() const;
  const TestCheck* FindCheck(const std::string& node, const std::string& check_id) const;

 private:
  std::uint64_t Bump();
  void TouchService(const std::string& name, std::uint64_t index);
  void TouchNodeServices(const std::string& node, std::uint64_t index);
  void TouchCheck(TestCheck& check, std::uint64_t index);
  std::string AddServiceChecks(const TestService& service, const nlohmann::json& body,
                               TestTime now);
  void RemoveService(const std::string& node, const std::string& id);
  nlohmann::json CheckJson(const TestCheck& check) const;
  std::string CheckNamespace(const TestCheck& check) const;
  std::vector<const TestCheck*> ChecksOf(const std::string& node,
                                         const std::string& service_id) const;
  // Every write to checks_ goes through these, to keep the indexes below.
  void PutCheck(const std::string& key, const TestCheck& check);
  void EraseCheck(const std::string& key);

  // Deadlines, earliest first. Entries are never removed when a check
  // changes or goes: one whose check no longer has that deadline is skipped
  // when it comes due (heartbeats add one entry each, for at most one TTL).
  using Deadline = std::pair<TestTime, std::string>;  // (when, checks_ key)
  using DeadlineQueue =
      std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>>;

  std::string datacenter_;
  std::shared_ptr<std::uint64_t> index_;  // the datacenter's, shared
  CatalogPlacement placement_;
  std::uint64_t services_index_ = 1;                    // any service write
  std::uint64_t checks_index_ = 1;                      // any check write
  std::map<std::string, std::uint64_t> service_index_;  // by service name
  std::set<std::string> touched_services_;              // see TakeTouchedServices
  std::map<std::string, TestNode> nodes_;
  std::map<std::string, TestService> services_;  // key: node + "/" + id
  std::map<std::string, int> instance_counts_;   // by service name: index reads stay cheap
  std::map<std::string, TestCheck> checks_;      // key: node + "/" + check id

  // Indexes so that a read, and the timer tick, cost the size of their
  // answer rather than of the catalog: with thousands of services one
  // health read scanned every service and every check under the server's
  // single lock, and the 20 ms TTL/probe tick scanned every check twice.
  std::map<std::string, std::set<std::string>> service_keys_by_name_;  // services_ keys
  // checks_ keys by owner, node + "/" + service id ("node/" for node checks).
  std::map<std::string, std::set<std::string>> check_keys_by_owner_;
  DeadlineQueue ttl_deadlines_;
  DeadlineQueue probe_deadlines_;
  DeadlineQueue deferred_writes_;
  std::chrono::milliseconds check_update_interval_;
  std::mt19937_64 stagger_{std::random_device{}()};
};

}  // namespace hb::test_support
