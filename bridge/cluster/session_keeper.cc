#include "bridge/cluster/session_keeper.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace hb {

SessionKeeper::SessionKeeper(SessionKeeperOptions options, std::unique_ptr<ConsulKvClient> client,
                             const Clock& clock, SessionKeeperObserver* observer)
    : options_(std::move(options)), client_(std::move(client)), clock_(clock), observer_(observer) {
  // No request may outlast the window it is meant to keep open.
  client_->set_timeout(std::max(std::chrono::milliseconds(100), options_.ttl / 5));
}

SessionKeeper::~SessionKeeper() { Stop(false); }

void SessionKeeper::Start() {
  MutexLock lock(&mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void SessionKeeper::Stop(bool destroy) {
  {
    MutexLock lock(&mutex_);
    stop_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
  std::optional<SessionLease> lease;
  {
    MutexLock lock(&mutex_);
    lease = std::exchange(lease_, std::nullopt);
  }
  if (destroy && lease) {
    if (Status destroyed = client_->DestroySession(lease->id); !destroyed.ok()) {
      spdlog::warn("cluster: destroying session {} failed ({}); Consul reaps it after its TTL",
                   lease->id, destroyed.message());
    }
  }
}

std::optional<SessionLease> SessionKeeper::Current() const {
  MutexLock lock(&mutex_);
  return lease_;
}

bool SessionKeeper::ValidAt(std::uint64_t generation, SteadyTime now) const {
  MutexLock lock(&mutex_);
  return lease_ && lease_->generation == generation && now < lease_->valid_until;
}

void SessionKeeper::Run() {
  MutexLock lock(&mutex_);
  while (!stop_) {
    lock.Unlock();
    const std::chrono::milliseconds wait = Step();
    lock.Lock();
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (!stop_ && wake_.WaitUntil(&mutex_, deadline)) {
    }
  }
}

std::chrono::milliseconds SessionKeeper::Step() {
  std::optional<SessionLease> lease = Current();
  const SteadyTime sent_at = clock_.Now();
  if (!lease) {
    auto created = client_->CreateSession({options_.name, options_.ttl, options_.lock_delay});
    if (!created.ok()) {
      ++create_failures_;
      spdlog::warn("cluster: cannot create a Consul session: {}", created.status().message());
      // Back off from a tenth of the TTL up to the TTL.
      return std::min(options_.ttl, options_.ttl / 10 * (1 << std::min(create_failures_, 4)));
    }
    create_failures_ = 0;
    {
      MutexLock lock(&mutex_);
      lease_ = SessionLease{created->id, next_generation_++, sent_at + validity()};
    }
    spdlog::info("cluster: session {} created (TTL {} ms, lock-delay {} ms)", created->id,
                 options_.ttl.count(), options_.lock_delay.count());
    if (observer_ != nullptr) observer_->OnSessionChanged();
    return renew_interval();
  }
  auto renewed = client_->RenewSession(lease->id);
  if (renewed.ok()) {
    if (*renewed > options_.ttl) {
      // Consul asks for less frequent renewals; what the keeper trusts stays
      // the TTL it asked for, and so does its cadence.
      spdlog::debug("cluster: session {} renewed with a longer TTL ({} ms) than asked", lease->id,
                    renewed->count());
    }
    MutexLock lock(&mutex_);
    if (lease_ && lease_->generation == lease->generation) {
      lease_->valid_until = sent_at + std::min(*renewed, options_.ttl) - options_.ttl / 5;
    }
    return renew_interval();
  }
  if (observer_ != nullptr) observer_->OnSessionRenewFailed();
  if (renewed.status().code() == StatusCode::kNotFound) {
    spdlog::warn(
        "cluster: session {} is gone (reaped, or its node check failed); its locks are "
        "lost, creating a new one",
        lease->id);
    {
      MutexLock lock(&mutex_);
      lease_.reset();
    }
    if (observer_ != nullptr) observer_->OnSessionChanged();
    return std::chrono::milliseconds(0);
  }
  spdlog::warn("cluster: renewing session {} failed: {}", lease->id, renewed.status().message());
  // Try again soon: the validity window is two renewals wide.
  return std::max(std::chrono::milliseconds(50), options_.ttl / 10);
}

}  // namespace hb
