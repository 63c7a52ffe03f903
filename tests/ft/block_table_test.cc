#include "ft/block_table.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ft/tree_file_test_util.h"
#include "gtest/gtest.h"
#include "util/checksum.h"
#include "util/coding.h"

namespace fern {
namespace {

constexpr uint64_t kUnit = BlockAllocator::kAlignment;

// The full checkpoint protocol without the I/O.
BlockLocation CompleteCheckpoint(BlockTable* table) {
  table->BeginCheckpoint();
  const std::string bytes = table->SerializeCheckpoint();
  const BlockLocation loc = table->AllocateTableSpace(bytes.size());
  table->CompleteCheckpoint(loc);
  return loc;
}

bool Overlaps(BlockLocation a, BlockLocation b) { return tree_file_test::ExtentsOverlap(a, b); }

// Allocates `n` fresh extents of `size` bytes and reports whether any overlaps `held`;
// gives them back afterwards.
bool FreshSpaceOverlaps(BlockTable* table, const std::vector<BlockLocation>& held, int n,
                        uint64_t size) {
  std::vector<BlockLocation> fresh;
  bool overlap = false;
  for (int i = 0; i < n; ++i) {
    fresh.push_back(table->AllocateSpace(size));
    for (const BlockLocation& h : held) overlap = overlap || Overlaps(fresh.back(), h);
  }
  for (const BlockLocation& f : fresh) table->ReleaseSpace(f);
  return overlap;
}

std::map<BlockNum, BlockLocation> CurrentBlocks(const BlockTable& table) {
  std::map<BlockNum, BlockLocation> blocks;
  table.ForEachBlock([&](BlockNum b, BlockLocation loc) { blocks[b] = loc; });
  return blocks;
}

// A serialized table with the given entries and a correct checksum (unless told otherwise).
std::string CraftTable(const std::vector<std::array<uint64_t, 3>>& entries, uint32_t version = 1) {
  std::string out = "FTBT";
  PutFixed32(&out, version);
  PutFixed64(&out, entries.size());
  for (const auto& [num, offset, size] : entries) {
    PutFixed64(&out, num);
    PutFixed64(&out, offset);
    PutFixed64(&out, size);
  }
  PutFixed64(&out, Checksum64(out));
  return out;
}

// The same in version 2: number, offset, size, head bytes, tail offset.
std::string CraftSplitTable(const std::vector<std::array<uint64_t, 5>>& entries) {
  std::string out = "FTBT";
  PutFixed32(&out, 2);
  PutFixed64(&out, entries.size());
  for (const auto& entry : entries) {
    for (uint64_t field : entry) PutFixed64(&out, field);
  }
  PutFixed64(&out, Checksum64(out));
  return out;
}

constexpr uint64_t kBase = BlockTable::kReservedFileBytes;
constexpr uint64_t kHeadUnits = BlockAllocator::kMinSplitHead / kUnit;

// A table whose last block lies in two holes: two freed (kHeadUnits + 4)-unit blocks, then
// one of 2 * kHeadUnits units. Returns that block.
BlockNum TableWithASplitBlock(BlockTable* table) {
  std::vector<BlockNum> freed;
  for (int i = 0; i < 2; ++i) {
    freed.push_back(table->AllocateBlockNum());
    table->Relocate(freed.back(), (kHeadUnits + 4) * kUnit);
    table->Relocate(table->AllocateBlockNum(), kUnit);  // separator
  }
  for (BlockNum b : freed) table->FreeBlockNum(b);
  const BlockNum split = table->AllocateBlockNum();
  table->Relocate(split, 2 * kHeadUnits * kUnit - 10);
  return split;
}

TEST(BlockTableTest, NewTableHasNoBlocks) {
  BlockTable table;
  const BlockTable::Stats stats = table.stats();
  EXPECT_EQ(stats.blocks, 0u);
  EXPECT_EQ(stats.used_bytes, 0u);
  EXPECT_EQ(stats.free_bytes, 0u);
  EXPECT_EQ(stats.file_bytes, BlockTable::kReservedFileBytes);
  BlockLocation loc;
  Status s = table.Lookup(BlockTable::kFirstBlockNum, &loc);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("block 1 is not allocated"), std::string::npos) << s.ToString();
  EXPECT_TRUE(table.Lookup(BlockTable::kTableBlockNum, &loc).IsCorruption());
  EXPECT_TRUE(table.Lookup(-5, &loc).IsCorruption());
}

TEST(BlockTableTest, AllocatesDenseNumbersFromFirstBlockNum) {
  BlockTable table;
  EXPECT_EQ(table.AllocateBlockNum(), BlockTable::kFirstBlockNum);
  EXPECT_EQ(table.AllocateBlockNum(), BlockTable::kFirstBlockNum + 1);
  EXPECT_TRUE(table.IsAllocated(BlockTable::kFirstBlockNum));
  EXPECT_FALSE(table.IsAllocated(BlockTable::kTableBlockNum));
}

TEST(BlockTableTest, LookupOfAnUnwrittenBlockIsCorruption) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  BlockLocation loc;
  Status s = table.Lookup(b, &loc);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("not been written"), std::string::npos) << s.ToString();
  EXPECT_EQ(table.stats().blocks, 0u);
}

TEST(BlockTableTest, RelocateRecordsTheNewLocation) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  const BlockLocation loc = table.Relocate(b, 5000);
  EXPECT_EQ(loc.offset, kBase);
  EXPECT_EQ(loc.size, 5000u);
  BlockLocation found;
  ASSERT_TRUE(table.Lookup(b, &found).ok());
  EXPECT_EQ(found, loc);
  EXPECT_EQ(table.stats().blocks, 1u);
  EXPECT_EQ(table.stats().used_bytes, 2 * kUnit);
}

