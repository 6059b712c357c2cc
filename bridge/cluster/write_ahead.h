#pragma once

// The owner's write-ahead of undelivered events (pending_events.h): before
// events of owned services leave for the sinks, one Consul transaction per
// published batch (more only when Consul's limits on one transaction
// demand) writes, per service, the events its sinks have not all
// acknowledged yet, guarded by `check-session` on the service's lock, so a
// replica fenced out (its session gone, the lock another's) cannot write.
// A service whose events were all acknowledged since has its key deleted in
// a later batch's transaction, or by Record({}) which the daemon calls on
// the publishing thread once per retry interval (or by its next owner at
// takeover).
//
// Availability first: when a write fails (Consul slow or unreachable) the
// events leave all the same, and the failure is counted; a successor then
// re-emits from an older write-ahead and the handover state.
//
// Called on the publishing thread (the emission gate's, the takeovers', the
// trim pass's); serialized by its own mutex all the same, since its Consul
// client serves one request at a time.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bridge/cluster/cluster_coordinator.h"
#include "bridge/cluster/consul_kv_client.h"
#include "bridge/cluster/handover_ledger.h"
#include "bridge/common/mutex.h"

namespace hb {

class WriteAhead {
 public:
  // Keys deleted per published batch for services acknowledged since, on
  // top of the batch's own services: a burst of acknowledgements is
  // cleaned up over a few batches rather than in one long transaction.
  static constexpr std::size_t kMaxTrimsPerBatch = 16;

  WriteAhead(std::string prefix, std::unique_ptr<ConsulKvClient> client,
             ClusterCoordinator& cluster, HandoverLedger& ledger,
             ClusterObserver* observer = nullptr);

  // Before the events of `services` leave: writes the unacknowledged
  // events of each one this replica emits for now (deletes its key when
  // none are left), and deletes the keys of services written before whose
  // events were all acknowledged since (only that with no `services`), at
  // most `max_trims` of those.
  void Record(const std::set<std::string>& services, std::size_t max_trims = kMaxTrimsPerBatch)
      EXCLUDES(mutex_);
  // A takeover found a write-ahead under `service`'s key: the next Record
  // of the service rewrites or deletes it.
  void Adopt(const std::string& service) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    written_.insert(service);
  }

 private:
  struct Group {
    std::string service;
    bool erase = false;  // a delete, not a set
    std::vector<KvTxnOp> ops;
  };
  // Sends `groups` in as few transactions as Consul's limits allow; a
  // group Consul refuses (fenced out) is dropped, the others sent again.
  // Whether every group committed.
  bool Send(std::vector<Group> groups) REQUIRES(mutex_);

  const std::string prefix_;
  Mutex mutex_;
  std::unique_ptr<ConsulKvClient> client_ GUARDED_BY(mutex_);
  ClusterCoordinator& cluster_;
  HandoverLedger& ledger_;
  ClusterObserver* const observer_;
  // Services whose key this replica wrote (or found at takeover) and has
  // not deleted since.
  std::set<std::string> written_ GUARDED_BY(mutex_);
  // Services whose write-ahead left out events; warned once until it fits.
  std::set<std::string> overflowing_ GUARDED_BY(mutex_);
  bool failing_ GUARDED_BY(mutex_) = false;  // the last write failed: warned already
};

}  // namespace hb
