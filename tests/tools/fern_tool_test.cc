// The `fern` command-line client: put creates what is missing, the other commands refuse a
// table the Env does not hold (and create nothing), and scan's lines stay one row each
// whatever bytes the rows hold.
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "test_util.h"
#include "tools/run_tool.h"

namespace fern {
namespace {

using testing::RunTool;
using testing::ScratchDir;
using testing::ToolResult;

ToolResult Fern(const std::string& args) {
  return RunTool(std::string(FERN_TOOL) + " " + args + " 2>&1");
}

int TableFiles(const std::string& dir) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".ft") ++files;
  }
  return files;
}

TEST(FernToolTest, OnlyPutCreatesTables) {
  ScratchDir dir;
  const std::string env = dir.Sub("env");
  ASSERT_EQ(Fern("put " + env + " t k v").exit_code, 0);
  ASSERT_EQ(TableFiles(env), 1);
  for (const std::string& command :
       {"get " + env + " ghost k", "delete " + env + " ghost k", "scan " + env + " ghost",
        "stats " + env + " ghost", "checkpoint " + env + " ghost"}) {
    SCOPED_TRACE(command);
    ToolResult r = Fern(command);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("table \"ghost\" does not exist"), std::string::npos) << r.output;
  }
  EXPECT_EQ(TableFiles(env), 1);
  ToolResult missing_key = Fern("get " + env + " t nothing");
  EXPECT_EQ(missing_key.exit_code, 3);  // apart from errors (1)
  EXPECT_NE(missing_key.output.find("key not found"), std::string::npos) << missing_key.output;
  ToolResult got = Fern("get " + env + " t k");
  EXPECT_EQ(got.exit_code, 0);
  EXPECT_EQ(got.output, "v\n");
}

// A command the tool does not have, or one with the wrong number of arguments, gets the
// usage (exit 2) before any directory is looked at, and creates nothing.
TEST(FernToolTest, UnknownCommandsGetTheUsage) {
  ScratchDir dir;
  const std::string env = dir.Sub("env");
  for (const std::string& command :
       {"frobnicate " + env, "frobnicate " + env + " t k", "get " + env + " t",
        "put " + env + " t k", "logdump " + env + " extra", "drop " + env}) {
    SCOPED_TRACE(command);
    ToolResult r = Fern(command);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("usage:"), std::string::npos) << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists(env));
}

TEST(FernToolTest, HelpIsNotAnError) {
  for (const char* flag : {"--help", "-h"}) {
    ToolResult r = Fern(flag);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("usage:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Exit status"), std::string::npos) << r.output;
  }
}

// Output that cannot be written (here /dev/full: every write fails with ENOSPC) is an
// error, so that `fern scan ... > file` on a full disk does not pass for a whole dump.
TEST(FernToolTest, AnOutputThatCannotBeWrittenIsAnError) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  ScratchDir dir;
  const std::string env = dir.Sub("env");
  ASSERT_EQ(Fern("put " + env + " t k v").exit_code, 0);
  for (const std::string& command :
       {"scan " + env + " t", "get " + env + " t k", "stats " + env, "logdump " + env}) {
    SCOPED_TRACE(command);
    ToolResult r = RunTool(std::string(FERN_TOOL) + " " + command + " 2>&1 >/dev/full");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("cannot write the output"), std::string::npos) << r.output;
  }
}

TEST(FernToolTest, ScanEscapesBytesThatWouldBreakItsLines) {
  ScratchDir dir;
  const std::string env = dir.Sub("env");
  ASSERT_EQ(Fern("put " + env + " t plain value").exit_code, 0);
  ASSERT_EQ(Fern("put " + env + " t \"$(printf 'a\\tb')\" \"$(printf 'x\\ny\\\\')\"").exit_code, 0);
  ToolResult r = Fern("scan " + env + " t");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "a\\x09b\tx\\x0ay\\x5c\nplain\tvalue\n");
}

}  // namespace
}  // namespace fern
