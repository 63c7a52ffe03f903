// TreeFile under damage and failure: torn and damaged header slots, truncated files,
// flipped bytes in the block table, failed writes and fsyncs.
#include <algorithm>
#include <atomic>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ft/tree_file.h"
#include "ft/tree_file_test_util.h"
#include "gtest/gtest.h"
#include "util/fault_injection.h"
#include "util/strings.h"

namespace fern::tree_file_test {
namespace {

TEST_F(TreeFileTest, FailedCreateLeavesNoFile) {
  {
    ScopedInjector injector(path_);
    injector.on_sync = [] { return Status::IOError("injected fsync failure"); };
    EXPECT_TRUE(TreeFile::Create(path_, SampleHeader(), &file_).IsIOError());
  }
  EXPECT_FALSE(PathExists(path_));
  CreateFile();
}

TEST_F(TreeFileTest, DamagedNewerSlotFallsBackToTheOlderHeader) {
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(b, "first").ok());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 1)).ok());  // slot 1
  ASSERT_TRUE(file_->WriteBlock(b, "second").ok());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 2)).ok());  // slot 0
  const uint64_t length = file_->header().Serialize().size();
  for (uint64_t i = 0; i < length; i += 7) {
    FlipByte(i);
    ASSERT_TRUE(Reopen().ok()) << "byte " << i;
    EXPECT_EQ(file_->header().checkpoint_count, 1u) << "byte " << i;
    EXPECT_EQ(file_->header_slot(), 1);
    FlipByte(i);
  }
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(file_->header().checkpoint_count, 2u);
}

TEST_F(TreeFileTest, BothSlotsDamagedIsCorruptionNamingBoth) {
  CreateFile();
  file_.reset();
  FlipByte(20);
  PatchFile(kHeaderSlotBytes, "NOTATREE");
  const Status s = TreeFile::Open(path_, false, &file_);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("slot 0: file header: checksum mismatch"), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.message().find("slot 1: file header: bad magic"), std::string::npos) << s.ToString();
}

// A crash in the middle of the header write (the write is torn) leaves the previous
// checkpoint in force, intact.
TEST_F(TreeFileTest, TornHeaderWriteKeepsThePreviousCheckpoint) {
  CreateFile();
  std::mt19937_64 rng(4);
  std::map<BlockNum, std::string> model;
  for (int i = 0; i < 10; ++i) {
    const BlockNum b = file_->AllocateBlockNum();
    model[b] = RandomBytes(&rng, 5000);
    ASSERT_TRUE(file_->WriteBlock(b, model[b]).ok());
  }
  ASSERT_TRUE(file_->Checkpoint(NextHeader(1, 1)).ok());  // slot 1
  for (auto& [b, bytes] : model) ASSERT_TRUE(file_->WriteBlock(b, RandomBytes(&rng, 7000)).ok());
  {
    ScopedInjector injector(path_);
    injector.on_write = [](uint64_t offset, size_t* size) {
      if (offset == 0) *size = 50;  // slot 0 gets a torn header
      return Status::OK();
    };
    const Status s = file_->Checkpoint(NextHeader(1, 2));
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
  }
  // The durable state is uncertain now: the file refuses more writes.
  EXPECT_FALSE(file_->WriteBlock(1, "more").ok());
  EXPECT_FALSE(file_->Checkpoint(NextHeader(1, 3)).ok());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(file_->header().checkpoint_count, 1u);
  ExpectContents(model);
}

TEST_F(TreeFileTest, FailedSyncRefusesFurtherWritesAndKeepsThePreviousCheckpoint) {
  const BlockNum b = CheckpointedThenRewritten("checkpointed", "lost");
  ASSERT_FALSE(HasFailure());
  {
    ScopedInjector injector(path_);
    injector.on_sync = [] { return Status::IOError("injected fsync failure"); };
    EXPECT_TRUE(file_->Checkpoint(NextHeader(b, 2)).IsIOError());
  }
  const Status s = file_->WriteBlock(b, "after");
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.message().find("reopen"), std::string::npos) << s.ToString();
  ASSERT_TRUE(Reopen().ok());
  ExpectContents({{b, "checkpointed"}});
}

// The header was written but its sync failed: the header may be durable, so abandoning the
// checkpoint must not free what only it named (its table), which an in-flight write could
// otherwise reuse under a header a reopen takes.
TEST_F(TreeFileTest, AnAbandonedCheckpointAfterAFailedHeaderSyncKeepsItsSpace) {
  const BlockNum b = CheckpointedThenRewritten("one", "two");
  ASSERT_FALSE(HasFailure());
  {
    ScopedInjector injector(path_);
    int syncs = 0;
    injector.on_sync = [&syncs] {
      return ++syncs == 2 ? Status::IOError("injected header fsync failure") : Status::OK();
    };
    EXPECT_TRUE(file_->Checkpoint(NextHeader(b, 2)).IsIOError());
  }
  const uint64_t used = file_->stats().used_bytes;
  file_->AbortCheckpoint();  // as FractalTree::Checkpoint does after a failure
  EXPECT_EQ(file_->stats().used_bytes, used);
  EXPECT_FALSE(file_->WriteBlock(b, "three").ok());
  // The header is in the file: a reopen takes it, with its table and block intact.
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(file_->header().checkpoint_count, 2u);
  ExpectContents({{b, "two"}});
}

