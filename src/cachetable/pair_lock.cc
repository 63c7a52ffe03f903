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

void PairLock::WakeSleepers() {
  if (sleepers_.load() == 0) return;
  // Taking mu_ orders this after a sleeper's last look at the state: it is either waiting
  // on cv_ already or will see the new state before it waits.
  AnnotatedMutexLock lock(&mu_);
  cv_.SignalAll();
}

bool PairLock::TryLockRead() {
  uint64_t s = state_.load();
  do {
    if ((s & ~kReaders) != 0) return false;  // a writer holds it or waits
  } while (!state_.compare_exchange_weak(s, s + 1));
  return true;
}

bool PairLock::TryLockWrite() {
  uint64_t s = state_.load();
  do {
    if ((s & (kReaders | kWriter)) != 0) return false;
  } while (!state_.compare_exchange_weak(s, s | kWriter));
  return true;
}

void PairLock::LockRead() {
  if (TryLockRead()) return;
  AnnotatedMutexLock lock(&mu_);
  sleepers_.fetch_add(1);
  while (!TryLockRead()) mu_.Wait(&cv_);
  sleepers_.fetch_sub(1);
}

void PairLock::LockWrite() {
  for (int attempt = 0; attempt < kWriteSpinAttempts; ++attempt) {
    if (TryLockWrite()) return;
    for (int i = 0; i < kPausesPerAttempt; ++i) CpuPause();
  }
  AnnotatedMutexLock lock(&mu_);
  sleepers_.fetch_add(1);
  // Announced, this writer holds back new readers until it gets the lock.
  uint64_t s = state_.fetch_add(kWaitingWriter) + kWaitingWriter;
  for (;;) {
    if ((s & (kReaders | kWriter)) == 0) {
      if (state_.compare_exchange_weak(s, (s - kWaitingWriter) | kWriter)) break;
      continue;  // s was reloaded
    }
    mu_.Wait(&cv_);
    s = state_.load();
  }
  sleepers_.fetch_sub(1);
}

void PairLock::UnlockRead() {
  const uint64_t s = state_.fetch_sub(1) - 1;
  // Only a writer can be waiting on a lock that readers hold.
  if ((s & kReaders) == 0 && s >= kWaitingWriter) WakeSleepers();
}

void PairLock::UnlockWrite() {
  state_.fetch_and(~kWriter);
  WakeSleepers();
}

void PairLock::DowngradeToRead() {
  // The writer bit goes and one reader comes in one step: no writer can get in between.
  state_.fetch_add(1 - kWriter);
  // Waiting readers may now enter unless a writer waits too.
  WakeSleepers();
}

}  // namespace fern
