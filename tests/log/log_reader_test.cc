#include "log/log_reader.h"

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "log/log_test_util.h"
#include "log/log_writer.h"
#include "util/checksum.h"
#include "util/coding.h"

namespace fern {
namespace {

// Writes `n` inserts (key = index) and returns the LSN-ordered records as written.
void WriteLog(const std::string& dir, int n, uint64_t max_file_bytes = uint64_t{100} << 20) {
  LogWriterOptions options;
  options.max_file_bytes = max_file_bytes;
  std::unique_ptr<LogWriter> writer;
  ASSERT_TRUE(LogWriter::Open(dir, options, &writer).ok());
  for (int i = 0; i < n; ++i) {
    Lsn lsn;
    std::string key = std::to_string(i);
    ASSERT_TRUE(
        writer->Append(LogRecord::Insert(1, 1, key, std::string(20 + i % 40, 'v')), &lsn).ok());
  }
  ASSERT_TRUE(writer->Sync(writer->last_lsn()).ok());
}

Status FindEnd(const std::string& dir, LogEnd* end) {
  std::unique_ptr<LogReader> reader;
  Status s = LogReader::Open(dir, &reader);
  return s.ok() ? reader->FindEnd(end) : s;
}

// Where each record of the (single-file) log starts.
std::vector<uint64_t> RecordOffsets(const std::string& dir) {
  std::vector<OwnedRecord> records;
  EXPECT_TRUE(ReadForward(dir, 0, &records).ok());
  std::vector<uint64_t> offsets;
  for (const OwnedRecord& r : records) offsets.push_back(r.offset);
  return offsets;
}

TEST(LogReaderTest, EmptyDirectoryHasNoRecordsAndNoEnd) {
  ScratchDir dir;
  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(dir.path(), &reader).ok());
  ASSERT_TRUE(reader->SeekToFirst().ok());
  EXPECT_FALSE(reader->Valid());
  ASSERT_TRUE(reader->SeekToLast().ok());
  EXPECT_FALSE(reader->Valid());
  LogEnd end;
  EXPECT_TRUE(reader->FindEnd(&end).IsNotFound());
}

TEST(LogReaderTest, TornTailAtEveryByteOfTheLastRecordEndsAtThePreviousRecord) {
  ScratchDir dir;
  WriteLog(dir.path(), 6);
  std::string path = LogFilePaths(dir.path()).back();
  std::string whole = ReadAll(path);
  uint64_t last_start = RecordOffsets(dir.path()).back();
  // The file ends with the write-out's sync mark (version 4): a cut inside it keeps all six.
  const uint64_t mark_start = whole.size() - kRecordOverhead;
  for (uint64_t cut = mark_start; cut < whole.size(); ++cut) {
    WriteAll(path, std::string_view(whole).substr(0, cut));
    std::vector<OwnedRecord> forward;
    ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
    ASSERT_EQ(forward.size(), 6u) << cut;
  }
  for (uint64_t cut = last_start; cut < mark_start; ++cut) {
    SCOPED_TRACE(StrCat("cut at ", cut));
    WriteAll(path, std::string_view(whole).substr(0, cut));

    std::vector<OwnedRecord> forward;
    ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
    ASSERT_EQ(forward.size(), 5u);
    std::vector<OwnedRecord> backward;
    ASSERT_TRUE(ReadBackward(dir.path(), &backward).ok());
    ASSERT_EQ(backward.size(), 5u);
    EXPECT_EQ(backward.front().record.lsn, 5u);
    LogEnd end;
    ASSERT_TRUE(FindEnd(dir.path(), &end).ok());
    EXPECT_EQ(end.last_lsn, 5u);
    EXPECT_EQ(end.valid_end, last_start);
    EXPECT_EQ(end.file_size, cut);

    // The writer truncates the torn bytes and carries on with LSN 6.
    {
      std::unique_ptr<LogWriter> writer;
      ASSERT_TRUE(LogWriter::Open(dir.path(), {}, &writer).ok());
      EXPECT_EQ(FileSize(path), last_start);
      Lsn lsn;
      ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(99), &lsn).ok());
      EXPECT_EQ(lsn, 6u);
      ASSERT_TRUE(writer->Sync(lsn).ok());
    }
    ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
    ASSERT_EQ(forward.size(), 6u);
    EXPECT_EQ(forward.back().record.type, LogRecordType::kCommitTxn);
  }
}

