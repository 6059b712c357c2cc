#pragma once

// Cluster mode: several bridge replicas share the watched services through
// Consul, each service emitted by exactly one of them.
//
// - Each replica holds a session (SessionKeeper) and announces itself by
//   acquiring `<prefix>/members/<member id>` with it. The live members are
//   the member keys a session holds, read with a blocking query on the
//   members prefix.
// - Each watched service belongs to the live member that rendezvous
//   hashing picks (rendezvous.h). The owner acquires the service's lock
//   `<prefix>/services/<encoded name>` with its session before it emits
//   anything for it, and releases it (explicitly, so the next owner waits
//   no lock-delay) when the membership gives the service to someone else.
// - The lock's LockIndex, which Consul raises on every acquisition, is the
//   service's epoch: every event carries it, so a consumer can drop events
//   from an owner that was fenced out.
// - EpochFor() is the emission gate: a replica emits for a service only
//   while it holds its lock under a session that is certainly alive.
//
// Thread-safety: EpochFor(), Snapshot() from any thread; the rest from the
// thread that owns the coordinator.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bridge/cluster/cluster_names.h"
#include "bridge/cluster/consul_kv_client.h"
#include "bridge/cluster/handover_ledger.h"
#include "bridge/cluster/session_keeper.h"
#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"
#include "bridge/common/status.h"
#include "bridge/consul/consul_client.h"

namespace hb {

struct ClusterOptions {
  // KV prefix shared by one bridge deployment (several deployments on one
  // Consul use different prefixes). Default: "health-bridge".
  std::string prefix = "health-bridge";
  // This replica's name among the members. Default: the host name.
  std::string member_id;
  std::chrono::milliseconds session_ttl{std::chrono::seconds(15)};
  std::chrono::milliseconds lock_delay{std::chrono::seconds(15)};
  // Which catalog services are watched (and so owned); every one when
  // empty. Called on the Consul client's loop thread.
  std::function<bool(const std::string& name, const std::vector<std::string>& tags)> watched;
  // How often lock acquisitions refused by Consul (held by the previous
  // owner, or within a lock-delay) are tried again. Default: 1s.
  std::chrono::milliseconds retry_interval{std::chrono::seconds(1)};
  // Connections the coordinator writes through (besides the session's):
  // a takeover or handover of thousands of services sends its transactions
  // over all of them at once. Idle ones stay open for the next burst.
  std::size_t write_connections = 4;

  // Handover. With a ledger, the coordinator writes each held service's
  // acknowledged state to `<prefix>/state/<service>` (check-and-set, at most
  // once per retry_interval per service and `state_writes_per_round` in
  // all; coalesced: the latest state goes), and again before it hands the
  // service over or leaves.
  HandoverLedger* ledger = nullptr;
  std::size_t state_writes_per_round = 256;
  // Called on the coordinator's thread once a service's lock is held, with
  // the handover state Consul KV holds for it (nullopt: none, a first
  // owner) and its write-ahead of unacknowledged events (pending_events.h;
  // nullopt: none), both read in the transaction that took the lock. The service stays closed
  // (EpochFor() says nullopt) until Open(service, epoch) is called: the caller emits what happened
  // since that state on the publishing thread and opens it there, so no event of the service slips
  // between. Empty: the service opens at once.
  std::function<void(const std::string& service, std::uint64_t epoch,
                     std::optional<std::string> state, std::optional<std::string> pending)>
      take_over;
};

// Metrics of the cluster mode; called from the coordinator's threads.
class ClusterObserver {
 public:
  virtual ~ClusterObserver() = default;
  virtual void OnMembers(std::size_t /*live*/) {}
  virtual void OnServicesWatched(std::size_t /*services*/) {}
  virtual void OnOwned(std::size_t /*services*/) {}
  virtual void OnLockAcquired() {}
  virtual void OnLockLost(std::size_t /*count*/) {}
  virtual void OnSessionRenewFailed() {}
  // How long a service waited from being given to this replica by the
  // membership until its lock was held.
  virtual void OnTakeover(std::chrono::duration<double> /*waited*/) {}
  // The write-ahead of one published batch (write_ahead.h): how long it
  // held the batch back, whether it failed, and events left out of it
  // (older than what fits per service).
  virtual void OnWriteAhead(std::chrono::duration<double> /*took*/) {}
  virtual void OnWriteAheadFailed() {}
  virtual void OnPendingLeftOut(std::size_t /*events*/) {}
};

// What the coordinator knows, for /readyz and logs.
struct ClusterSnapshot {
  bool session_valid = false;
  bool announced = false;
  std::vector<std::string> members;
  std::size_t services = 0;  // watched
  std::size_t owned = 0;     // locks held
};

// The lock key of `service` under `prefix`: the name percent-encoded into
// one key segment, so a name with a slash cannot reach another key.
std::string ServiceLockKey(std::string_view prefix, std::string_view service);
std::string MemberKey(std::string_view prefix, std::string_view member_id);

class ClusterCoordinator final : public SessionKeeperObserver {
 public:
  // `reads` serves the blocking queries (members, catalog); `client_options`
  // configures the coordinator's own connections for writes.
  ClusterCoordinator(ClusterOptions options, ConsulClientOptions client_options,
                     ConsulClient& reads, const Clock& clock, ClusterObserver* observer = nullptr);
  ~ClusterCoordinator() override;
  ClusterCoordinator(const ClusterCoordinator&) = delete;
  ClusterCoordinator& operator=(const ClusterCoordinator&) = delete;

