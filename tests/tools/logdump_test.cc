// `fern logdump DIR`: the write-ahead log, one record a line, read without recovering.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "tools/run_tool.h"

namespace fern {
namespace {

using testing::ScratchDir;

constexpr char kLogName[] = "0000000000000001.log";

using testing::RunTool;
using testing::ToolResult;

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

// The offset logdump's last line says the records are valid up to (0 if it has none).
uint64_t ValidEnd(const std::string& output) {
  const std::string marker = " valid up to offset ";
  const size_t at = output.rfind(marker);
  if (at == std::string::npos) return 0;
  return std::stoull(output.substr(at + marker.size()));
}

// logdump's last line for kLogName holding 7 records up to `end`, then `torn` bytes.
std::string EndLine(uint64_t end, uint64_t torn) {
  std::string line =
      std::string("# end: last LSN 7, ") + kLogName + " valid up to offset " + std::to_string(end);
  if (torn > 0) line += ", then " + std::to_string(torn) + " torn bytes";
  return line;
}

// Five autocommitted writes and a checkpoint (two records), then the process dies without
// closing the Env: a clean close would leave only its last checkpoint's end record in a
// new log file, since it makes every earlier record unnecessary.
void WriteFewRecords(const std::string& dir) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto write = [&dir]() -> bool {
      Env* env = nullptr;
      std::unique_ptr<Env> owned;
      Options options;
      options.sync_commits = false;
      options.checkpoint_period_ms = 0;
      if (!Env::Open(dir, options, &owned).ok()) return false;
      env = owned.release();  // never closed: the process ends first
      Table* table;
      return env->OpenTable("fruit", TableOptions(), &table).ok() &&
             table->Put(nullptr, "apple", "red").ok() &&
             table->Put(nullptr, "banana", "yellow").ok() && table->Delete(nullptr, "apple").ok() &&
             table->Put(nullptr, "cherry", std::string(100, 'c')).ok() &&
             table->Delete(nullptr, "durian").ok() && env->Checkpoint().ok();
    };
    ::_exit(write() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// A clean close leaves one record: the end of its checkpoint, alone in a new file.
TEST(LogDumpTest, AfterACleanCloseOnlyTheLastCheckpointsEndIsLeft) {
  ScratchDir dir;
  {
    std::unique_ptr<Env> env;
    Options options;
    options.sync_commits = false;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("fruit", TableOptions(), &table).ok());
    ASSERT_TRUE(table->Put(nullptr, "apple", "red").ok());
    ASSERT_TRUE(table->Put(nullptr, "banana", "yellow").ok());
  }
  ToolResult r = LogDump(dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<RecordLine> records = RecordLines(r.output);
  ASSERT_EQ(records.size(), 1u) << r.output;
  EXPECT_EQ(records[0].lsn, 4u);
  EXPECT_EQ(records[0].text, "end_checkpoint checkpoint=1 begin_lsn=3");
  EXPECT_NE(records[0].file, kLogName);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub(kLogName)));

  // The rows are in the table, not the log.
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("fruit", TableOptions(), &table).ok());
  std::string value;
  ASSERT_TRUE(table->Get(nullptr, "banana", &value).ok());
  EXPECT_EQ(value, "yellow");
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
  // The writer died with its file preallocated: past the last record come zeros.
  const uint64_t size = std::filesystem::file_size(dir.Sub(kLogName));
  const uint64_t end = ValidEnd(r.output);
  EXPECT_GT(end, records.back().offset);
  EXPECT_EQ(lines.back(), EndLine(end, size - end));
}

TEST(LogDumpTest, ShowsATornTailWithoutRepairingIt) {
  ScratchDir dir;
  WriteFewRecords(dir.path());
  const std::string log = dir.Sub(kLogName);
  const uint64_t end = ValidEnd(LogDump(dir.path()).output);
  uint64_t size = std::filesystem::file_size(log);
  {
    // A record cut short, where the next one would start.
    std::fstream f(log, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(end));
    f << std::string(9, '\x7f');
  }
  size = std::max<uint64_t>(size, end + 9);
  ToolResult r = LogDump(dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(RecordLines(r.output).size(), 7u) << r.output;
  EXPECT_EQ(Lines(r.output).back(), EndLine(end, size - end));
  EXPECT_EQ(std::filesystem::file_size(log), size);
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

// While another thread keeps writing, every dump reads to the log's end without reporting
// damage: a record read while it is being written reads whole a moment later.
TEST(LogDumpTest, ReadsTheLogOfAnEnvBeingWritten) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Options options;
  options.sync_commits = false;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    const std::string value(3000, 'v');
    for (int i = 0; !stop.load(); ++i) {
      std::unique_ptr<Txn> txn;
      if (!env->Begin(TxnOptions(), &txn).ok()) ++failures;
      for (int j = 0; j < 20; ++j) {
        if (!table->Put(txn.get(), "k" + std::to_string(i * 20 + j), value).ok()) ++failures;
      }
      if (!txn->Commit().ok()) ++failures;
      if (i % 50 == 0 && !env->Checkpoint().ok()) ++failures;
    }
  });
  for (int dump = 0; dump < 8; ++dump) {
    ToolResult r = LogDump(dir.path(), /*with_stderr=*/true);
    EXPECT_EQ(r.exit_code, 0) << r.output.substr(r.output.size() > 2000 ? r.output.size() - 2000
                                                                        : 0);
  }
  stop.store(true);
  writer.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(LogDumpTest, DirectoryThatIsNotAnEnvIsRefused) {
  ScratchDir dir;
  std::ofstream(dir.Sub("notes.txt")) << "not an Env";
  ToolResult r = LogDump(dir.path(), /*with_stderr=*/true);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("not a Fern Env"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace fern
