#include "bridge/cluster/cluster_coordinator.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "bridge/cluster/handover_state.h"
#include "bridge/cluster/pending_events.h"
#include "bridge/cluster/rendezvous.h"
#include "bridge/consul/answer_parsers.h"

namespace hb {

std::string ServiceLockKey(std::string_view prefix, std::string_view service) {
  return std::string(prefix) + "/services/" + PercentEncode(service);
}

std::string MemberKey(std::string_view prefix, std::string_view member_id) {
  return std::string(prefix) + "/members/" + std::string(member_id);
}

ClusterCoordinator::ClusterCoordinator(ClusterOptions options, ConsulClientOptions client_options,
                                       ConsulClient& reads, const Clock& clock,
                                       ClusterObserver* observer)
    : options_(std::move(options)),
      client_options_(std::move(client_options)),
      reads_(reads),
      clock_(clock),
      observer_(observer) {
  // Built here, not in Start(): EpochFor() and Snapshot() read them from
  // other threads, which may run before Start().
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.write_connections); ++i) {
    auto& client = writes_.emplace_back(std::make_unique<ConsulKvClient>(client_options_));
    // A write must not hold the worker past the session's validity.
    client->set_timeout(std::max(std::chrono::milliseconds(100), options_.session_ttl / 3));
  }
  keeper_ = std::make_unique<SessionKeeper>(
      SessionKeeperOptions{"health-bridge " + options_.member_id, options_.session_ttl,
                           options_.lock_delay},
      std::make_unique<ConsulKvClient>(client_options_), clock_, this);
}

ClusterCoordinator::~ClusterCoordinator() { Abandon(); }

Status ClusterCoordinator::Start() {
  if (auto checked = ConsulKvClient::Create(client_options_); !checked.ok()) {
    return checked.status();
  }
  catalog_watch_ = reads_.Watch(
      "/v1/catalog/services", {},
      [this](const QueryAnswer& answer) -> Status {
        auto services = ParseCatalogServices(answer.body);
        if (!services.ok()) return services.status();
        std::set<std::string> watched;
        for (const auto& [name, tags] : *services) {
          if (!options_.watched || options_.watched(name, tags)) watched.insert(name);
        }
        if (observer_ != nullptr) observer_->OnServicesWatched(watched.size());
        {
          MutexLock lock(&mutex_);
          services_ = std::move(watched);
        }
        Poke();
        return Status::Ok();
      },
      [](const Status& error) {
        spdlog::warn("cluster: reading the catalog failed: {}", error.message());
      });
  worker_ = std::thread([this] { Run(); });
  keeper_->Start();
  return Status::Ok();
}

void ClusterCoordinator::StartMembersWatch() {
  members_watch_ = reads_.Watch(
      "/v1/kv/" + options_.prefix + "/members/", {{"recurse", ""}},
      [this](const QueryAnswer& answer) -> Status {
        auto pairs = ParseKvPairs(answer.body);
        if (!pairs.ok()) return pairs.status();
        const std::string members_prefix = options_.prefix + "/members/";
        std::vector<std::string> live;
        for (const KvPair& pair : *pairs) {
          // A member key nobody's session holds is a replica that left or died.
          if (pair.session.empty() || !pair.key.starts_with(members_prefix)) continue;
          std::string id = pair.key.substr(members_prefix.size());
          if (ValidateMemberId(id).empty()) live.push_back(std::move(id));
        }
        std::sort(live.begin(), live.end());
        {
          MutexLock lock(&mutex_);
          if (members_ != live) {
            spdlog::info("cluster: {} live members: {}", live.size(), fmt::join(live, ", "));
          }
          members_ = live;
        }
        if (observer_ != nullptr) observer_->OnMembers(live.size());
        Poke();
        return Status::Ok();
      },
      [](const Status& error) {
        spdlog::warn("cluster: reading the members failed: {}", error.message());
      });
}

void ClusterCoordinator::Poke() {
  {
    MutexLock lock(&mutex_);
    dirty_ = true;
  }
  wake_.SignalAll();
}

void ClusterCoordinator::OnSessionChanged() { Poke(); }

void ClusterCoordinator::OnSessionRenewFailed() {
  if (observer_ != nullptr) observer_->OnSessionRenewFailed();
}

