#include "ft/tree_file.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ft/tree_file_test_util.h"
#include "gtest/gtest.h"
#include "util/fault_injection.h"
#include "util/strings.h"

namespace fern::tree_file_test {
namespace {

TEST_F(TreeFileTest, CreateWritesTheHeaderToBothSlots) {
  CreateFile();
  const FileHeader h = file_->header();
  EXPECT_EQ(h.checkpoint_count, 0u);
  EXPECT_EQ(h.format_version, kTreeFileFormatVersion);
  EXPECT_GT(h.created_unix_seconds, 0u);
  EXPECT_EQ(h.comparator_name, "fern.bytewise");
  EXPECT_EQ(PhysicalSize(), BlockTable::kReservedFileBytes);
  EXPECT_EQ(ReadRaw(0, kHeaderSlotBytes), ReadRaw(kHeaderSlotBytes, kHeaderSlotBytes));
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(file_->header(), h);
  EXPECT_EQ(file_->stats().blocks, 0u);
}

TEST_F(TreeFileTest, EachFileGetsItsOwnUidKeptByCheckpoints) {
  CreateFile();
  const uint64_t uid = file_->header().file_uid;
  EXPECT_NE(uid, 0u);
  ASSERT_TRUE(file_->Checkpoint(file_->header()).ok());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(file_->header().checkpoint_count, 1u);
  EXPECT_EQ(file_->header().file_uid, uid);

  std::unique_ptr<TreeFile> other;
  ASSERT_TRUE(TreeFile::Create(path_ + ".other", SampleHeader(), &other).ok());
  EXPECT_NE(other->header().file_uid, uid);
  other.reset();
  EXPECT_TRUE(RemoveFile(path_ + ".other").ok());
}

TEST_F(TreeFileTest, VersionOneFilesStayVersionOne) {
  FileHeader h = SampleHeader();
  h.format_version = 1;
  ASSERT_TRUE(TreeFile::Create(path_, h, &file_).ok());
  EXPECT_EQ(file_->header().file_uid, 0u);
  ASSERT_TRUE(file_->Checkpoint(file_->header()).ok());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(file_->header().format_version, 1u);
  EXPECT_EQ(file_->header().checkpoint_count, 1u);
  EXPECT_EQ(file_->header().file_uid, 0u);
}

TEST_F(TreeFileTest, CreateRefusesAnExistingFile) {
  CreateFile();
  std::unique_ptr<TreeFile> second;
  EXPECT_TRUE(TreeFile::Create(path_, SampleHeader(), &second).IsAlreadyExists());
}

TEST_F(TreeFileTest, CreateRejectsAnOverlongComparatorName) {
  FileHeader h = SampleHeader();
  h.comparator_name.assign(kMaxComparatorNameBytes + 1, 'x');
  EXPECT_TRUE(TreeFile::Create(path_, h, &file_).IsInvalidArgument());
  EXPECT_FALSE(PathExists(path_));
}

TEST_F(TreeFileTest, OpenOfAMissingFileIsNotFound) {
  EXPECT_TRUE(TreeFile::Open(path_, false, &file_).IsNotFound());
}

TEST_F(TreeFileTest, WriteThenReadBlocks) {
  CreateFile();
  const BlockNum a = file_->AllocateBlockNum();
  const BlockNum b = file_->AllocateBlockNum();
  std::string a_bytes = "node a";
  std::string b_bytes(3 * kUnit + 17, 'b');
  for (size_t i = 0; i < b_bytes.size(); ++i) b_bytes[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(file_->WriteBlock(a, a_bytes).ok());
  ASSERT_TRUE(file_->WriteBlock(b, b_bytes).ok());
  std::string read;
  ASSERT_TRUE(file_->ReadBlock(a, &read).ok());
  EXPECT_EQ(read, a_bytes);
  ASSERT_TRUE(file_->ReadBlock(b, &read).ok());
  EXPECT_EQ(read, b_bytes);
  uint64_t size = 0;
  ASSERT_TRUE(file_->BlockSize(b, &size).ok());
  EXPECT_EQ(size, b_bytes.size());
  ASSERT_TRUE(file_->ReadBlockRange(b, 5000, 100, &read).ok());
  EXPECT_EQ(read, b_bytes.substr(5000, 100));
  ASSERT_TRUE(file_->ReadBlockRange(b, b_bytes.size(), 0, &read).ok());
  EXPECT_EQ(read, "");
  EXPECT_EQ(file_->stats().blocks, 2u);
  // An empty node is a legal block.
  const BlockNum empty = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(empty, "").ok());
  ASSERT_TRUE(file_->ReadBlock(empty, &read).ok());
  EXPECT_EQ(read, "");
}

TEST_F(TreeFileTest, ReadBlockRangeOutsideTheBlockIsCorruption) {
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(b, std::string(100, 'x')).ok());
  std::string read;
  EXPECT_TRUE(file_->ReadBlockRange(b, 50, 51, &read).IsCorruption());
  EXPECT_TRUE(file_->ReadBlockRange(b, 101, 0, &read).IsCorruption());
  const Status s = file_->ReadBlockRange(b, 10, UINT64_MAX, &read);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
}

TEST_F(TreeFileTest, ReadOfAnUnknownBlockNamesPathAndBlock) {
  CreateFile();
  std::string read;
  const Status s = file_->ReadBlock(77, &read);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("block 77"), std::string::npos) << s.ToString();
  EXPECT_TRUE(file_->WriteBlock(77, "x").IsInvalidArgument());
}

