// Damage tests: flipped bytes and truncated files are reported as Corruption (never served,
// never a crash), and ftverify names the damaged block.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "fern/fern.h"
#include "ft/tree_file.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "tools/run_tool.h"

namespace fern {
namespace {

using testing::ScratchDir;

constexpr int kRows = 20000;

std::string Key(int i) { return "key" + std::to_string(i * 7 % kRows + 100000); }
std::string Value(int i) { return "value-" + std::to_string(i) + std::string(60, 'v'); }

// Builds an Env with one multi-level table and returns the table file's path.
std::string BuildTable(const std::string& dir) {
  std::unique_ptr<Env> env;
  Options env_options;
  env_options.sync_commits = false;
  EXPECT_TRUE(Env::Open(dir, env_options, &env).ok());
  TableOptions options;
  options.node_bytes = 32 << 10;
  options.basement_bytes = 4 << 10;
  Table* table;
  EXPECT_TRUE(env->OpenTable("t", options, &table).ok());
  for (int i = 0; i < kRows; ++i) EXPECT_TRUE(table->Put(nullptr, Key(i), Value(i)).ok());
  env.reset();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".ft") return entry.path().string();
  }
  ADD_FAILURE() << "no .ft file in " << dir;
  return "";
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

using testing::ToolResult;

// With stderr in the output.
ToolResult RunTool(const std::string& command) { return testing::RunTool(command + " 2>&1"); }

// Reads every row back. Returns OK if all rows are present and correct, the first error
// otherwise. A wrong value with an OK status fails the test: damage must never be served.
Status ReadEverything(const std::string& dir) {
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir, Options(), &env);
  if (!s.ok()) return s;
  Table* table;
  s = env->OpenTable("t", TableOptions(), &table);
  if (!s.ok()) return s;
  for (int i = 0; i < kRows; i += 97) {
    std::string v;
    s = table->Get(nullptr, Key(i), &v);
    if (!s.ok()) return s;
    EXPECT_EQ(v, Value(i)) << "damaged data served for " << Key(i);
  }
  auto cursor = table->NewCursor(nullptr);
  int count = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++count;
  if (!cursor->status().ok()) return cursor->status();
  EXPECT_EQ(count, kRows) << "rows silently lost";
  return Status::OK();
}

TEST(DamageTest, CleanTableVerifies) {
  ScratchDir dir;
  std::string file = BuildTable(dir.path());
  ToolResult r = RunTool(std::string(FERN_FTVERIFY) + " " + file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadEverything(dir.path()).ok());
  ToolResult dump = RunTool(std::string(FERN_FTDUMP) + " " + file);
  EXPECT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_NE(dump.output.find("height:"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("zstd"), std::string::npos) << dump.output;
  // 4 KiB basements are above one and a half 2 KiB chunks: stored as chunks.
  EXPECT_NE(dump.output.find("basements stored in chunks: "), std::string::npos) << dump.output;
  EXPECT_EQ(dump.output.find("basements stored in chunks: 0 of"), std::string::npos) << dump.output;
  ToolResult json = RunTool(std::string(FERN_FTDUMP) + " " + file + " --json");
  EXPECT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find("\"chunked_basements\":"), std::string::npos) << json.output;
}

// The slot of the header a clean open of `file` uses (-1 if it does not open cleanly).
int HeaderSlotInUse(const std::string& file) {
  std::unique_ptr<TreeFile> tree_file;
  if (!TreeFile::Open(file, true, &tree_file).ok()) return -1;
  EXPECT_EQ(tree_file->unreadable_header_slots(), "");
  return tree_file->header_slot();
}

// Damages header slot `slot` inside the bytes its checksum covers.
void FlipHeaderSlot(const std::string& file, int slot) {
  ASSERT_TRUE(slot == 0 || slot == 1) << slot;
  FlipByte(file, static_cast<uint64_t>(slot) * kHeaderSlotBytes + 46);
}

