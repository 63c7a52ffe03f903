// Cachetable::Impl: the cachetable's tables, clock, background threads and counters, shared
// by cachetable.cc (pins and files), eviction.cc (the clock sweep), evictor.cc (the evictor
// thread and back-pressure), cleaner.cc and checkpoint.cc. Internal to src/cachetable.
//
// Mutexes and what they guard:
// - a bucket mutex (PairTable, one per bucket): the bucket's map, hit and miss counts, and
//   the clock counts of its pairs. The pin hit path takes its bucket's mutex and nothing
//   wider (refs, the pair lock and the clock count are all taken or bumped under it).
// - `list_mu`: the clock and its hands, the file map and every CacheFile's fields (its pair
//   set, flags and counts), the pending marks, and last_write_error. Taken by a miss (to
//   insert), by every removal (eviction, Remove, a failed fetch, CloseFile), by sweepers and
//   file walks (evictor, cleaner, WriteDirty, CloseFile, checkpoints), by owner writes, and
//   by the first write pin of a checkpoint-pending pair; never by a pin that hits a pair that
//   is not checkpoint-pending, nor by Unpin.
// - a pair's PairLock internal mutex and Pair::size_mu: that pair's lock state and size.
// - `evictor_mu`: the evictor's wake-up and run counts. `cleaner_mu`: the cleaner's period.
//
// Lock order, outermost first:
//   list_mu  ->  one bucket mutex  ->  a PairLock's internal mutex, Pair::size_mu, evictor_mu
// A thread holds at most one bucket mutex. A pair's insertion and removal hold list_mu and
// the pair's bucket mutex together, so the map, the clock and the file sets agree whenever
// either is held: BeginCheckpoint, under list_mu, sees exactly the file's pairs. `cleaner_mu`
// is never held with another. None is held while waiting for a PairLock or while an owner
// callback runs. A thread waiting for a PairLock holds a ref on the pair and no table mutex.
#ifndef FERN_CACHETABLE_CACHETABLE_INTERNAL_H_
#define FERN_CACHETABLE_CACHETABLE_INTERNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cachetable/annotated_mutex.h"
#include "cachetable/cachetable.h"
#include "cachetable/clock_list.h"
#include "cachetable/pair.h"
#include "cachetable/pair_table.h"
#include "fern/status.h"
#include "util/thread_pool.h"

namespace fern {

// The longest a client waits for the evictor in one back-pressure wait. The wait normally
// ends much sooner: when memory falls to the release mark, or when an evictor run that began
// after the client started waiting ends (having evicted all it could). This bound covers an
// evictor stuck in slow writes: clients then proceed over budget rather than stall.
inline constexpr absl::Duration kMaxBackPressureWait = absl::Seconds(1);
// The same for a client that only read (and fetched what it read). Its fetch is clean memory
// the evictor drops without writing, so it need not wait for a run that is writing a
// writer's dirty nodes: beside a million-row commit flooding a 64 MiB cache, readers waited
// for whole runs, up to a second a time (bench/latency/big_txn_stall).
inline constexpr absl::Duration kMaxReadBackPressureWait = absl::Milliseconds(20);
// Back-pressure marks, in thousandths of the budget: a client that sees memory above the
// wake mark wakes the evictor; one that sees it above the block mark waits until it falls to
// the release mark. PerconaFT's marks (1.1x, 1.5x, 1.25x) let fernbench's fillrandom at a
// 64 MiB cache peak at 140 MiB RSS (the cache reaching 96 MiB between evictor runs); these
// bring it to 124 MiB at the same ops/s within the run-to-run noise (2M puts; 1.0x/1.2x/1.1x
// gave 129-131 MiB).
inline constexpr size_t kWakeMarkPermille = 1050;
inline constexpr size_t kBlockMarkPermille = 1100;
inline constexpr size_t kReleaseMarkPermille = 1050;
// The most each mark lets memory run past the budget, whatever the budget: an Env's resident
// memory must stay within its cache plus 64 MiB, and above 160 MiB the fractions alone would
// spend most of that (at 1 GiB the block mark was 102 MiB over, and a reopened database
// overwritten at that cache peaked at 1,112 MiB RSS).
inline constexpr size_t kWakeMarkCapBytes = size_t{8} << 20;
inline constexpr size_t kBlockMarkCapBytes = size_t{16} << 20;
inline constexpr size_t kReleaseMarkCapBytes = size_t{8} << 20;
// Pairs the cleaner inspects per pass (PerconaFT's figure).
inline constexpr size_t kCleanerPairsPerPass = 8;
// After an eviction write fails (a full disk), the evictor writes no dirty pair again for
// this long, doubling with each failure up to the maximum, and rests this long between runs:
// retrying at once re-serialized the same nodes in a busy loop, and clients waiting for it
// stalled each read by a whole failing sweep.
inline constexpr absl::Duration kMinWriteBackRetry = absl::Milliseconds(50);
inline constexpr absl::Duration kMaxWriteBackRetry = absl::Seconds(2);
inline constexpr absl::Duration kFailingEvictorRest = absl::Milliseconds(10);

// Set by a thread when a size change it makes grows a pair (a fetch, a partial fetch, a
// write), cleared by its next unpin (AfterUnpin).
inline thread_local bool pin_grew_cache = false;

// One sweeper's state on the clock: its hand, and whether a pass from it is running (one at
// a time per head). The evictor and the cleaner each own one.
struct SweepHead {
  ClockHand hand;
  bool running = false;
};

struct Cachetable::Impl {
  Impl(const CachetableOptions& options, std::atomic<size_t>* size_bytes);
  ~Impl();