TEST(BlockTableTest, RelocateFreesSpaceOnlyCurrentUsedAtOnce) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  for (int i = 0; i < 10; ++i) table.Relocate(b, kUnit);
  // Never checkpointed: each rewrite releases the previous extent, so two units at most
  // were ever needed.
  EXPECT_EQ(table.stats().used_bytes, kUnit);
  EXPECT_LE(table.stats().file_bytes, kBase + 2 * kUnit);
}

TEST(BlockTableTest, CheckpointedSpaceIsNotReusedUntilTheNextCheckpoint) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  const BlockLocation checkpointed = table.Relocate(b, kUnit);
  const BlockLocation first_table = CompleteCheckpoint(&table);
  table.Relocate(b, kUnit);
  table.Relocate(b, kUnit);
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {checkpointed, first_table}, 8, kUnit));
  const uint64_t used_before = table.stats().used_bytes;
  const BlockLocation second_table = CompleteCheckpoint(&table);
  // The old node and the old table are free now; the new table is held.
  EXPECT_EQ(table.checkpointed_table_location(), second_table);
  EXPECT_EQ(table.stats().used_bytes,
            used_before - 2 * kUnit + BlockAllocator::AlignedSize(second_table.size));
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {checkpointed}, 4, kUnit));
}

// 40 blocks of 1 MiB written twice, with a checkpoint after each round: the live copies
// sit in the upper half of the file, the lower half is holes.
std::vector<BlockNum> SpreadBlocks(BlockTable* table) {
  std::vector<BlockNum> blocks;
  for (int i = 0; i < 40; ++i) blocks.push_back(table->AllocateBlockNum());
  for (int round = 0; round < 2; ++round) {
    for (BlockNum b : blocks) table->Relocate(b, 1 << 20);
    CompleteCheckpoint(table);
  }
  return blocks;
}

TEST(BlockTableTest, TailBlocksAreTheCheckpointsHighestPastTheLine) {
  BlockTable table;
  const std::vector<BlockNum> blocks = SpreadBlocks(&table);
  uint64_t line = 0;
  EXPECT_TRUE(table.TailBlocks(&line).empty());  // no checkpoint in progress
  table.BeginCheckpoint();
  const auto tail = table.TailBlocks(&line);
  // The need: 40 MiB, the reserved area and the table; the line an eighth past it.
  EXPECT_GT(line, uint64_t{45} << 20);
  EXPECT_LT(line, uint64_t{46} << 20);
  ASSERT_FALSE(tail.empty());
  for (size_t i = 0; i < tail.size(); ++i) {
    EXPECT_GT(tail[i].second.offset + tail[i].second.size, line);
    if (i > 0) {
      EXPECT_LT(tail[i].second.offset, tail[i - 1].second.offset);
    }
  }
  // Moving them all below the line and completing shrinks the file to the line.
  for (const auto& [b, from] : tail) {
    const BlockLocation to = table.AllocateSpaceBelow(from.size, line);
    ASSERT_NE(to.offset, 0u);
    EXPECT_LE(to.offset + to.size, line);
    EXPECT_FALSE(Overlaps(to, from));
    ASSERT_TRUE(table.MoveBlock(b, from, to));
    BlockLocation now;
    ASSERT_TRUE(table.Lookup(b, &now).ok());
    EXPECT_EQ(now, to);
    // The last checkpoint still names `from`: fresh space stays clear of it.
    EXPECT_FALSE(FreshSpaceOverlaps(&table, {from}, 2, 1 << 20));
  }
  const std::string bytes = table.SerializeCheckpoint();
  table.CompleteCheckpoint(table.AllocateTableSpace(bytes.size()));
  EXPECT_LE(table.stats().file_bytes, line);
  EXPECT_EQ(blocks.size(), 40u);
}

TEST(BlockTableTest, MoveBlockRefusesABlockTheCheckpointNoLongerHoldsThere) {
  BlockTable table;
  const std::vector<BlockNum> blocks = SpreadBlocks(&table);
  table.BeginCheckpoint();
  uint64_t line = 0;
  const auto tail = table.TailBlocks(&line);
  ASSERT_GE(tail.size(), 2u);
  // The first is written for the checkpoint (a pending node) after it was picked; the
  // second is rewritten for the next checkpoint only.
  const auto [first, first_from] = tail[0];
  const auto [second, second_from] = tail[1];
  const BlockLocation pending = table.AllocateSpace(1 << 20);
  ASSERT_TRUE(table.SetLocation(first, pending, /*for_checkpoint=*/true).ok());
  const BlockLocation newer = table.Relocate(second, 1 << 20);
  // Neither is picked again: one is not the begin's any more, the other is rewritten.
  for (const auto& [b, loc] : table.TailBlocks(&line)) {
    EXPECT_NE(b, first);
    EXPECT_NE(b, second);
  }
  const BlockLocation to_first = table.AllocateSpaceBelow(1 << 20, line);
  EXPECT_FALSE(table.MoveBlock(first, first_from, to_first));
  table.ReleaseSpace(to_first);
  const BlockLocation to_second = table.AllocateSpaceBelow(1 << 20, line);
  // The checkpoint takes the moved copy; current keeps the newer write.
  EXPECT_TRUE(table.MoveBlock(second, second_from, to_second));
  BlockLocation now;
  ASSERT_TRUE(table.Lookup(second, &now).ok());
  EXPECT_EQ(now, newer);
  ASSERT_TRUE(table.Lookup(first, &now).ok());
  EXPECT_EQ(now, pending);
  const std::string bytes = table.SerializeCheckpoint();
  table.CompleteCheckpoint(table.AllocateTableSpace(bytes.size()));
  // The moved copy is the checkpoint's until the next one completes.
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {to_second}, 4, 1 << 20));
  CompleteCheckpoint(&table);
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {to_second, second_from}, 80, 1 << 20));
}

