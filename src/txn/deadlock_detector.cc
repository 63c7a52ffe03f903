#include "txn/deadlock_detector.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"

namespace fern {

bool DeadlockDetector::SetWaits(TxnId waiter, std::span<const TxnId> holders) {
  MutexLock lock(&mu_);
  // Refused or not, the old edges go. The search stops at the waiter, so they never mattered
  // to it.
  waits_.erase(waiter);
  if (holders.empty()) return true;
  if (Reaches(holders, waiter)) return false;
  Edges& edges = waits_[waiter];
  for (TxnId holder : holders) {
    if (std::find(edges.begin(), edges.end(), holder) == edges.end()) edges.push_back(holder);
  }
  return true;
}

void DeadlockDetector::AddWait(TxnId waiter, TxnId holder) {
  MutexLock lock(&mu_);
  Edges& edges = waits_[waiter];
  if (std::find(edges.begin(), edges.end(), holder) == edges.end()) edges.push_back(holder);
}

void DeadlockDetector::RemoveWait(TxnId waiter, TxnId holder) {
  MutexLock lock(&mu_);
  auto it = waits_.find(waiter);
  if (it == waits_.end()) return;
  Edges& edges = it->second;
  edges.erase(std::remove(edges.begin(), edges.end(), holder), edges.end());
  if (edges.empty()) waits_.erase(it);
}

void DeadlockDetector::ClearWaits(TxnId waiter) {
  MutexLock lock(&mu_);
  waits_.erase(waiter);
}

size_t DeadlockDetector::waiter_count() const {
  ReaderMutexLock lock(&mu_);
  return waits_.size();
}

bool DeadlockDetector::WaitsFor(TxnId waiter, TxnId holder) const {
  ReaderMutexLock lock(&mu_);
  auto it = waits_.find(waiter);
  return it != waits_.end() &&
         std::find(it->second.begin(), it->second.end(), holder) != it->second.end();
}

bool DeadlockDetector::Reaches(std::span<const TxnId> starts, TxnId target) const {
  absl::InlinedVector<TxnId, 16> stack(starts.begin(), starts.end());
  absl::flat_hash_set<TxnId> seen;
  while (!stack.empty()) {
    TxnId at = stack.back();
    stack.pop_back();
    if (at == target) return true;
    if (!seen.insert(at).second) continue;
    auto it = waits_.find(at);
    if (it == waits_.end()) continue;
    for (TxnId next : it->second) stack.push_back(next);
  }
  return false;
}

}  // namespace fern