  Status Start();
  // Graceful leave: stops emitting, releases every lock at once (no
  // lock-delay for the successors), removes this member, destroys the
  // session. Call after the sinks drained what they were given.
  void Leave();
  // Stops without releasing anything (what a crash looks like to the
  // others, for tests); Consul frees the locks after the session's TTL.
  void Abandon();

  // The emission gate: the service's epoch when this replica may emit for
  // it now, nullopt when it must not.
  std::optional<std::uint64_t> EpochFor(std::string_view service) const;
  // Opens a service take_over was called for; false when its lock is no
  // longer held under `epoch` (then nothing may be emitted for it).
  bool Open(const std::string& service, std::uint64_t epoch);
  ClusterSnapshot Snapshot() const;
  // This replica's session id while the session is certainly alive (what
  // a write guarded by `check-session` names); nullopt otherwise.
  std::optional<std::string> LiveSessionId() const;

 private:
  struct HeldLock {
    std::uint64_t epoch = 0;
    std::uint64_t generation = 0;
    bool open = false;  // the takeover ran: events may pass
  };

  void OnSessionChanged() override;
  void OnSessionRenewFailed() override;
  void Run();
  void Reconcile();
  void StartMembersWatch();
  void Poke();
  void StopThreads();
  // SendTxnGroups() while the session is certainly alive (and the worker
  // not stopping).
  std::vector<KvTxnGroupOutcome> RunGroups(const SessionLease& lease,
                                           const std::vector<std::vector<KvTxnOp>>& groups);
  // Writes acknowledged states (check-and-set) of services this replica
  // holds (worker thread, or Leave() after the worker stopped).
  void WriteStates(const SessionLease& lease,
                   std::vector<std::pair<std::string, ReportedService>> states);
  void ReleaseLocks(const SessionLease& lease, const std::vector<std::string>& services);
  void WriteChangedStates(const SessionLease& lease);
  void Forget(const std::vector<std::string>& services);
  // Services held and taken over (events pass): what "owned" reports.
  std::size_t OpenCountLocked() const REQUIRES(mutex_);

  const ClusterOptions options_;
  const ConsulClientOptions client_options_;
  ConsulClient& reads_;
  const Clock& clock_;
  ClusterObserver* const observer_;
  std::unique_ptr<SessionKeeper> keeper_;
  // Worker thread only (Leave() after it stopped); the first serves the
  // single requests, all of them the transactions (RunGroups).
  std::vector<std::unique_ptr<ConsulKvClient>> writes_;

  mutable Mutex mutex_;
  CondVar wake_;
  bool stop_ GUARDED_BY(mutex_) = false;
  bool dirty_ GUARDED_BY(mutex_) = true;
  // Live, from the watch.
  std::optional<std::vector<std::string>> members_ GUARDED_BY(mutex_);
  // Watched, from the catalog.
  std::optional<std::set<std::string>> services_ GUARDED_BY(mutex_);
  std::unordered_map<std::string, HeldLock> held_ GUARDED_BY(mutex_);
  std::uint64_t announced_generation_ GUARDED_BY(mutex_) = 0;
  // Services the membership gives this replica that it does not hold yet,
  // since when: the takeover latency.
  std::unordered_map<std::string, SteadyTime> wanted_since_;  // worker thread
  std::uint64_t announce_warned_generation_ = 0;              // worker thread
  // The ModifyIndex of each held service's state key as this replica last
  // wrote or read it (0: absent), for check-and-set; nullopt: unknown (a
  // read after a write failed), read again before the next write.
  std::unordered_map<std::string, std::optional<std::uint64_t>> state_index_;  // worker thread
  // When acquisitions were first refused for a lock-delay, since the last
  // round without such refusals.
  std::optional<std::chrono::steady_clock::time_point> lock_delay_since_;  // worker thread
  SteadyTime last_state_round_{};                                          // worker thread
  std::unique_ptr<BlockingQuery> members_watch_;                           // worker thread
  std::unique_ptr<BlockingQuery> catalog_watch_;                           // owner thread
  std::thread worker_;
  std::thread::id worker_id_;  // set by the worker; read by it, or after it joined
};

}  // namespace hb