TEST(BlockTableTest, TwoVersionProtocolWithSerializeCurrentWorks) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  const BlockLocation old = table.Relocate(b, kUnit);
  const std::string bytes = table.SerializeCurrent();
  const BlockLocation loc = table.AllocateTableSpace(bytes.size());
  table.CompleteCheckpoint(loc);
  EXPECT_EQ(table.checkpointed_table_location(), loc);
  table.Relocate(b, kUnit);
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {old, loc}, 4, kUnit));
}

TEST(BlockTableTest, FreeBlockNumKeepsCheckpointedSpaceAndNumber) {
  BlockTable table;
  const BlockNum a = table.AllocateBlockNum();
  const BlockNum b = table.AllocateBlockNum();
  table.Relocate(a, kUnit);
  const BlockLocation b_loc = table.Relocate(b, 3 * kUnit);
  CompleteCheckpoint(&table);
  table.FreeBlockNum(b);
  EXPECT_FALSE(table.IsAllocated(b));
  EXPECT_EQ(table.stats().blocks, 1u);
  // The checkpoint still names b: neither its number nor its space is reused.
  EXPECT_NE(table.AllocateBlockNum(), b);
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {b_loc}, 4, 3 * kUnit));
  CompleteCheckpoint(&table);
  EXPECT_EQ(table.AllocateBlockNum(), b);
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {b_loc}, 1, 3 * kUnit));
}

TEST(BlockTableTest, UnchangedSinceCheckpointSeesWritesFreesAndCheckpointsInProgress) {
  BlockTable table;
  EXPECT_TRUE(table.UnchangedSinceCheckpoint());  // nothing, and nothing checkpointed
  const BlockNum a = table.AllocateBlockNum();
  const BlockNum b = table.AllocateBlockNum();
  table.Relocate(a, kUnit);
  table.Relocate(b, kUnit);
  EXPECT_FALSE(table.UnchangedSinceCheckpoint());
  CompleteCheckpoint(&table);
  EXPECT_TRUE(table.UnchangedSinceCheckpoint());  // the table's own entry does not count
  table.BeginCheckpoint();
  EXPECT_FALSE(table.UnchangedSinceCheckpoint());
  table.AbortCheckpoint();
  EXPECT_TRUE(table.UnchangedSinceCheckpoint());
  table.Relocate(b, kUnit);
  EXPECT_FALSE(table.UnchangedSinceCheckpoint());
  CompleteCheckpoint(&table);
  EXPECT_TRUE(table.UnchangedSinceCheckpoint());
  table.FreeBlockNum(a);
  EXPECT_FALSE(table.UnchangedSinceCheckpoint());
  CompleteCheckpoint(&table);
  EXPECT_TRUE(table.UnchangedSinceCheckpoint());
  table.Relocate(table.AllocateBlockNum(), kUnit);
  EXPECT_FALSE(table.UnchangedSinceCheckpoint());
}

TEST(BlockTableTest, FreeOfANeverCheckpointedBlockReleasesAtOnce) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  const BlockLocation loc = table.Relocate(b, kUnit);
  table.FreeBlockNum(b);
  EXPECT_EQ(table.stats().used_bytes, 0u);
  EXPECT_EQ(table.AllocateBlockNum(), b);
  EXPECT_EQ(table.Relocate(b, kUnit), loc);
}

TEST(BlockTableTest, WritesDuringACheckpointGoToTheNextOne) {
  BlockTable table;
  const BlockNum a = table.AllocateBlockNum();
  const BlockNum b = table.AllocateBlockNum();
  const BlockLocation a1 = table.Relocate(a, kUnit);
  const BlockLocation b1 = table.Relocate(b, kUnit);
  table.BeginCheckpoint();
  const std::string snapshot = table.SerializeCheckpoint();
  // Writers go on while the checkpoint is in progress.
  const BlockLocation a2 = table.Relocate(a, kUnit);
  table.FreeBlockNum(b);
  const BlockNum c = table.AllocateBlockNum();
  EXPECT_NE(c, b) << "b's number is still named by the checkpoint in progress";
  table.Relocate(c, kUnit);
  // The in-progress version's extents are protected although current dropped them.
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {a1, b1}, 8, kUnit));
  const BlockLocation table_loc = table.AllocateTableSpace(snapshot.size());
  table.CompleteCheckpoint(table_loc);

  // The checkpoint holds the snapshot, not current.
  BlockTable reloaded;
  ASSERT_TRUE(BlockTable::Deserialize(snapshot, table_loc, &reloaded).ok());
  const auto snap_blocks = CurrentBlocks(reloaded);
  ASSERT_EQ(snap_blocks.size(), 2u);
  EXPECT_EQ(snap_blocks.at(a), a1);
  EXPECT_EQ(snap_blocks.at(b), b1);
  const auto now = CurrentBlocks(table);
  EXPECT_EQ(now.at(a), a2);
  EXPECT_EQ(now.count(b), 0u);
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {a1, b1, table_loc}, 8, kUnit));

  // The next checkpoint releases what only the snapshot named.
  CompleteCheckpoint(&table);
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {a1}, 8, kUnit));
  EXPECT_EQ(table.AllocateBlockNum(), b);
}

