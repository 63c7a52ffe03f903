// The cachetable: Fern's page cache. It holds "pairs" — (file, block number) -> an in-memory
// value — in a hash table, threads them on one clock list in order of first miss, and keeps
// their total memory within a budget by evicting cold pairs (writing dirty ones first) and
// partially evicting warm ones. It knows nothing of trees: values and I/O are reached
// through CacheValue and CacheFileOwner.
//
// Background machinery, owned by the Cachetable and started by its constructor, stopped by
// its destructor:
// - the evictor thread sweeps the clock every second (evictor_period_ms) and whenever a
//   client sees memory above 1.05x the budget, down to the budget; a client that sees memory
//   above 1.1x waits until the evictor brings it to 1.05x (back-pressure; the marks are in
//   cachetable_internal.h with their measurements), at most kMaxBackPressureWait and never past an
//   evictor run that found nothing more to evict (everything pinned), so memory stays bounded and
//   nobody waits forever. Without the evictor thread (CachetableOptions::evictor_thread false),
//   Unpin evicts synchronously whenever memory is above the budget.
// - the cleaner thread, every cleaner period (0: off), looks at 8 pairs from its own clock
//   head, and calls CleanerRun for the one with the highest CleanerPriority.
// - the checkpoint writer pool writes the clones that checkpoint copy-on-write makes.
//
// Thread-safety: every method may be called from any thread. A pair is pinned with a read
// (shared) or write (exclusive) lock; none of the cachetable's own mutexes is held while an
// owner callback runs (I/O and (de)compression happen outside them). A pin that finds its
// pair cached, and every Unpin, take no table-wide mutex: the table is split into buckets
// with a mutex each (cachetable_internal.h states the locks and their order). A thread may
// hold many pins at once (a parent and its child) and a pin may be moved to and unpinned by
// another thread. Pair locks prefer writers: once a writer waits, new read pins of that pair
// wait too, so a thread must not pin a pair it already holds (not even for read), and
// threads that hold several pins must take them in a consistent order (root to leaf). Pin,
// PinNew and Unpin may wait for the evictor (back-pressure) while the caller holds other
// pins: the evictor passes over pinned pairs, so this cannot deadlock, but owner callbacks
// run by the evictor (WriteBlock, WriteBlockForCheckpoint, PartialEvict) must not take a
// lock that a client may hold while it pins or unpins.
#ifndef FERN_CACHETABLE_CACHETABLE_H_
#define FERN_CACHETABLE_CACHETABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "cachetable/outside_memory.h"
#include "fern/status.h"

namespace fern {

using BlockNum = int64_t;
using CacheFileId = uint32_t;

// A value held by the cachetable (a tree node). Its owner decides what it contains.
class CacheValue {
 public:
  virtual ~CacheValue() = default;
  // Current memory footprint in bytes. Read by the cachetable at PinNew, at the Unpin of a
  // write pin, at UpdateSize and after callbacks; the value must not change size while
  // pinned by nobody, and a holder of a read pin that changes it must call UpdateSize.
  virtual size_t MemoryBytes() const = 0;
  // How much the cleaner would gain by working on this value: the bytes buffered in an
  // internal node (0: nothing to do, never chosen). Called by the cleaner thread with the
  // pair read-locked (other readers may hold it too) and no cachetable mutex held; must be
  // cheap and must not block.
  virtual size_t CleanerPriority() const { return 0; }
};

// Implemented by whoever owns a cached file (a fractal tree). Unless a method says
// otherwise, the callbacks run with the pair locked exclusively by the cachetable (no client
// holds it) and with no cachetable mutex held; they must not pin the same pair. They may run
// on any thread: a client's, the evictor's, a checkpoint writer's or the cleaner's.
class CacheFileOwner {
 public:
  virtual ~CacheFileOwner() = default;
  // Reads `block` from disk into a new value (which may be partial: e.g. only a node's
  // header and pivots). Errors (Corruption, IOError) are returned from Pin.
  virtual Status FetchBlock(BlockNum block, std::unique_ptr<CacheValue>* value) = 0;
  // Writes a dirty value to disk. After OK the pair is clean.
  virtual Status WriteBlock(BlockNum block, CacheValue* value) = 0;
  // Drops or compresses cold parts of a clean value (e.g. decompressed basements) to save
  // memory. `clock_count` is the pair's clock count after this visit lowered it (1: one more
  // visit without a pin evicts the pair), for owners that treat the whole value as one
  // part. Returns true if anything was dropped. Default: nothing to drop. `*freed_bytes`
  // arrives as kUnknownSize; an owner that knows exactly how far MemoryBytes() fell may
  // store that, which spares the cachetable a MemoryBytes() call (it walks every basement
  // of a leaf).
  virtual bool PartialEvict(BlockNum block, CacheValue* value, int clock_count,
                            size_t* freed_bytes) {
    return false;
  }
  static constexpr size_t kUnknownSize = ~size_t{0};

