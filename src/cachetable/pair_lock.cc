#include "cachetable/pair_lock.h"

namespace fern {

namespace {

// Tells the CPU this is a spin-wait loop (x86 PAUSE, Arm YIELD); nothing elsewhere.
inline void CpuPause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}

}  // namespace

void PairLock::LockRead() {
  AnnotatedMutexLock lock(&mu_);
  while (!CanRead()) mu_.Wait(&cv_);
  ++readers_;
}

void PairLock::LockWrite() {
  for (int attempt = 0; attempt < kWriteSpinAttempts; ++attempt) {
    if (TryLockWrite()) return;
    for (int i = 0; i < kPausesPerAttempt; ++i) CpuPause();
  }
  AnnotatedMutexLock lock(&mu_);
  ++waiting_writers_;
  while (!CanWrite()) mu_.Wait(&cv_);
  --waiting_writers_;
  writer_ = true;
}

bool PairLock::TryLockRead() {
  AnnotatedMutexLock lock(&mu_);
  if (!CanRead()) return false;
  ++readers_;
  return true;
}

bool PairLock::TryLockWrite() {
  AnnotatedMutexLock lock(&mu_);
  if (!CanWrite()) return false;
  writer_ = true;
  return true;
}

void PairLock::UnlockRead() {
  AnnotatedMutexLock lock(&mu_);
  --readers_;
  // Only a writer can be waiting on a lock that readers hold.
  if (readers_ == 0 && waiting_writers_ > 0) cv_.SignalAll();
}

void PairLock::UnlockWrite() {
  AnnotatedMutexLock lock(&mu_);
  writer_ = false;
  cv_.SignalAll();
}

void PairLock::DowngradeToRead() {
  AnnotatedMutexLock lock(&mu_);
  writer_ = false;
  readers_ = 1;
  // Waiting readers may now enter unless a writer waits too.
  cv_.SignalAll();
}

}  // namespace fern