// The sharp checkpoint: a for-checkpoint write (a pending node written, or its clone) puts
// b's begin-time bytes into the checkpoint, and into current unless b was rewritten
// since the begin.
TEST(BlockTableTest, ForCheckpointWriteReplacesTheBlockInTheCheckpoint) {
  BlockTable table;
  const BlockNum a = table.AllocateBlockNum();
  const BlockNum b = table.AllocateBlockNum();
  const BlockNum unwritten = table.AllocateBlockNum();
  const BlockLocation a0 = table.Relocate(a, kUnit);
  const BlockLocation b0 = table.Relocate(b, kUnit);
  CompleteCheckpoint(&table);
  const BlockLocation a1 = table.Relocate(a, kUnit);  // dirty before the begin

  table.BeginCheckpoint();
  // a: the checkpointer writes it first; no plain write since the begin.
  const BlockLocation a2 = table.AllocateSpace(kUnit);
  ASSERT_TRUE(table.SetLocation(a, a2, /*for_checkpoint=*/true).ok());
  // b: a writer rewrote it after the begin, then the clone of its begin state is written.
  const BlockLocation b1 = table.Relocate(b, kUnit);
  const BlockLocation b_clone = table.AllocateSpace(kUnit);
  ASSERT_TRUE(table.SetLocation(b, b_clone, /*for_checkpoint=*/true).ok());
  // unwritten: existed at the begin with no data; its first write is for the checkpoint.
  const BlockLocation u0 = table.AllocateSpace(kUnit);
  ASSERT_TRUE(table.SetLocation(unwritten, u0, /*for_checkpoint=*/true).ok());

  auto now = CurrentBlocks(table);
  EXPECT_EQ(now.at(a), a2);
  EXPECT_EQ(now.at(b), b1) << "current keeps the writer's newer b";
  EXPECT_EQ(now.at(unwritten), u0);
  EXPECT_EQ(table.stats().blocks, 3u);
  // a1 is named by nobody now and was released; a0 and b0 belong to the last checkpoint.
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {a0, b0, a2, b1, b_clone, u0}, 8, kUnit));

  const std::string bytes = table.SerializeCheckpoint();
  const BlockLocation table_loc = table.AllocateTableSpace(bytes.size());
  table.CompleteCheckpoint(table_loc);
  BlockTable checkpoint;
  ASSERT_TRUE(BlockTable::Deserialize(bytes, &checkpoint).ok());
  const auto in_checkpoint = CurrentBlocks(checkpoint);
  EXPECT_EQ(in_checkpoint.at(a), a2);
  EXPECT_EQ(in_checkpoint.at(b), b_clone);
  EXPECT_EQ(in_checkpoint.at(unwritten), u0);
  (void)a1;

  // The clone is released by the next checkpoint, which takes the writer's b1.
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {b_clone}, 8, kUnit));
  CompleteCheckpoint(&table);
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {b_clone}, 8, kUnit));
}

TEST(BlockTableTest, ForCheckpointWriteWithoutACheckpointIsAPlainWrite) {
  BlockTable table;
  const BlockNum a = table.AllocateBlockNum();
  const BlockLocation a0 = table.AllocateSpace(kUnit);
  ASSERT_TRUE(table.SetLocation(a, a0, /*for_checkpoint=*/true).ok());
  const BlockLocation a1 = table.AllocateSpace(kUnit);
  ASSERT_TRUE(table.SetLocation(a, a1, /*for_checkpoint=*/true).ok());
  EXPECT_EQ(CurrentBlocks(table).at(a), a1);
  EXPECT_EQ(table.stats().used_bytes, kUnit);
  EXPECT_TRUE(table.SetLocation(a + 10, a0).IsInvalidArgument());
}

TEST(BlockTableTest, AbortCheckpointReleasesWhatOnlyItNamed) {
  BlockTable table;
  const BlockNum a = table.AllocateBlockNum();
  const BlockLocation a0 = table.Relocate(a, kUnit);
  CompleteCheckpoint(&table);
  const BlockLocation a1 = table.Relocate(a, kUnit);
  const uint64_t used = table.stats().used_bytes;
  table.BeginCheckpoint();
  const std::string bytes = table.SerializeCheckpoint();
  const BlockLocation table_loc = table.AllocateTableSpace(bytes.size());
  table.Relocate(a, kUnit);  // a1 is now named only by the checkpoint in progress
  table.AbortCheckpoint();
  EXPECT_FALSE(table.checkpoint_in_progress());
  EXPECT_EQ(table.stats().used_bytes, used);  // a1 and the new table left, a2 came
  // The last complete checkpoint (a0) is still protected; a1 and the table are not.
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {a0}, 8, kUnit));
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {a1}, 8, kUnit));
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {table_loc}, 8, kUnit));
}