  // ---- checkpoint (see Cachetable::BeginCheckpoint) ----
  // Writes a checkpoint-pending dirty value: its contents are the block as of the
  // checkpoint's begin, and belong to the checkpoint in progress (and to the current version
  // of the file: no newer version of the block has been written since the begin). After OK
  // the pair is clean. Called by EndCheckpoint, by eviction, by WriteDirty/CloseFile, and by
  // a write pin when CloneForCheckpoint declined. Default: WriteBlock.
  virtual Status WriteBlockForCheckpoint(BlockNum block, CacheValue* value) {
    return WriteBlock(block, value);
  }
  // Copies a checkpoint-pending dirty value so that a client may change the original at once
  // while the copy is written for the checkpoint. Called on the thread that is taking a write
  // pin of the pair, with the pair locked exclusively (the value does not change during the
  // call) and no cachetable mutex held; must not pin anything. Returns nullptr if the value
  // cannot be cloned: the cachetable then calls WriteBlockForCheckpoint on that thread
  // before the pin is granted. Default: nullptr.
  virtual std::unique_ptr<CacheValue> CloneForCheckpoint(BlockNum block, const CacheValue& value) {
    return nullptr;
  }
  // Writes a clone made by CloneForCheckpoint into the checkpoint in progress. Runs on a
  // checkpoint writer thread with no pair lock and no cachetable mutex held, concurrently
  // with anything on the original pair: client pins and changes, its eviction (a plain
  // WriteBlock of a newer version, which the owner must let win in the current version of
  // the file), its refetch. The owner must not pin the pair. An error fails the checkpoint
  // (EndCheckpoint returns it). Called before EndCheckpoint returns, and never after the
  // file's CloseFile returns. Default: NotSupported (an owner that clones overrides it).
  virtual Status WriteCheckpointClone(BlockNum block, std::unique_ptr<CacheValue> clone);

  // ---- cleaner ----
  // Background work on `block`, chosen by the cleaner for its CleanerPriority (the tree
  // flushes the node's heaviest buffer). Runs on the cleaner thread with no pair pinned and
  // no cachetable mutex held: the owner pins what it needs itself and may take its own locks
  // first ("tree lock, then pins"). The block may have been evicted (a Pin fetches it),
  // changed or freed since its priority was read. Never called after the file's CloseFile
  // has begun waiting for callbacks (CloseFile waits for a call in flight), so it must not
  // call CloseFile of its own file and CloseFile must not be called with a lock it takes.
  // Default: nothing.
  virtual void CleanerRun(BlockNum block) {}

