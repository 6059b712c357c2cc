#pragma once

// A Consul agent+server on loopback for tests, benchmarks and the demo:
// Consul's HTTP API for everything the bridge uses, with real blocking
// queries, TTL checks, maintenance, the critical-service reaper, ACLs and
// fault injection (docs/consul-semantics.md). Faults are driven from C++ or over
// HTTP under /_test/ (see README in this folder).
//
// Thread-safe: every public method may be called from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>

#include "bridge/common/mutex.h"
#include "tests/support/consul/connection_limiter.h"
#include "tests/support/consul/kv_store.h"
#include "tests/support/consul/scope_registry.h"
#include "tests/support/consul/session_store.h"
#include "tests/support/consul/test_catalog.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace hb::test_support {

class KeepAliveServer;

struct ConsulTestServerOptions {
  // The agent's own datacenter; AddDatacenter() adds others. Default: dc1
  std::string datacenter = "dc1";
  std::string node = "node-a";     // the local agent's node. Default: node-a
  std::string host = "127.0.0.1";  // bind address; loopback only. Default: 127.0.0.1
  int port = 0;                    // 0 = ephemeral. Default: 0
  // When set, requests need it (X-Consul-Token or Authorization: Bearer):
  // a missing token gets 403 "Permission denied", another one 403 "ACL not
  // found". Default: "" = ACLs off.
  std::string acl_token;
  // How often the reaper looks for long-critical services. Default: 30s (Consul).
  std::chrono::milliseconds reap_interval{std::chrono::seconds(30)};
  // Floor of DeregisterCriticalServiceAfter. Default: 1m (Consul).
  std::chrono::milliseconds min_deregister_critical_after{std::chrono::minutes(1)};
  // Longest blocking wait. Default: 10m (Consul).
  std::chrono::milliseconds max_wait{std::chrono::minutes(10)};
  // Consul's limits.http_max_conns_per_client: open connections one client
  // IP may hold (held blocking queries and idle keep-alive connections
  // alike); the next one gets 429 and is closed. 0 turns it off, for tests
  // about that. Default: 200 (Consul since 1.6.3).
  std::size_t max_conns_per_client = 200;
  // Consul's check_update_interval: a check update that keeps the status
  // and only changes the output is written (and moves an index) once, after
  // interval/2 plus up to one interval of random stagger. 0 writes every
  // output change at once. Default: 5m (Consul).
  std::chrono::milliseconds check_update_interval{std::chrono::minutes(5)};
  // Sessions: the shortest TTL accepted (Consul: 10s; tests lower it so they
  // need not wait), how many TTLs after its last renewal a session is reaped
  // (Consul: 2) and how many times the asked TTL a renewal hands back
  // (Consul under load may hand back more; default 1).
  SessionRules sessions;
  // Consul Enterprise: ?ns= and ?partition= select a namespace and an admin
  // partition, and answers name the partition. Off (Consul OSS), any
  // non-empty ns or partition parameter is a 400 with OSS's own text.
  // Default: false.
  bool enterprise = false;
};

class ConsulTestServer {
 public:
  explicit ConsulTestServer(ConsulTestServerOptions options = {});
  ~ConsulTestServer();

  ConsulTestServer(const ConsulTestServer&) = delete;
  ConsulTestServer& operator=(const ConsulTestServer&) = delete;

  // Binds (the same port again after Stop()) and serves in the background.
  // Returns the port, or 0 if it cannot bind.
  int Start();
  // Stops listening and answers held requests; data is kept.
  void Stop();
  int port() const { return port_; }
  std::string address() const { return "http://" + options_.host + ":" + std::to_string(port_); }

  // Direct access to the data (tests register through HTTP as a client
  // would, but may also use these).
  std::string RegisterService(const nlohmann::json& registration);
  bool DeregisterService(const std::string& service_id);
  bool UpdateCheck(const std::string& check_id, const std::string& status,
                   const std::string& output = "");
  bool SetServiceMaintenance(const std::string& service_id, bool enable,
                             const std::string& reason = "");
  void SetNodeMaintenance(bool enable, const std::string& reason = "");
  // Agent death on `node`: its serfHealth check turns `status`.
  bool SetSerfHealth(const std::string& node, const std::string& status);
  std::uint64_t Index();