TEST(BlockTableTest, SerializeDeserializeRoundTrips) {
  BlockTable table;
  std::vector<BlockNum> nums;
  for (int i = 0; i < 50; ++i) nums.push_back(table.AllocateBlockNum());
  for (size_t i = 0; i < nums.size(); ++i) table.Relocate(nums[i], 100 + i * 997);
  for (size_t i = 0; i < nums.size(); i += 3) table.FreeBlockNum(nums[i]);
  const std::string bytes = table.SerializeCurrent();
  BlockTable loaded;
  ASSERT_TRUE(BlockTable::Deserialize(bytes, &loaded).ok());
  EXPECT_EQ(CurrentBlocks(loaded), CurrentBlocks(table));
  EXPECT_EQ(loaded.stats().blocks, table.stats().blocks);
  EXPECT_EQ(loaded.stats().used_bytes, table.stats().used_bytes);
  EXPECT_EQ(loaded.stats().file_bytes, table.stats().file_bytes);
  EXPECT_EQ(loaded.SerializeCurrent(), bytes);
  // Numbers the table does not name are free again, lowest first.
  EXPECT_EQ(loaded.AllocateBlockNum(), nums[0]);
  // The loaded blocks are the checkpointed version: rewriting keeps their space.
  std::vector<BlockLocation> held;
  for (const auto& [b, loc] : CurrentBlocks(loaded)) held.push_back(loc);
  for (const auto& [b, loc] : CurrentBlocks(loaded)) {
    const BlockLocation fresh = loaded.Relocate(b, loc.size);
    for (const BlockLocation& h : held) EXPECT_FALSE(Overlaps(fresh, h));
  }
}

TEST(BlockTableTest, DeserializeHoldsTheTablesOwnSpace) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  table.Relocate(b, kUnit);
  const std::string bytes = table.SerializeCurrent();
  const BlockLocation table_loc{kBase + 4 * kUnit, bytes.size()};
  BlockTable loaded;
  ASSERT_TRUE(BlockTable::Deserialize(bytes, table_loc, &loaded).ok());
  EXPECT_EQ(loaded.checkpointed_table_location(), table_loc);
  EXPECT_FALSE(FreshSpaceOverlaps(&loaded, {table_loc}, 8, kUnit));
  // The next checkpoint releases it.
  CompleteCheckpoint(&loaded);
  EXPECT_TRUE(FreshSpaceOverlaps(&loaded, {table_loc}, 8, kUnit));
  // A table location overlapping a block is corruption.
  BlockTable bad;
  EXPECT_TRUE(BlockTable::Deserialize(bytes, BlockLocation{kBase, 10}, &bad).IsCorruption());
}

TEST(BlockTableTest, DeserializeRejectsEveryFlippedByteAndTruncation) {
  BlockTable table;
  for (int i = 0; i < 6; ++i) table.Relocate(table.AllocateBlockNum(), 1000 * (i + 1));
  const std::string good = table.SerializeCurrent();
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      BlockTable out;
      EXPECT_TRUE(BlockTable::Deserialize(bad, &out).IsCorruption()) << "byte " << i;
    }
  }
  for (size_t n = 0; n < good.size(); ++n) {
    BlockTable out;
    EXPECT_TRUE(BlockTable::Deserialize(good.substr(0, n), &out).IsCorruption()) << n;
  }
  std::string longer = good + std::string(8, '\0');
  BlockTable out;
  EXPECT_TRUE(BlockTable::Deserialize(longer, &out).IsCorruption());
}

TEST(BlockTableTest, ABlockNoHoleHoldsLiesInTwoAndSerializesAsVersionTwo) {
  BlockTable table;
  const std::string before = table.SerializeCurrent();
  EXPECT_EQ(DecodeFixed32(before.data() + 4), 1u);
  const uint64_t end_before_split = [&] {
    BlockTable probe;
    for (int i = 0; i < 2; ++i) {
      probe.Relocate(probe.AllocateBlockNum(), (kHeadUnits + 4) * kUnit);
      probe.Relocate(probe.AllocateBlockNum(), kUnit);
    }
    return probe.stats().file_bytes;
  }();
  const BlockNum b = TableWithASplitBlock(&table);
  BlockLocation loc;
  ASSERT_TRUE(table.Lookup(b, &loc).ok());
  ASSERT_TRUE(loc.split());
  EXPECT_EQ(loc.head_bytes, (kHeadUnits + 4) * kUnit);
  EXPECT_EQ(loc.FileOffset(0), loc.offset);
  EXPECT_EQ(loc.FileOffset(loc.head_bytes), loc.tail_offset);
  EXPECT_EQ(table.stats().file_bytes, end_before_split);  // the file did not grow
  EXPECT_EQ(table.stats().split_blocks, 1u);
  for (const auto& [other, other_loc] : CurrentBlocks(table)) {
    if (other == b) continue;
    EXPECT_FALSE(Overlaps(loc, other_loc)) << other;
  }
  const std::string bytes = table.SerializeCurrent();
  EXPECT_EQ(DecodeFixed32(bytes.data() + 4), 2u);
  BlockTable loaded;
  ASSERT_TRUE(BlockTable::Deserialize(bytes, &loaded).ok());
  EXPECT_EQ(CurrentBlocks(loaded), CurrentBlocks(table));
  EXPECT_EQ(loaded.stats().used_bytes, table.stats().used_bytes);
  EXPECT_EQ(loaded.stats().free_bytes, table.stats().free_bytes);
  EXPECT_EQ(loaded.SerializeCurrent(), bytes);
  // Both extents stay held while the loaded (checkpointed) version names them.
  EXPECT_FALSE(FreshSpaceOverlaps(&loaded, {loc}, 8, 4 * kUnit));
  // Once the split block is gone, the table is version 1 again and its space is free.
  table.FreeBlockNum(b);
  EXPECT_EQ(DecodeFixed32(table.SerializeCurrent().data() + 4), 1u);
  EXPECT_EQ(table.stats().split_blocks, 0u);
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {loc}, 2, (kHeadUnits + 4) * kUnit));
}