  // ---- eviction ----
  // The evictor wrote `block` (dirty, its clock count run down) to evict it, but a client
  // pinned it meanwhile, so it stays cached: in use, and as big as before. A node that
  // keeps coming back to this is hot and too big for its share of the cache; the tree
  // schedules flushes of its heaviest buffers. Called on the evictor thread with the pair
  // locked exclusively and no cachetable mutex held; must not block. Default: nothing.
  virtual void WrittenButKept(BlockNum block, CacheValue* value) {}
};

struct CachetableStats {
  // Memory held by all pairs and unwritten checkpoint clones, and charged to
  // outside_memory() (outside_bytes of it).
  uint64_t size_bytes = 0;
  uint64_t outside_bytes = 0;
  uint64_t limit_bytes = 0;  // the budget
  uint64_t pairs = 0;        // including pairs whose first fetch is running
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t full_evictions = 0;
  uint64_t partial_evictions = 0;
  uint64_t written_but_kept = 0;  // eviction writes of pairs a client pinned meanwhile
  uint64_t bytes_evicted = 0;     // memory released by full and partial evictions
  uint64_t dirty_writes = 0;      // writes of cached pairs (WriteBlock, WriteBlockForCheckpoint)
  uint64_t write_errors = 0;      // of those, the ones that failed (the pair stayed dirty)
  uint64_t evictor_runs = 0;      // wake-ups of the evictor thread that swept the clock
  uint64_t trims = 0;             // times the evictor returned the allocator's free memory
  uint64_t client_waits = 0;      // clients that waited for the evictor (back-pressure)
  uint64_t cleaner_runs = 0;      // cleaner passes over the clock
  uint64_t cleaner_calls = 0;     // CleanerRun calls
  uint64_t clones = 0;            // checkpoint clones made by write pins
  uint64_t checkpoint_pairs_written = 0;  // successful checkpoint writes, clones included
};

// How a Cachetable runs. The defaults suit an Env.
struct CachetableOptions {
  size_t budget_bytes = size_t{256} << 20;
  // False: no evictor thread; Unpin evicts on the client's thread when over the budget.
  bool evictor_thread = true;
  uint32_t evictor_period_ms = 1000;
  // After each quarter budget it evicts, the evictor returns the allocator's free memory to
  // the system (malloc_trim) if the process's resident memory exceeds the budget by more
  // than this; after each sixteenth, if it exceeds it by more than 1.25 times this. The
  // default keeps an Env's peak RSS within its cache plus 64 MiB: fernbench fillrandom at
  // 64 MiB peaked at 107-117 MiB in 9 runs with 32 MiB, 111-132 MiB in 17 runs with 40 MiB
  // (one over the 128 MiB bound), for ~4% of fillrandom's and overwrite's rate. Both
  // amounts double after each trim that gives back less than an eighth of this (trim_pacer.h).
  size_t trim_slack_bytes = size_t{32} << 20;
  // Once the evictor has had nothing to do for this long (no sweep, no client waking it),
  // it returns the allocator's free memory once, if resident memory exceeds the budget by
  // more than trim_slack_bytes: memory freed outside the cache (cursors, transactions) then
  // goes back to the system while the process idles, instead of at the next eviction.
  // 0: never.
  uint32_t idle_trim_after_ms = 10000;
  // Whether an evictor run with nothing to sweep also returns the allocator's free memory if
  // resident memory exceeds the budget by more than trim_slack_bytes, backing off after
  // trims that give back little (TrimPacer::QuietRunDue): writers on several threads leave
  // the allocator's heaps fragmented while the cache stays within its budget.
  bool quiet_trims = true;
  // 0: the cleaner is off until SetCleanerPeriod.
  uint32_t cleaner_period_ms = 0;
  // Threads writing checkpoint clones; 0: a quarter of the cores, at least one.
  int checkpoint_writers = 0;
};

class Cachetable;

// A pinned pair. Move-only; unpins on destruction. Used by one thread.
class PinnedPair {
 public:
  PinnedPair() = default;
  PinnedPair(PinnedPair&& other) noexcept;
  PinnedPair& operator=(PinnedPair&& other) noexcept;
  PinnedPair(const PinnedPair&) = delete;
  PinnedPair& operator=(const PinnedPair&) = delete;
  ~PinnedPair() { Unpin(); }

  bool pinned() const { return pair_ != nullptr; }
  CacheValue* value() const;
  template <typename T>
  T* as() const {
    return static_cast<T*>(value());
  }
  BlockNum block() const;
  bool write_locked() const { return write_; }

  // REQUIRES: pinned for write. The pair will be written before it is evicted.
  void MarkDirty();
  // Re-reads the value's MemoryBytes() into the cache's accounting (call after growing or
  // shrinking the value while pinned; the Unpin of a write pin does it too).
  void UpdateSize();
  // The same when the caller knows the value grew by exactly `bytes` since the cachetable
  // last read its size (several read-pin holders may each add what they added): O(1),
  // where UpdateSize calls MemoryBytes().
  void AddSize(size_t bytes);
  // Releases the lock and the pin. Over budget, it wakes the evictor (above 1.05x) or waits
  // for it (above 1.1x); without an evictor thread it evicts on this thread.
  void Unpin();