void ClusterCoordinator::Run() {
  worker_id_ = std::this_thread::get_id();
  MutexLock lock(&mutex_);
  while (!stop_) {
    dirty_ = false;
    lock.Unlock();
    Reconcile();
    lock.Lock();
    // Woken by a change, or after the retry interval: a refused acquisition
    // (the previous owner still holds the lock, a lock-delay runs) and the
    // session's validity are looked at again then.
    auto deadline = std::chrono::steady_clock::now() + options_.retry_interval;
    if (lock_delay_since_) {
      // Just past the end of the lock-delay that refused acquisitions.
      const auto lock_delay_end =
          *lock_delay_since_ + options_.lock_delay + std::chrono::milliseconds(5);
      // At once when it ended while the round ran.
      deadline = std::min(deadline, lock_delay_end);
    }
    while (!stop_ && !dirty_ && wake_.WaitUntil(&mutex_, deadline)) {
    }
  }
}

void ClusterCoordinator::Reconcile() {
  const std::optional<SessionLease> lease = keeper_->Current();
  std::vector<std::string> lost_services;
  {
    MutexLock lock(&mutex_);
    // Locks taken under an older session are void: Consul released them.
    for (auto it = held_.begin(); it != held_.end();) {
      if (!lease || it->second.generation != lease->generation) {
        lost_services.push_back(it->first);
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    if (!lease) announced_generation_ = 0;
  }
  // Their state is the successors' now: not written any more.
  Forget(lost_services);
  if (const std::size_t lost = lost_services.size(); lost > 0) {
    spdlog::warn("cluster: lost {} service locks with the session", lost);
    if (observer_ != nullptr) {
      observer_->OnLockLost(lost);
      observer_->OnOwned(0);
    }
  }
  if (!lease || !keeper_->ValidAt(lease->generation, clock_.Now())) return;

  std::uint64_t announced;
  {
    MutexLock lock(&mutex_);
    announced = announced_generation_;
  }
  if (announced != lease->generation) {
    const nlohmann::json value = {{"member", options_.member_id}, {"session", lease->id}};
    auto acquired = writes_.front()->Acquire(MemberKey(options_.prefix, options_.member_id),
                                             lease->id, value.dump());
    if (!acquired.ok() || !*acquired) {
      // Refused: a lock-delay after our previous session, or a replica with
      // the same member id (a misconfiguration the log must show), once per
      // session rather than on every retry.
      if (std::exchange(announce_warned_generation_, lease->generation) == lease->generation) {
        return;
      }
      spdlog::warn("cluster: cannot announce member {} yet: {}", options_.member_id,
                   acquired.ok() ? "its key is held (another replica with this member id, or a "
                                   "lock-delay after a lost session)"
                                 : acquired.status().message());
      return;
    }
    {
      MutexLock lock(&mutex_);
      announced_generation_ = lease->generation;
    }
    spdlog::info("cluster: member {} announced under {}", options_.member_id, options_.prefix);
    if (!members_watch_) StartMembersWatch();
  }

  std::vector<std::string> members;
  std::vector<std::string> to_acquire;
  std::vector<std::string> to_release;
  {
    MutexLock lock(&mutex_);
    // Ownership waits for the first answers: a replica that guessed it was
    // alone would take every service and hand most back a moment later.
    if (!members_ || !services_) return;
    members = *members_;
    if (std::find(members.begin(), members.end(), options_.member_id) == members.end()) {
      members.push_back(options_.member_id);  // the watch has not seen our key yet
    }
    for (const std::string& service : *services_) {
      const bool mine = RendezvousOwner(service, members) == options_.member_id;
      const bool held = held_.contains(service);
      if (mine && !held) to_acquire.push_back(service);
    }
    for (auto it = held_.begin(); it != held_.end();) {
      if (!services_->contains(it->first) ||
          RendezvousOwner(it->first, members) != options_.member_id) {
        // Stop emitting before the lock goes.
        to_release.push_back(it->first);
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (options_.ledger != nullptr && !to_release.empty()) {
    // The gate is closed for them already; what is on its way to the sinks
    // gets a moment to be acknowledged, so the successor repeats less.
    options_.ledger->WaitSettled(to_release,
                                 std::chrono::steady_clock::now() + options_.retry_interval);
  }
  // What the sinks acknowledged so far goes first: the next owner reads
  // it once it holds the lock, and re-emits only what came after.
  if (options_.ledger != nullptr) {
    std::vector<std::pair<std::string, ReportedService>> last;
    for (const std::string& service : to_release) {
      if (auto state = options_.ledger->TakeChanged(service)) {
        last.emplace_back(service, std::move(*state));
      }
    }
    WriteStates(*lease, std::move(last));
  }
  ReleaseLocks(*lease, to_release);
  Forget(to_release);
  // Forget waits for services the membership no longer gives us.
  const std::set<std::string> wanted(to_acquire.begin(), to_acquire.end());
  std::erase_if(wanted_since_,
                [&wanted](const auto& entry) { return !wanted.contains(entry.first); });
  for (const std::string& service : to_acquire) wanted_since_.try_emplace(service, clock_.Now());
  // Each service's lock and its handover state in one group: the state is
  // read in the transaction that takes the lock, so under it (nobody
  // writes it while we hold it). Refused locks (held by the previous owner,
  // or within a lock-delay) are tried again after retry_interval;
  // acquiring a lock we hold again keeps its epoch.
  std::vector<std::vector<KvTxnOp>> groups;
  groups.reserve(to_acquire.size());
  for (const std::string& service : to_acquire) {
    std::vector<KvTxnOp> group;
    group.push_back(
        {"lock", ServiceLockKey(options_.prefix, service), options_.member_id, 0, lease->id});
    if (options_.ledger != nullptr) {
      group.push_back({"get-or-empty", HandoverStateKey(options_.prefix, service), "", 0, ""});
      group.push_back({"get-or-empty", PendingEventsKey(options_.prefix, service), "", 0, ""});
    }
    groups.push_back(std::move(group));
  }
  const auto round_started = std::chrono::steady_clock::now();
  const std::vector<KvTxnGroupOutcome> outcomes = RunGroups(*lease, groups);
  // Locks refused for a lock-delay: a previous holder's session was
  // invalidated before this round began (the membership change that gave
  // us its services showed it), so its lock-delay, the deployment's own,
  // ends at most lock_delay after the round's start. The next round runs
  // then rather than up to a retry interval later, nor a whole refused
  // round later: the takeover after a crash is that much shorter.
  const bool delayed =
      std::any_of(outcomes.begin(), outcomes.end(), [](const KvTxnGroupOutcome& o) {
        return o.refused && o.why.find("due to lock delay") != std::string::npos;
      });
  if (!delayed) {
    lock_delay_since_.reset();
  } else if (!lock_delay_since_ || *lock_delay_since_ + options_.lock_delay <= round_started) {
    // A first refusal, or one from a later lock-delay than the one waited for.
    lock_delay_since_ = round_started;
  }
  std::size_t acquired_count = 0;
  for (std::size_t i = 0; i < to_acquire.size(); ++i) {
    const std::string& service = to_acquire[i];
    const KvTxnGroupOutcome& outcome = outcomes[i];
    if (!outcome.committed || outcome.results[0].session != lease->id) continue;
    // The epoch is the LockIndex of this acquisition.
    const std::uint64_t epoch = outcome.results[0].lock_index;
    std::optional<std::string> state;
    std::optional<std::string> pending;
    std::uint64_t state_index = 0;
    // An absent key comes back as the operation's own entry, index 0.
    if (options_.ledger != nullptr && outcome.results[1].modify_index != 0) {
      state = outcome.results[1].value;
      state_index = outcome.results[1].modify_index;
    }
    if (options_.ledger != nullptr && outcome.results[2].modify_index != 0) {
      pending = outcome.results[2].value;
    }
    {
      MutexLock lock(&mutex_);
      held_[service] = HeldLock{epoch, lease->generation, !options_.take_over};
    }
    state_index_[service] = state_index;
    if (options_.take_over)
      options_.take_over(service, epoch, std::move(state), std::move(pending));
    ++acquired_count;
    if (observer_ != nullptr) {
      observer_->OnLockAcquired();
      if (auto since = wanted_since_.find(service); since != wanted_since_.end()) {
        observer_->OnTakeover(clock_.Now() - since->second);
      }
    }
    wanted_since_.erase(service);
  }
  if (observer_ != nullptr) {
    MutexLock lock(&mutex_);
    observer_->OnOwned(OpenCountLocked());
  }
  if (acquired_count > 0 || !to_release.empty()) {
    spdlog::info("cluster: took {} services, handed over {}", acquired_count, to_release.size());
  }
  if (options_.ledger != nullptr && clock_.Now() - last_state_round_ >= options_.retry_interval) {
    last_state_round_ = clock_.Now();
    WriteChangedStates(*lease);
  }
}

std::vector<KvTxnGroupOutcome> ClusterCoordinator::RunGroups(
    const SessionLease& lease, const std::vector<std::vector<KvTxnOp>>& groups) {
  // The worker gives up when asked to stop; Leave() (after the worker
  // stopped) finishes its writes.
  const bool on_worker = std::this_thread::get_id() == worker_id_;
  auto may_send = [&] {
    if (on_worker) {
      MutexLock lock(&mutex_);
      if (stop_) return false;
    }
    // Only while the session is certainly alive: what the transaction
    // writes is this owner's to write only then.
    return keeper_->ValidAt(lease.generation, clock_.Now());
  };
  Status failure;
  std::vector<KvTxnGroupOutcome> outcomes =
      SendTxnGroupsConcurrently(writes_, groups, may_send, &failure);
  if (!failure.ok()) {
    // Unknown outcome: the callers look again.
    spdlog::warn("cluster: a Consul transaction failed: {}", failure.message());
  }
  // A lock held or within its lock-delay is the expected refusal; any other
  // (a Consul without a verb used here, a state written by another replica)
  // must show in the log, once per call: a round may refuse thousands alike.
  for (const KvTxnGroupOutcome& outcome : outcomes) {
    if (outcome.refused && outcome.why.find("lock is already held") == std::string::npos &&
        outcome.why.find("due to lock delay") == std::string::npos) {
      spdlog::warn("cluster: Consul refused operations of a transaction: {}", outcome.why);
      break;
    }
  }
  return outcomes;
}

void ClusterCoordinator::WriteChangedStates(const SessionLease& lease) {
  WriteStates(lease, options_.ledger->TakeChanged(options_.state_writes_per_round));
}

void ClusterCoordinator::WriteStates(const SessionLease& lease,
                                     std::vector<std::pair<std::string, ReportedService>> states) {
  // Only services whose state this replica may write (a successor may hold
  // the others).
  std::erase_if(states, [this](const auto& entry) { return !state_index_.contains(entry.first); });
  if (states.empty()) return;
  // Indexes unknown after a write whose outcome was not seen: read first.
  std::vector<std::vector<KvTxnOp>> reads;
  std::vector<std::string> unread;
  for (const auto& [service, state] : states) {
    if (!state_index_.at(service)) {
      reads.push_back({{"get-or-empty", HandoverStateKey(options_.prefix, service), "", 0, ""}});
      unread.push_back(service);
    }
  }
  if (!reads.empty()) {
    const std::vector<KvTxnGroupOutcome> outcomes = RunGroups(lease, reads);
    for (std::size_t i = 0; i < unread.size(); ++i) {
      if (outcomes[i].committed) state_index_[unread[i]] = outcomes[i].results[0].modify_index;
    }
  }

  std::vector<std::vector<KvTxnOp>> writes;
  std::vector<std::string> written;
  for (auto& [service, state] : states) {
    std::optional<std::uint64_t>& known = state_index_.at(service);
    if (!known) {
      options_.ledger->MarkChanged(service);
      continue;
    }
    std::string value = EncodeHandoverState(state);
    if (value.empty()) {
      // Too large to keep: better no state (the successor syncs silently)
      // than a stale one it would re-emit from.
      spdlog::warn(
          "cluster: the handover state of {} ({} instances) is larger than {} bytes; not "
          "kept in Consul",
          service, state.instances.size(), kMaxHandoverStateBytes);
      if (*known != 0)
        (void)writes_.front()->Delete(HandoverStateKey(options_.prefix, service), known);
      known = 0;
      continue;
    }
    writes.push_back(
        {{"cas", HandoverStateKey(options_.prefix, service), std::move(value), *known, ""}});
    written.push_back(service);
  }
  if (writes.empty()) return;
  const std::vector<KvTxnGroupOutcome> outcomes = RunGroups(lease, writes);
  for (std::size_t i = 0; i < written.size(); ++i) {
    const std::string& service = written[i];
    const KvTxnGroupOutcome& outcome = outcomes[i];
    if (outcome.committed) {
      // The new ModifyIndex, for the next check-and-set.
      state_index_[service] = outcome.results[0].modify_index;
    } else if (outcome.refused) {
      // Someone wrote it since we read it, while we believed we held the
      // lock: another replica owns it now. Never overwrite its state.
      spdlog::error(
          "cluster: the handover state of {} was written by another replica ({}); this one "
          "stops writing it",
          service, outcome.why);
      state_index_.erase(service);
    } else {
      // Not sent, or its outcome unseen: read the index before the next try.
      state_index_[service].reset();
      options_.ledger->MarkChanged(service);
    }
  }
}

void ClusterCoordinator::ReleaseLocks(const SessionLease& lease,
                                      const std::vector<std::string>& services) {
  std::vector<std::vector<KvTxnOp>> unlocks;
  unlocks.reserve(services.size());
  for (const std::string& service : services) {
    unlocks.push_back({{"unlock", ServiceLockKey(options_.prefix, service), "", 0, lease.id}});
  }
  const std::vector<KvTxnGroupOutcome> outcomes = RunGroups(lease, unlocks);
  std::size_t failed = 0;
  for (const KvTxnGroupOutcome& outcome : outcomes) failed += outcome.committed ? 0 : 1;
  if (failed > 0) {
    spdlog::warn(
        "cluster: releasing {} of {} service locks failed; Consul frees them with the session",
        failed, services.size());
  }
}

void ClusterCoordinator::Forget(const std::vector<std::string>& services) {
  for (const std::string& service : services) {
    state_index_.erase(service);
    if (options_.ledger != nullptr) options_.ledger->End(service);
  }
}

bool ClusterCoordinator::Open(const std::string& service, std::uint64_t epoch) {
  MutexLock lock(&mutex_);
  auto it = held_.find(service);
  if (it == held_.end() || it->second.epoch != epoch) return false;
  it->second.open = true;
  if (observer_ != nullptr) observer_->OnOwned(OpenCountLocked());
  return true;
}

std::size_t ClusterCoordinator::OpenCountLocked() const {
  std::size_t open = 0;
  for (const auto& [service, held] : held_) open += held.open ? 1 : 0;
  return open;
}

std::optional<std::uint64_t> ClusterCoordinator::EpochFor(std::string_view service) const {
  HeldLock held;
  {
    MutexLock lock(&mutex_);
    auto it = held_.find(std::string(service));
    if (it == held_.end() || !it->second.open) return std::nullopt;
    held = it->second;
  }
  if (!keeper_ || !keeper_->ValidAt(held.generation, clock_.Now())) return std::nullopt;
  return held.epoch;
}

std::optional<std::string> ClusterCoordinator::LiveSessionId() const {
  if (!keeper_) return std::nullopt;
  std::optional<SessionLease> lease = keeper_->Current();
  if (!lease || !keeper_->ValidAt(lease->generation, clock_.Now())) return std::nullopt;
  return lease->id;
}

ClusterSnapshot ClusterCoordinator::Snapshot() const {
  ClusterSnapshot snapshot;
  std::optional<SessionLease> lease = keeper_ ? keeper_->Current() : std::nullopt;
  snapshot.session_valid = lease && keeper_->ValidAt(lease->generation, clock_.Now());
  MutexLock lock(&mutex_);
  snapshot.announced = lease && announced_generation_ == lease->generation;
  if (members_) snapshot.members = *members_;
  snapshot.services = services_ ? services_->size() : 0;
  snapshot.owned = held_.size();
  return snapshot;
}

void ClusterCoordinator::StopThreads() {
  {
    MutexLock lock(&mutex_);
    stop_ = true;
  }
  wake_.SignalAll();
  if (worker_.joinable()) worker_.join();
  catalog_watch_.reset();
  members_watch_.reset();
}

void ClusterCoordinator::Leave() {
  std::unordered_map<std::string, HeldLock> held;
  {
    MutexLock lock(&mutex_);
    held = std::exchange(held_, {});  // the gate closes first
  }
  StopThreads();
  if (!keeper_) return;
  const std::optional<SessionLease> lease = keeper_->Current();
  if (lease) {
    // The sinks drained: what they acknowledged is final. Written while
    // the session is still trusted, before any lock goes.
    std::size_t written = 0;
    std::vector<std::string> services;
    services.reserve(held.size());
    for (const auto& [service, lock] : held) services.push_back(service);
    if (options_.ledger != nullptr) {
      std::vector<std::pair<std::string, ReportedService>> last;
      for (const std::string& service : services) {
        if (auto state = options_.ledger->TakeChanged(service)) {
          last.emplace_back(service, std::move(*state));
        }
      }
      written = last.size();
      WriteStates(*lease, std::move(last));
    }
    ReleaseLocks(*lease, services);
    const std::string member_key = MemberKey(options_.prefix, options_.member_id);
    if (auto released = writes_.front()->Release(member_key, lease->id, "");
        released.ok() && *released) {
      // Remove the key only as we left it, never a successor's with the
      // same member id.
      if (auto entry = writes_.front()->Get(member_key);
          entry.ok() && *entry && (*entry)->session.empty()) {
        (void)writes_.front()->Delete(member_key, (*entry)->modify_index);
      }
    }
    spdlog::info("cluster: left; wrote {} handover states, released {} services", written,
                 held.size());
  }
  keeper_->Stop(/*destroy=*/true);
  std::vector<std::string> left;
  left.reserve(held.size());
  for (const auto& [service, lock] : held) left.push_back(service);
  Forget(left);
  if (observer_ != nullptr) observer_->OnOwned(0);
}

void ClusterCoordinator::Abandon() {
  StopThreads();
  {
    MutexLock lock(&mutex_);
    held_.clear();
  }
  if (keeper_) keeper_->Stop(/*destroy=*/false);
}

}  // namespace hb
