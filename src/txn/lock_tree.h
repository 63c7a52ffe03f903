// The lock tree of one table: range locks over keys in the table's comparator order, held by
// root transactions until they end (docs/transactions.md).
//
// A lock covers the closed range [lo, hi] (a row lock is [k, k]) in read (shared) or write
// (exclusive) mode. A request conflicts with a lock of another owner on an overlapping range
// unless both are reads: unlike PerconaFT, read locks are shared. An owner's own locks never
// conflict with its requests; an owner holding a read lock may upgrade it to a write lock once
// no other owner reads an overlapping range. Nested transactions lock on behalf of their
// root: callers pass the root's id as `owner`.
//
// A conflicting request waits until the conflicting owners release, up to its timeout
// (Status::Busy). Waiting is first come, first served: a request that may wait (timeout >
// 0) and is not already covered by the owner's locks also waits its turn behind the
// requests of other owners queued before it on an overlapping range in a conflicting mode.
// So a deadlock victim that retries at once queues behind the survivor instead of taking
// its read lock again first (which livelocked serializable read-then-write transactions),
// and a stream of readers cannot hold off a writer. A queued request that waits for the
// requester (for its locks or its queued request) does not hold it up; requests that do
// not wait (autocommitted writes, a lock timeout of 0) are granted past the queue.
//
// While a request waits, its edges (to each conflicting holder: holder edges; to each
// request it is queued behind: queue edges) are kept in the Env's DeadlockDetector,
// exactly: a lock granted to another owner over the waited range adds a holder edge (the
// queue edge to it, if any, becomes one), a release removes holder edges, a request
// leaving the queue removes the queue edges to it; a waiter is woken when it has none
// left. The request whose wait would close a cycle gets Status::Deadlock at once, and the
// others keep waiting until the victim's owner releases, except where the queue made the
// cycle: a request goes before the queued requests that wait for it (granted at once if
// nothing holds its range), and a cycle through the queue edges of other requests in this
// tree takes those requests out of the queue (they look again, and go before the requests
// their turn would deadlock with) instead of refusing anyone. A cycle through queue edges
// of another table's tree is a deadlock like any other.
//
// Representation: the key space is cut into segments at the bounds of the locked ranges, each
// segment recording its holders (one writer, or any number of readers). Bounds sit just
// before or just after a key, so any comparator works without a successor function. A
// segment map in canonical form (no two neighbours with the same holders) plus, per owner,
// the list of ranges it acquired. Acquire without conflict costs O(log n + s) comparisons
// for n bounds and s segments the range spans (1 to 3 for a row lock); ReleaseAll costs
// that per range the owner acquired.
//
// Escalation: once an owner has acquired `escalate_at` ranges here (a transaction writing
// that many rows), its locks are escalated, as PerconaFT does: each run of its locks with
// nothing but unlocked key space between them becomes one range over the run (a write range
// if it holds any write lock in it, its sole read locks there upgrading, as PerconaFT's
// escalated ranges are all exclusive; else a read range),
// so a big transaction's locks take a few bounds instead of ~175 bytes a row. Escalation
// never takes a range another owner holds any part of, so every grant stays compatible;
// it does lock key space the owner never asked for, and other owners' requests there wait
// for it. It costs O(n) for the whole map and runs again when the owner's ranges have
// doubled since, so its cost stays linear in what the owner acquires. It also runs once the
// owner's ranges here cost `escalate_bytes` (RangeBytes; 24 MiB by default, about what the
// count allows with 16-byte keys) and number at least kMinRangesToEscalate (and twice as
// many as its last escalation left): the count alone let big keys take gigabytes (an 8 KiB
// key's lock costs ~25 KB). With an Account, the cost counted is the owner's in every table
// (a transaction spread over many tables escalates in those it goes on locking in). The
// trigger is the owner's own memory, not the Env's total:
// escalating every owner once their sum is large would make concurrent mid-size
// transactions lock each other out of the key space between their rows.
//
// Thread-safe: any thread may call any method. A waiting Acquire blocks only its own thread.
// REQUIRES: an owner is in at most one Acquire at a time (see deadlock_detector.h).
#ifndef FERN_TXN_LOCK_TREE_H_
#define FERN_TXN_LOCK_TREE_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fern/options.h"
#include "fern/status.h"
#include "ft/message.h"
#include "txn/deadlock_detector.h"
#include "txn/lock_segment.h"
#include "util/memory_budget.h"
#include "util/mutex.h"

namespace fern {

class LockTree {
 public:
  enum class Mode : uint8_t { kRead, kWrite };

  // `comparator` orders the keys; `detector` is shared by every LockTree of the Env. Both
  // must outlive the tree.
  // Owners escalate (above) once they have acquired this many ranges in one tree: ~23 MB
  // of row locks with 16-byte keys.
  static constexpr size_t kDefaultEscalateAt = size_t{1} << 17;