 private:
  friend class Cachetable;
  Cachetable* table_ = nullptr;
  void* pair_ = nullptr;  // the cachetable's internal pair
  bool write_ = false;
};

class Cachetable {
 public:
  // Starts the evictor thread (unless options.evictor_thread is false), the cleaner thread
  // (idle while its period is 0) and the checkpoint writers.
  explicit Cachetable(const CachetableOptions& options);
  // Default options with this budget: evictor thread on, cleaner off.
  explicit Cachetable(size_t budget_bytes);
  // Stops and joins the background threads. REQUIRES: every file closed.
  ~Cachetable();
  Cachetable(const Cachetable&) = delete;
  Cachetable& operator=(const Cachetable&) = delete;

  // Registers a file's owner; the owner must outlive CloseFile.
  CacheFileId OpenFile(CacheFileOwner* owner);
  // Stops new cleaner calls for the file and waits for the one in flight and for the file's
  // checkpoint clone writes; then writes every dirty pair of the file (when `write_dirty`)
  // and drops all its pairs. No owner callback of the file runs after it returns OK.
  // REQUIRES: no pair of the file is pinned; no lock held that CleanerRun takes; no
  // checkpoint of the file between Begin and End. Pins of the file made while it closes fail
  // with InvalidArgument. On a write error the file stays open (the cleaner resumes) and the
  // unwritten pairs stay cached (and dirty); the error is returned.
  Status CloseFile(CacheFileId file, bool write_dirty);
  // Writes every dirty pair of the file; the pairs stay cached, now clean. Pairs pinned by
  // the caller's thread must not exist (it waits for each pair's lock). After a write error
  // it still writes the other pairs, then returns the first error.
  Status WriteDirty(CacheFileId file);

  enum class Lock { kRead, kWrite };
  // Pins the pair, fetching it through the owner on a miss. Blocks while another thread
  // holds a conflicting lock, and while memory is far over budget (back-pressure). Whatever
  // `pin` held is unpinned first. A fetch error is returned to the fetching thread and to
  // every thread that waited for that fetch, and leaves nothing cached. InvalidArgument if
  // the file is not open. A write pin of a checkpoint-pending dirty pair first hands a clone
  // to the checkpoint (or writes the pair for it; see BeginCheckpoint).
  Status Pin(CacheFileId file, BlockNum block, Lock lock, PinnedPair* pin);
  // Like Pin but never waits for a lock nor for the evictor: Busy if the pair is locked in a
  // conflicting mode. (A miss still fetches.)
  Status TryPin(CacheFileId file, BlockNum block, Lock lock, PinnedPair* pin);
  // Like Pin but never fetches: NotFound if the pair is not cached, or leaves the cache
  // (evicted or removed) while this thread waits for its lock. For callers that know a
  // block only by number, without a pinned parent that keeps it allocated: a block freed
  // meanwhile is never read back from disk.
  Status PinIfCached(CacheFileId file, BlockNum block, Lock lock, PinnedPair* pin);
  // Adds a value that is not on disk yet, pinned for write and dirty. May wait for the
  // evictor first (back-pressure).
  // REQUIRES: (file, block) is not cached (if it is, the new value replaces the cached one)
  // and the file is open (if not, the value is dropped and `pin` stays unpinned).
  void PinNew(CacheFileId file, BlockNum block, std::unique_ptr<CacheValue> value, PinnedPair* pin);
  // Drops a pair without writing it (its block was freed). REQUIRES: pinned for write (a
  // read pin is only unpinned).
  void Remove(PinnedPair* pin);
  // True if the pair is cached or its first fetch is running (for tests and prefetch
  // decisions).
  bool IsCached(CacheFileId file, BlockNum block);

  // Evicts on the caller's thread until memory is within the budget or nothing more can go,
  // sweeping from the evictor's head: if the evictor (or another caller) is sweeping, waits
  // for that sweep to end first. Never waits for a pair lock: pinned and locked pairs, the
  // caller's own included, are passed over. Writes dirty pairs even while write-backs are
  // failing (the evictor then waits before retrying them).
  void EvictIfOverBudget();

  // ---- cleaner ----
  // Sets the cleaner's period (0: off) and restarts its timer.
  void SetCleanerPeriod(uint32_t period_ms);
  // Runs one cleaner pass on the calling thread, as the cleaner thread does every period;
  // returns true if it called CleanerRun. (One pass at a time: false at once while another
  // runs.) REQUIRES: the caller holds no pin and no lock CleanerRun takes.
  bool RunCleanerPass();

