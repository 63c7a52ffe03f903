#include "ft/basement_pool.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace fern {
namespace {

// A basement whose arena holds `bytes` of capacity, as a decoded one would.
std::unique_ptr<Basement> WithArena(size_t bytes) {
  auto basement = std::make_unique<Basement>();
  ChunkString arena = basement->TakeArena();
  arena.reserve(bytes);
  // Eight bytes of max MSN and a zero entry count: an empty serialized basement.
  arena.assign(9, '\0');
  EXPECT_TRUE(basement->Adopt(std::move(arena), *BytewiseComparator()).ok());
  return basement;
}

TEST(BasementPoolTest, TakeHandsBackWhatWasRecycledWithItsMemory) {
  BasementPool pool(size_t{1} << 20, size_t{64} << 10);
  std::unique_ptr<Basement> fresh = pool.Take();
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(pool.reused(), 0u);

  std::unique_ptr<Basement> basement = WithArena(16 << 10);
  const size_t memory = basement->memory_bytes();
  Basement* const kept = basement.get();
  pool.Recycle(std::move(basement));
  EXPECT_EQ(pool.held_count(), 1u);
  EXPECT_EQ(pool.held_bytes(), memory);

  std::unique_ptr<Basement> again = pool.Take();
  EXPECT_EQ(again.get(), kept);
  EXPECT_EQ(again->count(), 0u);
  const ChunkString arena = again->TakeArena();
  EXPECT_GE(arena.capacity(), size_t{16} << 10);
  // The bytes stay (as garbage) so that a decode of about that size overwrites them rather
  // than zero-filling a cleared buffer first.
  EXPECT_EQ(arena.size(), 9u);
  EXPECT_EQ(pool.reused(), 1u);
  EXPECT_EQ(pool.held_count(), 0u);
  EXPECT_EQ(pool.held_bytes(), 0u);
  pool.Recycle(nullptr);
  EXPECT_EQ(pool.held_count(), 0u);
}

TEST(BasementPoolTest, KeepsNoMoreThanItsLimitAndNoOversizedBasement) {
  const size_t one = WithArena(16 << 10)->memory_bytes();
  BasementPool pool(3 * one, size_t{32} << 10);
  for (int i = 0; i < 10; ++i) pool.Recycle(WithArena(16 << 10));
  EXPECT_EQ(pool.held_count(), 3u);
  EXPECT_LE(pool.held_bytes(), 3 * one);
  pool.Take();
  pool.Recycle(WithArena(128 << 10));  // larger than max_basement_bytes: freed
  EXPECT_EQ(pool.held_count(), 2u);
}

TEST(BasementPoolTest, ConcurrentTakeAndRecycleKeepTheCountsStraight) {
  BasementPool pool(size_t{256} << 10, size_t{64} << 10);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool] {
      for (int i = 0; i < 2000; ++i) {
        std::unique_ptr<Basement> b = pool.Take();
        if (b->memory_bytes() < 1024) b = WithArena(4 << 10);
        pool.Recycle(std::move(b));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(pool.held_bytes(), size_t{256} << 10);
  EXPECT_GE(pool.held_count(), 1u);
  EXPECT_GT(pool.reused(), 0u);
  size_t total = 0;
  const size_t held = pool.held_count();
  for (size_t i = 0; i < held; ++i) total += pool.Take()->memory_bytes();
  EXPECT_EQ(pool.held_count(), 0u);
  EXPECT_EQ(pool.held_bytes(), 0u);
  EXPECT_GT(total, 0u);
}

}  // namespace
}  // namespace fern