  // Several datacenters, cluster peers, namespaces and partitions
  // (scope_registry.h). The methods above act on the local datacenter's
  // default namespace; these on any scope.
  //
  // Adds a datacenter with its own Raft index, listed by
  // /v1/catalog/datacenters and served to requests with ?dc=<name>.
  // false if it exists (or the bound of 64 is reached).
  bool AddDatacenter(const std::string& name);
  // While cut off, every request with ?dc=<name> answers HTTP 500 `error`
  // (Consul: "No path to datacenter" when no route to it is known, "Remote
  // DC has no server currently reachable" when its servers all failed), and
  // blocking queries held on it are released with that error. Its data is
  // kept and served again once restored. The datacenter stays listed. false
  // for an unknown or the local datacenter.
  bool CutDatacenter(const std::string& name, bool cut,
                     std::string error = "No path to datacenter");
  // Takes the datacenter off /v1/catalog/datacenters and answers requests
  // for it "No path to datacenter" (a force-leave from the WAN); its data
  // stays, and AddDatacenter() lists it again. false for the local or an
  // unknown one.
  bool RemoveDatacenter(const std::string& name);
  // Consul Enterprise admin partitions and namespaces (`enterprise` only),
  // listed by /v1/partitions and /v1/namespaces. Writes need them to exist
  // (Consul: 500 `Namespace "x" does not exist`). Removing one marks it
  // for deletion (listed with DeletedAt, what it holds deregistered)
  // until FinishTenancyDeletions() takes the marked ones off the lists
  // (scope_registry.h). `datacenter` "" = the local one.
  bool AddPartition(const std::string& datacenter, const std::string& name);
  bool RemovePartition(const std::string& datacenter, const std::string& name);
  bool AddNamespace(const std::string& datacenter, const std::string& partition,
                    const std::string& name);
  bool RemoveNamespace(const std::string& datacenter, const std::string& partition,
                       const std::string& name);
  // Returns how many marked partitions and namespaces left the lists.
  std::size_t FinishTenancyDeletions();
  // A cluster peering of the local datacenter (in `partition`), listed by
  // /v1/peerings with `state` (PENDING, ESTABLISHING, ACTIVE, FAILING,
  // DELETING, TERMINATED). Services imported from it are registered with
  // ConsulScope::peer and served to ?peer=<name>. false if it exists or the
  // state is none of those.
  bool AddPeer(const std::string& name, const std::string& state = "ACTIVE",
               const std::string& partition = "default");
  // Changes the peering's state only; what was imported stays (Consul keeps
  // serving imported data while a peering is failing).
  bool SetPeerState(const std::string& name, const std::string& state);
  // Deletes the peering and everything imported from it.
  bool DeletePeer(const std::string& name);
  // Writes to one scope: the agent-style registration body of
  // RegisterService() above, in the scope's datacenter, namespace,
  // partition or peer. Returns an error text ("" = OK): an unknown
  // datacenter or peer, a namespace without `enterprise`.
  std::string RegisterService(const ConsulScope& scope, const nlohmann::json& registration);
  bool DeregisterService(const ConsulScope& scope, const std::string& service_id);
  bool UpdateCheck(const ConsulScope& scope, const std::string& check_id, const std::string& status,
                   const std::string& output = "");
  // A datacenter's Raft index ("" = the local one); 0 if unknown.
  std::uint64_t Index(const std::string& datacenter);
  // When the local agent's check turned critical (TTL lapse included), for
  // measuring how long the bridge takes to report it.
  std::optional<std::chrono::steady_clock::time_point> CriticalSince(const std::string& check_id);

  // Faults.
  // The next `count` requests (whose path starts with `prefix`) fail.
  void FailNext(int count, int status, std::string body, std::string prefix = "/v1/");
  void SetLatency(std::chrono::milliseconds latency);
  // Replaces the ACL token requests need (a rotation); "" turns ACLs off.
  void SetAclToken(std::string token);
  // The next `count` health/service answers carry a malformed body.
  void MalformedNext(int count);
  // The next `count` /v1/ reads lose their connection mid-answer (after
  // the status line and headers), as behind a dying proxy.
  void DropNext(int count);
  // Snapshot restore of the local datacenter: every index above `to` goes
  // back to `to` (other datacenters keep theirs).
  void ResetIndex(std::uint64_t to);
  void SetKnownLeader(bool known);
  // Stop listening for `duration`, then listen again on the same port.
  void RefuseFor(std::chrono::milliseconds duration);

