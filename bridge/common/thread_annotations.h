#pragma once

// Clang's thread-safety annotations (-Wthread-safety): a member declared
// GUARDED_BY(mutex_) may only be read or written with mutex_ held, and a
// function declared REQUIRES(mutex_) may only be called with it held. The
// compiler checks both at every use, so "which lock guards this" is a rule
// the build enforces rather than a comment. Clang builds turn the analysis
// on (cmake/ProjectOptions.cmake), and the ASan+UBSan pass of scripts/test
// is a clang build, so CI checks it; on other compilers the macros expand
// to nothing.
//
// Use them with the annotated hb::Mutex (bridge/common/mutex.h): std::mutex
// carries no annotations in libstdc++, so a lock taken through it is
// invisible to the analysis.

#if defined(__clang__) && defined(__has_attribute)
#define HB_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define HB_THREAD_ANNOTATION(x)
#endif

// On a class: its objects are a lock ("mutex") the analysis tracks.
#define CAPABILITY(x) HB_THREAD_ANNOTATION(capability(x))
// On an RAII class whose constructor acquires and destructor releases.
#define SCOPED_CAPABILITY HB_THREAD_ANNOTATION(scoped_lockable)

// On a data member: read or written only with the given lock held.
#define GUARDED_BY(x) HB_THREAD_ANNOTATION(guarded_by(x))
// On a pointer member: the pointee is accessed only with the lock held.
#define PT_GUARDED_BY(x) HB_THREAD_ANNOTATION(pt_guarded_by(x))

// Lock order: this lock is taken after (before) the given ones.
#define ACQUIRED_AFTER(...) HB_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) HB_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))

// On a function: the caller holds (exclusively / shared) the given locks.
#define REQUIRES(...) HB_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) HB_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))

// On a function: it acquires / releases the given locks (with no argument
// on a member of a capability class: the object itself).
#define ACQUIRE(...) HB_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) HB_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) HB_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) HB_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) HB_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))

// On a function: the caller must not hold the given locks (it takes them
// itself; holding one would deadlock).
#define EXCLUDES(...) HB_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

// On a function: checks at run time that the lock is held, and tells the
// analysis so from there on.
#define ASSERT_CAPABILITY(x) HB_THREAD_ANNOTATION(assert_capability(x))

// On a function: it returns a reference to the given lock.
#define RETURN_CAPABILITY(x) HB_THREAD_ANNOTATION(lock_returned(x))

// On a function the analysis cannot follow (a lock handed across a
// callback); say in a comment why it is safe.
#define NO_THREAD_SAFETY_ANALYSIS HB_THREAD_ANNOTATION(no_thread_safety_analysis)
