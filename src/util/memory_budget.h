// Memory of one kind that an Env keeps outside its cache (the locks of every table, the
// write sets of every transaction), counted against a budget tied to cache_bytes. Whoever
// holds such memory adds what it takes and subtracts it when it lets go; once the total is
// over the budget, the holders shrink theirs where they can (locks escalate, lock_tree.h;
// write sets spill to their rollback files, db/write_set.h), as PerconaFT escalates when its
// lock memory passes its limit.
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
  // An Env's budget for one kind: an eighth of its cache (PerconaFT's ratio for locks), at
  // least `floor`.
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
