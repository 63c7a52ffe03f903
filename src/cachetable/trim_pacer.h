// When the evictor hands the allocator's free memory back to the system (malloc_trim).
//
// A trim is due after a quarter of the budget has been evicted since the last one, or early
// after a sixteenth if resident memory has run further past the budget (the evictor checks
// resident memory; see ReturnFreedMemory in evictor.cc), and at the evictor's quiet runs
// (nothing to sweep; see QuietRunDue). A trim that gives back little (under an eighth of
// the slack) doubles both amounts and spaces the quiet-run trims as many runs apart, up to
// kMaxScale times: memory held
// outside the cache (a big transaction's write set) keeps the process over the line however
// much is trimmed, and each such trim walks the whole heap for nothing. The first trim that
// gives back more returns them to their base.
//
// Not thread-safe: the evictor thread owns it.
#ifndef FERN_CACHETABLE_TRIM_PACER_H_
#define FERN_CACHETABLE_TRIM_PACER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace fern {

class TrimPacer {
 public:
  static constexpr uint64_t kMaxScale = 64;

  enum class Due {
    kNo,
    kEarly,  // trim if resident memory is past the budget by 1.25 times the slack
    kFull,   // trim if resident memory is past the budget by the slack
  };

  TrimPacer(size_t budget, size_t slack) : budget_(budget), slack_(slack) {}

  void AddEvicted(uint64_t bytes) { debt_ += bytes; }

  Due due() const {
    if (debt_ >= budget_ / 4 * scale_) return Due::kFull;
    if (debt_ >= budget_ / 16 * scale_) return Due::kEarly;
    return Due::kNo;
  }

  // A trim ran and gave back `freed` bytes (0 if unknown).
  void Trimmed(size_t freed) {
    debt_ = 0;
    scale_ = freed < slack_ / 8 ? std::min(scale_ * 2, kMaxScale) : 1;
  }

  // A due trim was not needed (resident memory within the line): the count starts again.
  void NotNeeded(Due due) {
    if (due == Due::kFull) debt_ = 0;
  }

  // An evictor run with nothing to sweep (the cache within its budget): whether it should
  // check resident memory and trim if over the line. Every run while trims give back
  // memory, every `scale`-th run after ones that gave back little. Writers on several
  // threads leave the allocator's heaps fragmented while the cache itself stays within its
  // budget: twenty tables filled at a 256 MiB cache reached 320 MiB RSS with 214 MiB
  // cached and no eviction to bring a trim.
  bool QuietRunDue() {
    if (++quiet_runs_ < scale_) return false;
    quiet_runs_ = 0;
    return true;
  }

  uint64_t scale() const { return scale_; }

 private:
  const size_t budget_;
  const size_t slack_;
  uint64_t debt_ = 0;  // bytes evicted since the last trim
  uint64_t scale_ = 1;
  uint64_t quiet_runs_ = 0;  // quiet runs since the last one that was due
};

}  // namespace fern

#endif  // FERN_CACHETABLE_TRIM_PACER_H_