TEST(LogReaderTest, ZeroFilledTailEndsTheLogCleanly) {
  ScratchDir dir;
  WriteLog(dir.path(), 10);
  std::string path = LogFilePaths(dir.path()).back();
  std::string whole = ReadAll(path);
  WriteAll(path, whole + std::string(8192, '\0'));
  std::vector<OwnedRecord> forward;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
  EXPECT_EQ(forward.size(), 10u);
  std::vector<OwnedRecord> backward;
  ASSERT_TRUE(ReadBackward(dir.path(), &backward).ok());
  EXPECT_EQ(backward.size(), 10u);
  LogEnd end;
  ASSERT_TRUE(FindEnd(dir.path(), &end).ok());
  EXPECT_EQ(end.valid_end, whole.size());
  EXPECT_EQ(end.last_lsn, 10u);
}

TEST(LogReaderTest, GarbageTailWithNoValidRecordAfterItIsTorn) {
  ScratchDir dir;
  WriteLog(dir.path(), 10);
  std::string path = LogFilePaths(dir.path()).back();
  std::string whole = ReadAll(path);
  std::mt19937 rng(7);
  std::string garbage(3000, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  WriteAll(path, whole + garbage);
  std::vector<OwnedRecord> forward;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
  EXPECT_EQ(forward.size(), 10u);
}

TEST(LogReaderTest, FlippedByteInAMiddleRecordIsCorruptionNamingFileAndOffset) {
  ScratchDir dir;
  WriteLog(dir.path(), 10);
  std::string path = LogFilePaths(dir.path()).back();
  std::string whole = ReadAll(path);
  std::vector<uint64_t> offsets = RecordOffsets(dir.path());
  uint64_t begin = offsets[4], end = offsets[5];
  // Every byte of record 5, including both length fields and the checksum.
  for (uint64_t i = begin; i < end; ++i) {
    SCOPED_TRACE(StrCat("flipped byte ", i));
    std::string damaged = whole;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
    WriteAll(path, damaged);
    std::vector<OwnedRecord> records;
    ExpectCorruptionAt(ReadForward(dir.path(), 0, &records), path, begin);
    EXPECT_EQ(records.size(), 4u);
    // Backward, the damage is met as the record ending where record 6 starts.
    Status s = ReadBackward(dir.path(), &records);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.message().find(path), std::string_view::npos) << s.ToString();
    // Version 4: the end is found by a scan of the last file (the records after a hole may
    // be a torn tail), which meets the damage.
    LogEnd log_end;
    s = FindEnd(dir.path(), &log_end);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  }
}

TEST(LogReaderTest, DamageInAFileBeforeTheLastIsCorruptionEvenAtItsEnd) {
  ScratchDir dir;
  WriteLog(dir.path(), 400, /*max_file_bytes=*/4096);
  std::vector<std::string> paths = LogFilePaths(dir.path());
  ASSERT_GE(paths.size(), 3u);
  std::string first = ReadAll(paths[0]);
  // The very last byte of the first file: the trailing length of its last record.
  std::string damaged = first;
  damaged.back() = static_cast<char>(damaged.back() ^ 1);
  WriteAll(paths[0], damaged);
  std::vector<OwnedRecord> records;
  Status s = ReadForward(dir.path(), 0, &records);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(paths[0]), std::string_view::npos) << s.ToString();
  s = ReadBackward(dir.path(), &records);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // Cut short instead of damaged: the same.
  WriteAll(paths[0], std::string_view(first).substr(0, first.size() - 3));
  EXPECT_TRUE(ReadForward(dir.path(), 0, &records).IsCorruption());
}

TEST(LogReaderTest, MissingMiddleFileIsAnLsnGap) {
  ScratchDir dir;
  WriteLog(dir.path(), 400, /*max_file_bytes=*/4096);
  std::vector<std::string> paths = LogFilePaths(dir.path());
  ASSERT_GE(paths.size(), 3u);
  ASSERT_TRUE(RemoveFile(paths[1]).ok());
  std::vector<OwnedRecord> records;
  Status s = ReadForward(dir.path(), 0, &records);
  ExpectCorruptionAt(s, paths[2], 0);
  EXPECT_NE(s.message().find("previous file ends at LSN"), std::string_view::npos);
  EXPECT_TRUE(ReadBackward(dir.path(), &records).IsCorruption());
}

