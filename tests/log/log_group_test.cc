#include "log/log_group.h"

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "log/log_test_util.h"
#include "log/log_writer.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compression.h"

namespace fern {
namespace {

// fernbench's rows: a 16-digit key and 100 bytes whose halves repeat.
std::string BenchKey(uint64_t i) {
  std::string key = std::to_string(i);
  return std::string(16 - key.size(), '0') + key;
}
std::string BenchValue(uint64_t i) {
  std::string half;
  uint64_t x = i * 0x9E3779B97F4A7C15ULL + 1;
  while (half.size() < 50) {
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    half.push_back(static_cast<char>(x >> 56));
  }
  return half + half;
}

LogRecord BenchInsert(uint64_t i, const std::string& key, const std::string& value) {
  return LogRecord::AutocommitInsert(1, 1000 + i, key, value);
}

// Plain frames for `records`, LSNs from `first_lsn`, as LogWriter buffers them.
std::string PlainFrames(const std::vector<LogRecord>& records, Lsn first_lsn) {
  std::string frames;
  for (size_t i = 0; i < records.size(); ++i) {
    std::string payload;
    EncodeLogPayload(records[i], &payload);
    AppendLogRecordFrame(first_lsn + i, records[i].type, payload, &frames);
  }
  return frames;
}

struct Unpacked {
  std::vector<LogRecord> records;
  std::vector<Lsn> lsns;
  int groups = 0;
  int singles = 0;
  std::deque<std::string> storage;  // the decoded payloads the records point into (stable)
};

// Reads packed bytes back frame by frame, expanding groups.
void Unpack(std::string_view packed, Unpacked* out) {
  while (!packed.empty()) {
    LogRecordFrame frame;
    std::string reason;
    ASSERT_EQ(ParseLogRecordFrame(packed, &frame, &reason), FrameParseResult::kOk) << reason;
    packed.remove_prefix(frame.size);
    const auto type = static_cast<uint8_t>(frame.type);
    if (type == kRecordGroupFrameType) {
      ++out->groups;
      auto stream = std::make_unique<std::string>();
      std::vector<LogGroupRecord> members;
      ASSERT_TRUE(DecodeLogGroup(frame.payload, stream.get(), &members).ok());
      for (size_t i = 0; i < members.size(); ++i) {
        LogRecord r;
        out->storage.emplace_back(members[i].payload);
        ASSERT_TRUE(DecodeLogPayload(members[i].type, out->storage.back(), &r).ok());
        out->records.push_back(r);
        out->lsns.push_back(frame.lsn + i);
      }
    } else {
      ++out->singles;
      std::string payload(frame.payload);
      if ((type & kCompressedRecordFlag) != 0) {
        ASSERT_TRUE(UncompressLogPayload(frame.payload, &payload).ok());
      }
      out->storage.push_back(payload);
      LogRecord r;
      ASSERT_TRUE(DecodeLogPayload(static_cast<LogRecordType>(type & ~kCompressedRecordFlag),
                                   out->storage.back(), &r)
                      .ok());
      out->records.push_back(r);
      out->lsns.push_back(frame.lsn);
    }
  }
}

TEST(LogGroupTest, PackedFramesReadBackAsTheSameRecordsInOrder) {
  std::vector<std::string> keys, values;
  std::vector<LogRecord> records;
  for (int i = 0; i < 3000; ++i) {
    keys.push_back(BenchKey(i * 7919 % 3000));
    // Every 500th record carries a value too large to group; it splits the run.
    values.push_back(i % 500 == 250 ? std::string(kMaxGroupedPayload + 1, 'L') : BenchValue(i));
  }
  for (int i = 0; i < 3000; ++i) {
    records.push_back(i % 97 == 0 ? LogRecord::CommitTxn(i) : BenchInsert(i, keys[i], values[i]));
  }
  const std::string frames = PlainFrames(records, 41);
  std::string packed;
  PackLogFrames(frames, &packed);
  Unpacked back;
  Unpack(packed, &back);
  ASSERT_EQ(back.records.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    LogRecord expected = records[i];
    EXPECT_EQ(back.records[i], expected) << i;
    EXPECT_EQ(back.lsns[i], 41 + i);
  }
  EXPECT_GE(back.groups, 7);   // at least one per run between the large values
  EXPECT_EQ(back.singles, 6);  // the large values
}

TEST(LogGroupTest, GroupsShrinkRowsOfBenchmarkShape) {
  std::vector<std::string> keys, values;
  std::vector<LogRecord> records;
  for (int i = 0; i < 10000; ++i) {
    keys.push_back(BenchKey((i * 2654435761ULL + 12345) % 2000000));
    values.push_back(BenchValue(i));
  }
  for (int i = 0; i < 10000; ++i) records.push_back(BenchInsert(i, keys[i], values[i]));
  const std::string frames = PlainFrames(records, 1);
  std::string packed;
  PackLogFrames(frames, &packed);
  // Plain frames take 147 bytes per put; each compressed alone ~95.
  EXPECT_LT(packed.size(), records.size() * 75) << packed.size();
  Unpacked back;
  Unpack(packed, &back);
  EXPECT_EQ(back.records.size(), records.size());
  EXPECT_EQ(back.singles, 0);
}

TEST(LogGroupTest, FewRecordsStaySingleFrames) {
  std::vector<std::string> keys, values;
  std::vector<LogRecord> records;
  for (int i = 0; i < 4; ++i) {
    keys.push_back(BenchKey(i));
    values.push_back(BenchValue(i));
  }
  for (int i = 0; i < 4; ++i) records.push_back(BenchInsert(i, keys[i], values[i]));
  std::string packed;
  PackLogFrames(PlainFrames(records, 9), &packed);
  Unpacked back;
  Unpack(packed, &back);
  EXPECT_EQ(back.groups, 0);
  EXPECT_EQ(back.singles, 4);
  ASSERT_EQ(back.records.size(), 4u);
  EXPECT_EQ(back.records[3].value, values[3]);
  EXPECT_EQ(back.lsns[3], 12u);
}

// A packer kept from one write-out to the next (as LogWriter keeps one) writes exactly what a
// fresh one would: its scratch from a bigger or different input never leaks into the next.
TEST(LogGroupTest, AReusedPackerWritesWhatAFreshOneWrites) {
  std::vector<std::string> keys, values;
  for (int i = 0; i < 6000; ++i) {
    keys.push_back(BenchKey((i * 2654435761ULL + 12345) % 2000000));
    values.push_back(BenchValue(i));
  }
  auto inserts = [&](int from, int to) {
    std::vector<LogRecord> records;
    for (int i = from; i < to; ++i) records.push_back(BenchInsert(i, keys[i], values[i]));
    return records;
  };
  std::vector<std::string> inputs;
  inputs.push_back(PlainFrames(inserts(0, 6000), 1));  // several groups
  inputs.push_back(PlainFrames(inserts(0, 3), 7001));  // a run too small to group
  std::vector<LogRecord> mixed = inserts(100, 140);
  const std::string huge(3 * LogFramePacker::kKeptScratchBytes, 'h');
  mixed.insert(mixed.begin() + 20, LogRecord::AutocommitInsert(1, 5, "big", huge));
  inputs.push_back(PlainFrames(mixed, 8001));              // runs split by a huge record
  inputs.push_back(PlainFrames(inserts(200, 202), 9001));  // again too small, after it
  inputs.push_back(PlainFrames(inserts(300, 2300), 10001));
  LogFramePacker packer;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string reused = "prefix";  // Pack appends
    packer.Pack(inputs[i], &reused);
    std::string fresh = "prefix";
    PackLogFrames(inputs[i], &fresh);
    EXPECT_EQ(reused, fresh) << "input " << i;
  }
}

// A group payload for `stream`, with `count` claimed.
std::string GroupPayload(uint32_t count, std::string_view stream) {
  std::string payload;
  PutVarint32(&payload, count);
  EXPECT_TRUE(CompressPartition(Compression::kZstd, 0, stream, &payload).ok());
  return payload;
}

std::string StreamOf(int records, uint8_t type = static_cast<uint8_t>(LogRecordType::kCommitTxn)) {
  std::string stream;
  for (int i = 0; i < records; ++i) {
    std::string payload;
    EncodeLogPayload(LogRecord::CommitTxn(100 + i), &payload);
    stream.push_back(static_cast<char>(type));
    PutVarint32(&stream, static_cast<uint32_t>(payload.size()));
    stream += payload;
  }
  return stream;
}

void ExpectGroupCorruption(std::string_view payload, std::string_view says) {
  std::string stream;
  std::vector<LogGroupRecord> records;
  Status s = DecodeLogGroup(payload, &stream, &records);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(says), std::string_view::npos) << s.ToString();
}