TEST_F(TreeFileTest, CheckpointThenReopenRestoresBlocksAndHeader) {
  CreateFile();
  std::mt19937_64 rng(1);
  std::map<BlockNum, std::string> model;
  for (int i = 0; i < 20; ++i) {
    const BlockNum b = file_->AllocateBlockNum();
    model[b] = RandomBytes(&rng, rng() % 20000);
    ASSERT_TRUE(file_->WriteBlock(b, model[b]).ok());
  }
  const BlockNum root = model.begin()->first;
  ASSERT_TRUE(file_->Checkpoint(NextHeader(root, 500)).ok());
  const FileHeader written = file_->header();
  EXPECT_EQ(written.checkpoint_count, 1u);
  EXPECT_EQ(written.root, root);
  EXPECT_EQ(written.checkpoint_lsn, 500u);
  EXPECT_NE(written.block_table.offset, 0u);

  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(file_->header(), written);
  ExpectContents(model);
  ASSERT_TRUE(Reopen(/*read_only=*/true).ok());
  ExpectContents(model);
}

// The copy-on-write promise: after a checkpoint, any amount of rewriting, freeing and
// allocating without another checkpoint, then a crash (here: dropping the TreeFile), reopens
// to exactly the checkpointed blocks, byte for byte.
TEST_F(TreeFileTest, ReopenWithoutCheckpointRestoresTheCheckpointedState) {
  CreateFile();
  std::mt19937_64 rng(2);
  std::map<BlockNum, std::string> checkpointed;
  for (int i = 0; i < 30; ++i) {
    const BlockNum b = file_->AllocateBlockNum();
    checkpointed[b] = RandomBytes(&rng, 1 + rng() % 12000);
    ASSERT_TRUE(file_->WriteBlock(b, checkpointed[b]).ok());
  }
  ASSERT_TRUE(file_->Checkpoint(NextHeader(1, 10)).ok());
  const auto checkpointed_locations = Blocks();
  const FileHeader checkpointed_header = file_->header();

  // Rewrite every block several times (some bigger, some smaller), free a third, add new
  // ones. None of this may land on space the checkpoint names.
  for (int round = 0; round < 4; ++round) {
    for (const auto& [b, bytes] : checkpointed) {
      if (b % 3 == 0) continue;
      ASSERT_TRUE(file_->WriteBlock(b, RandomBytes(&rng, 1 + rng() % 20000)).ok());
    }
  }
  for (const auto& [b, bytes] : checkpointed) {
    if (b % 3 == 0) file_->FreeBlock(b);
  }
  for (int i = 0; i < 10; ++i) {
    const BlockNum b = file_->AllocateBlockNum();
    EXPECT_EQ(checkpointed.count(b), 0u) << "a number the checkpoint names was reused";
    ASSERT_TRUE(file_->WriteBlock(b, RandomBytes(&rng, 1 + rng() % 20000)).ok());
  }
  for (const auto& [b, loc] : Blocks()) {
    for (const auto& [cb, cloc] : checkpointed_locations) {
      const bool overlap = ExtentsOverlap(loc, cloc);
      EXPECT_TRUE(!overlap || (b == cb && loc == cloc))
          << "block " << b << " was written over checkpointed block " << cb;
    }
  }

  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(file_->header(), checkpointed_header);
  ExpectContents(checkpointed);
}

