#pragma once

// A mutex, its RAII locks and a condition variable that clang's
// thread-safety analysis understands (bridge/common/thread_annotations.h).
// They wrap the standard ones and cost nothing more; what they add is that
// the compiler knows which lock a function takes, so a member declared
// GUARDED_BY(mutex_) cannot be touched without it.
//
//   Mutex mutex_;
//   std::deque<Item> queue_ GUARDED_BY(mutex_);
//   CondVar ready_;
//
//   void Push(Item item) EXCLUDES(mutex_) {
//     MutexLock lock(&mutex_);
//     queue_.push_back(std::move(item));
//     ready_.SignalAll();
//   }
//   std::optional<Item> Pop(SteadyTime deadline) EXCLUDES(mutex_) {
//     MutexLock lock(&mutex_);
//     while (queue_.empty() && ready_.WaitUntil(&mutex_, deadline)) {}
//     ...
//   }
//
// A condition is re-checked in the caller's own loop rather than in a
// predicate lambda: the analysis checks a lambda's body as a function of
// its own, without the caller's locks, so it could not see the lock held.
//
// All of it is safe for concurrent use, as the standard types are.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "bridge/common/thread_annotations.h"

namespace hb {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mutex_.lock(); }
  void Unlock() RELEASE() { mutex_.unlock(); }
  // Tells the analysis that the caller holds the lock, where it cannot see
  // it (a callback run under the lock). Checks nothing at run time.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mutex_;
};

// Holds `mutex` from construction to destruction. Unlock() and Lock() let
// a caller step out of the lock for a slow call (a delivery, a file sync)
// and take it again; the destructor releases it only if held.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_->Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mutex_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() {
    held_ = false;
    mutex_->Unlock();
  }
  void Lock() ACQUIRE() {
    mutex_->Lock();
    held_ = true;
  }

 private:
  Mutex* const mutex_;
  bool held_ = true;
};

// A readers-writer lock: many shared holders or one exclusive holder.
class CAPABILITY("shared mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ACQUIRE() { mutex_.lock(); }
  void Unlock() RELEASE() { mutex_.unlock(); }
  void LockShared() ACQUIRE_SHARED() { mutex_.lock_shared(); }
  void UnlockShared() RELEASE_SHARED() { mutex_.unlock_shared(); }
  // Tells the analysis that the caller holds the lock, at least shared,
  // where it cannot see it (a callback run under the lock). Checks nothing
  // at run time.
  void AssertReaderHeld() const HB_THREAD_ANNOTATION(assert_shared_capability(this)) {}

 private:
  friend class SharedCondVar;
  std::shared_mutex mutex_;
};

// Holds `mutex` exclusively from construction to destruction; Unlock() and
// Lock() step out of it and back, as MutexLock's do.
class SCOPED_CAPABILITY WriterMutexLock {
 public:
  explicit WriterMutexLock(SharedMutex* mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_->Lock(); }
  ~WriterMutexLock() RELEASE() {
    if (held_) mutex_->Unlock();
  }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

  void Unlock() RELEASE() {
    held_ = false;
    mutex_->Unlock();
  }
  void Lock() ACQUIRE() {
    mutex_->Lock();
    held_ = true;
  }

 private:
  SharedMutex* const mutex_;
  bool held_ = true;
};

// Holds `mutex` shared for its lifetime.
class SCOPED_CAPABILITY ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex* mutex) ACQUIRE_SHARED(mutex) : mutex_(mutex) {
    mutex_->LockShared();
  }
  ~ReaderMutexLock() RELEASE() { mutex_->UnlockShared(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex* const mutex_;
};

// A condition variable waited on with a held hb::Mutex, which it releases
// while waiting and holds again when it returns. Wake-ups may be spurious:
// callers loop on their condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex* mutex) REQUIRES(mutex) {
    std::unique_lock<std::mutex> lock(mutex->mutex_, std::adopt_lock);
    condition_.wait(lock);
    lock.release();  // still held: the caller's lock owns it
  }

  // Waits until woken or `deadline`. Returns false once the deadline has
  // passed, so `while (!condition && cv.WaitUntil(&mutex, deadline)) {}`
  // waits for the condition with a deadline.
  bool WaitUntil(Mutex* mutex, std::chrono::steady_clock::time_point deadline) REQUIRES(mutex) {
    std::unique_lock<std::mutex> lock(mutex->mutex_, std::adopt_lock);
    const std::cv_status status = condition_.wait_until(lock, deadline);
    lock.release();
    return status == std::cv_status::no_timeout;
  }

  void Signal() { condition_.notify_one(); }
  void SignalAll() { condition_.notify_all(); }

 private:
  std::condition_variable condition_;
};

// CondVar's counterpart for a SharedMutex held exclusively.
class SharedCondVar {
 public:
  SharedCondVar() = default;
  SharedCondVar(const SharedCondVar&) = delete;
  SharedCondVar& operator=(const SharedCondVar&) = delete;

  // As CondVar::WaitUntil.
  bool WaitUntil(SharedMutex* mutex, std::chrono::steady_clock::time_point deadline)
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

}  // namespace hb
