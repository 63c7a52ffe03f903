// PairLock: the reader/writer lock of one cached pair.
//
// Unlike absl::Mutex's reader/writer mode it belongs to no thread: a pin is a PinnedPair
// object that may be moved and unpinned later, and a thread may hold any number of pins at
// once (a parent and its child).
//
// The lock's state is one atomic word (readers, the writer bit, waiting writers), so taking
// and releasing it without contention is one atomic operation: every point read takes and
// drops a read lock on each node of its path. Only a thread that must wait takes the
// internal mutex and sleeps on the condition variable; a release wakes sleepers only when
// there are any (counted in sleepers_, announced before the sleeper's last look at the
// state, so a release either sees the sleeper or the sleeper sees the release).
//
// Writers are preferred: once a writer waits, new readers wait behind it (and TryLockRead
// fails), so a stream of readers cannot starve a writer. The price is that a thread that
// already holds a read lock on a pair must not ask for another read lock on the same pair.
//
// Thread-safety: every method may be called from any thread; the Unlock* calls must match a
// lock the caller's pin holds.
#ifndef FERN_CACHETABLE_PAIR_LOCK_H_
#define FERN_CACHETABLE_PAIR_LOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cachetable/annotated_mutex.h"

namespace fern {

class PairLock {
 public:
  PairLock() = default;
  PairLock(const PairLock&) = delete;
  PairLock& operator=(const PairLock&) = delete;

  // Blocking acquisitions.
  void LockRead();
  void LockWrite();
  // Non-blocking acquisitions: true if the lock was taken at once.
  bool TryLockRead();
  bool TryLockWrite();

  void UnlockRead();
  void UnlockWrite();
  // Turns the caller's write lock into a read lock without letting a writer in between.
  void DowngradeToRead();

 private:
  // LockWrite tries kWriteSpinAttempts times, kPausesPerAttempt CPU pauses apart (~10 us in
  // all at ~18 ns a pause), before it sleeps: committers that all inject into the root at
  // once hold its write lock for a few microseconds each, and a sleep and wake-up costs two
  // context switches, dear on a virtual machine (fillsync with 4 threads: 23.6-24.6k vs
  // 22.2-23.3k commits/s, alternating runs). A write lock held long (a flush) costs a
  // waiter ~10 us of spinning before it sleeps.
  static constexpr int kWriteSpinAttempts = 8;
  static constexpr int kPausesPerAttempt = 64;

  // state_: readers in the low 32 bits, then the writer bit, then the count of waiting
  // writers (in units of kWaitingWriter).
  static constexpr uint64_t kReaders = 0xffffffffu;
  static constexpr uint64_t kWriter = uint64_t{1} << 32;
  static constexpr uint64_t kWaitingWriter = uint64_t{1} << 33;

  // Wakes the sleepers, if any, after a release changed state_.
  void WakeSleepers();

  std::atomic<uint64_t> state_{0};
  std::atomic<int> sleepers_{0};  // threads in LockRead/LockWrite's slow path
  AnnotatedMutex mu_;             // only for sleeping on cv_
  absl::CondVar cv_;
};

}  // namespace fern

#endif  // FERN_CACHETABLE_PAIR_LOCK_H_