// After reopening, the checkpointed table's own space is held like any block's: writes
// before the next checkpoint must not land on it.
TEST_F(TreeFileTest, WritesAfterReopenLeaveTheCheckpointIntact) {
  CreateFile();
  std::mt19937_64 rng(6);
  std::map<BlockNum, std::string> checkpointed;
  for (int i = 0; i < 5; ++i) {
    const BlockNum b = file_->AllocateBlockNum();
    checkpointed[b] = RandomBytes(&rng, 3000);
    ASSERT_TRUE(file_->WriteBlock(b, checkpointed[b]).ok());
  }
  ASSERT_TRUE(file_->Checkpoint(NextHeader(1, 1)).ok());
  ASSERT_TRUE(Reopen().ok());
  for (const auto& [b, bytes] : checkpointed) {
    ASSERT_TRUE(file_->WriteBlock(b, RandomBytes(&rng, 3000)).ok());
  }
  ASSERT_TRUE(Reopen().ok());
  ExpectContents(checkpointed);
}

// Random rounds of writes, frees, checkpoints and "crashes" against a model of the
// current and the checkpointed contents.
TEST_F(TreeFileTest, RandomCheckpointsAndCrashesMatchModel) {
  CreateFile();
  std::mt19937_64 rng(3);
  std::map<BlockNum, std::string> current;
  std::map<BlockNum, std::string> checkpointed;
  uint64_t checkpoints = 0;
  for (int round = 0; round < 40; ++round) {
    const int ops = 1 + static_cast<int>(rng() % 30);
    for (int i = 0; i < ops; ++i) {
      const uint64_t dice = rng() % 10;
      if (current.empty() || dice < 3) {
        const BlockNum b = file_->AllocateBlockNum();
        ASSERT_EQ(current.count(b), 0u);
        current[b] = RandomBytes(&rng, rng() % 9000);
        ASSERT_TRUE(file_->WriteBlock(b, current[b]).ok());
      } else if (dice < 4) {
        auto it = current.begin();
        std::advance(it, rng() % current.size());
        file_->FreeBlock(it->first);
        current.erase(it);
      } else {
        auto it = current.begin();
        std::advance(it, rng() % current.size());
        it->second = RandomBytes(&rng, rng() % 9000);
        ASSERT_TRUE(file_->WriteBlock(it->first, it->second).ok());
      }
    }
    const uint64_t what = rng() % 3;
    if (what == 0) {
      ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, round)).ok());
      checkpointed = current;
      ++checkpoints;
    } else if (what == 1) {
      ASSERT_TRUE(Reopen().ok());
      current = checkpointed;
      EXPECT_EQ(file_->header().checkpoint_count, checkpoints);
    }
    ASSERT_NO_FATAL_FAILURE(ExpectContents(current)) << "round " << round;
  }
}

