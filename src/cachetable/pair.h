// The cachetable's internal records: a cached pair, its key, and per-file state. Internal to
// src/cachetable; clients see a pair only through PinnedPair.
#ifndef FERN_CACHETABLE_PAIR_H_
#define FERN_CACHETABLE_PAIR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "cachetable/annotated_mutex.h"
#include "cachetable/cachetable.h"
#include "cachetable/clock_list.h"
#include "cachetable/pair_lock.h"
#include "fern/status.h"

namespace fern {

struct PairKey {
  CacheFileId file = 0;
  BlockNum block = 0;

  friend bool operator==(const PairKey&, const PairKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const PairKey& key) {
    return H::combine(std::move(h), key.file, key.block);
  }
};

struct Pair;

// One open file. Everything but `id` and `owner` is guarded by the list mutex
// (Cachetable::Impl::list_mu); `closing` is written under it and also read without it, by the
// pin hit path.
struct CacheFile {
  CacheFile(CacheFileId id, CacheFileOwner* owner) : id(id), owner(owner) {}

  const CacheFileId id;
  CacheFileOwner* const owner;
  absl::flat_hash_set<Pair*> pairs;
  std::atomic<bool> closing{false};  // CloseFile is dropping pairs: new pins are refused
  // CloseFile has begun: no new cleaner calls. With the two counts below it lets CloseFile
  // wait until no background callback of the file is running or queued.
  bool callbacks_blocked = false;
  int cleaner_calls_in_flight = 0;
  int clone_writes_in_flight = 0;
  // Owner writes of the file's pairs running now. BeginCheckpoint waits for them to drain
  // and holds new ones back while `checkpoint_beginning`, so that no write straddles it.
  int writes_in_flight = 0;
  bool checkpoint_beginning = false;
  bool checkpoint_in_progress = false;  // between BeginCheckpoint and EndCheckpoint
  // The first error of a checkpoint write that has no caller of its own (a clone write, or
  // the write a pin makes when cloning is declined); EndCheckpoint returns it.
  Status checkpoint_error;
  // Write-back failure (a full disk), kept per file: another file's write can succeed while
  // this one's fail (it reuses free space inside its file where this one must grow), and
  // says nothing of this file's. Set when an owner write of the file's pairs fails, cleared
  // by the next one begun after the latest failure that succeeds; while set, eviction writes
  // none of the file's dirty pairs before `write_back_retry` (Impl::WriteBackHeldOff). The
  // flag is written under the list mutex, with Impl::failing_files kept in step.
  std::atomic<bool> write_back_failing{false};
  absl::Time write_back_retry = absl::InfinitePast();
  absl::Duration write_back_backoff;  // the wait before the next retry, doubling
  uint64_t write_back_failures = 0;   // owner writes of the file's pairs that failed
};

// Clock counts: a first miss starts at kInitialClockCount; every pin adds one up to
// kMaxClockCount; every evictor visit takes one away; at 0 the pair may be evicted.
inline constexpr int kInitialClockCount = 3;
inline constexpr int kMaxClockCount = 15;

// A cached (file, block) and its value.
//
// Lifetime: the pair's refs count the threads that hold a pointer to it outside the table's
// mutexes — holders of a pin, threads waiting for `lock`, and a sweeper or file walk working
// on it. A ref is taken only while the pair is in the table, under its bucket's mutex (a pin)
// or under the list mutex (a walk of the clock or of its file's set). A pair leaves the
// table under both mutexes at once, so a thread holding both sees its count only fall; once
// it is marked removed nobody can take a ref, and the thread that brings the count to zero
// deletes it (ReleaseRef). A pair is removed from the table only by a thread holding `lock`
// exclusively, and that thread holds a ref until it is done.
struct Pair : ClockNode {
  Pair(PairKey key, CacheFile* file) : key(key), file(file) {}

  int refs() const { return static_cast<int>(ref_state.load(std::memory_order_acquire) >> 1); }
  void AddRef() { ref_state.fetch_add(2, std::memory_order_relaxed); }
  bool removed() const { return (ref_state.load(std::memory_order_acquire) & 1) != 0; }
  void MarkRemoved() { ref_state.fetch_or(1, std::memory_order_release); }

  const PairKey key;
  CacheFile* const file;

  PairLock lock;
  // Twice the refs, plus 1 once removed: one word, so that dropping a ref and learning
  // whether it was the last ref of a removed pair is one atomic step. (With two words, a
  // thread could drop the last ref of a live pair and then read `removed` from a pair a
  // sweeper had meanwhile evicted and freed.)
  std::atomic<uint32_t> ref_state{0};

  // Changed only under the pair's bucket mutex (pins raise it, sweeps lower it); atomic so
  // that a read outside that mutex is a defined, if stale, hint.
  std::atomic<int> clock_count{kInitialClockCount};

  // Written only under `lock` held exclusively (read under any mode of `lock`). `value` is
  // null only while the first fetch runs. `fetch_status` is set, together with `removed`,
  // when that fetch fails, so that threads that waited for it get its error.
  std::unique_ptr<CacheValue> value;
  Status fetch_status;
  // Set (for every pair of the file) by BeginCheckpoint; cleared when the pair's contents
  // as of the begin have been handed to the checkpoint (written or cloned) or found clean,
  // and by EndCheckpoint. Changed only under the list mutex; read under it, or without it
  // by the holder of a write pin (which no BeginCheckpoint may overlap).
  std::atomic<bool> checkpoint_pending{false};
  // Set under `lock` held exclusively; cleared only by a successful write, under `lock` held
  // exclusively and the list mutex (so that the list mutex sees dirty and pending change
  // together). Read as a hint under the list mutex.
  std::atomic<bool> dirty{false};

  // value->MemoryBytes() as last read, i.e. this pair's share of Cachetable::size_bytes_.
  // Its own mutex because several read pins may unpin (and re-read the size) at once.
  AnnotatedMutex size_mu;
  size_t memory_bytes ABSL_GUARDED_BY(size_mu) = 0;
};

// Drops one ref; deletes the pair if that was the last one and the pair is out of the table.
// The caller must not touch the pair afterwards.
inline void ReleaseRef(Pair* pair) {
  if (pair->ref_state.fetch_sub(2, std::memory_order_acq_rel) == 3) delete pair;
}

}  // namespace fern

#endif  // FERN_CACHETABLE_PAIR_H_
