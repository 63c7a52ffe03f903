// TreeFile with blocks that lie in two extents (BlockAllocator::AllocateSplittable): whole
// and partial reads across the split, checkpoints and reopens, a failed second write, a
// file cut inside the second extent, and growing blocks that would strand holes otherwise.
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <utility>

#include "ft/tree_file.h"
#include "ft/tree_file_test_util.h"
#include "gtest/gtest.h"
#include "util/strings.h"

namespace fern::tree_file_test {
namespace {

constexpr uint64_t kHeadUnits = BlockAllocator::kMinSplitHead / kUnit;

class TreeFileSplitTest : public TreeFileTest {
 protected:
  // Leaves two holes of (kHeadUnits + 4) units, each below a kept one-unit block, then
  // writes `bytes` (more than either hole holds) as a new block; returns it.
  BlockNum WriteIntoTwoHoles(const std::string& bytes) {
    BlockNum freed[2];
    for (BlockNum& b : freed) {
      b = file_->AllocateBlockNum();
      EXPECT_TRUE(file_->WriteBlock(b, std::string((kHeadUnits + 4) * kUnit, 'h')).ok());
      EXPECT_TRUE(file_->WriteBlock(file_->AllocateBlockNum(), "separator").ok());
    }
    for (BlockNum b : freed) file_->FreeBlock(b);  // never checkpointed: free at once
    const BlockNum b = file_->AllocateBlockNum();
    EXPECT_TRUE(file_->WriteBlock(b, bytes).ok());
    return b;
  }
};

TEST_F(TreeFileSplitTest, ASplitBlockReadsBackWholeAndInRangesAcrossTheSplit) {
  CreateFile();
  std::mt19937_64 rng(11);
  const std::string bytes = RandomBytes(&rng, 2 * kHeadUnits * kUnit - 123);
  const uint64_t end_before = [&] {
    return file_->stats().file_bytes + 2 * (kHeadUnits + 5) * kUnit;
  }();
  const BlockNum b = WriteIntoTwoHoles(bytes);
  const BlockLocation loc = Blocks().at(b);
  ASSERT_TRUE(loc.split());
  EXPECT_EQ(file_->stats().split_blocks, 1u);
  EXPECT_EQ(file_->stats().file_bytes, end_before);  // the file did not grow for it
  auto expect_reads = [&] {
    std::string read;
    ASSERT_TRUE(file_->ReadBlock(b, &read).ok());
    EXPECT_EQ(read, bytes);
    const uint64_t head = loc.head_bytes;
    const std::pair<uint64_t, uint64_t> ranges[] = {
        {0, 10},          {head - 10, 10},       {head - 10, 20},   {head, 10},
        {head + 5, 1000}, {1, bytes.size() - 2}, {bytes.size(), 0}, {head, 0}};
    for (const auto& [offset, n] : ranges) {
      ASSERT_TRUE(file_->ReadBlockRange(b, offset, n, &read).ok()) << offset << "+" << n;
      EXPECT_EQ(read, bytes.substr(offset, n)) << offset << "+" << n;
    }
  };
  expect_reads();
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 1)).ok());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(Blocks().at(b), loc);
  expect_reads();
  ASSERT_TRUE(Reopen(/*read_only=*/true).ok());
  expect_reads();
}

TEST_F(TreeFileSplitTest, AFailedWriteOfTheSecondExtentKeepsTheOldContents) {
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(b, "old contents").ok());
  WriteIntoTwoHoles("x");  // two holes to split the next block over (and a one-unit block)
  const BlockTable::Stats before = file_->stats();
  {
    ScopedInjector injector(path_);
    int writes = 0;
    injector.on_write = [&](uint64_t, size_t*) {
      return ++writes == 2 ? Status::IOError("injected") : Status::OK();
    };
    EXPECT_TRUE(file_->WriteBlock(b, std::string(2 * kHeadUnits * kUnit, 'n')).IsIOError());
    EXPECT_EQ(writes, 2);
  }
  std::string read;
  ASSERT_TRUE(file_->ReadBlock(b, &read).ok());
  EXPECT_EQ(read, "old contents");
  EXPECT_EQ(file_->stats().used_bytes, before.used_bytes);
  EXPECT_EQ(file_->stats().free_bytes, before.free_bytes);
  EXPECT_EQ(file_->stats().split_blocks, 0u);
}

TEST_F(TreeFileSplitTest, AFileCutInsideTheHigherExtentIsCorruptionNamingTheBlock) {
  CreateFile();
  const std::string bytes(2 * kHeadUnits * kUnit, 'b');
  const BlockNum b = WriteIntoTwoHoles(bytes);
  const BlockLocation loc = Blocks().at(b);
  ASSERT_TRUE(loc.split());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 1)).ok());
  const uint64_t higher = std::max(loc.offset, loc.tail_offset);
  ASSERT_LT(file_->header().block_table.offset, higher) << "test precondition";
  file_.reset();
  TruncateFile(higher + 100);

  ASSERT_TRUE(TreeFile::Open(path_, /*read_only=*/true, &file_).ok());
  std::string read;
  const Status s = file_->ReadBlock(b, &read);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find(StrCat("block ", b)), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.ToString();
  // The lower extent still reads.
  const uint64_t lower_at = loc.offset < loc.tail_offset ? 0 : loc.head_bytes;
  ASSERT_TRUE(file_->ReadBlockRange(b, lower_at, 100, &read).ok());
  EXPECT_EQ(read, std::string(100, 'b'));
}

// Blocks that grow with every rewrite, as leaves do while they fill, under checkpoints and
// crashes (dropping the TreeFile): every state reads back byte for byte and blocks do get
// split.
TEST_F(TreeFileSplitTest, GrowingBlocksWithCheckpointsAndCrashesMatchTheModel) {
  CreateFile();
  std::mt19937_64 rng(5);
  std::map<BlockNum, std::string> current;
  std::map<BlockNum, std::string> checkpointed;
  for (int i = 0; i < 24; ++i) {
    const BlockNum b = file_->AllocateBlockNum();
    current[b] = RandomBytes(&rng, (16 + rng() % 16) * kUnit);
    ASSERT_TRUE(file_->WriteBlock(b, current[b]).ok());
  }
  uint64_t most_splits = 0;
  for (int round = 0; round < 60; ++round) {
    for (int i = 0; i < 12; ++i) {
      auto it = current.begin();
      std::advance(it, rng() % current.size());
      uint64_t size = it->second.size() + (1 + rng() % 6) * kUnit;
      if (size > 64 * kUnit) size = 16 * kUnit;  // a split node starts small again
      it->second = RandomBytes(&rng, size);
      ASSERT_TRUE(file_->WriteBlock(it->first, it->second).ok());
    }
    most_splits = std::max(most_splits, file_->stats().split_blocks);
    if (rng() % 4 == 0) {
      ASSERT_TRUE(Reopen().ok());
      current = checkpointed;
    } else {
      ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, round)).ok());
      checkpointed = current;
    }
    ASSERT_NO_FATAL_FAILURE(ExpectContents(current)) << "round " << round;
  }
  EXPECT_GT(most_splits, 0u);
  // Two versions of each block may be held (the checkpoint's and a newer one); beyond that
  // the holes are what splitting leaves unused.
  ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 100)).ok());
  uint64_t live = 0;
  for (const auto& [b, bytes] : current) live += bytes.size();
  EXPECT_LT(file_->stats().file_bytes, 2 * live + (1 << 20));
}

}  // namespace
}  // namespace fern::tree_file_test
