// OutsideMemory: memory that a cachetable's clients hold outside its pairs, counted against
// the cachetable's budget.
//
// Some readers keep decoded data that lives in no pair: the basements a streaming scan has
// decoded ahead of itself (ft/stream_ahead.h). Charged here, those bytes count in
// Cachetable::size_bytes(), so the evictor evicts pairs to make room for them and one
// budget covers both. Charges are capped at a share of the budget (1 / kShareDivisor): the
// pairs always keep most of it, and any number of scans cannot push the cache out. A charge
// past the cap is refused and its client does without the memory (a scan then decodes its
// basements itself).
//
// Shared (std::shared_ptr) by the Cachetable and the holders of charges, which may outlive
// it (a cursor destroyed after its Env): once the Cachetable is gone, charges and releases
// keep only their own count. Thread-safe.
#ifndef FERN_CACHETABLE_OUTSIDE_MEMORY_H_
#define FERN_CACHETABLE_OUTSIDE_MEMORY_H_

#include <atomic>
#include <cstddef>
#include <functional>

#include "util/mutex.h"

namespace fern {

class OutsideMemory {
 public:
  static constexpr size_t kShareDivisor = 8;

  // Charges are capped at budget_bytes / kShareDivisor. Not attached to a cachetable.
  explicit OutsideMemory(size_t budget_bytes);
  OutsideMemory(const OutsideMemory&) = delete;
  OutsideMemory& operator=(const OutsideMemory&) = delete;

  // Charges `bytes` if all charges stay within the cap; false (charging nothing) if not.
  bool TryCharge(size_t bytes);
  // Whether `bytes` more would fit now (a hint: another holder may charge first).
  bool Fits(size_t bytes) const;
  // Gives back `bytes` of earlier charges. REQUIRES: charged and not yet released.
  void Release(size_t bytes);

  size_t charged() const;
  size_t cap() const { return cap_; }

  // From now until Detach, counts every charge in `*size_bytes` too and calls `grew` after
  // each charge, holding this object's mutex (so `grew` must not call back into it). For the
  // Cachetable: the counter is its size and `grew` wakes its evictor when over budget.
  void Attach(std::atomic<size_t>* size_bytes, std::function<void()> grew);
  // Takes the current charges back out of the counter and stops counting there.
  void Detach();

 private:
  const size_t cap_;
  mutable Mutex mu_;
  size_t charged_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<size_t>* size_bytes_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::function<void()> grew_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fern

#endif  // FERN_CACHETABLE_OUTSIDE_MEMORY_H_
