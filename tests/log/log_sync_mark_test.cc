// Sync marks (log format version 4): after a crash that kept only part of what was written
// since the last fdatasync, a hole of zeros with valid records after it is a torn tail (the
// log ends at the hole); a hole in records a later mark says were synced is Corruption.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "log/log_reader.h"
#include "log/log_test_util.h"
#include "log/log_writer.h"

namespace fern {
namespace {

constexpr int kBatch = 10;

// Three write-outs of kBatch inserts each, values of 700 random bytes (so that each
// write-out spans several 512-byte sectors whatever the packing): A, then B, then C. A is
// synced; B and C are synced only if `sync_all`. Returns where B's first record starts.
uint64_t WriteThreeBatches(const std::string& dir, bool sync_all) {
  std::unique_ptr<LogWriter> writer;
  EXPECT_TRUE(LogWriter::Open(dir, LogWriterOptions(), &writer).ok());
  std::mt19937_64 rng(7);
  for (int batch = 0; batch < 3; ++batch) {
    for (int i = 0; i < kBatch; ++i) {
      std::string value(700, '\0');
      for (char& c : value) c = static_cast<char>(rng());
      Lsn lsn;
      EXPECT_TRUE(
          writer->Append(LogRecord::Insert(1, 0, std::to_string(batch * kBatch + i), value), &lsn)
              .ok());
    }
    if (batch == 0 || sync_all) {
      EXPECT_TRUE(writer->Sync(writer->last_lsn()).ok());
    } else {
      EXPECT_TRUE(writer->Flush().ok());
    }
  }
  EXPECT_EQ(writer->stats().sync_marks, 3u);
  writer.reset();
  std::vector<OwnedRecord> records;
  EXPECT_TRUE(ReadForward(dir, 0, &records).ok());
  EXPECT_EQ(records.size(), size_t{3 * kBatch});
  return records.size() > kBatch ? records[kBatch].offset : 0;
}

// Zeroes the 512-byte sector after the one holding `offset`, as a write lost in a crash
// leaves the preallocated file.
void LoseSectorAfter(const std::string& path, uint64_t offset) {
  std::string bytes = ReadAll(path);
  const uint64_t sector = (offset / 512 + 1) * 512;
  ASSERT_LE(sector + 512, bytes.size());
  for (uint64_t i = sector; i < sector + 512; ++i) bytes[i] = 0;
  WriteAll(path, bytes);
}

TEST(LogSyncMarkTest, LostWriteInTheUnsyncedTailEndsTheLogThere) {
  ScratchDir dir;
  const uint64_t b_start = WriteThreeBatches(dir.path(), /*sync_all=*/false);
  const std::string path = LogFilePaths(dir.path()).back();
  LoseSectorAfter(path, b_start);

  std::vector<OwnedRecord> records;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &records).ok());
  // A whole, and B's records before the hole; nothing after it, though C is intact.
  ASSERT_GE(records.size(), size_t{kBatch});
  ASSERT_LT(records.size(), size_t{2 * kBatch});
  const Lsn last = records.back().record.lsn;
  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(dir.path(), &reader).ok());
  LogEnd end;
  ASSERT_TRUE(reader->FindEnd(&end).ok());
  EXPECT_EQ(end.last_lsn, last);
  EXPECT_LT(end.valid_end, end.file_size);

  // The writer cuts the torn tail off and goes on from the last record kept.
  {
    std::unique_ptr<LogWriter> writer;
    ASSERT_TRUE(LogWriter::Open(dir.path(), LogWriterOptions(), &writer).ok());
    Lsn lsn;
    ASSERT_TRUE(writer->Append(LogRecord::Insert(1, 0, "after", "crash"), &lsn).ok());
    EXPECT_EQ(lsn, last + 1);
    ASSERT_TRUE(writer->Sync(lsn).ok());
  }
  ASSERT_TRUE(ReadForward(dir.path(), 0, &records).ok());
  ASSERT_EQ(records.back().record.lsn, last + 1);
  EXPECT_EQ(records.back().key, "after");
}

TEST(LogSyncMarkTest, LostWriteInSyncedRecordsIsCorruption) {
  ScratchDir dir;
  const uint64_t b_start = WriteThreeBatches(dir.path(), /*sync_all=*/true);
  const std::string path = LogFilePaths(dir.path()).back();
  LoseSectorAfter(path, b_start);

  std::vector<OwnedRecord> records;
  Status s = ReadForward(dir.path(), 0, &records);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("sync mark says the log was durable through LSN 20"),
            std::string::npos)
      << s.ToString();
  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(dir.path(), &reader).ok());
  LogEnd end;
  EXPECT_TRUE(reader->FindEnd(&end).IsCorruption());
  std::unique_ptr<LogWriter> writer;
  EXPECT_TRUE(LogWriter::Open(dir.path(), LogWriterOptions(), &writer).IsCorruption());
}

// Changed bytes (no zero-filled sector) with valid records after them are damage, synced or
// not: a crash loses writes, it does not change bytes.
TEST(LogSyncMarkTest, ChangedBytesInTheUnsyncedTailAreCorruption) {
  ScratchDir dir;
  const uint64_t b_start = WriteThreeBatches(dir.path(), /*sync_all=*/false);
  const std::string path = LogFilePaths(dir.path()).back();
  std::string bytes = ReadAll(path);
  bytes[b_start + 30] = static_cast<char>(bytes[b_start + 30] ^ 0x21);
  WriteAll(path, bytes);
  std::vector<OwnedRecord> records;
  Status s = ReadForward(dir.path(), 0, &records);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("valid records follow it"), std::string::npos) << s.ToString();
}

// Marks are never returned as records and take no LSN; backward reading skips them too.
TEST(LogSyncMarkTest, MarksAreInvisibleToReaders) {
  ScratchDir dir;
  WriteThreeBatches(dir.path(), /*sync_all=*/true);
  std::vector<OwnedRecord> forward, backward;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
  ASSERT_TRUE(ReadBackward(dir.path(), &backward).ok());
  ASSERT_EQ(forward.size(), size_t{3 * kBatch});
  ASSERT_EQ(backward.size(), size_t{3 * kBatch});
  for (int i = 0; i < 3 * kBatch; ++i) {
    EXPECT_EQ(forward[i].record.lsn, static_cast<Lsn>(i + 1));
    EXPECT_EQ(backward[i].record.lsn, static_cast<Lsn>(3 * kBatch - i));
  }
}

}  // namespace
}  // namespace fern
