#pragma once

// Holds this replica's Consul session: creates it, renews it well inside
// its TTL, creates a new one when it is lost, and destroys it on a graceful
// leave. Its answer to "may I act under my session now?" is time-based, so
// it stays right when the process was frozen (SIGSTOP, a stalled VM):
//
// Consul keeps a session at least its TTL after it processed a renewal, and
// that renewal was processed after we sent it. So the session is certainly
// alive until (send time of the last successful renewal) + TTL; the keeper
// says valid only until that instant minus a margin (a fifth of the TTL),
// on the steady clock, which keeps counting while the process is stopped.
// After that the session may be gone and its locks taken by another
// replica: nothing may be emitted under it until a renewal succeeds again
// (if Consul had not reaped it, its locks were never anyone else's).
//
// Consul may reap a session up to twice its TTL late, and may hand back a
// longer TTL than asked on a renewal; neither extends what the keeper
// trusts: it counts the TTL it asked for, and renews every third of it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "bridge/cluster/consul_kv_client.h"
#include "bridge/common/clock.h"
#include "bridge/common/mutex.h"

namespace hb {

struct SessionKeeperOptions {
  std::string name;  // shown in Consul's session list
  std::chrono::milliseconds ttl{std::chrono::seconds(15)};
  std::chrono::milliseconds lock_delay{std::chrono::seconds(15)};
};

// What the keeper holds at one moment.
struct SessionLease {
  std::string id;
  // Counts sessions created by this keeper: a lock taken under one
  // generation is never used under another.
  std::uint64_t generation = 0;
  SteadyTime valid_until{};
};

class SessionKeeperObserver {
 public:
  virtual ~SessionKeeperObserver() = default;
  virtual void OnSessionRenewFailed() {}
  // A new session (generation) or the loss of the current one.
  virtual void OnSessionChanged() {}
};

class SessionKeeper {
 public:
  SessionKeeper(SessionKeeperOptions options, std::unique_ptr<ConsulKvClient> client,
                const Clock& clock, SessionKeeperObserver* observer);
  ~SessionKeeper();
  SessionKeeper(const SessionKeeper&) = delete;
  SessionKeeper& operator=(const SessionKeeper&) = delete;

  void Start();
  // Stops renewing; with `destroy`, destroys the session first (a graceful
  // leave: Consul releases what it still holds, with lock-delay, so the
  // caller releases its locks itself before).
  void Stop(bool destroy);

  // The session, when one exists (valid or not); any thread.
  std::optional<SessionLease> Current() const;
  // Whether `generation` is the current session and may act at `now`.
  bool ValidAt(std::uint64_t generation, SteadyTime now) const;

  // Renewal cadence and validity margin, as fractions of the TTL.
  std::chrono::milliseconds renew_interval() const { return options_.ttl / 3; }
  std::chrono::milliseconds validity() const { return options_.ttl - options_.ttl / 5; }

 private:
  void Run();
  // One step: create or renew; returns how long to wait before the next.
  std::chrono::milliseconds Step();

  const SessionKeeperOptions options_;
  std::unique_ptr<ConsulKvClient> client_;  // keeper thread only
  const Clock& clock_;
  SessionKeeperObserver* const observer_;

  mutable Mutex mutex_;
  CondVar wake_;
  bool stop_ GUARDED_BY(mutex_) = false;
  std::optional<SessionLease> lease_ GUARDED_BY(mutex_);
  std::uint64_t next_generation_ GUARDED_BY(mutex_) = 1;
  int create_failures_ = 0;  // keeper thread
  std::thread thread_;
};

}  // namespace hb
