// Tail compaction: a checkpoint moves the highest blocks it holds into holes lower down, so
// that a file left about twice its live data by rewrites shrinks back, without ever
// risking the last complete checkpoint.
#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ft/tree_file.h"
#include "ft/tree_file_test_util.h"
#include "gtest/gtest.h"
#include "util/strings.h"

namespace fern::tree_file_test {
namespace {

constexpr int kBlocks = 64;
constexpr size_t kBlockBytes = 256 << 10;  // 16 MiB of live blocks in all

// Contents naming the block and its version, so a read of the wrong extent shows.
std::string Contents(BlockNum b, int version, size_t size) {
  std::string bytes = StrCat("block ", b, " version ", version, " ");
  bytes.resize(size, static_cast<char>('a' + (b + version) % 26));
  return bytes;
}

class TreeFileCompactionTest : public TreeFileTest {
 protected:
  // Writes every block of `model` again as `version`.
  void RewriteAll(std::map<BlockNum, std::string>* model, int version) {
    for (auto& [b, bytes] : *model) {
      bytes = Contents(b, version, kBlockBytes - 512 * (b % 7));
      ASSERT_TRUE(file_->WriteBlock(b, bytes).ok());
    }
  }
  uint64_t Live(const std::map<BlockNum, std::string>& model) const {
    uint64_t live = BlockTable::kReservedFileBytes;
    for (const auto& [b, bytes] : model) live += BlockAllocator::AlignedSize(bytes.size());
    return live;
  }
  // A file holding `model` twice over: the blocks written, checkpointed, rewritten higher up
  // and checkpointed again (compaction finds no hole below yet: the first copies are still
  // the last checkpoint's until this one completes).
  void MakeSpreadFile(std::map<BlockNum, std::string>* model) {
    CreateFile();
    for (int i = 0; i < kBlocks; ++i) (*model)[file_->AllocateBlockNum()] = "";
    ASSERT_NO_FATAL_FAILURE(RewriteAll(model, 1));
    ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 1), TailCompaction::kBounded).ok());
    ASSERT_NO_FATAL_FAILURE(RewriteAll(model, 2));
    ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 2), TailCompaction::kBounded).ok());
    ASSERT_GT(file_->stats().file_bytes, Live(*model) * 19 / 10);
  }
};

TEST_F(TreeFileCompactionTest, ACheckpointMovesTheTailDownAndTheFileShrinks) {
  std::map<BlockNum, std::string> model;
  ASSERT_NO_FATAL_FAILURE(MakeSpreadFile(&model));
  // Without the flag (the close's checkpoint, recovery's, a load's) nothing moves.
  ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 3)).ok());
  EXPECT_EQ(file_->blocks_compacted(), 0u);
  EXPECT_GT(file_->stats().file_bytes, Live(model) * 19 / 10);
  ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 4), TailCompaction::kBounded).ok());
  EXPECT_GT(file_->blocks_compacted(), 0u);
  const uint64_t live = Live(model);
  // Within the compaction line (an eighth past the need) and the table.
  EXPECT_LE(file_->stats().file_bytes, live + live / 8 + (64 << 10));
  EXPECT_LE(PhysicalSize(), file_->stats().file_bytes);
  ASSERT_NO_FATAL_FAILURE(ExpectContents(model));
  ASSERT_TRUE(Reopen().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectContents(model));
  // A compact file is left alone.
  const uint64_t moved = file_->blocks_compacted();
  ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 5), TailCompaction::kBounded).ok());
  EXPECT_EQ(file_->blocks_compacted(), moved);
}

TEST_F(TreeFileCompactionTest, ACrashAfterMovesKeepsTheCheckpointThatMadeThem) {
  std::map<BlockNum, std::string> model;
  ASSERT_NO_FATAL_FAILURE(MakeSpreadFile(&model));
  ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 3), TailCompaction::kBounded).ok());
  ASSERT_GT(file_->blocks_compacted(), 0u);
  // Rewrites into the space the moves left, then a crash before any checkpoint.
  std::map<BlockNum, std::string> unsaved = model;
  ASSERT_NO_FATAL_FAILURE(RewriteAll(&unsaved, 3));
  ASSERT_TRUE(Reopen().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectContents(model));
}