  // Owners escalate once their ranges here cost this much (see the class comment).
  static constexpr int64_t kDefaultEscalateBytes = int64_t{24} << 20;
  // ... and number at least this many.
  static constexpr size_t kMinRangesToEscalate = 128;

  // `comparator` orders the keys; `detector` and `memory` (may be null; where every tree of
  // the Env counts what its locks cost) are shared by every LockTree of the Env. All must
  // outlive the tree. `escalate_at` >= 1.
  LockTree(const Comparator& comparator, DeadlockDetector& detector,
           size_t escalate_at = kDefaultEscalateAt, MemoryBudget* memory = nullptr,
           int64_t escalate_bytes = kDefaultEscalateBytes);
  // REQUIRES: no thread is in Acquire.
  ~LockTree();
  LockTree(const LockTree&) = delete;
  LockTree& operator=(const LockTree&) = delete;

  // Locks [lo, hi] for `owner` (a root transaction id, not kNoTxn). OK once granted (at once
  // if the owner already holds the whole range in `mode` or stronger); Busy if a conflicting
  // lock is still held, or a conflicting request still queued ahead, `timeout` after the
  // first was seen (zero or negative: no waiting, and no queueing; absl::InfiniteDuration()
  // waits for ever); Deadlock if waiting would close a cycle of waits; InvalidArgument if
  // lo > hi or owner is kNoTxn. On Busy or Deadlock nothing was locked and the owner's
  // earlier locks stay held.
  Status Acquire(TxnId owner, std::string_view lo, std::string_view hi, Mode mode,
                 absl::Duration timeout);
  Status Acquire(TxnId owner, std::string_view key, Mode mode, absl::Duration timeout) {
    return Acquire(owner, key, key, mode, timeout);
  }
  // What one owner's locks cost in every table of the Env (RangeBytes), shared by the
  // trees it locks in: the transaction passes the same account to each.
  using Account = std::shared_ptr<std::atomic<int64_t>>;
  // As Acquire, over a range that may be unbounded: a null `lo` starts before every key, a
  // null `hi` ends after every key (a scan to the end of a table locks out rows inserted
  // past its last one). With an `account` (the first given for the owner here is kept
  // until it releases), the owner's locks escalate here once their cost in all the tables
  // sharing it reaches escalate_bytes, not only their cost here. `*granted` (if given) tells
  // an OK that added a range for the owner from one it already held.
  Status AcquireRange(TxnId owner, const std::string_view* lo, const std::string_view* hi,
                      Mode mode, absl::Duration timeout, const Account& account = nullptr,
                      bool* granted = nullptr);

  // Releases every lock `owner` holds here and wakes the requests that waited for it.
  void ReleaseAll(TxnId owner);

  // Takes back the lock on `key` alone that `owner`'s latest Acquire here granted, for a
  // write refused after its lock was had (a kSnapshot write conflict), as RocksDB does.
  // REQUIRES: that Acquire granted (AcquireRange's `granted`) and the owner has acquired
  // nothing here since. False, with the lock kept, when
  // the owner's newest range here is not exactly the key (the grant escalated, or the key
  // was already held). Wakes the requests that waited only for that lock.
  bool ReleaseNewestKey(TxnId owner, std::string_view key);

  // Whether `owner` holds all of [lo, hi] in `mode` or stronger.
  bool Holds(TxnId owner, std::string_view lo, std::string_view hi, Mode mode) const;

  // Owners holding at least one lock.
  size_t owner_count() const;
  // Bounds in the segment map (about two per disjoint locked range).
  size_t bound_count() const;
  // Requests now waiting.
  size_t waiter_count() const;
  // Escalations run so far.
  size_t escalation_count() const;

 private:
  // A bound of the segment map (lock_segment.h).
  using Bound = SegmentBound;
  struct BoundRef {
    std::string_view key;
    bool after = false;
    int8_t edge = 0;
  };
  struct BoundLess {
    using is_transparent = void;
    const Comparator* comparator;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return (*this)(Ref(a), Ref(b));
    }
    bool operator()(BoundRef a, BoundRef b) const {
      if (a.edge != 0 || b.edge != 0) return a.edge < b.edge;
      int c = comparator->Compare(a.key, b.key);
      if (c != 0) return c < 0;
      return !a.after && b.after;
    }
  };
  static BoundRef Ref(const Bound& b) { return BoundRef{b.key(), b.after(), b.edge()}; }
  static BoundRef Ref(BoundRef b) { return b; }
  // "[lo, hi]" for messages, "-inf" / "+inf" for the edges.
  static std::string Describe(BoundRef start, BoundRef end);
  // Owners of one segment: a writer (then no readers: the writer's own reads are subsumed)
  // or readers, ascending.
  struct Holders {
    TxnId writer = kNoTxn;
    ReaderIds readers;

