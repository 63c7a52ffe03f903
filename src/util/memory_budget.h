// Memory of one kind that an Env keeps outside its cache (the locks of every table, the
// write sets of every transaction), counted against a budget. Whoever holds such memory adds
// what it takes and subtracts it when it lets go. Write sets share a budget tied to
// cache_bytes and spill to their rollback files while their total is over it
// (db/write_set.h); locks are only counted (an unlimited budget: each owner escalates on its
// own, txn/lock_tree.h), for fern.stats.
//
// Thread-safe (one atomic counter).
#ifndef FERN_UTIL_MEMORY_BUDGET_H_
#define FERN_UTIL_MEMORY_BUDGET_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace fern {

class MemoryBudget {
 public:
  // An Env's budget for one kind: an eighth of its cache (PerconaFT's ratio for its lock
  // memory), at least `floor`.
  static size_t EighthOf(size_t cache_bytes, size_t floor) {
    return cache_bytes / 8 > floor ? cache_bytes / 8 : floor;
  }

  explicit MemoryBudget(size_t budget) : budget_(budget) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // `bytes` more (or, negative, fewer) in use.
  void Add(int64_t bytes) { used_.fetch_add(bytes, std::memory_order_relaxed); }
  bool over_budget() const { return used() > budget_; }
  size_t used() const {
    const int64_t used = used_.load(std::memory_order_relaxed);
    return used > 0 ? static_cast<size_t>(used) : 0;
  }
  size_t budget() const { return budget_; }

 private:
  const size_t budget_;
  std::atomic<int64_t> used_{0};
};

}  // namespace fern

#endif  // FERN_UTIL_MEMORY_BUDGET_H_
