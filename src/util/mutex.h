// fern::Mutex: an absl::Mutex (reader-writer) that ThreadSanitizer can see through.
//
// Debian's Abseil is built without TSan instrumentation, so a -DFERN_SANITIZE=thread build
// does not observe absl::Mutex's synchronization and reports every access it guards as a
// race. This wrapper tells TSan that each unlock releases and each lock acquires. Waiting is
// done through the mutex (Wait/WaitWithDeadline on an absl::CondVar), never with
// absl::Condition, whose callbacks run on other threads. Outside TSan builds the
// annotations compile to nothing. Use it for every mutex in Fern.
//
// Thread-safety: the same as absl::Mutex.
#ifndef FERN_UTIL_MUTEX_H_
#define FERN_UTIL_MUTEX_H_

#include <mutex>

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

namespace fern {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    Acquired();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_.Unlock();
  }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    if (!mu_.TryLock()) return false;
    Acquired();
    return true;
  }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() {
    mu_.ReaderLock();
    Acquired();
  }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_.ReaderUnlock();
  }
  bool ReaderTryLock() ABSL_SHARED_TRYLOCK_FUNCTION(true) {
    if (!mu_.ReaderTryLock()) return false;
    Acquired();
    return true;
  }
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }
  void AssertReaderHeld() const ABSL_ASSERT_SHARED_LOCK() { mu_.AssertReaderHeld(); }

  // Atomically releases the mutex and waits on `cv`; holds it again on return. Spurious
  // wake-ups happen: callers re-check their predicate in a loop.
  void Wait(absl::CondVar* cv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    Releasing();
    cv->Wait(&mu_);
    Acquired();
  }
  // As Wait, for `timeout` at most; true if it passed.
  bool WaitWithTimeout(absl::CondVar* cv, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    Releasing();
    bool timed_out = cv->WaitWithTimeout(&mu_, timeout);
    Acquired();
    return timed_out;
  }
  // As Wait, until `deadline` at the latest; true if the deadline passed.
  bool WaitWithDeadline(absl::CondVar* cv, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    Releasing();
    bool timed_out = cv->WaitWithDeadline(&mu_, deadline);
    Acquired();
    return timed_out;
  }

 private:
  void Acquired() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
    __tsan_acquire(this);
#endif
  }
  void Releasing() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
    __tsan_release(this);
#endif
  }

  absl::Mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  // Takes over a mutex the caller already holds.
  MutexLock(Mutex* mu, std::adopt_lock_t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) : mu_(mu) {}
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_->ReaderLock(); }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Turns off absl::Mutex's deadlock detector for the process (OnDeadlockCycle::kIgnore), the
// default of release builds of Abseil. Debian builds Abseil without NDEBUG, which leaves the
// detector on: every lock taken while another is held then goes through one process-wide
// lock-order graph under a global lock, which serializes threads on Fern's nested locks (a
// pair's bucket, then its lock). Cachetable pin+unpin on separate pairs from 2 threads:
// 1.06 M/s with the detector, 32.5 M/s without (1 thread: 6.9 vs 15.3 M/s). Env::Open
// calls it.
void UseReleaseMutexDiagnostics();

}  // namespace fern

#endif  // FERN_UTIL_MUTEX_H_
