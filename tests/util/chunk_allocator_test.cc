#include "util/chunk_allocator.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
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
  for (size_t bytes : {size_t{1}, size_t{100}, kMinChunkedBytes - 1, kMinChunkedBytes, size_t{3000},
                       size_t{16385}, size_t{65536}, size_t{65537}, size_t{300000},
                       kMaxChunkedBytes, kMaxChunkedBytes + 1, size_t{4} << 20}) {
    const size_t rounded = chunk_memory::RoundedSize(bytes);
    EXPECT_GE(rounded, bytes) << bytes;
    if (chunk_memory::Enabled() && bytes >= kMinChunkedBytes && bytes <= kMaxChunkedBytes) {
      EXPECT_LE(rounded, bytes + (size_t{64} << 10)) << bytes;
      if (bytes <= (size_t{256} << 10)) {
        EXPECT_LE(rounded, bytes + (size_t{32} << 10)) << bytes;
      }
      if (bytes <= (size_t{64} << 10)) {
        EXPECT_LT(rounded, bytes + 4096) << bytes;
      }
      if (bytes <= (size_t{4} << 10)) {
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

// Free slots serve only their own class, so their total is bounded: once the chunks in use
// hold more than 32 MiB free, a class that needs a new chunk gets its block from operator
// new, while a class with free slots still reuses them.
TEST(ChunkAllocatorTest, AClassNeedingAChunkGetsNoneWhileChunksHoldMuchFree) {
  if (!chunk_memory::Enabled()) GTEST_SKIP() << "chunk memory is off in this build";
  const chunk_memory::Scope scope;
  constexpr size_t kFilled = size_t{33} << 10;  // a class no other test uses
  const size_t slot = chunk_memory::RoundedSize(kFilled);
  // 80 MiB of blocks, then every other one freed: ~40 MiB of free slots.
  const size_t count = (size_t{80} << 20) / slot;
  std::vector<void*> blocks;
  for (size_t i = 0; i < count; ++i) blocks.push_back(chunk_memory::Allocate(kFilled));
  for (size_t i = 0; i < count; i += 2) {
    chunk_memory::Deallocate(blocks[i], kFilled);
    blocks[i] = nullptr;
  }
  const chunk_memory::Stats before = chunk_memory::GetStats();
  ASSERT_GT(before.chunks * kChunkBytes - before.slot_bytes, size_t{32} << 20);

  // A class with no chunk yet: from operator new (its bytes are exactly the request).
  constexpr size_t kOther = (size_t{45} << 10) + 100;
  void* other = chunk_memory::Allocate(kOther);
  EXPECT_EQ(chunk_memory::BlockBytes(other, kOther), kOther);
  const chunk_memory::Stats after = chunk_memory::GetStats();
  EXPECT_EQ(after.declined_blocks, before.declined_blocks + 1);
  EXPECT_EQ(after.chunks, before.chunks);
  // The filled class reuses its free slots.
  void* reused = chunk_memory::Allocate(kFilled);
  EXPECT_EQ(chunk_memory::BlockBytes(reused, kFilled), slot);
  chunk_memory::Deallocate(reused, kFilled);
  chunk_memory::Deallocate(other, kOther);

  // Once the free slots are gone again (their chunks given back), new chunks are taken.
  for (void* p : blocks) chunk_memory::Deallocate(p, kFilled);
  chunk_memory::ReleaseEmptyChunks();
  const chunk_memory::Stats released = chunk_memory::GetStats();
  EXPECT_LE(released.chunks * kChunkBytes - released.slot_bytes, size_t{32} << 20);
  void* fresh = chunk_memory::Allocate(kOther);
  EXPECT_EQ(chunk_memory::BlockBytes(fresh, kOther), chunk_memory::RoundedSize(kOther));
  chunk_memory::Deallocate(fresh, kOther);
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

// Waits (up to 20 s) until the background thread holds `ready` chunks ready.
bool ReadyChunksReach(size_t ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (chunk_memory::GetStats().ready_chunks < ready) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Waits (up to 20 s) until the background thread has given back every emptied chunk
// beyond the stock.
bool ReleasingDrains() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (chunk_memory::GetStats().releasing_chunks > 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Waits up to 60 s for `child`; a child still running then is killed (a hang, even one
// inside fork's own handlers, fails the test rather than stalling it). Its wait status.
int WaitForChild(pid_t child) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status;
}

constexpr size_t kReady = 4;  // chunk_memory's stock

// Whether the 4 KiB page at `page` is resident.
bool Resident(const char* page) {
  unsigned char vec = 0;
  EXPECT_EQ(mincore(const_cast<char*>(page), 4096, &vec), 0);
  return (vec & 1) != 0;
}

// Slots freed inside chunks that stay in use (their neighbours live) keep their memory
// resident; once the chunks hold more than 8 MiB free, ReleaseEmptyChunks gives back each
// free slot's pages but the first (which links the free list), and a slot handed out again
// works as a fresh one.
TEST(ChunkAllocatorTest, FreeSlotsGiveBackTheirPagesOnceTheChunksHoldMuchFree) {
  if (!chunk_memory::Enabled()) GTEST_SKIP() << "chunk memory is off here";
  chunk_memory::ReleaseEmptyChunks();
  const chunk_memory::Scope scope;
  constexpr size_t kBytes = size_t{16} << 10;
  const size_t count = 8 * kChunkBytes / chunk_memory::RoundedSize(kBytes);  // 16 MiB
  std::vector<char*> blocks;
  for (size_t i = 0; i < count; ++i) {
    auto* p = static_cast<char*>(chunk_memory::Allocate(kBytes));
    std::memset(p, 1, kBytes);
    blocks.push_back(p);
  }
  // Every other block goes: 8 MiB free, and no chunk empties.
  std::vector<char*> freed;
  for (size_t i = 0; i < count; i += 2) {
    chunk_memory::Deallocate(blocks[i], kBytes);
    freed.push_back(blocks[i]);
    blocks[i] = nullptr;
  }
  // Another 2 MiB of free slots in a class of its own tips the chunks past 8 MiB free.
  constexpr size_t kOther = size_t{20} << 10;
  std::vector<void*> others;
  for (size_t i = 0; i < kChunkBytes / chunk_memory::RoundedSize(kOther); ++i) {
    others.push_back(chunk_memory::Allocate(kOther));
  }
  void* keep = chunk_memory::Allocate(kOther);  // keeps the other class's chunk in use
  for (void* p : others) chunk_memory::Deallocate(p, kOther);
  const size_t purged_before = chunk_memory::GetStats().purged_bytes;
  ASSERT_TRUE(Resident(freed[0] + 4096));
  chunk_memory::ReleaseEmptyChunks();
  EXPECT_GE(chunk_memory::GetStats().purged_bytes, purged_before + freed.size() * 3 * 4096);
  for (char* p : freed) {
    EXPECT_TRUE(Resident(p)) << "the first page holds the free list";
    EXPECT_FALSE(Resident(p + 4096));
    EXPECT_FALSE(Resident(p + kBytes - 4096));
  }
  for (size_t i = 1; i < count; i += 2) {
    EXPECT_TRUE(Resident(blocks[i] + 4096)) << "a live block keeps its pages";
    EXPECT_EQ(blocks[i][kBytes - 1], 1);
  }
  // A second trim gives back nothing more: the slots are marked.
  const size_t purged_once = chunk_memory::GetStats().purged_bytes;
  chunk_memory::ReleaseEmptyChunks();
  EXPECT_EQ(chunk_memory::GetStats().purged_bytes, purged_once);
  // Slots handed out again hold what is written to them.
  for (size_t i = 0; i < count; i += 2) {
    blocks[i] = static_cast<char*>(chunk_memory::Allocate(kBytes));
    std::memset(blocks[i], 7, kBytes);
  }
  for (size_t i = 0; i < count; i += 2) {
    EXPECT_EQ(blocks[i][4096], 7);
    EXPECT_EQ(blocks[i][kBytes - 1], 7);
  }
  for (char* p : blocks) chunk_memory::Deallocate(p, kBytes);
  chunk_memory::Deallocate(keep, kOther);
  chunk_memory::ReleaseEmptyChunks();
}

// After the first chunk, spare chunks are faulted in ahead of need; the next chunks come
// from that stock (it refills), and emptied chunks return to it rather than to the system.
TEST(ChunkAllocatorTest, ChunksAreFaultedInAheadOfNeed) {
  if (!chunk_memory::Enabled()) GTEST_SKIP() << "chunk memory is off here";
  // Chunks earlier tests emptied would otherwise refill the stock in place of fresh ones
  // (and, kept by their classes, count as free: past 32 MiB no class gets a new chunk).
  chunk_memory::ReleaseEmptyChunks();
  ASSERT_TRUE(ReleasingDrains());
  const chunk_memory::Scope scope;
  constexpr size_t kBytes = size_t{31} << 10;
  const size_t per_chunk = kChunkBytes / chunk_memory::RoundedSize(kBytes);
  std::vector<void*> blocks;
  blocks.push_back(chunk_memory::Allocate(kBytes));
  ASSERT_TRUE(ReadyChunksReach(kReady));
  const chunk_memory::Stats stocked = chunk_memory::GetStats();
  EXPECT_EQ(stocked.ready_chunks, kReady);

  // Three more chunks' worth: taken from the stock, which is topped up again.
  for (size_t i = 0; i < 3 * per_chunk; ++i) blocks.push_back(chunk_memory::Allocate(kBytes));
  ASSERT_TRUE(ReadyChunksReach(kReady));
  const chunk_memory::Stats after = chunk_memory::GetStats();
  EXPECT_GE(after.chunks, stocked.chunks + 3);
  EXPECT_EQ(after.ready_chunks, kReady);
  EXPECT_GE(after.prepared_chunks, stocked.prepared_chunks + 3);
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::memset(blocks[i], static_cast<int>(i % 251), kBytes);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    ASSERT_EQ(static_cast<char*>(blocks[i])[kBytes - 1], static_cast<char>(i % 251));
  }

  // Emptied chunks are kept ready (the stock is full, so these go back to the system) and
  // the stock never exceeds its size.
  for (void* p : blocks) chunk_memory::Deallocate(p, kBytes);
  ASSERT_TRUE(ReleasingDrains());
  const chunk_memory::Stats freed = chunk_memory::GetStats();
  EXPECT_EQ(freed.ready_chunks, kReady);
  EXPECT_LE(freed.chunks, stocked.chunks);
}

// Chunks emptied beyond the stock go back to the system on the background thread, not on
// the freeing one; one still waiting for that is what the next chunk needed takes.
TEST(ChunkAllocatorTest, EmptiedChunksAreGivenBackInTheBackground) {
  if (!chunk_memory::Enabled()) GTEST_SKIP() << "chunk memory is off here";
  chunk_memory::ReleaseEmptyChunks();  // as above
  ASSERT_TRUE(ReleasingDrains());
  const chunk_memory::Scope scope;
  constexpr size_t kBytes = size_t{600} << 10;  // three blocks to a chunk
  constexpr size_t kBlocks = 3 * 12;            // twelve chunks' worth
  std::vector<void*> blocks;
  for (size_t i = 0; i < kBlocks; ++i) blocks.push_back(chunk_memory::Allocate(kBytes));
  ASSERT_TRUE(ReadyChunksReach(kReady));
  const chunk_memory::Stats full = chunk_memory::GetStats();
  for (void* p : blocks) chunk_memory::Deallocate(p, kBytes);
  ASSERT_TRUE(ReleasingDrains());
  const chunk_memory::Stats freed = chunk_memory::GetStats();
  EXPECT_EQ(freed.ready_chunks, kReady);
  EXPECT_LE(freed.chunks + 11, full.chunks);  // the class keeps at most its last chunk
  // The stock was full: every emptied chunk but the class's last went back.
  EXPECT_GE(freed.released_chunks, full.released_chunks + 11);

  // Blocks allocated again work, whether their chunk is fresh or was awaiting release.
  blocks.clear();
  for (size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back(chunk_memory::Allocate(kBytes));
    std::memset(blocks.back(), static_cast<int>(i), kBytes);
  }
  for (void* p : blocks) chunk_memory::Deallocate(p, kBytes);
  for (size_t i = 0; i < kBlocks; ++i) blocks.push_back(chunk_memory::Allocate(kBytes));
  blocks.erase(blocks.begin(), blocks.begin() + kBlocks);
  for (size_t i = 0; i < kBlocks; ++i) {
    std::memset(blocks[i], static_cast<int>(i + 7), kBytes);
  }
  for (size_t i = 0; i < kBlocks; ++i) {
    ASSERT_EQ(static_cast<char*>(blocks[i])[0], static_cast<char>(i + 7));
    ASSERT_EQ(static_cast<char*>(blocks[i])[kBytes - 1], static_cast<char>(i + 7));
  }
  for (void* p : blocks) chunk_memory::Deallocate(p, kBytes);
  ASSERT_TRUE(ReleasingDrains());
  EXPECT_EQ(chunk_memory::GetStats().releasing_chunks, 0u);
}

// A child forked while the background thread exists has a consistent allocator and a
// background thread of its own.
TEST(ChunkAllocatorTest, AForkedChildAllocatesAndStocksChunks) {
  if (!chunk_memory::Enabled()) GTEST_SKIP() << "chunk memory is off here";
  // Chunks earlier tests emptied and their classes kept count as free, and the child must
  // be able to take chunks of its own.
  chunk_memory::ReleaseEmptyChunks();
  const chunk_memory::Scope scope;
  void* p = chunk_memory::Allocate(size_t{20} << 10);
  ASSERT_TRUE(ReadyChunksReach(kReady));
  // The child's stock must refill with chunks it prepares, not ones earlier tests emptied.
  ASSERT_TRUE(ReleasingDrains());
  const size_t prepared_before = chunk_memory::GetStats().prepared_chunks;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(30);  // a hang fails the test rather than stalling it
    const chunk_memory::Scope child_scope;
    std::vector<void*> blocks;
    for (size_t i = 0; i < 400; ++i) blocks.push_back(chunk_memory::Allocate(size_t{20} << 10));
    for (void* b : blocks) std::memset(b, 7, size_t{20} << 10);
    const bool stocked = ReadyChunksReach(kReady);
    for (void* b : blocks) chunk_memory::Deallocate(b, size_t{20} << 10);
    _exit(stocked && chunk_memory::GetStats().prepared_chunks > prepared_before ? 0 : 1);
  }
  const int status = WaitForChild(child);
  ASSERT_TRUE(WIFEXITED(status)) << "child died or hung";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  chunk_memory::Deallocate(p, size_t{20} << 10);
}

// Forks while another thread allocates and frees without pause (so that threads may be
// queued on the allocator's lock when fork copies it): every child allocates, frees and
// stocks chunks of its own, and exits.
TEST(ChunkAllocatorTest, ForksDuringAllocationLeaveChildrenWorking) {
  if (!chunk_memory::Enabled()) GTEST_SKIP() << "chunk memory is off here";
  chunk_memory::ReleaseEmptyChunks();  // as above
  std::atomic<bool> stop{false};
  std::thread churn([&stop] {
    const chunk_memory::Scope scope;
    std::vector<void*> blocks;
    for (size_t i = 0; !stop.load(); ++i) {
      blocks.push_back(chunk_memory::Allocate(size_t{24} << 10));
      if (blocks.size() > 300) {
        for (void* b : blocks) chunk_memory::Deallocate(b, size_t{24} << 10);
        blocks.clear();
      }
    }
    for (void* b : blocks) chunk_memory::Deallocate(b, size_t{24} << 10);
  });
  for (int round = 0; round < 20; ++round) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      alarm(30);
      const chunk_memory::Scope scope;
      std::vector<void*> blocks;
      for (size_t i = 0; i < 300; ++i) blocks.push_back(chunk_memory::Allocate(size_t{12} << 10));
      for (void* b : blocks) chunk_memory::Deallocate(b, size_t{12} << 10);
      _exit(ReadyChunksReach(kReady) ? 0 : 1);
    }
    const int status = WaitForChild(child);
    if (!WIFEXITED(status)) {
      stop.store(true);
      churn.join();
      FAIL() << "child " << round << " died or hung";
    }
    EXPECT_EQ(WEXITSTATUS(status), 0) << round;
  }
  stop.store(true);
  churn.join();
}

}  // namespace
}  // namespace fern
