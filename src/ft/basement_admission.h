// BasementAdmission: whether a basement that a point read (a get, or a cursor's seek) had
// to read from disk is worth keeping when the cache is full.
//
// Keeping every basement read is LRU, and LRU keeps nothing useful when reads spread evenly
// over far more basements than the cache holds: each read then evicts a basement that will
// be read again before the one just read is. fernbench's readrandom at a 64 MiB cache
// visits the ~20,000 basements of 2M rows in a well-spread order that comes back to a
// basement only after ~20,000 other reads, and found a loaded basement 3.5% of the time
// while the cache held ~18% of them; each miss also paid for memory, its install and an
// eviction.
//
// So, once the cache is full, a point read keeps a basement only if another read missed it
// not long ago: within the last `window` to 2 * `window` misses recorded here, `window`
// being a fraction of the number of basements the cache holds (the Env takes a quarter).
// A basement read again that soon is hot enough to displace what is cached; one read only
// once in that span is served from a transient copy and leaves the cache as it was. Scans
// do not ask: they keep what they read until they are long enough to stream (see
// FractalTree::Caching). Below the budget every point read keeps what it reads.
//
// The record is two Bloom filters (current and previous window), ~10 bits and 3 probes
// per miss of a window: a false positive (about 2%) only admits a basement that did not
// earn it.
//
// Thread-safe.
#ifndef FERN_FT_BASEMENT_ADMISSION_H_
#define FERN_FT_BASEMENT_ADMISSION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/mutex.h"

namespace fern {

class BasementAdmission {
 public:
  // REQUIRES: window >= 1.
  explicit BasementAdmission(size_t window);
  BasementAdmission(const BasementAdmission&) = delete;
  BasementAdmission& operator=(const BasementAdmission&) = delete;

  // Records a miss on the basement `id` (any well-mixed 64-bit hash of its identity) and
  // returns whether it missed within the last one or two windows before this one. A window
  // is `window` units of `weight`: a basement of k default sizes (weight k) takes k units,
  // so that the window spans about the same share of the cache's bytes whatever the tables'
  // basement sizes (with 64 KiB basements and a window counted in misses, a quarter of the
  // cache's default-sized basements was as many misses as the cache's bytes hold 64 KiB
  // basements, and seeks at 4x the cache loaded a third of what they read).
  // REQUIRES: weight >= 1.
  bool RecordMiss(uint64_t id, size_t weight = 1);

  size_t window() const { return window_; }

 private:
  bool Contains(const std::vector<uint64_t>& bits, uint64_t id) const;

  const size_t window_;
  const size_t bit_mask_;  // bits per filter - 1 (a power of two)
  mutable Mutex mu_;
  std::vector<uint64_t> current_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> previous_ ABSL_GUARDED_BY(mu_);
  size_t current_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fern

#endif  // FERN_FT_BASEMENT_ADMISSION_H_
