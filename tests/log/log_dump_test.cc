#include "log/log_dump.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "log/log_test_util.h"
#include "log/log_writer.h"

namespace fern {
namespace {

std::vector<std::string> Dump(const std::string& dir, Status* status) {
  std::vector<std::string> lines;
  *status = DumpLog(dir, [&](std::string_view line) { lines.emplace_back(line); });
  return lines;
}

TEST(LogDumpTest, FormatsEveryFieldOfARecord) {
  EXPECT_EQ(FormatLogRecord(LogRecord::BeginTxn(7, 3)), "begin_txn txn=7 parent=3");
  EXPECT_EQ(FormatLogRecord(LogRecord::Insert(2, 9, "k\x01", "v")),
            "insert table=2 txn=9 key=\"k\\x01\" value=\"v\"");
  EXPECT_EQ(FormatLogRecord(LogRecord::EndCheckpoint(4, 100)),
            "end_checkpoint checkpoint=4 begin_lsn=100");
  EXPECT_EQ(FormatLogRecord(LogRecord::TableCreate(1, "users", "users.ft")),
            "table_create table=1 name=\"users\" file=\"users.ft\"");
  std::string long_value =
      FormatLogRecord(LogRecord::AutocommitInsert(1, 1, "k", std::string(100, 'x')));
  EXPECT_NE(long_value.find("...\"(100B)"), std::string::npos) << long_value;
}

TEST(LogDumpTest, PrintsOneLinePerRecordWithFileAndOffset) {
  ScratchDir dir;
  {
    std::unique_ptr<LogWriter> writer;
    ASSERT_TRUE(LogWriter::Open(dir.path(), {}, &writer).ok());
    Lsn lsn;
    ASSERT_TRUE(writer->Append(LogRecord::BeginTxn(5, 0), &lsn).ok());
    ASSERT_TRUE(writer->Append(LogRecord::Delete(1, 5, "gone"), &lsn).ok());
    ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(5), &lsn).ok());
    ASSERT_TRUE(writer->Sync(lsn).ok());
  }
  Status s;
  std::vector<std::string> lines = Dump(dir.path(), &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "# file 0000000000000001.log");
  EXPECT_EQ(lines[1], "1 0000000000000001.log+32 begin_txn txn=5 parent=0");
  EXPECT_EQ(lines[2].substr(0, 26), "2 0000000000000001.log+55 ");
  EXPECT_EQ(lines[2].substr(26), "delete table=1 txn=5 key=\"gone\"");
  EXPECT_EQ(lines[3].substr(0, 2), "3 ");
  EXPECT_EQ(lines[4].rfind("# end: last LSN 3, 0000000000000001.log valid up to offset ", 0), 0u)
      << lines[4];
}

TEST(LogDumpTest, StopsAtCorruptionAfterPrintingWhatCameBefore) {
  ScratchDir dir;
  {
    std::unique_ptr<LogWriter> writer;
    ASSERT_TRUE(LogWriter::Open(dir.path(), {}, &writer).ok());
    Lsn lsn;
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(i), &lsn).ok());
    ASSERT_TRUE(writer->Sync(lsn).ok());
  }
  std::string path = LogFilePaths(dir.path()).back();
  std::string contents = ReadAll(path);
  contents[32 + 22 + 13] ^= 1;  // the payload of the second record (each is 22 bytes)
  WriteAll(path, contents);
  Status s;
  std::vector<std::string> lines = Dump(dir.path(), &s);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("offset 54"), std::string_view::npos) << s.ToString();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].rfind("1 ", 0), 0u);
}

}  // namespace
}  // namespace fern