  // ---- checkpoint ----
  // A sharp checkpoint of one file, in two steps:
  //   BeginCheckpoint marks every cached pair of the file checkpoint-pending. It waits for
  //     writes of the file's pairs in flight, and holds new ones back, until it is done, so
  //     no write straddles the begin; `owner_begin` (e.g. the owner's own checkpoint begin,
  //     such as snapshotting its block table) runs inside that section, after the writes
  //     have drained and before the pairs are marked, with no cachetable mutex held; it must
  //     not pin or write pairs. If it fails, nothing is marked and its error is returned.
  //     REQUIRES: no pair of the file is pinned for write by a client that will change it
  //     under that pin (the owner excludes its writers, e.g. under its tree lock), and no
  //     checkpoint of the file in progress (else InvalidArgument).
  //   Meanwhile a write pin of a pending dirty pair clones it (CloneForCheckpoint), hands
  //     the clone to the checkpoint writers (WriteCheckpointClone) and proceeds; the pair
  //     stays dirty for the next checkpoint. Eviction, WriteDirty and CloseFile write a
  //     pending dirty pair with WriteBlockForCheckpoint. A pending clean pair just loses
  //     its pending mark.
  //   EndCheckpoint writes every still-pending dirty pair with WriteBlockForCheckpoint
  //     (waiting for each pair's lock), waits for the file's clone writes, clears the pending
  //     marks, and returns the first error of any checkpoint write since the begin. With
  //     `drop_written` (for a close), the file's clean pairs leave the cache first, and
  //     each pair it writes once written, unless somebody pinned or waits for it, as an
  //     eviction would take them.
  //     REQUIRES: the caller holds no pin of the file.
  // The file's pairs are never in an inconsistent state: an error only means the checkpoint
  // is incomplete (the pairs concerned stay dirty).
  Status BeginCheckpoint(CacheFileId file);
  Status BeginCheckpoint(CacheFileId file, absl::FunctionRef<Status()> owner_begin);
  Status EndCheckpoint(CacheFileId file, bool drop_written = false);

  size_t budget() const { return budget_; }
  size_t size_bytes() const { return size_bytes_.load(std::memory_order_relaxed); }
  // Where clients charge memory they hold outside pairs against the budget (see
  // outside_memory.h); charges count in size_bytes().
  const std::shared_ptr<OutsideMemory>& outside_memory() const { return outside_memory_; }
  CachetableStats stats() const;
  // The most recent WriteBlock error met by eviction, WriteDirty or CloseFile (OK if none).
  // Eviction has no caller to return it to: the pair stays cached and dirty.
  Status last_write_error() const;
  // OK unless write-backs of some file are failing (the last owner write of its pairs failed
  // and none begun since has succeeded) while memory is past the block mark: then IOError
  // naming the failure. Writers call it before adding changes the cache could hold only over
  // its budget.
  Status WriteBackStatus() const;
  // Memory held outside the cache was freed in bulk (a big transaction ended): within
  // evictor_period_ms the evictor hands the allocator's free memory back to the system if the
  // process is over its budget by more than trim_slack_bytes, whatever its back-off after
  // trims that gave back little. No effect without the evictor thread.
  void ReturnFreedMemorySoon();
  // Before work that needs fresh memory for a moment (a checkpoint serializes every dirty
  // node): hands the allocator's free memory back to the system now, on this thread, if the
  // process's resident memory exceeds the budget by more than half of trim_slack_bytes, so
  // that the burst reuses pages given back instead of adding to resident free ones. Returns
  // whether it trimmed. Thread-safe.
  bool ReturnFreedMemoryNow();

 private:
  friend class PinnedPair;
  struct Impl;
  Status PinWithMode(CacheFileId file, BlockNum block, Lock lock, bool wait, bool fetch,
                     PinnedPair* pin);
  void UnpinPair(void* pair, bool write);
  void MarkPairDirty(void* pair);
  void UpdatePairSize(void* pair);
  void AddPairSize(void* pair, size_t bytes);

  const size_t budget_;
  std::atomic<size_t> size_bytes_{0};
  std::unique_ptr<Impl> impl_;
  const std::shared_ptr<OutsideMemory> outside_memory_;
};

}  // namespace fern

#endif  // FERN_CACHETABLE_CACHETABLE_H_
