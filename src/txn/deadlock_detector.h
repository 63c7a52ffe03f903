// The waits-for graph of one Env's lock trees. An edge W -> H means owner W waits for a lock
// that owner H holds. Every LockTree of the Env records its waiters' edges here, so a cycle
// through several tables is found; the waiter whose edges would close a cycle is refused
// (it gets Status::Deadlock), and no cycle is ever stored.
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

class DeadlockDetector {
 public:
  DeadlockDetector() = default;
  DeadlockDetector(const DeadlockDetector&) = delete;
  DeadlockDetector& operator=(const DeadlockDetector&) = delete;

  // Replaces `waiter`'s edges with edges to each of `holders` (which must not contain
  // `waiter`). If that would close a cycle, removes `waiter`'s edges instead and returns
  // false. O(vertices + edges) of the part of the graph reachable from `holders`.
  bool SetWaits(TxnId waiter, std::span<const TxnId> holders);
  // Adds the edge waiter -> holder (no effect if present). See the header comment for why
  // this needs no cycle check.
  void AddWait(TxnId waiter, TxnId holder);
  // Removes the edge waiter -> holder, if present.
  void RemoveWait(TxnId waiter, TxnId holder);
  // Removes every edge from `waiter`.
  void ClearWaits(TxnId waiter);

  // Owners with at least one edge.
  size_t waiter_count() const;
  bool WaitsFor(TxnId waiter, TxnId holder) const;

 private:
  using Edges = absl::InlinedVector<TxnId, 4>;

  // Whether `target` is reachable from any of `starts`.
  bool Reaches(std::span<const TxnId> starts, TxnId target) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  absl::flat_hash_map<TxnId, Edges> waits_ ABSL_GUARDED_BY(mu_);  // no empty Edges
};

}  // namespace fern

#endif  // FERN_TXN_DEADLOCK_DETECTOR_H_