TEST(BlockTableTest, DeserializeRejectsEveryFlippedByteOfASplitTable) {
  BlockTable table;
  TableWithASplitBlock(&table);
  const std::string good = table.SerializeCurrent();
  ASSERT_EQ(DecodeFixed32(good.data() + 4), 2u);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    BlockTable out;
    EXPECT_TRUE(BlockTable::Deserialize(bad, &out).IsCorruption()) << "byte " << i;
  }
  for (size_t n = 0; n < good.size(); ++n) {
    BlockTable out;
    EXPECT_TRUE(BlockTable::Deserialize(good.substr(0, n), &out).IsCorruption()) << n;
  }
}

TEST(BlockTableTest, DeserializeNamesBadSplits) {
  const uint64_t head = 16 * kUnit;
  const uint64_t tail = kBase + 32 * kUnit;
  struct Case {
    std::string bytes;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {CraftSplitTable({{1, kBase, 10 * kUnit, 10 * kUnit, tail}}), "bad split"},
      {CraftSplitTable({{1, kBase, 20 * kUnit, 10 * kUnit + 1, tail}}), "bad split"},
      {CraftSplitTable({{1, kBase, 20 * kUnit, head, 0}}), "bad split"},
      {CraftSplitTable({{1, kBase, 20 * kUnit, head, tail + 5}}), "bad split"},
      {CraftSplitTable({{1, kBase, 20 * kUnit, head, UINT64_MAX - kUnit + 1}}), "bad split"},
      {CraftSplitTable({{1, kBase, 20 * kUnit, head, BlockTable::kMaxFileBytes + kUnit}}),
       "bad split"},
      {CraftSplitTable({{1, kBase, 20 * kUnit, 0, tail}}), "tail offset without head bytes"},
      // The tail lands on the head, or on another block.
      {CraftSplitTable({{1, kBase, 20 * kUnit, head, kBase + kUnit}}), "overlaps"},
      {CraftSplitTable({{1, kBase, 20 * kUnit, head, tail}, {2, tail + kUnit, 10, 0, 0}}),
       "overlaps"},
  };
  for (const Case& c : cases) {
    BlockTable out;
    const Status s = BlockTable::Deserialize(c.bytes, &out);
    ASSERT_TRUE(s.IsCorruption()) << c.expected;
    EXPECT_NE(s.message().find(c.expected), std::string::npos) << s.ToString();
  }
  // A well-formed split loads.
  BlockTable good;
  ASSERT_TRUE(
      BlockTable::Deserialize(CraftSplitTable({{1, kBase, 20 * kUnit, head, tail}}), &good).ok());
  EXPECT_EQ(good.stats().split_blocks, 1u);
  EXPECT_EQ(good.stats().used_bytes, 20 * kUnit);
}

TEST(BlockTableTest, DeserializeNamesWhatWasWrong) {
  struct Case {
    std::string bytes;
    std::string expected;
  };
  std::string bad_checksum = CraftTable({{1, kBase, 10}});
  bad_checksum.back() ^= 1;
  std::string bad_magic = CraftTable({});
  bad_magic[0] = 'X';
  const std::vector<Case> cases = {
      {bad_checksum, "checksum mismatch"},
      {bad_magic, "bad magic"},
      {CraftTable({}, 7), "unsupported format version 7"},
      {CraftTable({{1, kBase, 2 * kUnit}, {2, kBase + kUnit, 10}}), "overlaps"},
      {CraftTable({{3, kBase, 10}, {2, kBase + kUnit, 10}}), "out of order"},
      {CraftTable({{1, kBase, 10}, {1, kBase + kUnit, 10}}), "out of order"},
      {CraftTable({{0, kBase, 10}}), "out of range"},
      {CraftTable({{uint64_t{1} << 40, kBase, 10}}), "out of range"},
      {CraftTable({{uint64_t(-3), kBase, 10}}), "out of range"},
      {CraftTable({{1, 0, 10}}), "bad offset"},
      {CraftTable({{1, kBase + 100, 10}}), "bad offset"},
      {CraftTable({{1, UINT64_MAX - kUnit + 1, 10}}), "bad offset"},
      // Past 4 PiB: the end of such a file plus later blocks could overflow.
      {CraftTable({{1, BlockTable::kMaxFileBytes + kUnit, 10}}), "bad offset"},
      {CraftTable({{1, kBase, uint64_t{1} << 50}}), "implausible size"},
  };
  for (const Case& c : cases) {
    BlockTable out;
    const Status s = BlockTable::Deserialize(c.bytes, &out);
    ASSERT_TRUE(s.IsCorruption()) << c.expected;
    EXPECT_NE(s.message().find(c.expected), std::string::npos) << s.ToString();
  }
}

// Memory follows the entries, not the highest number: a table naming only the highest
// number the format allows loads at once (a vector indexed by number took 128 GiB), and
// the numbers below it are handed out lowest first.
TEST(BlockTableTest, ATableNamingOnlyAHugeBlockNumberLoadsAndAllocatesBelowIt) {
  const BlockNum high = BlockTable::kMaxBlockNum - 1;
  const BlockNum middle = BlockNum{1} << 31;
  BlockTable table;
  ASSERT_TRUE(
      BlockTable::Deserialize(CraftTable({{5, kBase, 10},
                                          {static_cast<uint64_t>(middle), kBase + kUnit, 10},
                                          {static_cast<uint64_t>(high), kBase + 2 * kUnit, 10}}),
                              &table)
          .ok());
  EXPECT_TRUE(table.IsAllocated(high));
  EXPECT_TRUE(table.IsAllocated(middle));
  EXPECT_FALSE(table.IsAllocated(high - 1));
  std::vector<BlockNum> got;
  for (int i = 0; i < 6; ++i) got.push_back(table.AllocateBlockNum());
  EXPECT_EQ(got, (std::vector<BlockNum>{1, 2, 3, 4, 6, 7}));
  table.FreeBlockNum(3);  // no checkpoint names it: free again at once
  EXPECT_EQ(table.AllocateBlockNum(), 3);
  table.FreeBlockNum(5);  // the checkpoint (the loaded table) names it: retired
  EXPECT_EQ(table.AllocateBlockNum(), 8);
  CompleteCheckpoint(&table);
  EXPECT_EQ(table.AllocateBlockNum(), 5);
  table.Relocate(got[0], kUnit);
  BlockTable again;
  ASSERT_TRUE(BlockTable::Deserialize(table.SerializeCurrent(), &again).ok());
  EXPECT_EQ(CurrentBlocks(again), CurrentBlocks(table));
}