// A sharp checkpoint holds the blocks as of its begin: plain writes after the begin go to
// the next checkpoint, for-checkpoint writes (pending nodes or clones) go into this one.
TEST_F(TreeFileTest, SteppedCheckpointHoldsTheStateAtItsBegin) {
  CreateFile();
  const BlockNum a = file_->AllocateBlockNum();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(a, "a1").ok());
  ASSERT_TRUE(file_->WriteBlock(b, "b1").ok());
  EXPECT_TRUE(file_->EndCheckpoint(NextHeader(a, 1)).IsInvalidArgument());

  ASSERT_TRUE(file_->BeginCheckpoint().ok());
  EXPECT_TRUE(file_->BeginCheckpoint().IsInvalidArgument());
  EXPECT_TRUE(file_->Checkpoint(NextHeader(a, 1)).IsInvalidArgument());
  ASSERT_TRUE(file_->WriteBlock(a, "a2 after the begin").ok());
  ASSERT_TRUE(file_->WriteBlockForCheckpoint(b, "b1 as of the begin (clone)").ok());
  ASSERT_TRUE(file_->WriteBlock(b, "b2 after the begin").ok());
  const BlockNum c = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(c, "c, created after the begin").ok());
  ASSERT_TRUE(file_->EndCheckpoint(NextHeader(a, 1)).ok());
  EXPECT_EQ(file_->header().checkpoint_count, 1u);
  ExpectContents(
      {{a, "a2 after the begin"}, {b, "b2 after the begin"}, {c, "c, created after the begin"}});

  ASSERT_TRUE(Reopen().ok());
  ExpectContents({{a, "a1"}, {b, "b1 as of the begin (clone)"}});
}

TEST_F(TreeFileTest, CloneIsWrittenFromTheBeginsBlockWhileTheOriginalMovesOn) {
  CreateFile();
  const BlockNum a = file_->AllocateBlockNum();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(a, "a1").ok());
  ASSERT_TRUE(file_->WriteBlock(b, "b1 ....... frame").ok());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(a, 1)).ok());
  const BlockNum gone = file_->AllocateBlockNum();  // never written, freed before its clone

  ASSERT_TRUE(file_->BeginCheckpoint().ok());
  BlockLocation source;
  ASSERT_TRUE(file_->PrepareCloneWrite(b, &source).ok());
  BlockLocation gone_source;
  ASSERT_TRUE(file_->PrepareCloneWrite(gone, &gone_source).ok());
  EXPECT_EQ(gone_source.offset, 0u);
  // The original is rewritten (evicted) and then again, before its clone is written.
  ASSERT_TRUE(file_->WriteBlock(b, "b2 written over and over").ok());
  ASSERT_TRUE(file_->WriteBlock(b, "b3 written over and over").ok());
  file_->FreeBlock(gone);
  std::string frame;
  ASSERT_TRUE(file_->ReadCloneSource(b, source, 3, 7, &frame).ok());
  EXPECT_EQ(frame, ".......");
  EXPECT_TRUE(file_->ReadCloneSource(b, source, 10, 100, &frame).IsCorruption());
  ASSERT_TRUE(file_->WriteClone(b, "b1 clone").ok());
  ASSERT_TRUE(file_->WriteClone(gone, "gone clone").ok());
  EXPECT_TRUE(file_->WriteClone(a, "a was never announced").IsInvalidArgument());
  ExpectContents({{a, "a1"}, {b, "b3 written over and over"}});
  ASSERT_TRUE(file_->EndCheckpoint(NextHeader(a, 2)).ok());
  ExpectContents({{a, "a1"}, {b, "b3 written over and over"}});

  ASSERT_TRUE(Reopen().ok());
  ExpectContents({{a, "a1"}, {b, "b1 clone"}, {gone, "gone clone"}});
}

TEST_F(TreeFileTest, CheckpointsAlternateHeaderSlots) {
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  for (uint64_t i = 1; i <= 4; ++i) {
    ASSERT_TRUE(file_->WriteBlock(b, std::string(i * 100, 'v')).ok());
    ASSERT_TRUE(file_->Checkpoint(NextHeader(b, i)).ok());
    EXPECT_EQ(file_->header_slot(), static_cast<int>(i % 2));
    FileHeader on_disk;
    ASSERT_TRUE(
        FileHeader::Parse(ReadRaw((i % 2) * kHeaderSlotBytes, kHeaderSlotBytes), &on_disk).ok());
    EXPECT_EQ(on_disk.checkpoint_count, i);
    FileHeader other;
    ASSERT_TRUE(
        FileHeader::Parse(ReadRaw(((i + 1) % 2) * kHeaderSlotBytes, kHeaderSlotBytes), &other)
            .ok());
    EXPECT_EQ(other.checkpoint_count, i - 1);
  }
}