  // Requests served, by path (without the query), for request counting;
  // requests with ?filter= also under "<path>?filter=<expression>".
  std::map<std::string, int> RequestCounts();
  // Blocking queries parked now, waiting for their index to move: a test
  // waits for this before a change that must wake them.
  std::size_t BlockedQueries();
  // Key -> the session holding it ("" when none), for every KV entry under
  // `prefix`: what a benchmark samples often without the HTTP round trip
  // and JSON of thousands of entries weighing on what it measures.
  std::map<std::string, std::string> KvHolders(const std::string& prefix);

  // Connections as the per-client-IP limit counts them (loopback clients
  // are "127.0.0.1").
  std::size_t OpenConnections(const std::string& ip = "127.0.0.1") const {
    return limiter_.Open(ip);
  }
  // The most `ip` held open at once since the start or ResetPeakConnections().
  std::size_t PeakConnections(const std::string& ip = "127.0.0.1") const {
    return limiter_.Peak(ip);
  }
  void ResetPeakConnections() { limiter_.ResetPeak(); }
  // Connections refused with 429 since the start.
  std::size_t RefusedConnections() const { return limiter_.Refused(); }

 private:
  // Routes, one group per endpoint family, each in its own file
  // (routes_*.cc); ServeRoutes() adds the checks every request passes first
  // (ACL, faults, ?dc=) and then every group.
  void ServeRoutes();
  void ServeHealthRoutes(httplib::Server& server);
  void ServeCatalogRoutes(httplib::Server& server);
  void ServeAgentRoutes(httplib::Server& server);
  void ServeStatusRoutes(httplib::Server& server);
  void ServeTestFaultRoutes(httplib::Server& server);
  void ServeSessionRoutes(httplib::Server& server);
  void ServeKvRoutes(httplib::Server& server);
  void ServeDatacenterRoutes(httplib::Server& server);
  void ServePeeringRoutes(httplib::Server& server);
  void ServeTenancyRoutes(httplib::Server& server);
  // The scope a request names (?dc=, ?peer=, ?ns=, ?partition=). On a bad
  // one, answers 400 and returns nullopt. `takes_peer`: the endpoint reads
  // ?peer= (others ignore it, as Consul ignores parameters an endpoint does
  // not read). `wildcard_ns`: the endpoint accepts ns=* (Enterprise).
  std::optional<ConsulScope> RequestScope(const httplib::Request& request,
                                          httplib::Response& response, bool takes_peer,
                                          bool wildcard_ns) const;
  // The key blocked readers of `endpoint` ("catalog", "checks",
  // "health/<name>") in `scope` share: the plain endpoint for the local
  // default scope, the scope's prefix before it otherwise, and '*' first
  // for every namespace at once.
  std::string WatchKey(const ConsulScope& scope, const std::string& endpoint) const;
  // What a request for a datacenter other than the local one gets while
  // that datacenter is unknown or cut off; nullopt when it is served.
  // mutex_ held.
  std::optional<std::string> DatacenterErrorLocked(const std::string& datacenter) const
      REQUIRES_SHARED(mutex_);
  // What the checks every request passes first answer for its scope
  // parameters, or nullopt to go on: an unknown or cut-off ?dc= (500),
  // ?ns= or ?partition= on Consul OSS (400), a remote ?dc= on an endpoint
  // family only the local datacenter serves here. mutex_ held.
  struct Refusal {
    int status = 0;
    std::string body;
  };
  std::optional<Refusal> RefuseScopeLocked(const httplib::Request& request) const
      REQUIRES_SHARED(mutex_);
  // Destroys `id` (an API destroy, reaping, a failed check) and applies its
  // behavior to the keys it holds. mutex_ held.
  void InvalidateSessionLocked(const std::string& id, TestTime now) REQUIRES(mutex_);