TEST(LogReaderTest, LsnGapInsideAFileIsCorruption) {
  ScratchDir dir;
  std::string log = EncodeLogFileHeader(1);
  std::string payload;
  EncodeLogPayload(LogRecord::CommitTxn(1), &payload);
  for (Lsn lsn : {1, 2, 4, 5}) AppendLogRecordFrame(lsn, LogRecordType::kCommitTxn, payload, &log);
  std::string path = dir.path() + "/" + LogFileName(1);
  WriteAll(path, log);
  std::vector<OwnedRecord> records;
  Status s = ReadForward(dir.path(), 0, &records);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("expected LSN 3, found LSN 4"), std::string_view::npos)
      << s.ToString();
  EXPECT_EQ(records.size(), 2u);
  s = ReadBackward(dir.path(), &records);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

// A frame whose checksum holds but whose compressed payload does not decode (a writer bug,
// not a torn write) is corruption at that frame, never a crash or a guessed record.
TEST(LogReaderTest, CompressedPayloadThatDoesNotDecodeIsCorruptionAtItsFrame) {
  ScratchDir dir;
  std::string log = EncodeLogFileHeader(1);
  std::string payload;
  EncodeLogPayload(LogRecord::Insert(1, 1, "k", std::string(500, 'v')), &payload);
  std::string packed;
  ASSERT_TRUE(CompressLogPayload(payload, &packed));
  const auto compressed_insert = static_cast<LogRecordType>(
      static_cast<uint8_t>(LogRecordType::kInsert) | kCompressedRecordFlag);
  AppendLogRecordFrame(1, compressed_insert, packed, &log);
  const uint64_t bad_offset = log.size();
  AppendLogRecordFrame(2, compressed_insert, packed.substr(0, packed.size() - 3), &log);
  AppendLogRecordFrame(3, compressed_insert, packed, &log);
  std::string path = dir.path() + "/" + LogFileName(1);
  WriteAll(path, log);
  std::vector<OwnedRecord> records;
  Status s = ReadForward(dir.path(), 0, &records);
  ExpectCorruptionAt(s, path, bad_offset);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, std::string(500, 'v'));
  EXPECT_TRUE(ReadBackward(dir.path(), &records).IsCorruption());
}

// Logs written before payload compression (format version 1) still read; a writer leaves
// such a file as it is and puts its (possibly compressed) records in a new file.
TEST(LogReaderTest, VersionOneLogReadsAndTheWriterContinuesInANewFile) {
  ScratchDir dir;
  std::string log = HeaderOfVersion(1);
  for (Lsn lsn = 1; lsn <= 3; ++lsn) {
    std::string payload;
    EncodeLogPayload(LogRecord::Insert(1, 1, std::to_string(lsn), std::string(300, 'w')), &payload);
    AppendLogRecordFrame(lsn, LogRecordType::kInsert, payload, &log);
  }
  WriteAll(dir.path() + "/" + LogFileName(1), log);
  std::vector<OwnedRecord> records;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &records).ok());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].key, "3");
  EXPECT_EQ(records[2].value, std::string(300, 'w'));
  {
    std::unique_ptr<LogWriter> writer;
    ASSERT_TRUE(LogWriter::Open(dir.path(), {}, &writer).ok());
    Lsn lsn;
    ASSERT_TRUE(writer->Append(LogRecord::Insert(1, 1, "4", std::string(300, 'w')), &lsn).ok());
    EXPECT_EQ(lsn, 4u);
    ASSERT_TRUE(writer->Sync(lsn).ok());
  }
  ASSERT_TRUE(ReadForward(dir.path(), 0, &records).ok());
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[3].value, std::string(300, 'w'));
  EXPECT_EQ(records[2].path, dir.path() + "/" + LogFileName(1));
  EXPECT_EQ(records[3].path, dir.path() + "/" + LogFileName(4));
  EXPECT_EQ(ReadAll(records[2].path), log);
}

TEST(LogReaderTest, CompressedRecordInAVersionOneFileIsCorruption) {
  ScratchDir dir;
  std::string log = HeaderOfVersion(1);
  std::string payload;
  EncodeLogPayload(LogRecord::Insert(1, 1, "k", std::string(500, 'v')), &payload);
  std::string packed;
  ASSERT_TRUE(CompressLogPayload(payload, &packed));
  AppendLogRecordFrame(1, LogRecordType::kInsert, payload, &log);
  const uint64_t bad_offset = log.size();
  AppendLogRecordFrame(2,
                       static_cast<LogRecordType>(static_cast<uint8_t>(LogRecordType::kInsert) |
                                                  kCompressedRecordFlag),
                       packed, &log);
  ExpectOneRecordThenCorruption(dir.path(), log, bad_offset, "version 1");
}