TEST_F(TreeFileTest, FailedTableWriteAbortsTheCheckpointAndTheFileStaysUsable) {
  const BlockNum b = CheckpointedThenRewritten("one", "two");
  ASSERT_FALSE(HasFailure());
  const uint64_t used = file_->stats().used_bytes;
  {
    ScopedInjector injector(path_);
    injector.on_write = [](uint64_t, size_t*) { return Status::IOError("injected: no space"); };
    EXPECT_TRUE(file_->Checkpoint(NextHeader(b, 2)).IsIOError());
  }
  EXPECT_EQ(file_->stats().used_bytes, used) << "the aborted table's space was not returned";
  EXPECT_EQ(file_->header().checkpoint_count, 1u);
  ASSERT_TRUE(file_->WriteBlock(b, "three").ok());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 3)).ok());
  EXPECT_EQ(file_->header().checkpoint_count, 2u);
  ASSERT_TRUE(Reopen().ok());
  ExpectContents({{b, "three"}});
}

TEST_F(TreeFileTest, FailedBlockWriteKeepsTheOldContents) {
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(b, "old contents").ok());
  {
    ScopedInjector injector(path_);
    injector.on_write = [](uint64_t, size_t* size) {
      *size = 3;
      return Status::OK();
    };
    EXPECT_TRUE(file_->WriteBlock(b, std::string(9000, 'n')).IsIOError());
  }
  std::string read;
  ASSERT_TRUE(file_->ReadBlock(b, &read).ok());
  EXPECT_EQ(read, "old contents");
  EXPECT_EQ(file_->stats().used_bytes, kUnit);
}

TEST_F(TreeFileTest, FileShorterThanTheHeaderAreaIsCorruption) {
  CreateFile();
  file_.reset();
  TruncateFile(kHeaderSlotBytes + 100);
  const Status s = TreeFile::Open(path_, true, &file_);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
}

TEST_F(TreeFileTest, TruncatedBlockTableIsCorruption) {
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(b, std::string(100, 'x')).ok());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 1)).ok());
  const BlockLocation table = file_->header().block_table;
  file_.reset();
  TruncateFile(table.offset + table.size / 2);
  const Status s = TreeFile::Open(path_, true, &file_);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("block table"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
}

TEST_F(TreeFileTest, BlockPastTheEndOfATruncatedFileIsCorruption) {
  CreateFile();
  const BlockNum small = file_->AllocateBlockNum();
  const BlockNum scratch = file_->AllocateBlockNum();
  const BlockNum big = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(small, "small").ok());
  ASSERT_TRUE(file_->WriteBlock(scratch, std::string(3 * kUnit, 's')).ok());
  ASSERT_TRUE(file_->WriteBlock(big, std::string(10 * kUnit, 'b')).ok());
  file_->FreeBlock(scratch);  // never checkpointed: leaves a hole the table can fill
  ASSERT_TRUE(file_->Checkpoint(NextHeader(small, 1)).ok());
  const BlockLocation big_loc = Blocks().at(big);
  ASSERT_LT(file_->header().block_table.offset, big_loc.offset) << "test precondition";
  file_.reset();
  TruncateFile(big_loc.offset + 100);

  ASSERT_TRUE(TreeFile::Open(path_, /*read_only=*/true, &file_).ok());
  std::string read;
  ASSERT_TRUE(file_->ReadBlock(small, &read).ok());
  EXPECT_EQ(read, "small");
  Status s = file_->ReadBlock(big, &read);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(StrCat("block ", big)), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.ToString();
  s = file_->ReadBlockRange(big, 5 * kUnit, 10, &read);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  ASSERT_TRUE(file_->ReadBlockRange(big, 0, 100, &read).ok());
  EXPECT_EQ(read, std::string(100, 'b'));
}

TEST_F(TreeFileTest, EveryFlippedByteOfTheBlockTableIsCorruption) {
  CreateFile();
  for (int i = 0; i < 4; ++i) {
    const BlockNum b = file_->AllocateBlockNum();
    ASSERT_TRUE(file_->WriteBlock(b, std::string(1000 * (i + 1), 'a' + i)).ok());
  }
  ASSERT_TRUE(file_->Checkpoint(NextHeader(1, 1)).ok());
  const BlockLocation table = file_->header().block_table;
  file_.reset();
  for (uint64_t i = 0; i < table.size; ++i) {
    FlipByte(table.offset + i);
    const Status s = TreeFile::Open(path_, /*read_only=*/true, &file_);
    EXPECT_TRUE(s.IsCorruption()) << "byte " << i << ": " << s.ToString();
    EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
    FlipByte(table.offset + i);
  }
  ASSERT_TRUE(TreeFile::Open(path_, true, &file_).ok());
}

}  // namespace
}  // namespace fern::tree_file_test
