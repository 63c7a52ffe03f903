#include "txn/deadlock_detector.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"

namespace fern {

namespace {

bool Contains(const WaitList& list, TxnId id) {
  return std::find(list.begin(), list.end(), id) != list.end();
}

void Erase(WaitList* list, TxnId id) {
  list->erase(std::remove(list->begin(), list->end(), id), list->end());
}

}  // namespace

bool DeadlockDetector::SetWaits(TxnId waiter, std::span<const TxnId> holders, WaitList* queued,
                                const void* queue, std::vector<TxnId>* requeued) {
  MutexLock lock(&mu_);
  // Refused or not, the old edges go. The search stops at the waiter, so they never mattered
  // to it.
  waits_.erase(waiter);
  if (queued != nullptr && !queued->empty()) {
    std::vector<TxnId> targets(holders.begin(), holders.end());
    targets.insert(targets.end(), queued->begin(), queued->end());
    if (Reaches(targets, waiter)) {
      // Requests queued ahead that wait, however indirectly, for this one: go before them.
      queued->erase(std::remove_if(queued->begin(), queued->end(),
                                   [&](TxnId ahead) {
                                     return Reaches({&ahead, 1}, waiter);
                                   }),
                    queued->end());
    }
  }
  // What is left of a cycle runs through the holders. Break queue edges of this tree on it;
  // a cycle of holder edges (or of other trees' queue edges) is a deadlock.
  while (true) {
    const std::vector<TxnId> path = PathTo(holders, waiter);
    if (path.empty()) break;
    bool broken = false;
    for (size_t i = 0; i + 1 < path.size() && !broken; ++i) {
      auto it = waits_.find(path[i]);
      Waits& waits = it->second;
      if (queue == nullptr || waits.queue != queue || !Contains(waits.queued, path[i + 1])) {
        continue;
      }
      waits.queued.clear();
      if (waits.empty()) waits_.erase(it);
      if (std::find(requeued->begin(), requeued->end(), path[i]) == requeued->end()) {
        requeued->push_back(path[i]);
      }
      broken = true;
    }
    if (!broken) return false;
  }
  if (holders.empty() && (queued == nullptr || queued->empty())) return true;
  Waits& waits = waits_[waiter];
  waits.holders.assign(holders.begin(), holders.end());
  if (queued != nullptr) waits.queued = *queued;
  waits.queue = queue;
  return true;
}

bool DeadlockDetector::SetWaits(TxnId waiter, std::span<const TxnId> holders) {
  std::vector<TxnId> requeued;
  return SetWaits(waiter, holders, nullptr, nullptr, &requeued);
}

void DeadlockDetector::AddWait(TxnId waiter, TxnId holder) {
  MutexLock lock(&mu_);
  Waits& waits = waits_[waiter];
  Erase(&waits.queued, holder);
  if (!Contains(waits.holders, holder)) waits.holders.push_back(holder);
}

void DeadlockDetector::RemoveWait(TxnId waiter, TxnId holder) {
  MutexLock lock(&mu_);
  auto it = waits_.find(waiter);
  if (it == waits_.end()) return;
  Erase(&it->second.holders, holder);
  Erase(&it->second.queued, holder);
  if (it->second.empty()) waits_.erase(it);
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
         (Contains(it->second.holders, holder) || Contains(it->second.queued, holder));
}

bool DeadlockDetector::QueuedBehind(TxnId waiter, TxnId holder) const {
  ReaderMutexLock lock(&mu_);
  auto it = waits_.find(waiter);
  return it != waits_.end() && Contains(it->second.queued, holder);
}

std::vector<TxnId> DeadlockDetector::PathTo(std::span<const TxnId> starts, TxnId target) const {
  // Depth first; `from` records how each owner was first reached, for the path back.
  absl::flat_hash_map<TxnId, TxnId> from;
  absl::InlinedVector<TxnId, 16> stack;
  for (TxnId start : starts) {
    if (from.emplace(start, kNoTxn).second) stack.push_back(start);
  }
  while (!stack.empty()) {
    const TxnId at = stack.back();
    stack.pop_back();
    if (at == target) {
      std::vector<TxnId> path;
      for (TxnId step = at; step != kNoTxn; step = from.at(step)) path.push_back(step);
      std::reverse(path.begin(), path.end());
      return path;
    }
    auto it = waits_.find(at);
    if (it == waits_.end()) continue;
    for (const WaitList* list : {&it->second.holders, &it->second.queued}) {
      for (TxnId next : *list) {
        if (from.emplace(next, at).second) stack.push_back(next);
      }
    }
  }
  return {};
}

}  // namespace fern
