#include "ft/block_allocator.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace fern {
namespace {

constexpr uint64_t kUnit = BlockAllocator::kAlignment;
constexpr uint64_t kReserved = 2 * kUnit;

TEST(BlockAllocatorTest, NeverHandsOutTheReservedArea) {
  BlockAllocator allocator(kReserved);
  EXPECT_EQ(allocator.file_end(), kReserved);
  EXPECT_EQ(allocator.Allocate(1), kReserved);
  EXPECT_EQ(allocator.Allocate(kUnit), kReserved + kUnit);
  EXPECT_EQ(allocator.file_end(), kReserved + 2 * kUnit);
}

TEST(BlockAllocatorTest, RoundsReservedBytesUpToAlignment) {
  BlockAllocator allocator(100);
  EXPECT_EQ(allocator.reserved_bytes(), kUnit);
  EXPECT_EQ(allocator.Allocate(10), kUnit);
}

TEST(BlockAllocatorTest, AlignsSizesAndGivesEmptyBlocksOneUnit) {
  EXPECT_EQ(BlockAllocator::AlignedSize(0), kUnit);
  EXPECT_EQ(BlockAllocator::AlignedSize(1), kUnit);
  EXPECT_EQ(BlockAllocator::AlignedSize(kUnit), kUnit);
  EXPECT_EQ(BlockAllocator::AlignedSize(kUnit + 1), 2 * kUnit);
  BlockAllocator allocator(kReserved);
  const uint64_t a = allocator.Allocate(0);
  const uint64_t b = allocator.Allocate(0);
  EXPECT_NE(a, b);
  EXPECT_EQ(allocator.allocated_bytes(), 2 * kUnit);
}

TEST(BlockAllocatorTest, FreeingTheTailShrinksTheFile) {
  BlockAllocator allocator(kReserved);
  const uint64_t a = allocator.Allocate(kUnit);
  const uint64_t b = allocator.Allocate(3 * kUnit);
  allocator.Free(b, 3 * kUnit);
  EXPECT_EQ(allocator.file_end(), a + kUnit);
  EXPECT_EQ(allocator.free_bytes(), 0u);
  allocator.Free(a, kUnit);
  EXPECT_EQ(allocator.file_end(), kReserved);
  EXPECT_EQ(allocator.allocated_bytes(), 0u);
}

TEST(BlockAllocatorTest, FreeingBelowTheTailLeavesAHoleThatShrinksWithIt) {
  BlockAllocator allocator(kReserved);
  const uint64_t a = allocator.Allocate(kUnit);
  const uint64_t b = allocator.Allocate(kUnit);
  allocator.Free(a, kUnit);
  EXPECT_EQ(allocator.free_bytes(), kUnit);
  EXPECT_EQ(allocator.file_end(), b + kUnit);
  allocator.Free(b, kUnit);  // merges with the hole below and both leave the file
  EXPECT_EQ(allocator.file_end(), kReserved);
  EXPECT_EQ(allocator.free_bytes(), 0u);
  EXPECT_EQ(allocator.free_extent_count(), 0u);
}

TEST(BlockAllocatorTest, CoalescesNeighbouringHoles) {
  BlockAllocator allocator(kReserved);
  std::vector<uint64_t> offsets;
  for (int i = 0; i < 5; ++i) offsets.push_back(allocator.Allocate(kUnit));
  allocator.Free(offsets[1], kUnit);
  allocator.Free(offsets[3], kUnit);
  EXPECT_EQ(allocator.free_extent_count(), 2u);
  allocator.Free(offsets[2], kUnit);
  EXPECT_EQ(allocator.free_extent_count(), 1u);
  EXPECT_EQ(allocator.free_bytes(), 3 * kUnit);
  // The merged hole now holds a 3-unit block without growing the file.
  EXPECT_EQ(allocator.Allocate(3 * kUnit), offsets[1]);
  EXPECT_EQ(allocator.file_end(), offsets[4] + kUnit);
}

// Leaves a hole of 4 units and, above it, one of 2, each followed by an allocated unit;
// returns their offsets.
std::pair<uint64_t, uint64_t> BigThenSmallHole(BlockAllocator* allocator) {
  const uint64_t big = allocator->Allocate(4 * kUnit);
  allocator->Allocate(kUnit);  // separator
  const uint64_t small = allocator->Allocate(2 * kUnit);
  allocator->Allocate(kUnit);  // separator
  allocator->Free(big, 4 * kUnit);
  allocator->Free(small, 2 * kUnit);
  return {big, small};
}

TEST(BlockAllocatorTest, PicksTheSmallestHoleThatFits) {
  BlockAllocator allocator(kReserved);
  const auto [big, small] = BigThenSmallHole(&allocator);
  EXPECT_EQ(allocator.Allocate(2 * kUnit), small);
  // The next request only fits the big hole; the rest of it stays free.
  EXPECT_EQ(allocator.Allocate(kUnit + 1), big);
  EXPECT_EQ(allocator.free_bytes(), 2 * kUnit);
  EXPECT_EQ(allocator.Allocate(2 * kUnit), big + 2 * kUnit);
  EXPECT_EQ(allocator.free_bytes(), 0u);
}

TEST(BlockAllocatorTest, AllocateBelowUsesOnlyHolesUnderTheLimit) {
  BlockAllocator allocator(kReserved);
  const auto [low, high] = BigThenSmallHole(&allocator);
  const uint64_t end = allocator.file_end();
  // Best fit would take the high hole; below `high` only the low one counts.
  EXPECT_EQ(allocator.AllocateBelow(2 * kUnit, high), low);
  // What is left of the low hole ends at low + 4 units: a request must end by the limit.
  EXPECT_EQ(allocator.AllocateBelow(2 * kUnit, low + 3 * kUnit), 0u);
  EXPECT_EQ(allocator.AllocateBelow(2 * kUnit, low + 4 * kUnit), low + 2 * kUnit);
  // Nothing fits below the limit any more: 0, and the file never grows for it.
  EXPECT_EQ(allocator.AllocateBelow(kUnit, high), 0u);
  EXPECT_EQ(allocator.AllocateBelow(4 * kUnit, end), 0u);
  EXPECT_EQ(allocator.file_end(), end);
  EXPECT_EQ(allocator.free_bytes(), 2 * kUnit);
}

TEST(BlockAllocatorTest, ExtendsTheFileWhenNoHoleFits) {
  BlockAllocator allocator(kReserved);
  const uint64_t a = allocator.Allocate(kUnit);
  const uint64_t b = allocator.Allocate(kUnit);
  allocator.Free(a, kUnit);
  EXPECT_EQ(allocator.Allocate(2 * kUnit), b + kUnit);
  EXPECT_EQ(allocator.free_bytes(), kUnit);
}

// Holes of `units` (in that order, low to high), each followed by an allocated unit;
// returns their offsets.
std::vector<uint64_t> Holes(BlockAllocator* allocator, const std::vector<uint64_t>& units) {
  std::vector<uint64_t> offsets;
  for (uint64_t u : units) {
    offsets.push_back(allocator->Allocate(u * kUnit));
    allocator->Allocate(kUnit);  // separator
  }
  for (size_t i = 0; i < units.size(); ++i) allocator->Free(offsets[i], units[i] * kUnit);
  return offsets;
}

constexpr uint64_t kMinHeadUnits = BlockAllocator::kMinSplitHead / kUnit;

TEST(BlockAllocatorTest, SplittableTakesOneHoleWhenOneHoldsTheBlock) {
  BlockAllocator allocator(kReserved);
  const std::vector<uint64_t> holes = Holes(&allocator, {3 * kMinHeadUnits, 2 * kMinHeadUnits});
  const BlockAllocator::Placement p = allocator.AllocateSplittable(2 * kMinHeadUnits * kUnit - 5);
  EXPECT_EQ(p.offset, holes[1]);  // best fit
  EXPECT_EQ(p.head_bytes, 0u);
  EXPECT_EQ(p.tail_offset, 0u);
}

TEST(BlockAllocatorTest, SplittablePutsTheHeadInTheLargestHoleAndTheRestByBestFit) {
  BlockAllocator allocator(kReserved);
  const uint64_t h = kMinHeadUnits;
  const std::vector<uint64_t> holes = Holes(&allocator, {2 * h, 3 * h, h + 4});
  const uint64_t end = allocator.file_end();
  const uint64_t free_before = allocator.free_bytes();
  // 4h + 3 units: no hole holds it. The 3h hole takes the head; the h + 3 units left
  // fit the (h + 4)-unit hole best.
  const uint64_t size = (4 * h + 3) * kUnit - 100;
  const BlockAllocator::Placement p = allocator.AllocateSplittable(size);
  EXPECT_EQ(p.offset, holes[1]);
  EXPECT_EQ(p.head_bytes, 3 * h * kUnit);
  EXPECT_EQ(p.tail_offset, holes[2]);
  EXPECT_EQ(allocator.file_end(), end);
  EXPECT_EQ(allocator.free_bytes(), free_before - (4 * h + 3) * kUnit);
  allocator.FreeSplittable(p, size);
  EXPECT_EQ(allocator.free_bytes(), free_before);
  EXPECT_EQ(allocator.free_extent_count(), 3u);
}

TEST(BlockAllocatorTest, SplittableExtendsTheFileForTheRestWhenNoHoleHoldsIt) {
  BlockAllocator allocator(kReserved);
  const uint64_t h = kMinHeadUnits;
  const std::vector<uint64_t> holes = Holes(&allocator, {2 * h});
  const uint64_t end = allocator.file_end();
  const BlockAllocator::Placement p = allocator.AllocateSplittable(5 * h * kUnit);
  EXPECT_EQ(p.offset, holes[0]);
  EXPECT_EQ(p.head_bytes, 2 * h * kUnit);
  EXPECT_EQ(p.tail_offset, end);
  EXPECT_EQ(allocator.file_end(), end + 3 * h * kUnit);
  EXPECT_EQ(allocator.free_bytes(), 0u);
  // Freeing the tail first shrinks the file; the head's hole stays below the separator.
  allocator.FreeSplittable(p, 5 * h * kUnit);
  EXPECT_EQ(allocator.file_end(), end);
  EXPECT_EQ(allocator.free_bytes(), 2 * h * kUnit);
}

TEST(BlockAllocatorTest, SplittableLeavesHolesBelowTheMinimumHeadAlone) {
  BlockAllocator allocator(kReserved);
  const uint64_t small = kMinHeadUnits - 1;
  Holes(&allocator, {small, small});
  const uint64_t end = allocator.file_end();
  const BlockAllocator::Placement p = allocator.AllocateSplittable(2 * small * kUnit);
  EXPECT_EQ(p.offset, end);
  EXPECT_EQ(p.head_bytes, 0u);
  EXPECT_EQ(allocator.free_bytes(), 2 * small * kUnit);
}

TEST(BlockAllocatorTest, SplittableBelowStaysUnderTheLimitAndTakesNothingWhenItCannot) {
  BlockAllocator allocator(kReserved);
  const uint64_t h = kMinHeadUnits;
  // The last hole lies above the limit.
  const std::vector<uint64_t> holes = Holes(&allocator, {2 * h, h + 4, 5 * h});
  const uint64_t limit = holes[2];
  const uint64_t end = allocator.file_end();
  const uint64_t free_before = allocator.free_bytes();
  // No hole below the limit holds 3h units: the 2h hole takes the head, the (h + 4)-unit
  // one the rest.
  BlockAllocator::Placement p = allocator.AllocateSplittableBelow(3 * h * kUnit, limit);
  EXPECT_EQ(p.offset, holes[0]);
  EXPECT_EQ(p.head_bytes, 2 * h * kUnit);
  EXPECT_EQ(p.tail_offset, holes[1]);
  allocator.FreeSplittable(p, 3 * h * kUnit);
  EXPECT_EQ(allocator.free_bytes(), free_before);
  // 4h units: after a 2h head no hole below the limit holds the rest; nothing is taken.
  p = allocator.AllocateSplittableBelow(4 * h * kUnit, limit);
  EXPECT_EQ(p.offset, 0u);
  EXPECT_EQ(allocator.free_bytes(), free_before);
  EXPECT_EQ(allocator.free_extent_count(), 3u);
  EXPECT_EQ(allocator.file_end(), end);
  // One hole below the limit that holds the block is used whole.
  p = allocator.AllocateSplittableBelow(h * kUnit, limit);
  EXPECT_EQ(p.offset, holes[1]);
  EXPECT_EQ(p.head_bytes, 0u);
}

// A block placed by AllocateSplittable (or, as one extent, by Allocate).
struct PlacedBlock {
  BlockAllocator::Placement at;
  uint64_t size;
};

// Blocks that grow at every rewrite, as leaves do while they fill: with splits the holes
// their old copies leave are reused, so the file stays close to the live bytes, where one
// extent a block leaves them stranded.
TEST(BlockAllocatorTest, SplittingKeepsGrowingBlocksFromStrandingHoles) {
  auto run = [](bool splittable) {
    BlockAllocator allocator(kReserved);
    std::mt19937_64 rng(7);
    std::vector<PlacedBlock> blocks;
    uint64_t live = 0;
    for (int i = 0; i < 64; ++i) {
      const uint64_t size = (64 + rng() % 64) * kUnit;
      const uint64_t offset = allocator.Allocate(size);
      blocks.push_back({{offset, 0, 0}, size});
      live += size;
    }
    for (int round = 0; round < 2000; ++round) {
      PlacedBlock& b = blocks[rng() % blocks.size()];
      uint64_t size = b.size + (1 + rng() % 8) * kUnit;
      if (size > 256 * kUnit) size = 64 * kUnit;  // split in two: start small again
      const BlockAllocator::Placement at =
          splittable ? allocator.AllocateSplittable(size)
                     : BlockAllocator::Placement{allocator.Allocate(size), 0, 0};
      allocator.FreeSplittable(b.at, b.size);
      live = live - b.size + size;
      b = PlacedBlock{at, size};
    }
    return static_cast<double>(allocator.file_end() - kReserved) / static_cast<double>(live);
  };
  // File size over live bytes with this seed: 1.23 with one extent a block, 1.10 with two.
  const double one_extent = run(false);
  const double two_extents = run(true);
  EXPECT_LT(two_extents, 1.15) << "one extent: " << one_extent;
  EXPECT_LT(two_extents + 0.05, one_extent);
}

TEST(BlockAllocatorTest, RandomSplittableAllocationsNeverOverlap) {
  std::mt19937_64 rng(20261207);
  BlockAllocator allocator(kReserved);
  std::vector<PlacedBlock> blocks;
  int splits = 0;
  for (int step = 0; step < 5000; ++step) {
    if (blocks.empty() || rng() % 100 < 55) {
      const uint64_t size = rng() % (64 * kUnit) + 1;
      const BlockAllocator::Placement at = allocator.AllocateSplittable(size);
      if (at.head_bytes != 0) {
        ++splits;
        ASSERT_EQ(at.head_bytes % kUnit, 0u);
        ASSERT_LT(at.head_bytes, size);
        ASSERT_GE(at.head_bytes, BlockAllocator::kMinSplitHead);
      }
      blocks.push_back({at, size});
    } else {
      const size_t i = rng() % blocks.size();
      allocator.FreeSplittable(blocks[i].at, blocks[i].size);
      blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (step % 50 != 0) continue;
    // Every extent is allocated once: rebuilding from them succeeds and matches.
    BlockAllocator rebuilt(kReserved);
    uint64_t bytes = 0;
    for (const PlacedBlock& b : blocks) {
      if (b.at.head_bytes == 0) {
        ASSERT_TRUE(rebuilt.TryMarkAllocated(b.at.offset, b.size)) << step;
        bytes += BlockAllocator::AlignedSize(b.size);
      } else {
        ASSERT_TRUE(rebuilt.TryMarkAllocated(b.at.offset, b.at.head_bytes)) << step;
        ASSERT_TRUE(rebuilt.TryMarkAllocated(b.at.tail_offset, b.size - b.at.head_bytes)) << step;
        bytes += b.at.head_bytes + BlockAllocator::AlignedSize(b.size - b.at.head_bytes);
      }
    }
    ASSERT_EQ(allocator.allocated_bytes(), bytes) << step;
    ASSERT_EQ(rebuilt.allocated_bytes(), bytes) << step;
  }
  EXPECT_GT(splits, 0);
}

TEST(BlockAllocatorTest, TryFreeRejectsRangesThatAreNotAllocated) {
  BlockAllocator allocator(kReserved);
  const uint64_t a = allocator.Allocate(2 * kUnit);
  allocator.Allocate(kUnit);
  EXPECT_FALSE(allocator.TryFree(0, kUnit));                 // reserved area
  EXPECT_FALSE(allocator.TryFree(a + 1, kUnit));             // unaligned
  EXPECT_FALSE(allocator.TryFree(allocator.file_end(), 1));  // past the end
  EXPECT_TRUE(allocator.TryFree(a, kUnit));
  EXPECT_FALSE(allocator.TryFree(a, kUnit));      // double free
  EXPECT_FALSE(allocator.TryFree(a, 2 * kUnit));  // partly free
  EXPECT_EQ(allocator.free_bytes(), kUnit);
}

TEST(BlockAllocatorTest, MarkAllocatedRebuildsHolesInAnyOrder) {
  BlockAllocator allocator(kReserved);
  ASSERT_TRUE(allocator.TryMarkAllocated(kReserved + 10 * kUnit, kUnit));
  EXPECT_EQ(allocator.file_end(), kReserved + 11 * kUnit);
  EXPECT_EQ(allocator.free_bytes(), 10 * kUnit);
  ASSERT_TRUE(allocator.TryMarkAllocated(kReserved + 4 * kUnit, 2 * kUnit));
  ASSERT_TRUE(allocator.TryMarkAllocated(kReserved, kUnit));
  EXPECT_EQ(allocator.free_bytes(), 7 * kUnit);
  EXPECT_EQ(allocator.allocated_bytes(), 4 * kUnit);
  EXPECT_EQ(allocator.free_extent_count(), 2u);
  // The best fit for 3 units is the hole [1, 4); the hole [6, 10) is larger.
  EXPECT_EQ(allocator.Allocate(3 * kUnit), kReserved + kUnit);
}

TEST(BlockAllocatorTest, TryMarkAllocatedRejectsOverlaps) {
  BlockAllocator allocator(kReserved);
  ASSERT_TRUE(allocator.TryMarkAllocated(kReserved + 2 * kUnit, 2 * kUnit));
  EXPECT_FALSE(allocator.TryMarkAllocated(kReserved + 3 * kUnit, kUnit));      // inside
  EXPECT_FALSE(allocator.TryMarkAllocated(kReserved + kUnit, 2 * kUnit));      // straddles start
  EXPECT_FALSE(allocator.TryMarkAllocated(kReserved + 3 * kUnit, 4 * kUnit));  // straddles end
  EXPECT_FALSE(allocator.TryMarkAllocated(kUnit, kUnit));                      // reserved area
  EXPECT_FALSE(allocator.TryMarkAllocated(kReserved + 7, kUnit));              // unaligned
  EXPECT_FALSE(allocator.TryMarkAllocated(UINT64_MAX - kUnit + 1, kUnit));     // wraps
  EXPECT_EQ(allocator.allocated_bytes(), 2 * kUnit);
  EXPECT_EQ(allocator.free_bytes(), 2 * kUnit);
  EXPECT_TRUE(allocator.TryMarkAllocated(kReserved + kUnit, kUnit));  // exactly a free unit
}

// Drives random allocations and frees against a model: a map of the allocated ranges.
// After every step the allocator's totals must match the model, no two allocated ranges
// may overlap, and every hole must lie between allocated ranges below file_end().
TEST(BlockAllocatorTest, RandomAllocateFreeMatchesModel) {
  std::mt19937_64 rng(20240611);
  BlockAllocator allocator(kReserved);
  std::map<uint64_t, uint64_t> model;  // offset -> aligned size
  auto check = [&](int step) {
    uint64_t allocated = 0;
    uint64_t end = kReserved;
    uint64_t previous_end = kReserved;
    for (const auto& [offset, size] : model) {
      ASSERT_EQ(offset % kUnit, 0u) << "step " << step;
      ASSERT_GE(offset, previous_end) << "overlap at step " << step;
      previous_end = offset + size;
      allocated += size;
      end = offset + size;
    }
    ASSERT_EQ(allocator.allocated_bytes(), allocated) << "step " << step;
    ASSERT_EQ(allocator.file_end(), end) << "step " << step;
    ASSERT_EQ(allocator.free_bytes(), end - kReserved - allocated) << "step " << step;
    uint64_t holes = 0;
    uint64_t last_hole_end = 0;
    allocator.ForEachFreeExtent([&](uint64_t offset, uint64_t size) {
      EXPECT_GT(offset, last_hole_end) << "uncoalesced holes at step " << step;
      last_hole_end = offset + size;
      EXPECT_LT(last_hole_end, allocator.file_end()) << "hole touches the end at " << step;
      auto after = model.lower_bound(offset);
      EXPECT_TRUE(after != model.end() && after->first >= offset + size)
          << "hole overlaps a block at step " << step;
      holes += size;
    });
    ASSERT_EQ(holes, allocator.free_bytes()) << "step " << step;
  };
  for (int step = 0; step < 20000; ++step) {
    const bool allocate = model.empty() || rng() % 100 < 55;
    if (allocate) {
      // Mostly small blocks, sometimes node-sized ones.
      const uint64_t size = rng() % 10 == 0 ? rng() % (64 * kUnit) : rng() % (3 * kUnit);
      // Best fit, computed from the model: the smallest hole that fits, lowest offset.
      const uint64_t aligned = BlockAllocator::AlignedSize(size);
      uint64_t expected = allocator.file_end();
      uint64_t best_size = UINT64_MAX;
      allocator.ForEachFreeExtent([&](uint64_t offset, uint64_t hole) {
        if (hole >= aligned && hole < best_size) {
          best_size = hole;
          expected = offset;
        }
      });
      const uint64_t offset = allocator.Allocate(size);
      ASSERT_EQ(offset, expected) << "step " << step;
      model[offset] = aligned;
    } else {
      auto it = model.begin();
      std::advance(it, rng() % model.size());
      ASSERT_TRUE(allocator.TryFree(it->first, it->second)) << "step " << step;
      model.erase(it);
    }
    if (step % 16 == 0) check(step);
  }
  check(-1);
  // Rebuilding from the model with TryMarkAllocated (in shuffled order) gives the same
  // layout.
  std::vector<std::pair<uint64_t, uint64_t>> ranges(model.begin(), model.end());
  std::shuffle(ranges.begin(), ranges.end(), rng);
  BlockAllocator rebuilt(kReserved);
  for (const auto& [offset, size] : ranges) ASSERT_TRUE(rebuilt.TryMarkAllocated(offset, size));
  EXPECT_EQ(rebuilt.file_end(), allocator.file_end());
  EXPECT_EQ(rebuilt.free_bytes(), allocator.free_bytes());
  EXPECT_EQ(rebuilt.free_extent_count(), allocator.free_extent_count());
  for (const auto& [offset, size] : ranges) EXPECT_FALSE(rebuilt.TryMarkAllocated(offset, size));
}

}  // namespace
}  // namespace fern
