#include "util/big_buffer.h"

#include <sys/mman.h>

#include <cstdint>

namespace fern {

namespace {

constexpr uintptr_t kHugePageBytes = uintptr_t{2} << 20;

}  // namespace

void AdviseHugePages(void* p, size_t n) {
  if (n < kBigBufferBytes) return;
  const auto begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t first = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const uintptr_t last = (begin + n) & ~(kHugePageBytes - 1);
  if (first >= last) return;
  // Advice: a kernel without transparent huge pages refuses it, and nothing changes.
  (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

}  // namespace fern
