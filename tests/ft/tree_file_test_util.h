// Shared fixture for the TreeFile tests: a fresh file per test, raw access to its bytes,
// and a fault injector scoped to it.
#ifndef FERN_TESTS_FT_TREE_FILE_TEST_UTIL_H_
#define FERN_TESTS_FT_TREE_FILE_TEST_UTIL_H_

#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ft/tree_file.h"
#include "gtest/gtest.h"
#include "util/fault_injection.h"
#include "util/file.h"
#include "util/strings.h"

namespace fern::tree_file_test {

inline constexpr uint64_t kUnit = BlockAllocator::kAlignment;

// Whether two locations share a 4096-byte unit (either may lie in two extents).
inline bool ExtentsOverlap(const BlockLocation& a, const BlockLocation& b) {
  auto extents = [](const BlockLocation& l) {
    if (!l.split()) {
      return std::vector<std::pair<uint64_t, uint64_t>>{
          {l.offset, l.offset + BlockAllocator::AlignedSize(l.size)}};
    }
    return std::vector<std::pair<uint64_t, uint64_t>>{
        {l.offset, l.offset + l.head_bytes},
        {l.tail_offset, l.tail_offset + BlockAllocator::AlignedSize(l.size - l.head_bytes)}};
  };
  for (const auto& [a_begin, a_end] : extents(a)) {
    for (const auto& [b_begin, b_end] : extents(b)) {
      if (a_begin < b_end && b_begin < a_end) return true;
    }
  }
  return false;
}

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
  // A new file whose one block was checkpointed as `checkpointed` and then rewritten as
  // `newer` (not yet checkpointed); returns the block. Failures are recorded (check
  // HasFailure()).
  BlockNum CheckpointedThenRewritten(const std::string& checkpointed, const std::string& newer) {
    CreateFile();
    const BlockNum b = file_->AllocateBlockNum();
    EXPECT_TRUE(file_->WriteBlock(b, checkpointed).ok());
    EXPECT_TRUE(file_->Checkpoint(NextHeader(b, 1)).ok());
    EXPECT_TRUE(file_->WriteBlock(b, newer).ok());
    return b;
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

}  // namespace fern::tree_file_test

#endif  // FERN_TESTS_FT_TREE_FILE_TEST_UTIL_H_
