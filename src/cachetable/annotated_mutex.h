// AnnotatedMutex: an absl::Mutex that ThreadSanitizer can see through.
//
// Debian's Abseil is built without TSAN instrumentation, so in a -DFERN_SANITIZE=thread build
// TSAN does not observe absl::Mutex's synchronization and reports every access it guards as a
// race (and absl::Condition callbacks, which run on the unlocking thread, as races on the
// waiter's stack). This wrapper tells TSAN that Unlock releases and Lock acquires; waits go
// through absl::CondVar (never absl::Condition), so all guarded state is read by the thread
// that holds the mutex. Outside TSAN builds the annotations compile to nothing.
//
// Thread-safety: the same as absl::Mutex.
#ifndef FERN_CACHETABLE_ANNOTATED_MUTEX_H_
#define FERN_CACHETABLE_ANNOTATED_MUTEX_H_

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

namespace fern {

class ABSL_LOCKABLE AnnotatedMutex {
 public:
  AnnotatedMutex() = default;
  AnnotatedMutex(const AnnotatedMutex&) = delete;
  AnnotatedMutex& operator=(const AnnotatedMutex&) = delete;

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
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

  // Atomically releases the mutex and waits on `cv`; holds the mutex again on return.
  // Spurious wake-ups happen: callers re-check their predicate in a loop.
  void Wait(absl::CondVar* cv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    Releasing();
    cv->Wait(&mu_);
    Acquired();
  }
  // Like Wait, for at most `timeout`; returns true if it timed out.
  bool WaitWithTimeout(absl::CondVar* cv, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    Releasing();
    const bool timed_out = cv->WaitWithTimeout(&mu_, timeout);
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

// Scoped lock of an AnnotatedMutex.
class ABSL_SCOPED_LOCKABLE AnnotatedMutexLock {
 public:
  explicit AnnotatedMutexLock(AnnotatedMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~AnnotatedMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  AnnotatedMutexLock(const AnnotatedMutexLock&) = delete;
  AnnotatedMutexLock& operator=(const AnnotatedMutexLock&) = delete;

 private:
  AnnotatedMutex* const mu_;
};

}  // namespace fern

#endif  // FERN_CACHETABLE_ANNOTATED_MUTEX_H_
