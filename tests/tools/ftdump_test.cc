// `ftdump FILE --node N`: one node's rows, with bytes other than printable ASCII escaped
// once in the text output and decoding to the same text from the JSON output; a block that
// is not in use, or a bad --node, is a clear error.
#include <string>

#include "gtest/gtest.h"
#include "test_util.h"
#include "tools/run_tool.h"

namespace fern {
namespace {

using testing::RunTool;
using testing::ScratchDir;
using testing::ToolResult;

ToolResult Ftdump(const std::string& args) {
  return RunTool(std::string(FERN_FTDUMP) + " " + args + " 2>&1");
}

TEST(FtdumpTest, NodeRowsAreEscapedOnce) {
  ScratchDir dir;
  const std::string env = dir.Sub("env");
  // Key: a, 0x01, a quote, a backslash, b. Value: v, a quote, x.
  ASSERT_EQ(RunTool(std::string(FERN_TOOL) + " put " + env +
                    " t \"$(printf 'a\\001\\042\\134b')\" 'v\"x'")
                .exit_code,
            0);
  const std::string file = env + "/table-1.ft";
  ToolResult text = Ftdump(file + " --node 1");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("\"a\\x01\\x22\\x5cb\" = \"v\\x22x\""), std::string::npos)
      << text.output;
  ToolResult json = Ftdump(file + " --node 1 --json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find("\"key\":\"a\\\\x01\\\"\\\\x5cb\""), std::string::npos) << json.output;
}

TEST(FtdumpTest, AValueStoredOutOfLineIsShownByItsBlock) {
  ScratchDir dir;
  const std::string env = dir.Sub("env");
  ASSERT_EQ(RunTool(std::string(FERN_TOOL) + " put " + env + " t big \"$(head -c 100000 " +
                    "/dev/zero | tr '\\0' x)\"")
                .exit_code,
            0);
  const std::string file = env + "/table-1.ft";
  ToolResult summary = Ftdump(file);
  ASSERT_EQ(summary.exit_code, 0) << summary.output;
  EXPECT_NE(summary.output.find("values out of line: 1 (100000 value bytes"), std::string::npos)
      << summary.output;
  ToolResult text = Ftdump(file + " --node 1");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("\"big\" = <100000 bytes in value block "), std::string::npos)
      << text.output;
  ToolResult json = Ftdump(file + " --node 1 --json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find("\"value_bytes\":100000"), std::string::npos) << json.output;
}

TEST(FtdumpTest, BadNodeArgumentsAreClearErrors) {
  ScratchDir dir;
  const std::string env = dir.Sub("env");
  ASSERT_EQ(RunTool(std::string(FERN_TOOL) + " put " + env + " t k v").exit_code, 0);
  const std::string file = env + "/table-1.ft";
  ToolResult unused = Ftdump(file + " --node 1000");
  EXPECT_EQ(unused.exit_code, 1);
  EXPECT_NE(unused.output.find("block 1000 is not in use"), std::string::npos) << unused.output;
  for (const std::string& args : {file + " --node 99999999999999999999999", file + " --node x",
                                  file + " --node 1 --node 2"}) {
    ToolResult r = Ftdump(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
  }
}

// --help is an answer, not an error: the usage goes to stdout, with exit status 0; a
// usage error still goes to stderr, with exit status 2.
TEST(FtdumpTest, EveryToolPrintsItsHelpOnStdout) {
  for (const std::string tool : {FERN_FTDUMP, FERN_FTVERIFY, FERN_TOOL}) {
    SCOPED_TRACE(tool);
    ToolResult help = RunTool(tool + " --help 2>/dev/null");
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.output.find("usage"), std::string::npos) << help.output;
    ToolResult wrong = RunTool(tool + " --no-such-flag 2>/dev/null");
    EXPECT_EQ(wrong.exit_code, 2);
    EXPECT_EQ(wrong.output, "");
  }
}

}  // namespace
}  // namespace fern