TEST(LogReaderTest, TornHeaderOfTheNewestFileEndsTheLogAtThePreviousFile) {
  ScratchDir dir;
  WriteLog(dir.path(), 400, /*max_file_bytes=*/4096);
  std::vector<std::string> paths = LogFilePaths(dir.path());
  ASSERT_GE(paths.size(), 3u);
  ASSERT_TRUE(RemoveFile(paths.back()).ok());
  paths.pop_back();
  std::vector<OwnedRecord> before;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &before).ok());
  Lsn next = before.back().record.lsn + 1;
  std::string newest = dir.path() + "/" + LogFileName(next);
  std::string header = EncodeLogFileHeader(next);

  for (std::string torn :
       {std::string(), header.substr(0, 10), std::string(32, '\0'), std::string(4096, '\0'),
        header.substr(0, 20) + std::string(100, '\0')}) {
    SCOPED_TRACE(StrCat("torn header of ", torn.size(), " bytes"));
    WriteAll(newest, torn);
    std::vector<OwnedRecord> records;
    ASSERT_TRUE(ReadForward(dir.path(), 0, &records).ok());
    EXPECT_EQ(records.size(), before.size());
    ASSERT_TRUE(ReadBackward(dir.path(), &records).ok());
    EXPECT_EQ(records.size(), before.size());
    LogEnd end;
    ASSERT_TRUE(FindEnd(dir.path(), &end).ok());
    EXPECT_FALSE(end.header_valid);
    EXPECT_EQ(end.last_lsn, next - 1);
  }
  // The writer rewrites the header and continues in that file.
  {
    std::unique_ptr<LogWriter> writer;
    ASSERT_TRUE(LogWriter::Open(dir.path(), {}, &writer).ok());
    Lsn lsn;
    ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(1), &lsn).ok());
    EXPECT_EQ(lsn, next);
    ASSERT_TRUE(writer->Sync(lsn).ok());
  }
  std::vector<OwnedRecord> after;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &after).ok());
  ASSERT_EQ(after.size(), before.size() + 1);
  EXPECT_EQ(after.back().path, newest);
}

TEST(LogReaderTest, DamagedHeaderIsCorruptionUnlessItIsATornNewestFile) {
  ScratchDir dir;
  WriteLog(dir.path(), 400, /*max_file_bytes=*/4096);
  std::vector<std::string> paths = LogFilePaths(dir.path());
  ASSERT_GE(paths.size(), 3u);
  std::vector<OwnedRecord> records;
  // A middle file.
  std::string middle = ReadAll(paths[1]);
  std::string damaged = middle;
  damaged[3] ^= 1;
  WriteAll(paths[1], damaged);
  ExpectCorruptionAt(ReadForward(dir.path(), 0, &records), paths[1], 0);
  WriteAll(paths[1], middle);
  // The newest file, with records after the damaged header.
  std::string last = ReadAll(paths.back());
  damaged = last;
  damaged[3] ^= 1;
  WriteAll(paths.back(), damaged);
  ExpectCorruptionAt(ReadForward(dir.path(), 0, &records), paths.back(), 0);
  LogEnd end;
  EXPECT_TRUE(FindEnd(dir.path(), &end).IsCorruption());
  WriteAll(paths.back(), last);
  ASSERT_TRUE(ReadForward(dir.path(), 0, &records).ok());
  EXPECT_EQ(records.size(), 400u);
}

TEST(LogReaderTest, HeaderLsnThatDisagreesWithTheFileNameIsCorruption) {
  ScratchDir dir;
  WriteLog(dir.path(), 3);
  std::string path = LogFilePaths(dir.path()).back();
  ASSERT_TRUE(RenameFile(path, dir.path() + "/" + LogFileName(2)).ok());
  std::vector<OwnedRecord> records;
  Status s = ReadForward(dir.path(), 0, &records);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("file name says 2"), std::string_view::npos) << s.ToString();
}

TEST(LogReaderTest, OtherFilesInTheDirectoryAreIgnored) {
  ScratchDir dir;
  WriteLog(dir.path(), 3);
  WriteAll(dir.path() + "/LOCK", "");
  WriteAll(dir.path() + "/users.ft", "not a log");
  WriteAll(dir.path() + "/notes.log", "not a log either");
  std::vector<OwnedRecord> records;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &records).ok());
  EXPECT_EQ(records.size(), 3u);
}

