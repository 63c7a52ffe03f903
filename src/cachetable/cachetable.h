// The cachetable: Fern's page cache. It holds "pairs" — (file, block number) -> an in-memory
// value — in a hash table, threads them on one clock list in order of first miss, and keeps
// their total memory within a budget by evicting cold pairs (writing dirty ones first) and
// partially evicting warm ones. It knows nothing of trees: values and I/O are reached
// through CacheValue and CacheFileOwner.
//
// Thread-safety: every method may be called from any thread. A pair is pinned with a read
// (shared) or write (exclusive) lock; the cachetable's own mutex is never held while an
// owner callback runs (I/O and (de)compression happen outside it). A thread may hold many
// pins at once (a parent and its child) and a pin may be moved to and unpinned by another
// thread. Pair locks prefer writers: once a writer waits, new read pins of that pair wait
// too, so a thread must not pin a pair it already holds (not even for read), and threads
// that hold several pins must take them in a consistent order (root to leaf).
#ifndef FERN_CACHETABLE_CACHETABLE_H_
#define FERN_CACHETABLE_CACHETABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

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
};

// Implemented by whoever owns a cached file (a fractal tree). The callbacks run with the
// pair locked exclusively by the cachetable (no client holds it) and with no cachetable
// mutex held; they must not pin the same pair.
class CacheFileOwner {
 public:
  virtual ~CacheFileOwner() = default;
  // Reads `block` from disk into a new value (which may be partial: e.g. only a node's
  // header and pivots). Errors (Corruption, IOError) are returned from Pin.
  virtual Status FetchBlock(BlockNum block, std::unique_ptr<CacheValue>* value) = 0;
  // Writes a dirty value to disk. After OK the pair is clean.
  virtual Status WriteBlock(BlockNum block, CacheValue* value) = 0;
  // Drops cold parts of a clean value (e.g. decompressed basements) to save memory.
  // Returns true if anything was dropped. Default: nothing to drop.
  virtual bool PartialEvict(BlockNum block, CacheValue* value) { return false; }
};

struct CachetableStats {
  uint64_t size_bytes = 0;   // memory held by all pairs now
  uint64_t limit_bytes = 0;  // the budget
  uint64_t pairs = 0;        // including pairs whose first fetch is running
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t full_evictions = 0;
  uint64_t partial_evictions = 0;
  uint64_t bytes_evicted = 0;  // memory released by full and partial evictions
  uint64_t dirty_writes = 0;   // WriteBlock calls made by eviction and WriteDirty
  uint64_t write_errors = 0;   // of those, the ones that failed (the pair stayed dirty)
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
  // Releases the lock and the pin; may run eviction if the cache is over budget.
  void Unpin();

 private:
  friend class Cachetable;
  Cachetable* table_ = nullptr;
  void* pair_ = nullptr;  // the cachetable's internal pair
  bool write_ = false;
};

class Cachetable {
 public:
  explicit Cachetable(size_t budget_bytes);
  // REQUIRES: every file closed.
  ~Cachetable();
  Cachetable(const Cachetable&) = delete;
  Cachetable& operator=(const Cachetable&) = delete;

  // Registers a file's owner; the owner must outlive CloseFile.
  CacheFileId OpenFile(CacheFileOwner* owner);
  // Writes every dirty pair of the file (when `write_dirty`) and drops all its pairs.
  // REQUIRES: no pair of the file is pinned. Pins of the file made while it closes fail with
  // InvalidArgument. On a write error the file stays open and the unwritten pairs stay
  // cached (and dirty); the error is returned.
  Status CloseFile(CacheFileId file, bool write_dirty);
  // Writes every dirty pair of the file; the pairs stay cached, now clean. Pairs pinned by
  // the caller's thread must not exist (it waits for each pair's lock). After a write error
  // it still writes the other pairs, then returns the first error.
  Status WriteDirty(CacheFileId file);

  enum class Lock { kRead, kWrite };
  // Pins the pair, fetching it through the owner on a miss. Blocks while another thread
  // holds a conflicting lock. Whatever `pin` held is unpinned first. A fetch error is
  // returned to the fetching thread and to every thread that waited for that fetch, and
  // leaves nothing cached. InvalidArgument if the file is not open.
  Status Pin(CacheFileId file, BlockNum block, Lock lock, PinnedPair* pin);
  // Like Pin but never waits for a lock: Busy if the pair is locked in a conflicting mode.
  // (A miss still fetches.)
  Status TryPin(CacheFileId file, BlockNum block, Lock lock, PinnedPair* pin);
  // Adds a value that is not on disk yet, pinned for write and dirty.
  // REQUIRES: (file, block) is not cached (if it is, the new value replaces the cached one)
  // and the file is open (if not, the value is dropped and `pin` stays unpinned).
  void PinNew(CacheFileId file, BlockNum block, std::unique_ptr<CacheValue> value, PinnedPair* pin);
  // Drops a pair without writing it (its block was freed). REQUIRES: pinned for write (a
  // read pin is only unpinned).
  void Remove(PinnedPair* pin);
  // True if the pair is cached or its first fetch is running (for tests and prefetch
  // decisions).
  bool IsCached(CacheFileId file, BlockNum block);

  // Evicts until memory is within the budget or nothing more can go. Called by Unpin when
  // over budget; callable directly (the evictor thread will). Never waits for a pair lock:
  // pinned and locked pairs, the caller's own included, are passed over. One sweep runs at
  // a time; a call made while another thread sweeps returns at once.
  void EvictIfOverBudget();

  size_t budget() const { return budget_; }
  size_t size_bytes() const { return size_bytes_.load(std::memory_order_relaxed); }
  CachetableStats stats() const;
  // The most recent WriteBlock error met by eviction, WriteDirty or CloseFile (OK if none).
  // Eviction has no caller to return it to: the pair stays cached and dirty.
  Status last_write_error() const;

 private:
  friend class PinnedPair;
  struct Impl;
  Status PinWithMode(CacheFileId file, BlockNum block, Lock lock, bool wait, PinnedPair* pin);
  void UnpinPair(void* pair, bool write);
  void MarkPairDirty(void* pair);
  void UpdatePairSize(void* pair);

  const size_t budget_;
  std::atomic<size_t> size_bytes_{0};
  std::unique_ptr<Impl> impl_;
};

}  // namespace fern

#endif  // FERN_CACHETABLE_CACHETABLE_H_