TEST(LogGroupTest, MalformedGroupsAreCorruption) {
  std::string stream;
  std::vector<LogGroupRecord> records;
  ASSERT_TRUE(DecodeLogGroup(GroupPayload(5, StreamOf(5)), &stream, &records).ok());
  ASSERT_EQ(records.size(), 5u);

  ExpectGroupCorruption(GroupPayload(6, StreamOf(5)), "5 records where the count says 6");
  ExpectGroupCorruption(GroupPayload(4, StreamOf(5)), "more than 4 records");
  ExpectGroupCorruption(GroupPayload(1, StreamOf(1)), "outside 2..");
  ExpectGroupCorruption(GroupPayload(kMaxLogGroupRecords + 1, StreamOf(2)), "outside 2..");
  ExpectGroupCorruption(GroupPayload(2, StreamOf(2, 0)), "has type 0");
  ExpectGroupCorruption(GroupPayload(2, StreamOf(2, kRecordGroupFrameType)), "has type 16");
  ExpectGroupCorruption(
      GroupPayload(
          2, StreamOf(2, static_cast<uint8_t>(LogRecordType::kCommitTxn) | kCompressedRecordFlag)),
      "has type");
  std::string cut = StreamOf(3);
  cut.pop_back();
  ExpectGroupCorruption(GroupPayload(3, cut), "cut short");
  ExpectGroupCorruption("", "no record count");

  // A stream declared beyond the limit is refused before anything is allocated.
  std::string huge;
  PutVarint32(&huge, 2);
  huge.push_back(static_cast<char>(Compression::kZstd));
  PutVarint64(&huge, uint64_t{kMaxLogGroupRawBytes} + 1);
  huge += "xxxx";
  ExpectGroupCorruption(huge, "exceeds the limit");
  std::string other_codec;
  PutVarint32(&other_codec, 2);
  ASSERT_TRUE(CompressPartition(Compression::kSnappy, 0, StreamOf(2), &other_codec).ok());
  ExpectGroupCorruption(other_codec, "not zstd");

  // Every truncation of a valid payload fails cleanly.
  const std::string good = GroupPayload(5, StreamOf(5));
  for (size_t n = 0; n < good.size(); ++n) {
    Status s = DecodeLogGroup(std::string_view(good).substr(0, n), &stream, &records);
    EXPECT_TRUE(s.IsCorruption()) << n;
  }
}

