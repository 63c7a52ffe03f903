// A table whose comparator the application registers is not one the tools know: ftverify and
// ftdump then check no key order (they say so) but still decode, check and count everything
// else, and a healthy table verifies clean.
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "fern/fern.h"
#include "ft/tree_file.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "tools/run_tool.h"

namespace fern {
namespace {

using testing::ReverseComparator;
using testing::RunTool;
using testing::ScratchDir;
using testing::ToolResult;

// Enough rows at these sizes for dozens of leaves of several basements each: order across
// basements, leaves and pivots all come into play, not only within one basement.
constexpr int kRows = 24000;

ToolResult Tool(const char* tool, const std::string& args) {
  return RunTool(std::string(tool) + " " + args + " 2>&1");
}

// A closed Env in `dir` whose table "r" holds kRows rows under ReverseComparator, every
// message pushed down to the leaves.
void MakeReverseTable(const std::string& dir) {
  ReverseComparator reverse;  // outlives the Env, which compares keys until it closes
  std::unique_ptr<Env> env;
  Options env_options;
  env_options.sync_commits = false;
  ASSERT_TRUE(Env::Open(dir, env_options, &env).ok());
  TableOptions options;
  options.comparator = &reverse;
  options.node_bytes = 32 << 10;
  options.basement_bytes = 4 << 10;
  Table* table;
  ASSERT_TRUE(env->OpenTable("r", options, &table).ok());
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(table->Put(nullptr, testing::NumberedKey(i), std::string(40, 'v')).ok());
  }
  ASSERT_TRUE(table->Optimize().ok());
  ASSERT_TRUE(env->Checkpoint().ok());
}

// The number right after the first `label` in `text`, or -1.
long long NumberAfter(const std::string& text, const std::string& label) {
  size_t at = text.find(label);
  if (at == std::string::npos) return -1;
  const char* begin = text.c_str() + at + label.size();
  char* end;
  long long n = std::strtoll(begin, &end, 10);
  return end == begin ? -1 : n;
}

TEST(FtverifyUnknownComparatorTest, HealthyMultiLeafTableVerifiesCleanWithEveryRowCounted) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeReverseTable(dir.path()));
  const std::string file = dir.Sub("table-1.ft");

  ToolResult verify = Tool(FERN_FTVERIFY, "'" + file + "'");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("\"test.Reverse\" is not built in"), std::string::npos)
      << verify.output;
  EXPECT_EQ(verify.output.find("Corruption"), std::string::npos) << verify.output;
  EXPECT_NE(verify.output.find(" " + std::to_string(kRows) + " rows, 0 problems"),
            std::string::npos)
      << verify.output;
  // Many leaves, so that order across leaves and against pivots is what a check would see.
  EXPECT_GT(NumberAfter(verify.output, file + ": "), 20) << verify.output;

  ToolResult env = Tool(FERN_FTVERIFY, "'" + dir.path() + "'");
  EXPECT_EQ(env.exit_code, 0) << env.output;
  EXPECT_EQ(env.output.find("Corruption"), std::string::npos) << env.output;
  EXPECT_NE(env.output.find(" " + std::to_string(kRows) + " rows"), std::string::npos)
      << env.output;
  EXPECT_NE(env.output.find("1 table, 0 problems"), std::string::npos) << env.output;

  ToolResult dump = Tool(FERN_FTDUMP, "'" + file + "'");
  EXPECT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_EQ(dump.output.find("Corruption"), std::string::npos) << dump.output;
  EXPECT_EQ(NumberAfter(dump.output, "rows in leaves: "), kRows) << dump.output;
  // The unknown comparator is a note about the file, not a block's problem.
  EXPECT_EQ(dump.output.find("block -1"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("file: comparator"), std::string::npos) << dump.output;
  EXPECT_GT(NumberAfter(dump.output, "level 0 (leaves): "), 20) << dump.output;

  // One node's rows, down the first children from the root to a leaf.
  long long block = NumberAfter(dump.output, "root block: ");
  ASSERT_GE(block, 0) << dump.output;
  for (int depth = 0; depth < 10; ++depth) {
    ToolResult node = Tool(FERN_FTDUMP, "'" + file + "' --node " + std::to_string(block));
    ASSERT_EQ(node.exit_code, 0) << node.output;
    EXPECT_EQ(node.output.find("error:"), std::string::npos) << node.output;
    if (node.output.find(": leaf,") != std::string::npos) {
      EXPECT_EQ(node.output.find(" 0 rows\n"), std::string::npos) << node.output;
      return;
    }
    block = NumberAfter(node.output, "child block ");
    ASSERT_GE(block, 0) << node.output;
  }
  ADD_FAILURE() << "no leaf within 10 levels of the root";
}

// Only key order goes unchecked: a flipped byte in a block is still found and named.
TEST(FtverifyUnknownComparatorTest, DamagedBlockIsStillAProblem) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeReverseTable(dir.path()));
  const std::string file = dir.Sub("table-1.ft");
  BlockNum victim = -1;
  BlockLocation where;
  {
    std::unique_ptr<TreeFile> tree_file;
    ASSERT_TRUE(TreeFile::Open(file, /*read_only=*/true, &tree_file).ok());
    const BlockNum root = tree_file->header().root;
    tree_file->ForEachBlock([&](BlockNum block, BlockLocation location) {
      if (block != root && victim < 0 && location.size > 512) {
        victim = block;
        where = location;
      }
    });
  }
  ASSERT_GE(victim, 0);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(where.FileOffset(where.size / 2));
    f.seekg(at);
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(at);
    f.write(&c, 1);
  }
  ToolResult verify = Tool(FERN_FTVERIFY, "'" + file + "'");
  EXPECT_EQ(verify.exit_code, 1) << verify.output;
  EXPECT_NE(verify.output.find("block " + std::to_string(victim) + ": "), std::string::npos)
      << verify.output;
}

}  // namespace
}  // namespace fern
