// The memory the locks of one Env take, against a budget (docs/transactions.md). Every
// LockTree of the Env adds what its granted ranges cost (an estimate: the bounds they put in
// the segment map and their entries in their owners' lists, keys included) and subtracts it
// when they are released or escalated. Once the total is over the budget, an owner that
// acquires a range escalates its locks in that table (lock_tree.h), as PerconaFT escalates
// when its lock memory passes its limit: a transaction with big keys, or one spread over many
// tables, then takes a bounded amount of memory instead of one that grows with its rows.
//
// Thread-safe (one atomic counter).
#ifndef FERN_TXN_LOCK_MEMORY_H_
#define FERN_TXN_LOCK_MEMORY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace fern {

class LockMemory {
 public:
  // The budget of an Env with this cache: an eighth of it (PerconaFT's default ratio), at
  // least kMinBudget.
  static constexpr size_t kMinBudget = size_t{4} << 20;
  static size_t BudgetFor(size_t cache_bytes) {
    return cache_bytes / 8 > kMinBudget ? cache_bytes / 8 : kMinBudget;
  }

  explicit LockMemory(size_t budget) : budget_(budget) {}
  LockMemory(const LockMemory&) = delete;
  LockMemory& operator=(const LockMemory&) = delete;

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

#endif  // FERN_TXN_LOCK_MEMORY_H_
