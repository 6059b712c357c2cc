#pragma once

// The Consul test server's one lock, in the form clang's thread-safety
// analysis checks (bridge/common/thread_annotations.h), so a member
// declared GUARDED_BY(mutex_) cannot be touched without it. A
// readers-writer lock: answers are built under a shared lock, as Consul
// serves reads from a snapshot, and a large read (the whole checks table
// is 32 MB at 100,000 instances) never holds up other reads. Writes and
// waits take it exclusively.
//
// bridge/common/mutex.h has no condition variable for its SharedMutex, and
// the server's callbacks (an endpoint's index, its answer) run under the
// lock where the analysis cannot see it: hence this small variant with
// AssertReaderHeld().

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "bridge/common/thread_annotations.h"

namespace hb::test_support {

class CAPABILITY("mutex") ServerMutex {
 public:
  ServerMutex() = default;
  ServerMutex(const ServerMutex&) = delete;
  ServerMutex& operator=(const ServerMutex&) = delete;

  void Lock() ACQUIRE() { mutex_.lock(); }
  void Unlock() RELEASE() { mutex_.unlock(); }
  void LockShared() ACQUIRE_SHARED() { mutex_.lock_shared(); }
  void UnlockShared() RELEASE_SHARED() { mutex_.unlock_shared(); }
  // Tell the analysis that the caller holds the lock (at least shared), in
  // a callback run under it. Check nothing at run time.
  void AssertReaderHeld() const HB_THREAD_ANNOTATION(assert_shared_capability(this)) {}

 private:
  friend class ServerCondVar;
  std::shared_mutex mutex_;
};

// Holds the lock exclusively; Unlock() and Lock() step out of it and back
// (the destructor releases it only if held).
class SCOPED_CAPABILITY ServerLock {
 public:
  explicit ServerLock(ServerMutex* mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_->Lock(); }
  ~ServerLock() RELEASE() {
    if (held_) mutex_->Unlock();
  }
  ServerLock(const ServerLock&) = delete;
  ServerLock& operator=(const ServerLock&) = delete;

  void Unlock() RELEASE() {
    held_ = false;
    mutex_->Unlock();
  }
  void Lock() ACQUIRE() {
    mutex_->Lock();
    held_ = true;
  }

 private:
  ServerMutex* const mutex_;
  bool held_ = true;
};

// Holds the lock shared for its lifetime.
class SCOPED_CAPABILITY ServerReadLock {
 public:
  explicit ServerReadLock(ServerMutex* mutex) ACQUIRE_SHARED(mutex) : mutex_(mutex) {
    mutex_->LockShared();
  }
  ~ServerReadLock() RELEASE() { mutex_->UnlockShared(); }
  ServerReadLock(const ServerReadLock&) = delete;
  ServerReadLock& operator=(const ServerReadLock&) = delete;

 private:
  ServerMutex* const mutex_;
};

// Waited on with the lock held exclusively, which it releases while
// waiting. Wake-ups may be spurious: callers loop on their condition.
class ServerCondVar {
 public:
  ServerCondVar() = default;
  ServerCondVar(const ServerCondVar&) = delete;
  ServerCondVar& operator=(const ServerCondVar&) = delete;

  // Returns false once `deadline` has passed.
  bool WaitUntil(ServerMutex* mutex, std::chrono::steady_clock::time_point deadline)
      REQUIRES(mutex) {
    std::unique_lock<std::shared_mutex> lock(mutex->mutex_, std::adopt_lock);
    const std::cv_status status = condition_.wait_until(lock, deadline);
    lock.release();  // still held: the caller's lock owns it
    return status == std::cv_status::no_timeout;
  }
  void SignalAll() { condition_.notify_all(); }

 private:
  std::condition_variable_any condition_;
};

}  // namespace hb::test_support
