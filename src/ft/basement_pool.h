// BasementPool: basements whose rows were evicted, kept with their memory for the next
// basement read from disk.
//
// A read that misses the cache decodes a basement into fresh memory (its arena, offsets and
// search index: four allocations), and the evictor frees another at about the same rate.
// With data larger than the cache that is one malloc/free round per miss, from two threads
// into the same allocator arena: at 64 MiB cache fernbench's seekrandom spent a fifth of
// its time in malloc, half of it waiting for the arena's lock. The pool hands the evicted
// basement's memory straight to the next read instead.
//
// Bounded: it keeps basements only while their memory (Basement::memory_bytes) totals at
// most `limit_bytes`, and none larger than `max_basement_bytes`; the rest are freed. The
// memory it holds is outside the cachetable's budget.
//
// Thread-safe.
#ifndef FERN_FT_BASEMENT_POOL_H_
#define FERN_FT_BASEMENT_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "ft/basement.h"
#include "util/mutex.h"

namespace fern {

class BasementPool {
 public:
  BasementPool(size_t limit_bytes, size_t max_basement_bytes);
  BasementPool(const BasementPool&) = delete;
  BasementPool& operator=(const BasementPool&) = delete;

  // An empty basement: a kept one (its memory reused) if any, otherwise a new one.
  std::unique_ptr<Basement> Take();
  // Keeps `basement` (emptied) for a later Take if it fits the bounds; frees it otherwise.
  // Null is ignored.
  void Recycle(std::unique_ptr<Basement> basement);

  size_t held_bytes() const;
  size_t held_count() const;
  uint64_t reused() const;  // Takes answered with a kept basement

 private:
  const size_t limit_bytes_;
  const size_t max_basement_bytes_;
  mutable Mutex mu_;
  std::vector<std::unique_ptr<Basement>> kept_ ABSL_GUARDED_BY(mu_);
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fern

#endif  // FERN_FT_BASEMENT_POOL_H_
