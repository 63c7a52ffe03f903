#include "util/chunk_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace fern {
namespace {

using chunk_memory::kChunkBytes;
using chunk_memory::kMaxChunkedBytes;
using chunk_memory::kMinChunkedBytes;

TEST(ChunkAllocatorTest, RoundedSizeCoversTheRequestWithinAClass) {
  for (size_t bytes :
       {size_t{1}, size_t{100}, kMinChunkedBytes - 1, kMinChunkedBytes, size_t{16385},
        size_t{65536}, size_t{65537}, kMaxChunkedBytes, kMaxChunkedBytes + 1, size_t{4} << 20}) {
    const size_t rounded = chunk_memory::RoundedSize(bytes);
    EXPECT_GE(rounded, bytes) << bytes;
    if (chunk_memory::Enabled() && bytes >= kMinChunkedBytes && bytes <= kMaxChunkedBytes) {
      EXPECT_LE(rounded, bytes + (size_t{32} << 10)) << bytes;
      if (bytes <= (size_t{32} << 10)) {
        EXPECT_LT(rounded, bytes + 1024) << bytes;
      }
      EXPECT_EQ(chunk_memory::RoundedSize(rounded), rounded) << bytes;
    } else {
      EXPECT_EQ(rounded, bytes) << bytes;
    }
  }
}

// Blocks of one class never overlap, keep what was written into them, and sit inside one
// aligned chunk each; freeing them all gives the chunks back but one per class.
TEST(ChunkAllocatorTest, BlocksAreDisjointKeepTheirBytesAndChunksAreReturned) {
  const chunk_memory::Scope scope;
  const chunk_memory::Stats before = chunk_memory::GetStats();
  constexpr size_t kBytes = size_t{17} << 10;
  const size_t slot = chunk_memory::RoundedSize(kBytes);
  const size_t count = 3 * kChunkBytes / slot + 5;  // more than three chunks' worth
  std::vector<char*> blocks;
  for (size_t i = 0; i < count; ++i) {
    auto* p = static_cast<char*>(chunk_memory::Allocate(kBytes));
    std::memset(p, static_cast<int>(i % 251), kBytes);
    blocks.push_back(p);
  }
  if (chunk_memory::Enabled()) {
    const chunk_memory::Stats during = chunk_memory::GetStats();
    EXPECT_GE(during.chunks, before.chunks + 3);
    EXPECT_EQ(during.slot_bytes, before.slot_bytes + count * slot);
    for (char* p : blocks) {
      EXPECT_EQ(chunk_memory::BlockBytes(p, kBytes), slot);
      const auto at = reinterpret_cast<uintptr_t>(p);
      EXPECT_EQ(at / kChunkBytes, (at + kBytes - 1) / kChunkBytes) << "block straddles chunks";
    }
  }
  std::vector<char*> sorted = blocks;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i) EXPECT_GE(sorted[i] - sorted[i - 1], kBytes);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_EQ(blocks[i][0], static_cast<char>(i % 251)) << i;
    ASSERT_EQ(blocks[i][kBytes - 1], static_cast<char>(i % 251)) << i;
  }
  for (char* p : blocks) chunk_memory::Deallocate(p, kBytes);
  const chunk_memory::Stats after = chunk_memory::GetStats();
  EXPECT_EQ(after.slot_bytes, before.slot_bytes);
  EXPECT_LE(after.chunks, before.chunks + 1);
}

// Outside a Scope every block comes from operator new, whatever its size.
TEST(ChunkAllocatorTest, OutsideAScopeBlocksComeFromOperatorNew) {
  const chunk_memory::Stats before = chunk_memory::GetStats();
  void* p = chunk_memory::Allocate(size_t{16} << 10);
  EXPECT_EQ(chunk_memory::BlockBytes(p, size_t{16} << 10), size_t{16} << 10);
  EXPECT_EQ(chunk_memory::GetStats().slot_bytes, before.slot_bytes);
  chunk_memory::Deallocate(p, size_t{16} << 10);
  void* q;
  {
    const chunk_memory::Scope scope;
    q = chunk_memory::Allocate(size_t{16} << 10);
  }
  if (chunk_memory::Enabled()) {
    EXPECT_EQ(chunk_memory::GetStats().slot_bytes, before.slot_bytes + (size_t{16} << 10));
  }
  chunk_memory::Deallocate(q, size_t{16} << 10);  // outside the scope: still its chunk's
  EXPECT_EQ(chunk_memory::GetStats().slot_bytes, before.slot_bytes);
}

TEST(ChunkAllocatorTest, ChunkStringBehavesAsAString) {
  const chunk_memory::Scope scope;
  ChunkString s;
  for (int i = 0; i < 5000; ++i) s.append("0123456789");  // grows through several classes
  ASSERT_EQ(s.size(), 50000u);
  EXPECT_EQ(s.substr(49990), "0123456789");
  ChunkString copy = s;
  s.assign(100, 'x');
  EXPECT_EQ(copy.size(), 50000u);
  EXPECT_EQ(s, ChunkString(100, 'x'));
  ChunkString moved = std::move(copy);
  EXPECT_EQ(moved.substr(0, 10), "0123456789");
  moved.swap(s);
  EXPECT_EQ(moved.size(), 100u);
  EXPECT_EQ(s.size(), 50000u);
}

TEST(ChunkAllocatorTest, BlocksFreedByOtherThreadsKeepTheAccounting) {
  const chunk_memory::Stats before = chunk_memory::GetStats();
  constexpr int kThreads = 4;
  constexpr int kRounds = 3000;
  // Each thread allocates; the next thread frees half of what it made (blocks change hands,
  // as basements loaded by a reader are freed by the evictor).
  std::vector<std::thread> threads;
  std::vector<std::vector<std::pair<char*, size_t>>> kept(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &kept] {
      const chunk_memory::Scope scope;
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<std::pair<char*, size_t>>& mine = kept[t];
      for (int i = 0; i < kRounds; ++i) {
        const size_t bytes = 1024 + rng() % (size_t{300} << 10);
        auto* p = static_cast<char*>(chunk_memory::Allocate(bytes));
        p[0] = static_cast<char>(t);
        p[bytes - 1] = static_cast<char>(t);
        mine.emplace_back(p, bytes);
        if (mine.size() > 64) {
          const size_t victim = rng() % mine.size();
          ASSERT_EQ(mine[victim].first[0], static_cast<char>(t));
          ASSERT_EQ(mine[victim].first[mine[victim].second - 1], static_cast<char>(t));
          chunk_memory::Deallocate(mine[victim].first, mine[victim].second);
          mine[victim] = mine.back();
          mine.pop_back();
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &kept] {
      for (auto& [p, bytes] : kept[(t + 1) % kThreads]) chunk_memory::Deallocate(p, bytes);
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(chunk_memory::GetStats().slot_bytes, before.slot_bytes);
}

}  // namespace
}  // namespace fern