TEST(BlockTableTest, FailedDeserializeLeavesTheTableUnchanged) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  const BlockLocation loc = table.Relocate(b, kUnit);
  EXPECT_TRUE(BlockTable::Deserialize("garbage", &table).IsCorruption());
  BlockLocation found;
  ASSERT_TRUE(table.Lookup(b, &found).ok());
  EXPECT_EQ(found, loc);
}

// Several writers rewrite and free their own blocks while a checkpointer runs the protocol
// in a loop. Afterwards no two current blocks overlap, and the last checkpoint's blocks
// overlap nothing in current except themselves.
// ---- checkpoint clones ---------------------------------------------------------------

// Writes b to fresh space in the current version.
BlockLocation WriteCurrent(BlockTable* table, BlockNum b, uint64_t size) {
  const BlockLocation loc = table->AllocateSpace(size);
  EXPECT_TRUE(table->SetLocation(b, loc).ok());
  return loc;
}

TEST(BlockTableTest, CloneWriteGoesToTheCheckpointOnly) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  const BlockLocation before = WriteCurrent(&table, b, 3 * kUnit);
  CompleteCheckpoint(&table);
  WriteCurrent(&table, b, kUnit);  // dirty at the next begin: this is what it clones
  const BlockLocation at_begin = CurrentBlocks(table).at(b);

  table.BeginCheckpoint();
  BlockLocation source;
  ASSERT_TRUE(table.PrepareCloneWrite(b, &source).ok());
  EXPECT_EQ(source, at_begin);
  const BlockLocation clone = table.AllocateSpace(2 * kUnit);
  ASSERT_TRUE(table.SetCloneLocation(b, clone).ok());
  // The original (still dirty in a cache) keeps its own location in current, so its
  // partitions' extents stay valid; its next write replaces it.
  EXPECT_EQ(CurrentBlocks(table).at(b), at_begin);
  const std::string bytes = table.SerializeCheckpoint();
  const BlockLocation table_loc = table.AllocateTableSpace(bytes.size());
  table.CompleteCheckpoint(table_loc);
  BlockTable reopened;
  ASSERT_TRUE(BlockTable::Deserialize(bytes, table_loc, &reopened).ok());
  EXPECT_EQ(CurrentBlocks(reopened).at(b), clone);
  // The previous checkpoint's extent is free now; the clone's and current's are not.
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {before}, 8, kUnit));
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {clone, at_begin}, 8, kUnit));
}

TEST(BlockTableTest, NewerWriteOfTheOriginalWinsInCurrentWhateverTheOrder) {
  for (const bool original_first : {true, false}) {
    SCOPED_TRACE(original_first ? "original written first" : "clone written first");
    BlockTable table;
    const BlockNum b = table.AllocateBlockNum();
    WriteCurrent(&table, b, kUnit);
    table.BeginCheckpoint();
    BlockLocation source;
    ASSERT_TRUE(table.PrepareCloneWrite(b, &source).ok());
    const BlockLocation clone = table.AllocateSpace(kUnit);
    BlockLocation newer;
    if (original_first) {
      newer = WriteCurrent(&table, b, kUnit);
      // The begin's extent is still the clone's source: nothing fresh may overlap it.
      EXPECT_FALSE(FreshSpaceOverlaps(&table, {source}, 8, kUnit));
      ASSERT_TRUE(table.SetCloneLocation(b, clone).ok());
    } else {
      ASSERT_TRUE(table.SetCloneLocation(b, clone).ok());
      newer = WriteCurrent(&table, b, kUnit);
    }
    EXPECT_EQ(CurrentBlocks(table).at(b), newer);
    const std::string bytes = table.SerializeCheckpoint();
    BlockTable checkpoint;
    ASSERT_TRUE(BlockTable::Deserialize(bytes, &checkpoint).ok());
    EXPECT_EQ(CurrentBlocks(checkpoint).at(b), clone);
    table.CompleteCheckpoint(table.AllocateTableSpace(bytes.size()));
    // Once the checkpoint names the clone, the begin's extent is free again: only the
    // newer write, the clone and the table hold space.
    EXPECT_EQ(table.stats().used_bytes, 3 * kUnit);
  }
}