// The header slot not in use (the previous checkpoint's) is what a crash while a checkpoint
// wrote its header leaves unreadable: ftverify and ftdump say so, as a note, not damage.
TEST(DamageTest, AnUnreadableStaleHeaderSlotIsReportedAsANote) {
  ScratchDir dir;
  std::string file = BuildTable(dir.path());
  const int stale = 1 - HeaderSlotInUse(file);
  FlipHeaderSlot(file, stale);
  for (const char* tool : {FERN_FTVERIFY, FERN_FTDUMP}) {
    ToolResult r = RunTool(std::string(tool) + " " + file + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << tool << ": " << r.output;
    EXPECT_NE(r.output.find("header slot " + std::to_string(stale)), std::string::npos)
        << tool << ": " << r.output;
  }
  EXPECT_TRUE(ReadEverything(dir.path()).ok());
}

// When the header in use is unreadable and the other one's block table fails too, the error
// names both: the block table's error alone would hide that the newest header was lost.
TEST(DamageTest, AnUnreadableNewestHeaderIsNamedWhenTheOlderOneFailsToo) {
  ScratchDir dir;
  std::string file = BuildTable(dir.path());
  const int in_use = HeaderSlotInUse(file);
  FlipHeaderSlot(file, in_use);
  std::filesystem::resize_file(file, BlockTable::kReservedFileBytes + 4096);
  std::unique_ptr<TreeFile> tree_file;
  Status s = TreeFile::Open(file, true, &tree_file);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("the other header is unreadable: slot " + std::to_string(in_use)),
            std::string::npos)
      << s.ToString();
  ToolResult r = RunTool(std::string(FERN_FTVERIFY) + " " + file + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unreadable"), std::string::npos) << r.output;
}

TEST(DamageTest, FlippedByteInABlockIsCorruptionAndFtverifyNamesTheBlock) {
  ScratchDir dir;
  std::string file = BuildTable(dir.path());
  BlockNum victim = -1;
  BlockLocation where;
  {
    std::unique_ptr<TreeFile> tree_file;
    ASSERT_TRUE(TreeFile::Open(file, true, &tree_file).ok());
    BlockNum root = tree_file->header().root;
    tree_file->ForEachBlock([&](BlockNum b, BlockLocation loc) {
      if (b != root && victim < 0 && loc.size > 512) {
        victim = b;
        where = loc;
      }
    });
  }
  ASSERT_GE(victim, 0);
  FlipByte(file, where.FileOffset(where.size / 2));

  ToolResult r = RunTool(std::string(FERN_FTVERIFY) + " " + file);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("block " + std::to_string(victim)), std::string::npos) << r.output;
  // ftdump lists the damage it met, and says so in its exit status.
  ToolResult dump = RunTool(std::string(FERN_FTDUMP) + " " + file);
  EXPECT_EQ(dump.exit_code, 1) << dump.output;
  EXPECT_NE(dump.output.find("block " + std::to_string(victim)), std::string::npos) << dump.output;
  Status s = ReadEverything(dir.path());
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("block " + std::to_string(victim)), std::string::npos)
      << s.ToString();
}

TEST(DamageTest, TruncatedFileIsCorruption) {
  ScratchDir dir;
  std::string file = BuildTable(dir.path());
  uint64_t size = std::filesystem::file_size(file);
  for (uint64_t keep : {size / 2, size - 1, uint64_t{6000}, uint64_t{100}}) {
    ScratchDir copy;
    std::filesystem::copy(dir.path(), copy.path(),
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing);
    std::string copied = copy.Sub(std::filesystem::path(file).filename().string());
    std::filesystem::remove(copy.Sub("LOCK"));
    std::filesystem::resize_file(copied, keep);
    Status s = ReadEverything(copy.path());
    // Cutting off only free space may leave the table intact; anything else is Corruption.
    EXPECT_TRUE(s.ok() || s.IsCorruption()) << keep << ": " << s.ToString();
    if (keep < size / 2 + 1) {
      EXPECT_TRUE(s.IsCorruption()) << keep << ": " << s.ToString();
    }
    ToolResult r = RunTool(std::string(FERN_FTVERIFY) + " " + copied);
    if (!s.ok()) {
      EXPECT_NE(r.exit_code, 0) << keep << ": " << r.output;
    }
  }
}

TEST(DamageTest, RandomByteFlipsAreDetectedOrHarmless) {
  ScratchDir dir;
  std::string file = BuildTable(dir.path());
  uint64_t size = std::filesystem::file_size(file);
  std::mt19937_64 rng(7);
  int detected = 0;
  for (int trial = 0; trial < 40; ++trial) {
    ScratchDir copy;
    std::filesystem::copy(dir.path(), copy.path(),
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing);
    std::filesystem::remove(copy.Sub("LOCK"));
    std::string copied = copy.Sub(std::filesystem::path(file).filename().string());
    // Past the two header slots: a damaged newest header falls back to the previous
    // checkpoint by design (tested in the tree file tests).
    uint64_t offset = 8192 + rng() % (size - 8192);
    FlipByte(copied, offset);
    Status s = ReadEverything(copy.path());
    EXPECT_TRUE(s.ok() || s.IsCorruption()) << offset << ": " << s.ToString();
    if (!s.ok()) ++detected;
  }
  EXPECT_GT(detected, 0);
}

}  // namespace
}  // namespace fern