TEST(LogGroupTest, AGroupInAVersionTwoFileIsCorruption) {
  ScratchDir dir;
  std::string log = HeaderOfVersion(2);
  std::string payload;
  EncodeLogPayload(LogRecord::CommitTxn(7), &payload);
  AppendLogRecordFrame(1, LogRecordType::kCommitTxn, payload, &log);
  const uint64_t bad_offset = log.size();
  AppendLogRecordFrame(2, static_cast<LogRecordType>(kRecordGroupFrameType),
                       GroupPayload(3, StreamOf(3)), &log);
  ExpectOneRecordThenCorruption(dir.path(), log, bad_offset, "version 2");
}

// What a writer leaves when commits do not sync: groups. Reading seeks into them, walks
// across their edges both ways, and a group torn by a crash is a torn tail: the writer
// reopens after the last whole frame.
TEST(LogGroupTest, WriterGroupsReadBothWaysAndATornGroupEndsTheLog) {
  ScratchDir dir;
  LogWriterOptions options;
  options.buffer_bytes = 16 << 10;
  constexpr int kRecords = 2000;
  std::vector<std::string> keys, values;
  for (int i = 0; i < kRecords; ++i) {
    keys.push_back(BenchKey(i));
    values.push_back(BenchValue(i));
  }
  {
    std::unique_ptr<LogWriter> writer;
    ASSERT_TRUE(LogWriter::Open(dir.path(), options, &writer).ok());
    for (int i = 0; i < kRecords; ++i) {
      Lsn lsn;
      ASSERT_TRUE(writer->Append(BenchInsert(i, keys[i], values[i]), &lsn).ok());
      ASSERT_EQ(lsn, static_cast<Lsn>(i + 1));
    }
    ASSERT_TRUE(writer->Sync(writer->last_lsn()).ok());
    const LogWriterStats stats = writer->stats();
    EXPECT_LT(stats.bytes_written, stats.bytes / 2 + stats.bytes / 20) << stats.bytes;
  }
  std::vector<OwnedRecord> forward;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
  ASSERT_EQ(forward.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(forward[i].record.lsn, static_cast<Lsn>(i + 1));
    EXPECT_EQ(forward[i].key, keys[i]);
    EXPECT_EQ(forward[i].value, values[i]);
  }
  std::vector<OwnedRecord> backward;
  ASSERT_TRUE(ReadBackward(dir.path(), &backward).ok());
  ASSERT_EQ(backward.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i)
    EXPECT_EQ(backward[i].record, forward[kRecords - 1 - i].record);

  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(dir.path(), &reader).ok());
  for (Lsn lsn : {Lsn{1}, Lsn{2}, Lsn{777}, Lsn{kRecords}}) {
    ASSERT_TRUE(reader->SeekToLsn(lsn).ok());
    ASSERT_TRUE(reader->Valid());
    EXPECT_EQ(reader->record().lsn, lsn);
    EXPECT_EQ(reader->record().key, keys[lsn - 1]);
  }

  // Tear the last group (the final sync may have written a few single frames after it):
  // its records and everything after go, the ones before stay, and appends continue.
  size_t first = kRecords - 1;
  while (first > 0 && forward[first - 1].offset != forward[first].offset) --first;
  ASSERT_GT(first, 0u);
  while (first > 0 && forward[first - 1].offset == forward[first].offset) --first;
  const OwnedRecord& last = forward[first];
  const uint64_t group_start = last.offset;
  const Lsn first_torn = last.record.lsn;
  ASSERT_GT(first_torn, 1u);
  ASSERT_EQ(forward[first + 1].offset, group_start);  // a group
  std::string bytes = ReadAll(last.path);
  WriteAll(last.path, bytes.substr(0, group_start + 100));
  {
    std::unique_ptr<LogReader> end_reader;
    ASSERT_TRUE(LogReader::Open(dir.path(), &end_reader).ok());
    LogEnd end;
    ASSERT_TRUE(end_reader->FindEnd(&end).ok());
    EXPECT_EQ(end.last_lsn, first_torn - 1);
    EXPECT_EQ(end.valid_end, group_start);
    std::unique_ptr<LogWriter> writer;
    ASSERT_TRUE(LogWriter::Open(dir.path(), options, &writer).ok());
    Lsn lsn;
    ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(5), &lsn).ok());
    EXPECT_EQ(lsn, first_torn);
    ASSERT_TRUE(writer->Sync(lsn).ok());
  }
  ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
  ASSERT_EQ(forward.size(), first_torn);
  EXPECT_EQ(forward.back().record.type, LogRecordType::kCommitTxn);
  EXPECT_EQ(forward.back().record.txn_id, 5u);
}

}  // namespace
}  // namespace fern