  // Starts the evictor (if configured) and cleaner threads; StopThreads joins them and the
  // checkpoint writers. Called by the Cachetable's constructor and destructor.
  void StartThreads();
  void StopThreads();

  // ---- pins (cachetable.cc) ----
  // Finds or fetches the pair and locks it in `lock` mode. With `wait` false, a pair that is
  // cached but locked in a conflicting mode yields Busy. With `fetch_on_miss` false, a pair
  // that is not cached (or leaves the cache while this thread waits for it) yields NotFound
  // instead of being fetched. On OK, *out holds a ref and the lock.
  Status Pin(CacheFileId file_id, BlockNum block, Lock lock, bool wait, bool fetch_on_miss,
             Pair** out);
  // Runs the first fetch of a placeholder `pair` that the caller inserted write-locked, then
  // publishes it (downgrading to a read lock for kRead) or, on error, removes it.
  Status FetchPlaceholder(Pair* pair, Lock lock);
  Pair* PinNew(CacheFileId file_id, BlockNum block, std::unique_ptr<CacheValue> value);
  void Unpin(Pair* pair, bool write);
  void Remove(Pair* pair);

  // ---- files (cachetable.cc) ----
  Status WriteDirty(CacheFileId file_id);
  Status CloseFile(CacheFileId file_id, bool write_dirty);

