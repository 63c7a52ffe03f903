#include "util/process_memory.h"

#include <gtest/gtest.h>

#include <memory>

namespace fern {
namespace {

#if defined(__linux__)
TEST(ProcessMemoryTest, ResidentBytesSeesTouchedMemory) {
  const size_t before = ResidentBytes();
  ASSERT_GT(before, 0u);
  constexpr size_t kBytes = size_t{64} << 20;
  auto block = std::unique_ptr<char[]>(new char[kBytes]);
  volatile char* bytes = block.get();  // the writes cannot be elided
  for (size_t i = 0; i < kBytes; i += 4096) bytes[i] = 1;
  const size_t after = ResidentBytes();
  EXPECT_GE(after, before + kBytes * 3 / 4) << before << " -> " << after;
}
#endif

}  // namespace
}  // namespace fern