TEST(BlockTableTest, BlockFreedBeforeItsCloneIsWrittenKeepsItsNumberForTheCheckpoint) {
  BlockTable table;
  const BlockNum root = table.AllocateBlockNum();
  WriteCurrent(&table, root, kUnit);
  CompleteCheckpoint(&table);
  // A node created after the last checkpoint and never written: nothing names its number
  // but the clone.
  const BlockNum fresh = table.AllocateBlockNum();
  table.BeginCheckpoint();
  BlockLocation source;
  ASSERT_TRUE(table.PrepareCloneWrite(fresh, &source).ok());
  EXPECT_EQ(source.offset, 0u);
  table.FreeBlockNum(fresh);  // merged away before the clone is written
  EXPECT_FALSE(table.IsAllocated(fresh));
  EXPECT_NE(table.AllocateBlockNum(), fresh);
  const BlockLocation clone = table.AllocateSpace(kUnit);
  ASSERT_TRUE(table.SetCloneLocation(fresh, clone).ok());
  EXPECT_EQ(CurrentBlocks(table).count(fresh), 0u);
  const std::string bytes = table.SerializeCheckpoint();
  BlockTable checkpoint;
  ASSERT_TRUE(BlockTable::Deserialize(bytes, &checkpoint).ok());
  EXPECT_EQ(CurrentBlocks(checkpoint).at(fresh), clone);
  table.CompleteCheckpoint(table.AllocateTableSpace(bytes.size()));
  // Still named by the checkpoint: neither number nor space comes back yet...
  EXPECT_FALSE(FreshSpaceOverlaps(&table, {clone}, 8, kUnit));
  BlockNum next = table.AllocateBlockNum();
  EXPECT_NE(next, fresh);
  table.FreeBlockNum(next);
  // ...until the next checkpoint drops it.
  CompleteCheckpoint(&table);
  EXPECT_TRUE(FreshSpaceOverlaps(&table, {clone}, 8, kUnit));
  EXPECT_EQ(table.AllocateBlockNum(), fresh);
}

TEST(BlockTableTest, CloneWritesNeedAnAnnouncementInTheSameCheckpoint) {
  BlockTable table;
  const BlockNum b = table.AllocateBlockNum();
  WriteCurrent(&table, b, kUnit);
  BlockLocation source;
  EXPECT_TRUE(table.PrepareCloneWrite(b, &source).IsInvalidArgument());  // no checkpoint
  table.BeginCheckpoint();
  EXPECT_TRUE(table.SetCloneLocation(b, table.AllocateSpace(kUnit)).IsInvalidArgument());
  WriteCurrent(&table, b, kUnit);
  // Written since the begin: its contents are no longer the begin's.
  EXPECT_TRUE(table.PrepareCloneWrite(b, &source).IsInvalidArgument());
  table.AbortCheckpoint();
  table.BeginCheckpoint();
  ASSERT_TRUE(table.PrepareCloneWrite(b, &source).ok());
  table.AbortCheckpoint();
  // An aborted checkpoint forgets its announced clones.
  table.BeginCheckpoint();
  EXPECT_TRUE(table.SetCloneLocation(b, table.AllocateSpace(kUnit)).IsInvalidArgument());
  table.AbortCheckpoint();
}

TEST(BlockTableTest, ConcurrentWritersAndCheckpointsNeverShareSpace) {
  BlockTable table;
  constexpr int kWriters = 3;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&table, w] {
      std::mt19937_64 rng(w);
      std::vector<BlockNum> mine;
      for (int i = 0; i < 3000; ++i) {
        if (mine.empty() || rng() % 4 == 0) {
          mine.push_back(table.AllocateBlockNum());
          table.Relocate(mine.back(), rng() % (3 * kUnit));
        } else if (rng() % 5 == 0) {
          const size_t at = rng() % mine.size();
          table.FreeBlockNum(mine[at]);
          mine.erase(mine.begin() + static_cast<ptrdiff_t>(at));
        } else {
          const BlockNum b = mine[rng() % mine.size()];
          table.Relocate(b, rng() % (3 * kUnit));
          BlockLocation loc;
          EXPECT_TRUE(table.Lookup(b, &loc).ok());
        }
      }
    });
  }
  std::string last_snapshot;
  BlockLocation last_table;
  std::thread checkpointer([&] {
    // At least one checkpoint, even if the writers finish before this thread starts.
    do {
      table.BeginCheckpoint();
      last_snapshot = table.SerializeCheckpoint();
      last_table = table.AllocateTableSpace(last_snapshot.size());
      table.CompleteCheckpoint(last_table);
    } while (!stop.load());
  });
  for (std::thread& t : writers) t.join();
  stop = true;
  checkpointer.join();

  const auto current = CurrentBlocks(table);
  uint64_t previous_end = 0;
  for (const auto& [b, loc] : current) {
    (void)b;
    EXPECT_GE(loc.offset, kBase);
  }
  std::map<uint64_t, uint64_t> by_offset;
  for (const auto& [b, loc] : current) by_offset[loc.offset] = loc.size;
  for (const auto& [offset, size] : by_offset) {
    EXPECT_GE(offset, previous_end);
    previous_end = offset + BlockAllocator::AlignedSize(size);
  }
  BlockTable checkpointed;
  ASSERT_TRUE(BlockTable::Deserialize(last_snapshot, last_table, &checkpointed).ok());
  for (const auto& [b, loc] : CurrentBlocks(checkpointed)) {
    for (const auto& [cb, cloc] : current) {
      if (cb != b) {
        EXPECT_FALSE(Overlaps(loc, cloc)) << "block " << b << " vs " << cb;
      }
    }
    if (current.count(b) && current.at(b) != loc) {
      EXPECT_FALSE(Overlaps(loc, current.at(b)));
    }
  }
  // Every allocated byte is accounted for by current, the checkpoint, or its table.
  uint64_t named = BlockAllocator::AlignedSize(last_table.size);
  for (const auto& [b, loc] : current) named += BlockAllocator::AlignedSize(loc.size);
  for (const auto& [b, loc] : CurrentBlocks(checkpointed)) {
    if (!current.count(b) || current.at(b) != loc) named += BlockAllocator::AlignedSize(loc.size);
  }
  EXPECT_EQ(table.stats().used_bytes, named);
}

}  // namespace
}  // namespace fern