    bool empty() const { return writer == kNoTxn && readers.empty(); }
    friend bool operator==(const Holders& a, const Holders& b) {
      return a.writer == b.writer && a.readers == b.readers;
    }
  };
  // One waiting Acquire; lives on its thread's stack.
  struct Waiter {
    TxnId owner;
    BoundRef start;
    BoundRef end;
    Mode mode;
    // The owners it waits for, kept exact while it sleeps (and equal to its edges in the
    // detector): those holding conflicting locks, and those whose conflicting requests
    // were queued before it. Disjoint. It is woken when both are empty.
    WaitList holders;
    WaitList queued;
    absl::CondVar wake;

    bool WaitsFor(TxnId other) const {
      return std::find(holders.begin(), holders.end(), other) != holders.end() ||
             std::find(queued.begin(), queued.end(), other) != queued.end();
    }
  };

  // Fills *blockers with the other owners whose locks conflict with the request on
  // [start, end); returns whether `owner` already holds all of it in `mode` or stronger.
  bool Scan(TxnId owner, BoundRef start, BoundRef end, Mode mode, WaitList* blockers) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void Grant(TxnId owner, BoundRef start, BoundRef end, Mode mode)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grant, then RecordGrant.
  void GrantRequest(TxnId owner, BoundRef start, BoundRef end, Mode mode, const Account& account)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a granted range as the owner's and escalates if it holds enough.
  void RecordGrant(TxnId owner, BoundRef start, BoundRef end, const Account& account)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The common case of a transaction's row lock, granted with two insertions instead of a
  // scan, two splits and a coalescing pass: when no request waits and [start, end] lies
  // inside an unlocked segment, with no bound in it, grants it (GrantRequest's effect) and
  // returns true; otherwise changes nothing.
  bool TryGrantInGap(TxnId owner, BoundRef start, BoundRef end, Mode mode, const Account& account)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ReleaseAll's common case: when [start, end) is exactly one segment, held by `owner`
  // alone, between unlocked segments, erases its two bounds and returns true; otherwise
  // changes nothing.
  bool TryReleaseAlone(TxnId owner, BoundRef start, BoundRef end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills *queued with the owners of requests queued before `self` (all of them, if
  // `self` is not queued) that it waits its turn behind (see the class comment).
  void QueueBehind(const Waiter& self, WaitList* queued) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // `owner`'s request leaves the queue: waiters queued behind it stop waiting for it, and
  // those left with nothing to wait for are woken.
  void LeaveQueue(TxnId owner) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inserts a bound at `at` (if absent) that keeps the holders in force there.
  void Split(BoundRef at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Restores canonical form after the holders of segments within [start, end) changed.
  void Coalesce(BoundRef start, BoundRef end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Equal(BoundRef a, BoundRef b) const;
  // About what one acquired range costs: its bounds in the segment map and its entry in the
  // owner's list, keys included.
  static int64_t RangeBytes(BoundRef start, BoundRef end);
  // Escalates `owner`'s locks (see the class comment) and rebuilds its list of ranges.
  void Escalate(TxnId owner) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Comparator& comparator_;
  DeadlockDetector& detector_;
  const BoundLess less_;
  const size_t escalate_at_;
  MemoryBudget* const memory_;
  const int64_t escalate_bytes_;

  mutable Mutex mu_;
  absl::btree_map<Bound, Holders, BoundLess> segments_ ABSL_GUARDED_BY(mu_);
  // The ranges one owner acquired, for ReleaseAll. Their keys are packed in one buffer, a
  // row lock's key once: a transaction holds a lock for every row it writes, so this is
  // most of what a big transaction's locks cost (a pair of std::string bounds took ~145
  // bytes for a 16-byte key, a packed range ~40).
  class OwnedRanges {
   public:
    // Returns what the range costs (RangeBytes), now counted in `bytes`.
    int64_t Add(BoundRef start, BoundRef end);
    // Drops the newest range; returns what it cost, no longer counted in `bytes`.
    // REQUIRES: size() > 0.
    int64_t RemoveNewest();
    size_t size() const { return ranges_.size(); }
    // Escalate once size() reaches this (0: the tree's escalate_at).
    size_t escalate_at = 0;
    // Once `bytes` reaches the tree's escalate_bytes, escalate when size() reaches this.
    size_t escalate_for_memory_at = kMinRangesToEscalate;
    // What the ranges cost, about (RangeBytes), as also counted in the tree's memory_ and
    // in `account`.
    int64_t bytes = 0;
    Account account;  // may be null
    BoundRef start(size_t i) const;
    BoundRef end(size_t i) const;

   private:
    struct Range {
      uint64_t offset;      // of the start key in keys_; the end key follows unless shared
      uint32_t start_size;  // keys are at most kMaxKeyBytes
      uint32_t end_size;
      bool start_after;
      bool end_after;
      int8_t start_edge;
      int8_t end_edge;
      bool shared_key;  // the end key is the start key's bytes
    };
    std::string keys_;
    std::vector<Range> ranges_;
  };
  absl::flat_hash_map<TxnId, OwnedRanges> owned_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);  // in the order they first waited
  size_t escalations_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fern

#endif  // FERN_TXN_LOCK_TREE_H_
