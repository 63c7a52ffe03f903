#include "ft/tree_file.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "util/fault_injection.h"
#include "util/file.h"
#include "util/strings.h"

namespace fern {
namespace {

constexpr uint64_t kUnit = BlockAllocator::kAlignment;

// Fails or tears I/O on one path, as the hooks say; installed for the test's lifetime.
class ScopedInjector : public FaultInjector {
 public:
  explicit ScopedInjector(std::string path) : path_(std::move(path)) { SetFaultInjector(this); }
  ~ScopedInjector() override { SetFaultInjector(nullptr); }

  std::function<Status(uint64_t offset, size_t* size)> on_write;
  std::function<Status()> on_sync;

  Status BeforeWrite(const std::string& path, uint64_t offset, size_t* size) override {
    if (path != path_ || !on_write) return Status::OK();
    return on_write(offset, size);
  }
  Status BeforeSync(const std::string& path) override {
    if (path != path_ || !on_sync) return Status::OK();
    return on_sync();
  }

 private:
  std::string path_;
};

class TreeFileTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = StrCat(testing::TempDir(), "/tree_file_test_", getpid(), "_",
                  testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(CreateDirIfMissing(dir_).ok());
    path_ = dir_ + "/table.ft";
    if (PathExists(path_)) {
      ASSERT_TRUE(RemoveFile(path_).ok());
    }
  }
  void TearDown() override {
    file_.reset();
    if (PathExists(path_)) (void)RemoveFile(path_);
    ::rmdir(dir_.c_str());
  }

  static FileHeader SampleHeader() {
    FileHeader h;
    h.root = -1;
    h.node_bytes = 4 << 20;
    h.basement_bytes = 64 << 10;
    h.compression = 3;
    h.compression_level = 1;
    h.comparator_name = "fern.bytewise";
    return h;
  }

  void CreateFile() { ASSERT_TRUE(TreeFile::Create(path_, SampleHeader(), &file_).ok()); }
  Status Reopen(bool read_only = false) {
    file_.reset();
    return TreeFile::Open(path_, read_only, &file_);
  }
  // The header to pass to Checkpoint: the last one with the tree's fields changed.
  FileHeader NextHeader(BlockNum root, uint64_t lsn) const {
    FileHeader h = file_->header();
    h.root = root;
    h.checkpoint_lsn = lsn;
    h.max_msn = lsn * 10;
    return h;
  }

  uint64_t PhysicalSize() const {
    std::unique_ptr<File> f;
    EXPECT_TRUE(File::Open(path_, File::Mode::kReadOnly, &f).ok());
    uint64_t size = 0;
    EXPECT_TRUE(f->Size(&size).ok());
    return size;
  }
  void PatchFile(uint64_t offset, std::string_view bytes) {
    std::unique_ptr<File> f;
    ASSERT_TRUE(File::Open(path_, File::Mode::kReadWrite, &f).ok());
    ASSERT_TRUE(f->Write(offset, bytes).ok());
  }
  std::string ReadRaw(uint64_t offset, size_t n) {
    std::unique_ptr<File> f;
    EXPECT_TRUE(File::Open(path_, File::Mode::kReadOnly, &f).ok());
    std::string out;
    EXPECT_TRUE(f->Read(offset, n, &out).ok());
    return out;
  }
  void FlipByte(uint64_t offset) {
    std::string byte = ReadRaw(offset, 1);
    byte[0] = static_cast<char>(byte[0] ^ 0x5a);
    PatchFile(offset, byte);
  }
  void TruncateFile(uint64_t size) {
    std::unique_ptr<File> f;
    ASSERT_TRUE(File::Open(path_, File::Mode::kReadWrite, &f).ok());
    ASSERT_TRUE(f->Truncate(size).ok());
  }

  std::map<BlockNum, BlockLocation> Blocks() const {
    std::map<BlockNum, BlockLocation> blocks;
    file_->ForEachBlock([&](BlockNum b, BlockLocation loc) { blocks[b] = loc; });
    return blocks;
  }
  // Every block of `model` reads back byte-for-byte, and the file has no other blocks.
  void ExpectContents(const std::map<BlockNum, std::string>& model) {
    const auto blocks = Blocks();
    ASSERT_EQ(blocks.size(), model.size());
    for (const auto& [b, bytes] : model) {
      ASSERT_TRUE(blocks.count(b)) << "block " << b << " missing";
      std::string read;
      ASSERT_TRUE(file_->ReadBlock(b, &read).ok()) << b;
      ASSERT_EQ(read, bytes) << "block " << b;
    }
  }

  static std::string RandomBytes(std::mt19937_64* rng, size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>((*rng)() & 0xff);
    return s;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<TreeFile> file_;
};

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

TEST_F(TreeFileTest, FailedCreateLeavesNoFile) {
  {
    ScopedInjector injector(path_);
    injector.on_sync = [] { return Status::IOError("injected fsync failure"); };
    EXPECT_TRUE(TreeFile::Create(path_, SampleHeader(), &file_).IsIOError());
  }
  EXPECT_FALSE(PathExists(path_));
  CreateFile();
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
      const bool overlap = loc.offset < cloc.offset + BlockAllocator::AlignedSize(cloc.size) &&
                           cloc.offset < loc.offset + BlockAllocator::AlignedSize(loc.size);
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
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(b, "checkpointed").ok());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 1)).ok());
  ASSERT_TRUE(file_->WriteBlock(b, "lost").ok());
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

TEST_F(TreeFileTest, FailedTableWriteAbortsTheCheckpointAndTheFileStaysUsable) {
  CreateFile();
  const BlockNum b = file_->AllocateBlockNum();
  ASSERT_TRUE(file_->WriteBlock(b, "one").ok());
  ASSERT_TRUE(file_->Checkpoint(NextHeader(b, 1)).ok());
  ASSERT_TRUE(file_->WriteBlock(b, "two").ok());
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
}  // namespace fern
