#include "cachetable/pair_lock.h"

namespace fern {

void PairLock::LockRead() {
  AnnotatedMutexLock lock(&mu_);
  while (!CanRead()) mu_.Wait(&cv_);
  ++readers_;
}

void PairLock::LockWrite() {
  for (int attempt = 0; attempt < kWriteSpinAttempts; ++attempt) {
    if (TryLockWrite()) return;
    for (int i = 0; i < kPausesPerAttempt; ++i) __builtin_ia32_pause();
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