TEST_F(TreeFileTest, ReadOnlyOpenRefusesWrites) {
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(b, "x").ok());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 1)).ok());
  ASSERT_TRUE(Reopen(/*read_only=*/true).ok());
  EXPECT_TRUE(file_->read_only());
  EXPECT_TRUE(file_->WriteBlock(b, "y").IsNotSupported());
  EXPECT_TRUE(file_->Checkpoint(NextHeader(b, 2)).IsNotSupported());
}

// Rewriting the same blocks at every checkpoint must reuse the space the previous
// checkpoint released: the file stays within a small multiple of the live data instead of
// growing with the number of checkpoints.
TEST_F(TreeFileTest, FileDoesNotGrowWhenTheSameBlocksAreRewritten) {
  CreateFile();
  std::mt19937_64 rng(5);
  constexpr int kBlocks = 24;
  std::vector<BlockNum> nums;
  for (int i = 0; i < kBlocks; ++i) nums.push_back(file_->AllocateBlockNum());
  uint64_t max_live = 0;
  for (int checkpoint = 0; checkpoint < 150; ++checkpoint) {
    uint64_t live = 0;
    for (BlockNum b : nums) {
      const size_t size = 2000 + rng() % 30000;
      live += BlockAllocator::AlignedSize(size);
      ASSERT_TRUE(file_->WriteBlock(b, std::string(size, static_cast<char>(b))).ok());
    }
    max_live = std::max(max_live, live);
    ASSERT_TRUE(file_->Checkpoint(NextHeader(nums[0], checkpoint)).ok());
    const uint64_t size = PhysicalSize();
    // The free tail is trimmed; the last block is not padded to alignment.
    EXPECT_LE(size, file_->stats().file_bytes);
    EXPECT_GT(size + kUnit, file_->stats().file_bytes) << "free tail not trimmed";
    // Live data twice (the checkpointed copy and the one being replaced), the table, and
    // fragmentation slack.
    ASSERT_LE(size, BlockTable::kReservedFileBytes + 3 * max_live) << "checkpoint " << checkpoint;
  }
  ASSERT_TRUE(Reopen().ok());
  for (BlockNum b : nums) {
    std::string read;
    ASSERT_TRUE(file_->ReadBlock(b, &read).ok());
    EXPECT_EQ(read, std::string(read.size(), static_cast<char>(b)));
  }
}

// Writers rewrite their own blocks while checkpoints run; every read sees the writer's last
// contents, and after a final checkpoint and reopen everything is there.
TEST_F(TreeFileTest, ConcurrentWritesDuringCheckpoints) {
  CreateFile();
  constexpr int kWriters = 3;
  constexpr int kBlocksPerWriter = 8;
  std::atomic<bool> failed{false};
  std::vector<std::map<BlockNum, std::string>> last(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(100 + w);
      std::vector<BlockNum> mine;
      for (int i = 0; i < kBlocksPerWriter; ++i) mine.push_back(file_->AllocateBlockNum());
      for (int i = 0; i < 400 && !failed; ++i) {
        const BlockNum b = mine[rng() % mine.size()];
        std::string bytes = StrCat("w", w, " b", b, " i", i, " ");
        bytes.resize(bytes.size() + rng() % 6000, static_cast<char>('a' + w));
        if (!file_->WriteBlock(b, bytes).ok()) failed = true;
        last[w][b] = bytes;
        std::string read;
        if (!file_->ReadBlock(b, &read).ok() || read != bytes) failed = true;
      }
    });
  }
  std::atomic<bool> done{false};
  std::thread checkpointer([&] {
    uint64_t lsn = 0;
    while (!done) {
      if (!file_->Checkpoint(NextHeader(-1, ++lsn)).ok()) failed = true;
    }
  });
  for (std::thread& t : writers) t.join();
  done = true;
  checkpointer.join();
  ASSERT_FALSE(failed);
  ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 1000000)).ok());
  ASSERT_TRUE(Reopen().ok());
  std::map<BlockNum, std::string> all;
  for (const auto& m : last) all.insert(m.begin(), m.end());
  ExpectContents(all);
}

}  // namespace
}  // namespace fern::tree_file_test