  // ---- helpers (cachetable.cc) ----
  // Re-reads the value's MemoryBytes() into the pair's and the table's accounting.
  struct SizeChange {
    size_t before;
    size_t after;
  };
  SizeChange RefreshSize(Pair* pair);
  // Adds `bytes` to (grew) or subtracts them from the pair's and the table's accounting,
  // for an owner that knows exactly how its value's MemoryBytes() changed.
  SizeChange AdjustSize(Pair* pair, size_t bytes, bool grew);
  // Takes `pair` out of its bucket, the clock and its file, marks it removed and subtracts
  // its memory. Returns the memory it held. REQUIRES: the caller holds `pair->lock`
  // exclusively, `list_mu` and `bucket` (the pair's bucket).
  size_t UnlinkLocked(Pair* pair, PairBucket& bucket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(list_mu, bucket.mu);
  // Unlinks `pair`, taking both mutexes. REQUIRES: `pair->lock` held exclusively; no table
  // mutex held.
  size_t Unlink(Pair* pair) ABSL_LOCKS_EXCLUDED(list_mu);
  // A pin that found `pair` in `bucket`: counts the hit, raises the clock count, tries the
  // lock and, unless it must fail, takes a ref. *locked says whether the lock was taken.
  // InvalidArgument if the file is closing; Busy if the lock was not free and !wait.
  Status HitLocked(Pair* pair, PairBucket& bucket, bool write, bool wait, bool* locked)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(bucket.mu);
  // Inserts a new pair for `key` of `file`, locked for write, with one ref.
  Pair* InsertLocked(const PairKey& key, CacheFile* file, PairBucket& bucket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(list_mu, bucket.mu);
  // Writes a dirty pair through its owner: with WriteBlockForCheckpoint if it is
  // checkpoint-pending, else WriteBlock. Waits while its file's checkpoint begins. On OK the
  // pair is clean and no longer pending; on error it stays dirty (and pending) and the error
  // is recorded. REQUIRES: `pair->lock` held exclusively, the pair not removed, no table
  // mutex held.
  Status WriteLockedPair(Pair* pair) ABSL_LOCKS_EXCLUDED(list_mu);
  // Whether eviction must leave `file`'s dirty pairs alone for now (its writes are failing
  // and the retry time has not come).
  bool WriteBackHeldOff(const CacheFile& file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(list_mu);
  bool AnyWriteBackFailing() const { return failing_files.load(std::memory_order_relaxed) > 0; }

  // ---- eviction (eviction.cc) ----
  // Sweeps the clock from `head` until size_bytes <= target_bytes, or until two full laps in
  // a row found nothing to do. Never blocks on a pair lock. If a pass from `head` is
  // running, waits for it to end first (`wait_if_running`) or returns at once. Callable from
  // any thread that holds no table mutex; pins the caller holds are simply skipped. While
  // write-backs fail, dirty pairs are written only after the retry time, unless
  // `write_now` (an explicit EvictIfOverBudget).
  void Sweep(SweepHead* head, size_t target_bytes, bool wait_if_running, bool write_now = false)
      ABSL_LOCKS_EXCLUDED(list_mu);
  // Visits one pair for eviction; may drop and retake `list_mu` around owner callbacks.
  // Returns true if it made progress (lowered a clock count, wrote, or freed memory).
  bool SweepVisit(Pair* pair, bool write_now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(list_mu);

  // ---- evictor thread and back-pressure (evictor.cc) ----
  void EvictorLoop();
  // Called by a client after Unpin: wakes the evictor or waits for it (or, with no evictor
  // thread, sweeps) according to the memory in use. Only a client whose pin added memory
  // (a write pin, or a read pin that fetched: see pin_grew_cache) waits: one that only read
  // what was cached has nothing for the evictor to make up, and waiting stalled readers up
  // to a second at a time behind a writer flooding the cache.
  void AfterUnpin(bool write) ABSL_LOCKS_EXCLUDED(list_mu);
  // Called by a client before a pin or PinNew: waits for the evictor when memory is far over
  // budget, unless `read_of` names a pair to be read-pinned that is cached already (a read
  // pin that will fetch waits at most kMaxReadBackPressureWait).
  void BeforePin(const PairKey* read_of) ABSL_LOCKS_EXCLUDED(list_mu);
  // Called after memory is charged to the OutsideMemory: wakes the evictor when over the
  // budget. Never waits (the charger may be a pool thread holding pins); with no evictor
  // thread, the next Unpin evicts.
  void AfterOutsideCharge() ABSL_LOCKS_EXCLUDED(list_mu, evictor_mu);
  void WakeEvictor() ABSL_LOCKS_EXCLUDED(evictor_mu);
  void WaitForEvictor(absl::Duration max_wait) ABSL_LOCKS_EXCLUDED(list_mu, evictor_mu);
  // Wakes clients waiting for memory to fall. Cheap when none waits.
  void NotifyWaitingClients() ABSL_LOCKS_EXCLUDED(evictor_mu);

  // ---- cleaner (cleaner.cc) ----
  void CleanerLoop();
  void SetCleanerPeriod(uint32_t period_ms) ABSL_LOCKS_EXCLUDED(cleaner_mu);
  // One pass: inspects kCleanerPairsPerPass pairs and calls CleanerRun for the best one.
  bool CleanerPass() ABSL_LOCKS_EXCLUDED(list_mu);

  // ---- checkpoint (checkpoint.cc) ----
  Status BeginCheckpoint(CacheFileId file_id, absl::FunctionRef<Status()> owner_begin)
      ABSL_LOCKS_EXCLUDED(list_mu);
  Status EndCheckpoint(CacheFileId file_id, bool drop_written) ABSL_LOCKS_EXCLUDED(list_mu);
  // Unlinks `pair` (write-locked by the caller, who holds one ref) unless somebody else
  // holds or waits for it, and returns its value for the caller to free after letting go
  // of the pair; null if it stays.
  std::unique_ptr<CacheValue> DropIfUnusedLocked(Pair* pair) ABSL_LOCKS_EXCLUDED(list_mu);
  // Called with `pair` freshly locked for a write pin, before the client sees it: a
  // checkpoint-pending dirty pair is cloned for the checkpoint writers (or written for the
  // checkpoint when the owner cannot clone); a pending clean pair loses its mark.
  void BeforeWritePin(Pair* pair) ABSL_LOCKS_EXCLUDED(list_mu);

  // ---- configuration (constant) ----
  const CachetableOptions options;
  const size_t budget;
  const size_t wake_bytes;     // kWakeMarkPermille: a client wakes the evictor
  const size_t block_bytes;    // kBlockMarkPermille: a client waits for the evictor
  const size_t release_bytes;  // kReleaseMarkPermille: waiting clients go on

  std::atomic<size_t>& size_bytes;

  // ---- tables ----
  PairTable table;
  AnnotatedMutex list_mu;
  absl::flat_hash_map<CacheFileId, std::unique_ptr<CacheFile>> files ABSL_GUARDED_BY(list_mu);
  CacheFileId next_file_id ABSL_GUARDED_BY(list_mu) = 1;
  ClockList clock ABSL_GUARDED_BY(list_mu);
  SweepHead evictor ABSL_GUARDED_BY(list_mu);
  SweepHead cleaner ABSL_GUARDED_BY(list_mu);
  Status last_write_error ABSL_GUARDED_BY(list_mu);
  // Open files whose write-backs are failing (CacheFile::write_back_failing). While any is,
  // the evictor rests between runs, clients do not wait for it (it cannot free what it cannot
  // write), and Cachetable::WriteBackStatus refuses new writes once memory is past
  // block_bytes: the memory held may be the failing file's, whichever table a write is for.
  // Written under list_mu.
  std::atomic<int> failing_files{0};
  // Signalled (with `list_mu`) when a sweep ends.
  absl::CondVar sweep_done_cv;
  // Signalled (with `list_mu`) when a CacheFile's in-flight counts fall or its checkpoint
  // begin ends.
  absl::CondVar files_cv;

  // ---- evictor thread ----
  AnnotatedMutex evictor_mu;
  absl::CondVar evictor_cv;   // wakes the evictor
  absl::CondVar pressure_cv;  // wakes clients waiting for memory
  bool evictor_wake ABSL_GUARDED_BY(evictor_mu) = false;
  bool evictor_stopping ABSL_GUARDED_BY(evictor_mu) = false;
  // Evictor runs begun and ended (a run ends after its sweep; the latest run's number).
  uint64_t evictor_runs_started ABSL_GUARDED_BY(evictor_mu) = 0;
  uint64_t evictor_runs_finished ABSL_GUARDED_BY(evictor_mu) = 0;
  std::atomic<bool> evictor_wake_hint{false};  // `evictor_wake` as last set, read unlocked
  std::atomic<bool> trim_requested{false};     // see Cachetable::ReturnFreedMemorySoon
  std::atomic<int> clients_waiting{0};
  std::thread evictor_thread;

  // ---- cleaner thread ----
  AnnotatedMutex cleaner_mu;
  absl::CondVar cleaner_cv;
  uint32_t cleaner_period_ms ABSL_GUARDED_BY(cleaner_mu) = 0;
  uint64_t cleaner_period_changes ABSL_GUARDED_BY(cleaner_mu) = 0;
  bool cleaner_stopping ABSL_GUARDED_BY(cleaner_mu) = false;
  std::thread cleaner_thread;

  // ---- checkpoint writers ----
  std::unique_ptr<ThreadPool> checkpoint_writers;

  // ---- counters ----
  std::atomic<uint64_t> full_evictions{0};
  std::atomic<uint64_t> partial_evictions{0};
  std::atomic<uint64_t> written_but_kept{0};
  std::atomic<uint64_t> bytes_evicted{0};
  std::atomic<uint64_t> dirty_writes{0};
  std::atomic<uint64_t> write_errors{0};
  std::atomic<uint64_t> evictor_runs{0};
  std::atomic<uint64_t> trims{0};
  std::atomic<uint64_t> client_waits{0};
  std::atomic<uint64_t> cleaner_runs{0};
  std::atomic<uint64_t> cleaner_calls{0};
  std::atomic<uint64_t> clones{0};
  std::atomic<uint64_t> checkpoint_pairs_written{0};
};

}  // namespace fern

#endif  // FERN_CACHETABLE_CACHETABLE_INTERNAL_H_
