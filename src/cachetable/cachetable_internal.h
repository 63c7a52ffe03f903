// Cachetable::Impl: the cachetable's tables, clock and counters, shared by cachetable.cc
// (pins and files) and eviction.cc (the clock sweep). Internal to src/cachetable.
//
// Lock order: the table mutex `mu` may be held while taking a pair's internal state mutex
// (PairLock's or Pair::size_mu), never the reverse; neither is held while waiting for a
// PairLock or while an owner callback runs. A thread waiting for a PairLock holds a ref on
// the pair and no table mutex.
#ifndef FERN_CACHETABLE_CACHETABLE_INTERNAL_H_
#define FERN_CACHETABLE_CACHETABLE_INTERNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "cachetable/annotated_mutex.h"
#include "cachetable/cachetable.h"
#include "cachetable/clock_list.h"
#include "cachetable/pair.h"
#include "fern/status.h"

namespace fern {

// One sweeper's state on the clock: its hand, and whether a sweep from it is running (one
// sweep per head at a time; a second caller returns at once). The evictor owns one; the
// cleaner and checkpointer will own their own.
struct SweepHead {
  ClockHand hand;
  bool running = false;
};

struct Cachetable::Impl {
  explicit Impl(std::atomic<size_t>* size_bytes);
  ~Impl();

  // ---- pins (cachetable.cc) ----
  // Finds or fetches the pair and locks it in `lock` mode. With `wait` false, a pair that is
  // cached but locked in a conflicting mode yields Busy. On OK, *out holds a ref and the lock.
  Status Pin(CacheFileId file_id, BlockNum block, Lock lock, bool wait, Pair** out);
  // Runs the first fetch of a placeholder `pair` that the caller inserted write-locked, then
  // publishes it (downgrading to a read lock for kRead) or, on error, removes it.
  Status FetchPlaceholder(Pair* pair, Lock lock);
  Pair* PinNew(CacheFileId file_id, BlockNum block, std::unique_ptr<CacheValue> value);
  void Unpin(Pair* pair, bool write);
  void Remove(Pair* pair);
  // Called with `pair` freshly locked for a write pin. The place for the checkpoint's
  // copy-on-write: a checkpoint-pending dirty pair will be cloned for the checkpoint's
  // writer pool here before the client may change it. Nothing to do until checkpoints exist.
  void BeforeWritePin(Pair* pair);

  // ---- files (cachetable.cc) ----
  Status WriteDirty(CacheFileId file_id);
  Status CloseFile(CacheFileId file_id, bool write_dirty);

  // ---- helpers ----
  // Re-reads the value's MemoryBytes() into the pair's and the table's accounting.
  struct SizeChange {
    size_t before;
    size_t after;
  };
  SizeChange RefreshSize(Pair* pair);
  // Takes `pair` out of the map, the clock and its file, marks it removed and subtracts its
  // memory. Returns the memory it held. REQUIRES: the caller holds `pair->lock` exclusively.
  size_t UnlinkLocked(Pair* pair) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Writes a dirty pair through its owner. On OK the pair is clean; on error it stays dirty
  // and the error is recorded. REQUIRES: `pair->lock` held exclusively, `mu` not held.
  Status WriteLockedPair(Pair* pair) ABSL_LOCKS_EXCLUDED(mu);

  // ---- eviction (eviction.cc) ----
  // Sweeps the clock from `head` until size_bytes <= target_bytes, or until two full laps in
  // a row found nothing to do. Never blocks on a pair lock. Callable from any thread that
  // holds no table mutex; pins the caller holds are simply skipped.
  void Sweep(SweepHead* head, size_t target_bytes) ABSL_LOCKS_EXCLUDED(mu);
  // Visits one pair for eviction; may drop and retake `mu` around owner callbacks. Returns
  // true if it made progress (lowered a clock count, wrote, or freed memory).
  bool SweepVisit(Pair* pair) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  std::atomic<size_t>& size_bytes;

  AnnotatedMutex mu;
  absl::flat_hash_map<PairKey, Pair*> pairs ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<CacheFileId, std::unique_ptr<CacheFile>> files ABSL_GUARDED_BY(mu);
  CacheFileId next_file_id ABSL_GUARDED_BY(mu) = 1;
  ClockList clock ABSL_GUARDED_BY(mu);
  SweepHead evictor ABSL_GUARDED_BY(mu);
  Status last_write_error ABSL_GUARDED_BY(mu);

  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> full_evictions{0};
  std::atomic<uint64_t> partial_evictions{0};
  std::atomic<uint64_t> bytes_evicted{0};
  std::atomic<uint64_t> dirty_writes{0};
  std::atomic<uint64_t> write_errors{0};
};

}  // namespace fern

#endif  // FERN_CACHETABLE_CACHETABLE_INTERNAL_H_
