#include "ft/basement_admission.h"

#include <algorithm>
#include <bit>

namespace fern {

namespace {

constexpr size_t kBitsPerEntry = 10;
constexpr int kProbes = 3;

// The i-th probe's bit: double hashing over the two halves of `id`, remixed so that ids
// which differ in few bits still spread.
uint64_t Probe(uint64_t id, int i) {
  uint64_t h = id * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  const uint64_t step = (h >> 32) | 1;
  return h + static_cast<uint64_t>(i) * step;
}

}  // namespace

BasementAdmission::BasementAdmission(size_t window)
    : window_(std::max<size_t>(1, window)),
      bit_mask_(std::bit_ceil(std::max<size_t>(64, window_ * kBitsPerEntry)) - 1),
      current_((bit_mask_ + 1) / 64),
      previous_((bit_mask_ + 1) / 64) {}

bool BasementAdmission::Contains(const std::vector<uint64_t>& bits, uint64_t id) const {
  for (int i = 0; i < kProbes; ++i) {
    const uint64_t bit = Probe(id, i) & bit_mask_;
    if ((bits[bit / 64] & (uint64_t{1} << (bit % 64))) == 0) return false;
  }
  return true;
}

bool BasementAdmission::RecordMiss(uint64_t id, size_t weight) {
  MutexLock lock(&mu_);
  const bool seen = Contains(current_, id) || Contains(previous_, id);
  if (!seen) {
    if (current_count_ >= window_) {
      current_.swap(previous_);
      std::fill(current_.begin(), current_.end(), 0);
      current_count_ = 0;
    }
    for (int i = 0; i < kProbes; ++i) {
      const uint64_t bit = Probe(id, i) & bit_mask_;
      current_[bit / 64] |= uint64_t{1} << (bit % 64);
    }
    current_count_ += std::max<size_t>(1, weight);
  }
  return seen;
}

}  // namespace fern
