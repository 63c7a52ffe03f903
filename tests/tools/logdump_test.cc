// `fern logdump DIR`: the write-ahead log, one record a line, read without recovering.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;

constexpr char kLogName[] = "0000000000000001.log";

struct ToolResult {
  int exit_code = -1;
  std::string output;  // stdout, and stderr where the command redirects it
};

ToolResult RunTool(const std::string& command) {
  ToolResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

ToolResult LogDump(const std::string& dir, bool with_stderr = false) {
  return RunTool(std::string(FERN_TOOL) + " logdump " + dir + (with_stderr ? " 2>&1" : ""));
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A record line: "<lsn> <file>+<offset> <record text>".
struct RecordLine {
  uint64_t lsn = 0;
  std::string file;
  uint64_t offset = 0;
  std::string text;
};

bool ParseRecordLine(const std::string& line, RecordLine* out) {
  size_t space = line.find(' ');
  size_t plus = line.find('+', space);
  size_t second = line.find(' ', plus);
  if (space == std::string::npos || plus == std::string::npos || second == std::string::npos) {
    return false;
  }
  out->lsn = std::stoull(line.substr(0, space));
  out->file = line.substr(space + 1, plus - space - 1);
  out->offset = std::stoull(line.substr(plus + 1, second - plus - 1));
  out->text = line.substr(second + 1);
  return true;
}

std::vector<RecordLine> RecordLines(const std::string& output) {
  std::vector<RecordLine> records;
  for (const std::string& line : Lines(output)) {
    if (line.empty() || line[0] == '#') continue;
    RecordLine record;
    EXPECT_TRUE(ParseRecordLine(line, &record)) << line;
    records.push_back(record);
  }
  return records;
}

// Five autocommitted writes, then the Env closes (its final checkpoint logs two records).
void WriteFewRecords(const std::string& dir) {
  std::unique_ptr<Env> env;
  Options options;
  options.sync_commits = false;
  ASSERT_TRUE(Env::Open(dir, options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("fruit", TableOptions(), &table).ok());
  ASSERT_TRUE(table->Put(nullptr, "apple", "red").ok());
  ASSERT_TRUE(table->Put(nullptr, "banana", "yellow").ok());
  ASSERT_TRUE(table->Delete(nullptr, "apple").ok());
  ASSERT_TRUE(table->Put(nullptr, "cherry", std::string(100, 'c')).ok());
  ASSERT_TRUE(table->Delete(nullptr, "durian").ok());
}

TEST(LogDumpTest, ListsEveryPutAndDeleteWithLsnsInOrder) {
  ScratchDir dir;
  WriteFewRecords(dir.path());
  ToolResult r = LogDump(dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;

  const std::vector<std::string> expected = {
      R"(autocommit_insert table=1 txn=0 key="apple" value="red")",
      R"(autocommit_insert table=1 txn=0 key="banana" value="yellow")",
      R"(autocommit_delete table=1 txn=0 key="apple")",
      R"(autocommit_insert table=1 txn=0 key="cherry" value=")" + std::string(64, 'c') +
          R"(..."(100B))",
      R"(autocommit_delete table=1 txn=0 key="durian")",
      "begin_checkpoint checkpoint=1",
      "end_checkpoint checkpoint=1 begin_lsn=6",
  };
  std::vector<RecordLine> records = RecordLines(r.output);
  ASSERT_EQ(records.size(), expected.size()) << r.output;
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].lsn, i + 1) << r.output;
    EXPECT_EQ(records[i].file, kLogName);
    if (i == 0) {
      EXPECT_EQ(records[i].offset, 32u);  // just past the file header
    } else {
      EXPECT_GT(records[i].offset, records[i - 1].offset);
    }
    EXPECT_EQ(records[i].text, expected[i]);
  }

  std::vector<std::string> lines = Lines(r.output);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines.front(), std::string("# file ") + kLogName);
  const uint64_t size = std::filesystem::file_size(dir.Sub(kLogName));
  EXPECT_EQ(lines.back(), std::string("# end: last LSN 7, ") + kLogName + " valid up to offset " +
                              std::to_string(size));
}

TEST(LogDumpTest, ShowsATornTailWithoutRepairingIt) {
  ScratchDir dir;
  WriteFewRecords(dir.path());
  const std::string log = dir.Sub(kLogName);
  const uint64_t size = std::filesystem::file_size(log);
  {
    std::ofstream out(log, std::ios::binary | std::ios::app);
    out << std::string(9, '\x7f');  // a record cut short
  }
  ToolResult r = LogDump(dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(RecordLines(r.output).size(), 7u) << r.output;
  EXPECT_EQ(Lines(r.output).back(), std::string("# end: last LSN 7, ") + kLogName +
                                        " valid up to offset " + std::to_string(size) +
                                        ", then 9 torn bytes");
  EXPECT_EQ(std::filesystem::file_size(log), size + 9);
}

TEST(LogDumpTest, StopsAtDamageWithCorruptionAfterTheRecordsBeforeIt) {
  ScratchDir dir;
  WriteFewRecords(dir.path());
  ToolResult clean = LogDump(dir.path());
  std::vector<RecordLine> records = RecordLines(clean.output);
  ASSERT_EQ(records.size(), 7u) << clean.output;
  // Damage the third record's payload; valid records follow, so it is not a torn tail.
  {
    std::fstream f(dir.Sub(kLogName), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(records[2].offset + 15));
    f.put('#');
  }
  ToolResult r = LogDump(dir.path(), /*with_stderr=*/true);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  std::vector<RecordLine> shown = RecordLines(r.output.substr(0, r.output.find("fern: ")));
  ASSERT_EQ(shown.size(), 2u) << r.output;
  EXPECT_EQ(shown[1].lsn, 2u);
  EXPECT_NE(r.output.find("Corruption"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(std::string(kLogName) + ": offset " + std::to_string(records[2].offset)),
            std::string::npos)
      << r.output;
}

TEST(LogDumpTest, MissingDirectoryFailsAndNeedsExactlyOneArgument) {
  ScratchDir dir;
  ToolResult r = LogDump(dir.Sub("nothing-here"), /*with_stderr=*/true);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("nothing-here"), std::string::npos) << r.output;
  r = RunTool(std::string(FERN_TOOL) + " logdump " + dir.path() + " extra 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(LogDumpTest, ReadsTheLogOfAnOpenEnvWithoutTakingItsLock) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());  // synced commits
  Table* table;
  ASSERT_TRUE(env->OpenTable("fruit", TableOptions(), &table).ok());
  ASSERT_TRUE(table->Put(nullptr, "apple", "red").ok());
  ASSERT_TRUE(table->Put(nullptr, "banana", "yellow").ok());
  ToolResult r = LogDump(dir.path(), /*with_stderr=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<RecordLine> records = RecordLines(r.output);
  ASSERT_EQ(records.size(), 2u) << r.output;
  EXPECT_EQ(records[1].lsn, 2u);
  EXPECT_EQ(records[1].text, R"(autocommit_insert table=1 txn=0 key="banana" value="yellow")");
  EXPECT_TRUE(table->Put(nullptr, "cherry", "dark").ok());
}

}  // namespace
}  // namespace fern
