// The waits-for graph of one Env's lock trees. An edge W -> H means owner W waits for owner
// H: for a lock H holds (a holder edge), or for H's request queued ahead of W's in the same
// lock tree (a queue edge: lock waits are first come, first served, lock_tree.h). Every
// LockTree of the Env records its waiters' edges here, so a cycle through several tables is
// found; the waiter whose edges would close a cycle is refused (it gets Status::Deadlock),
// and no cycle is ever stored. A cycle that runs through queue edges of the refusing
// request's own tree is broken instead, by taking those requests out of their queue
// (PostgreSQL rearranges its wait queues for the same reason): queueing must not cost a
// Deadlock that waiting for the holders alone would not.
//
// Owners are root transaction ids. REQUIRES of the callers: an owner waits in at most one
// Acquire at a time (a transaction family is used by one thread at a time), so only an owner
// that is about to wait can close a cycle, and AddWait (which adds an edge towards an owner
// that is running, not waiting) cannot.
//
// Thread-safe: every method may be called from any thread; LockTree calls them while holding
// its own mutex (lock order: LockTree::mu_, then DeadlockDetector::mu_; never the reverse).
#ifndef FERN_TXN_DEADLOCK_DETECTOR_H_
#define FERN_TXN_DEADLOCK_DETECTOR_H_

#include <cstddef>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "ft/message.h"
#include "util/mutex.h"

namespace fern {

// The owners one waiter waits for.
using WaitList = absl::InlinedVector<TxnId, 4>;

class DeadlockDetector {
 public:
  DeadlockDetector() = default;
  DeadlockDetector(const DeadlockDetector&) = delete;
  DeadlockDetector& operator=(const DeadlockDetector&) = delete;

  // Replaces `waiter`'s edges with holder edges to each of `holders` and queue edges to
  // each of *queued (owners of requests queued ahead in the lock tree `queue`; disjoint
  // from `holders`; neither contains `waiter`). Where that would close a cycle:
  //  - entries of *queued from which `waiter` is reachable are dropped from *queued (the
  //    request goes before them);
  //  - then, while `holders` reach `waiter`, a queue edge of another waiter in the same
  //    tree `queue` on such a path is broken: all of that waiter's queue edges are
  //    removed and its owner is appended to *requeued (the caller must wake it to look
  //    again; it is asleep in `queue`, whose mutex the caller holds);
  //  - if a path with no such edge is left, `waiter`'s edges are removed and false is
  //    returned (a deadlock).
  // O(vertices + edges) of the part of the graph reachable from `waiter`'s targets, times
  // one plus the cycles found.
  bool SetWaits(TxnId waiter, std::span<const TxnId> holders, WaitList* queued, const void* queue,
                std::vector<TxnId>* requeued);
  // Holder edges only: the above with no queue.
  bool SetWaits(TxnId waiter, std::span<const TxnId> holders);
  // Adds the holder edge waiter -> holder (turning a queue edge to `holder` into one). See
  // the header comment for why this needs no cycle check.
  void AddWait(TxnId waiter, TxnId holder);
  // Removes the edge waiter -> holder, if present, of either kind.
  void RemoveWait(TxnId waiter, TxnId holder);
  // Removes every edge from `waiter`.
  void ClearWaits(TxnId waiter);

  // Owners with at least one edge.
  size_t waiter_count() const;
  // Whether `waiter` has an edge (of either kind) to `holder`.
  bool WaitsFor(TxnId waiter, TxnId holder) const;
  // Whether that edge is a queue edge.
  bool QueuedBehind(TxnId waiter, TxnId holder) const;

 private:
  struct Waits {
    WaitList holders;
    WaitList queued;
    const void* queue = nullptr;  // the lock tree of the queue edges
    bool empty() const { return holders.empty() && queued.empty(); }
  };

  // A path of waits from one of `starts` to `target`, as the owners along it (a start
  // first, `target` last); empty if there is none.
  std::vector<TxnId> PathTo(std::span<const TxnId> starts, TxnId target) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool Reaches(std::span<const TxnId> starts, TxnId target) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !PathTo(starts, target).empty();
  }

  mutable Mutex mu_;
  absl::flat_hash_map<TxnId, Waits> waits_ ABSL_GUARDED_BY(mu_);  // no empty Waits
};

}  // namespace fern

#endif  // FERN_TXN_DEADLOCK_DETECTOR_H_