TEST_F(TreeFileCompactionTest, AFailedCheckpointAfterMovesLeavesTheLastOneIntact) {
  std::map<BlockNum, std::string> model;
  ASSERT_NO_FATAL_FAILURE(MakeSpreadFile(&model));
  {
    // The moves' copies succeed; the table's write (the one small write) fails, so the
    // checkpoint is abandoned and the file stays writable.
    ScopedInjector injector(path_);
    injector.on_write = [](uint64_t, size_t* size) {
      return *size < kUnit ? Status::IOError("injected table write failure") : Status::OK();
    };
    EXPECT_FALSE(file_->Checkpoint(NextHeader(-1, 3), TailCompaction::kBounded).ok());
  }
  EXPECT_GT(file_->blocks_compacted(), 0u);
  ASSERT_NO_FATAL_FAILURE(ExpectContents(model));  // moved copies read the same
  // New writes take whatever space is free: none of it may be the last checkpoint's.
  std::map<BlockNum, std::string> unsaved = model;
  ASSERT_NO_FATAL_FAILURE(RewriteAll(&unsaved, 3));
  ASSERT_NO_FATAL_FAILURE(RewriteAll(&unsaved, 4));
  ASSERT_TRUE(Reopen().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectContents(model));
  EXPECT_EQ(file_->header().checkpoint_lsn, 2u);
}

TEST_F(TreeFileCompactionTest, AFailedCopyLeavesItsBlockWhereItWas) {
  std::map<BlockNum, std::string> model;
  ASSERT_NO_FATAL_FAILURE(MakeSpreadFile(&model));
  const uint64_t end = file_->stats().file_bytes;
  {
    // Copies go below the file's end; fail the first, as a bad sector would.
    ScopedInjector injector(path_);
    int failed = 0;
    injector.on_write = [&](uint64_t offset, size_t* size) {
      if (failed == 0 && *size >= kBlockBytes / 2 && offset < end / 2) {
        ++failed;
        return Status::IOError("injected write failure");
      }
      return Status::OK();
    };
    ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 3), TailCompaction::kBounded).ok());
    EXPECT_EQ(failed, 1);
  }
  EXPECT_EQ(file_->blocks_compacted(), 0u);  // the copies stop at the first failure
  ASSERT_NO_FATAL_FAILURE(ExpectContents(model));
  ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 4), TailCompaction::kBounded)
                  .ok());  // and go on at the next
  EXPECT_GT(file_->blocks_compacted(), 0u);
  ASSERT_TRUE(Reopen().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectContents(model));
}

// Readers and a writer run while checkpoints move blocks under them. Reads and writes of
// one block must be ordered by the caller (the cachetable's pair lock does it), so the
// writer owns the odd blocks and reads each back after writing it; the readers read the
// even ones, which only the moves change. Every read returns the block's latest contents,
// never an extent the moves gave up.
TEST_F(TreeFileCompactionTest, ReadsAndWritesDuringMovesSeeTheLatestContents) {
  std::map<BlockNum, std::string> model;
  ASSERT_NO_FATAL_FAILURE(MakeSpreadFile(&model));
  std::vector<BlockNum> blocks;
  for (const auto& [b, bytes] : model) blocks.push_back(b);
  std::map<BlockNum, std::string> latest = model;
  std::vector<int> version(blocks.size(), 2);  // the writer's own
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    std::mt19937_64 rng(11);
    std::string bytes;
    for (int i = 0; i < 300; ++i) {
      const size_t k = 1 + 2 * (rng() % (blocks.size() / 2));
      const std::string contents = Contents(blocks[k], ++version[k], kBlockBytes / 2);
      if (!file_->WriteBlock(blocks[k], contents).ok()) ++failures;
      if (!file_->ReadBlock(blocks[k], &bytes).ok() || bytes != contents) ++failures;
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937_64 rng(20 + r);
      std::string bytes;
      while (!done) {
        const BlockNum b = blocks[2 * (rng() % (blocks.size() / 2))];
        if (!file_->ReadBlock(b, &bytes).ok() || bytes != model.at(b)) ++failures;
      }
    });
  }
  for (int c = 0; c < 8; ++c) {
    ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 10 + c), TailCompaction::kBounded).ok());
  }
  writer.join();
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(file_->blocks_compacted(), 0u);
  for (size_t k = 0; k < blocks.size(); ++k) {
    latest[blocks[k]] =
        version[k] == 2 ? model[blocks[k]] : Contents(blocks[k], version[k], kBlockBytes / 2);
  }
  ASSERT_TRUE(file_->Checkpoint(NextHeader(-1, 100), TailCompaction::kBounded).ok());
  ASSERT_NO_FATAL_FAILURE(ExpectContents(latest));
  ASSERT_TRUE(Reopen().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectContents(latest));
}

}  // namespace
}  // namespace fern::tree_file_test