  // What a read answers: its status and its body.
  struct Answer {
    int status = 200;
    std::string body;
  };
  // A blocking read: holds until `watch_index` passes ?index, the wait (+ up
  // to wait/16 jitter) elapses, or a restore or stop wakes it; then answers
  // with `answer` and X-Consul-Index `header_index` (`watch_index` when
  // empty). Blocked readers of one `endpoint` share a condition variable.
  // The callbacks run under mutex_ (shared or exclusive) and start with
  // mutex_.AssertReaderHeld(), since the analysis cannot see it there.
  void ServeBlocking(const httplib::Request& request, httplib::Response& response,
                     const std::string& endpoint, const std::function<std::uint64_t()>& watch_index,
                     const std::function<Answer()>& answer, bool may_be_malformed,
                     const std::function<std::uint64_t()>& header_index = {});
  // Parses a JSON request body; on failure answers 400 as Consul does.
  static bool ReadJsonBody(const httplib::Request& request, httplib::Response& response,
                           nlohmann::json& out);
  // Ends a write: an error (when not empty) with `status`, then wakes the
  // readers whose data moved.
  void FinishWrite(httplib::Response& response, const std::string& error, int status = 400);
  // Wakes the blocked readers whose endpoint index moved.
  void Notify() EXCLUDES(mutex_);
  void WakeChangedLocked() REQUIRES(mutex_);
  struct WatchedEndpoint;
  // Wakes the readers of `endpoint` if its index moved since they were last woken.
  static void WakeIfMoved(WatchedEndpoint& endpoint);
  // The part of it for one scope's catalog.
  void WakeScopeLocked(ScopeRegistry::Entry& entry) REQUIRES(mutex_);
  void WakeAllLocked() REQUIRES(mutex_);  // a restore or stop
  void Background();
  void RunProbes(const std::vector<TestCatalog::Probe>& probes);

  const ConsulTestServerOptions options_;
  std::atomic<int> port_{0};
  ConnectionLimiter limiter_;  // outlives every server_ (Stop/Start keep counting)

  // Blocked readers of one endpoint (catalog, one service's health) share a
  // condition variable woken only when that endpoint's index moves, like
  // Consul's per-watch channels: one change must not wake every held
  // long-poll, or thousands of them turn each change into a stampede.
  struct WatchedEndpoint {
    SharedCondVar changed;
    std::function<std::uint64_t()> index_of;
    std::uint64_t notified_index = 0;
    int waiters = 0;
  };

  // Exclusive for writes and waits; answers are built under a shared lock,
  // as Consul serves reads from a snapshot: a large read (the whole checks
  // table is 32 MB at 100,000 instances) never holds up other reads.
  SharedMutex mutex_;
  // options_.acl_token until SetAclToken()
  std::string acl_token_ GUARDED_BY(mutex_);
  SharedCondVar background_wake_;
  std::map<std::string, std::unique_ptr<WatchedEndpoint>> watched_ GUARDED_BY(mutex_);
  ScopeRegistry registry_ GUARDED_BY(mutex_);
  TestCatalog& catalog_ GUARDED_BY(mutex_);  // registry_.Local(), the local default scope
  SessionStore sessions_ GUARDED_BY(mutex_);
  KvStore kv_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  bool known_leader_ GUARDED_BY(mutex_) = true;
  int fail_count_ GUARDED_BY(mutex_) = 0;
  int fail_status_ GUARDED_BY(mutex_) = 500;
  std::string fail_body_ GUARDED_BY(mutex_);
  std::string fail_prefix_ GUARDED_BY(mutex_);
  int malformed_count_ GUARDED_BY(mutex_) = 0;
  int drop_count_ GUARDED_BY(mutex_) = 0;
  std::chrono::milliseconds latency_ GUARDED_BY(mutex_){0};
  std::map<std::string, int> request_counts_ GUARDED_BY(mutex_);
  std::uint64_t generation_ GUARDED_BY(mutex_) = 0;  // bumps on Stop()
  // The KV and sessions tables' indexes when their watchers were last
  // woken: those watchers are woken only when their table moved.
  std::uint64_t woken_kv_index_ GUARDED_BY(mutex_) = 0;
  std::uint64_t woken_sessions_index_ GUARDED_BY(mutex_) = 0;

  std::mutex server_mutex_;  // serializes Start/Stop
  std::unique_ptr<KeepAliveServer> server_;
  std::thread listener_;
  std::thread background_;
  std::thread refuse_;
  bool background_stop_ GUARDED_BY(mutex_) = false;
};

}  // namespace hb::test_support