TEST(LogReaderTest, NextAndPrevCanBeMixed) {
  ScratchDir dir;
  WriteLog(dir.path(), 300, /*max_file_bytes=*/2048);
  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(dir.path(), &reader).ok());
  ASSERT_TRUE(reader->SeekToLsn(150).ok());
  ASSERT_TRUE(reader->Valid());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(reader->Prev().ok());
  EXPECT_EQ(reader->record().lsn, 50u);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(reader->Next().ok());
  EXPECT_EQ(reader->record().lsn, 250u);
  ASSERT_TRUE(reader->SeekToLsn(1).ok());
  ASSERT_TRUE(reader->Prev().ok());
  EXPECT_FALSE(reader->Valid());
  ASSERT_TRUE(reader->SeekToLast().ok());
  EXPECT_EQ(reader->record().lsn, 300u);
  ASSERT_TRUE(reader->Next().ok());
  EXPECT_FALSE(reader->Valid());
}

// Random damage to the files of a rotated log: the reader never crashes, and whatever it
// returns without an error is a prefix of what was written, the same both ways.
TEST(LogReaderTest, RandomlyDamagedLogsNeverCrashAndYieldOnlyAPrefix) {
  ScratchDir source;
  WriteLog(source.path(), 150, /*max_file_bytes=*/2048);
  std::vector<OwnedRecord> original;
  ASSERT_TRUE(ReadForward(source.path(), 0, &original).ok());
  std::vector<std::string> names;
  std::vector<std::string> contents;
  for (const std::string& path : LogFilePaths(source.path())) {
    names.push_back(std::filesystem::path(path).filename().string());
    contents.push_back(ReadAll(path));
  }
  ScratchDir dir;
  std::mt19937_64 rng(12345);
  int clean = 0, corrupt = 0;
  for (int iteration = 0; iteration < 400; ++iteration) {
    std::vector<std::string> files = contents;
    int damages = 1 + static_cast<int>(rng() % 3);
    for (int d = 0; d < damages; ++d) {
      std::string& f = files[rng() % files.size()];
      if (f.empty()) continue;
      switch (rng() % 5) {
        case 0:  // flip bytes
          for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
            f[rng() % f.size()] = static_cast<char>(rng());
          }
          break;
        case 1:  // truncate
          f.resize(rng() % f.size());
          break;
        case 2: {  // zero a range
          size_t at = rng() % f.size();
          size_t n = std::min<size_t>(f.size() - at, rng() % 200);
          std::fill(f.begin() + static_cast<std::ptrdiff_t>(at),
                    f.begin() + static_cast<std::ptrdiff_t>(at + n), '\0');
          break;
        }
        case 3: {  // a huge length somewhere
          size_t at = rng() % f.size();
          if (at + 4 <= f.size()) EncodeFixed32(f.data() + at, static_cast<uint32_t>(rng()));
          break;
        }
        default:  // garbage appended
          for (int k = 0; k < static_cast<int>(rng() % 100); ++k)
            f.push_back(static_cast<char>(rng()));
          break;
      }
    }
    for (size_t i = 0; i < files.size(); ++i) WriteAll(dir.path() + "/" + names[i], files[i]);

    std::vector<OwnedRecord> forward, backward;
    Status fs = ReadForward(dir.path(), 0, &forward);
    Status bs = ReadBackward(dir.path(), &backward);
    LogEnd end;
    Status es = FindEnd(dir.path(), &end);
    for (const Status* s : {&fs, &bs, &es}) {
      EXPECT_TRUE(s->ok() || s->IsCorruption()) << s->ToString();
    }
    // Records returned before any error are the originals, in order from LSN 1.
    ASSERT_LE(forward.size(), original.size());
    for (size_t i = 0; i < forward.size(); ++i) {
      ASSERT_EQ(forward[i].record, original[i].record) << "iteration " << iteration;
    }
    if (fs.ok() && bs.ok()) {
      ASSERT_EQ(backward.size(), forward.size());
      for (size_t i = 0; i < forward.size(); ++i) {
        ASSERT_EQ(backward[i].record, forward[forward.size() - 1 - i].record);
      }
      ASSERT_TRUE(es.ok());
      EXPECT_EQ(end.last_lsn, forward.size());
      ++clean;
    } else {
      ++corrupt;
    }
  }
  EXPECT_GT(clean, 0);
  EXPECT_GT(corrupt, 0);
}

}  // namespace
}  // namespace fern
