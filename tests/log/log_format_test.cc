#include "log/log_format.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "log/log_test_util.h"
#include "util/checksum.h"
#include "util/coding.h"

namespace fern {
namespace {

const std::string kBinary("a\0b\xff\x80", 5);
const std::string kLongValue(1000, 'v');

// One record of every type, with ids that need multi-byte varints and awkward strings.
std::vector<LogRecord> OneOfEachType() {
  return {
      LogRecord::BeginTxn(1, 0),
      LogRecord::BeginTxn(UINT64_MAX, 123456789),
      LogRecord::CommitTxn(300),
      LogRecord::AbortTxn(UINT64_MAX),
      LogRecord::PrepareTxn(77, "xid-\x01-gtrid"),
      LogRecord::PrepareTxn(78, ""),
      LogRecord::Insert(3, 1000, "key", "value"),
      LogRecord::Insert(UINT32_MAX, 1, "", ""),
      LogRecord::Insert(0, 2, kBinary, kBinary),
      LogRecord::Delete(4, 1001, "gone"),
      LogRecord::Delete(4, 1001, ""),
      LogRecord::Update(5, 1002, "counter", "+1"),
      LogRecord::Update(5, 1002, kBinary, ""),
      LogRecord::UpdateBroadcast(6, 1003, "set all"),
      LogRecord::TableCreate(7, "users", "users_7.ft"),
      LogRecord::TableOpen(8, "orders", "orders_8.ft"),
      LogRecord::TableDrop(9, "old"),
      LogRecord::BeginCheckpoint(10),
      LogRecord::EndCheckpoint(10, 99999),
      LogRecord::AutocommitInsert(11, 2000, "k", kLongValue),
      LogRecord::AutocommitDelete(11, 2001, "k"),
      LogRecord::TableLock(12, 2002),
  };
}

TEST(LogFormatTest, EveryRecordTypeRoundTripsThroughPayload) {
  std::vector<LogRecord> records = OneOfEachType();
  for (uint8_t t = 1; t <= kMaxLogRecordType; ++t) {
    if (!IsValidLogRecordType(t)) continue;  // the frame types 16 and 17
    bool covered = false;
    for (const LogRecord& r : records) covered |= static_cast<uint8_t>(r.type) == t;
    EXPECT_TRUE(covered) << "no sample of type " << int{t};
  }
  for (const LogRecord& r : records) {
    std::string payload;
    EncodeLogPayload(r, &payload);
    LogRecord decoded;
    Status s = DecodeLogPayload(r.type, payload, &decoded);
    ASSERT_TRUE(s.ok()) << LogRecordTypeName(r.type) << ": " << s.ToString();
    EXPECT_EQ(decoded, r) << LogRecordTypeName(r.type);
  }
}

TEST(LogFormatTest, PayloadSizeBoundCoversEveryTypeWithLargestIntegers) {
  std::vector<LogRecord> records = OneOfEachType();
  const std::string key(300, 'k');  // a two-byte length prefix
  records.push_back(LogRecord::BeginTxn(UINT64_MAX, UINT64_MAX));
  records.push_back(LogRecord::PrepareTxn(UINT64_MAX, "x"));
  records.push_back(LogRecord::Insert(UINT32_MAX, UINT64_MAX, key, kLongValue));
  records.push_back(LogRecord::Update(UINT32_MAX, UINT64_MAX, key, kLongValue));
  records.push_back(LogRecord::UpdateBroadcast(UINT32_MAX, UINT64_MAX, kLongValue));
  records.push_back(LogRecord::TableCreate(UINT32_MAX, key, "f.ft"));
  records.push_back(LogRecord::EndCheckpoint(UINT64_MAX, UINT64_MAX));
  records.push_back(LogRecord::TableLock(UINT32_MAX, UINT64_MAX));
  for (const LogRecord& r : records) {
    std::string payload;
    EncodeLogPayload(r, &payload);
    EXPECT_LE(payload.size(), LogPayloadSizeBound(r)) << LogRecordTypeName(r.type);
  }
}

TEST(LogFormatTest, EveryRecordTypeRoundTripsThroughFrameBothWays) {
  std::string log;
  std::vector<size_t> starts;
  Lsn lsn = 1;
  for (const LogRecord& r : OneOfEachType()) {
    std::string payload;
    EncodeLogPayload(r, &payload);
    starts.push_back(log.size());
    AppendLogRecordFrame(lsn++, r.type, payload, &log);
  }
  // Forward.
  std::string_view rest = log;
  lsn = 1;
  for (const LogRecord& r : OneOfEachType()) {
    LogRecordFrame frame;
    ASSERT_EQ(ParseLogRecordFrame(rest, &frame, nullptr), FrameParseResult::kOk);
    EXPECT_EQ(frame.lsn, lsn++);
    EXPECT_EQ(frame.type, r.type);
    LogRecord decoded;
    ASSERT_TRUE(DecodeLogPayload(frame.type, frame.payload, &decoded).ok());
    EXPECT_EQ(decoded, r);
    rest.remove_prefix(frame.size);
  }
  EXPECT_TRUE(rest.empty());
  // Backward.
  std::vector<LogRecord> records = OneOfEachType();
  std::string_view prefix = log;
  for (size_t i = records.size(); i-- > 0;) {
    LogRecordFrame frame;
    ASSERT_EQ(ParseLogRecordFrameBackward(prefix, &frame, nullptr), FrameParseResult::kOk);
    EXPECT_EQ(frame.lsn, i + 1);
    EXPECT_EQ(prefix.size() - frame.size, starts[i]);
    prefix.remove_suffix(frame.size);
  }
  EXPECT_TRUE(prefix.empty());
}

TEST(LogFormatTest, AutocommitPutCostsKeyPlusValuePlusAtMost30Bytes) {
  std::string payload;
  EncodeLogPayload(
      LogRecord::AutocommitInsert(12, 1'000'000, std::string(16, 'k'), std::string(100, 'v')),
      &payload);
  size_t record_size = payload.size() + kRecordOverhead;
  EXPECT_LE(record_size, 16 + 100 + 30u);
}

TEST(LogFormatTest, InPlaceFramingMatchesAppendedFraming) {
  LogRecord r = LogRecord::Update(1, 2, "k", "x");
  std::string payload;
  EncodeLogPayload(r, &payload);
  std::string a, b = "prefix";
  AppendLogRecordFrame(9, r.type, payload, &a);
  size_t start = BeginLogRecordFrame(9, r.type, &b);
  EncodeLogPayload(r, &b);
  FinishLogRecordFrame(start, &b);
  EXPECT_EQ(b.substr(6), a);
}

TEST(LogFormatTest, DecodeRejectsTruncatedPayloadAndTrailingBytes) {
  LogRecord r;
  EXPECT_TRUE(DecodeLogPayload(LogRecordType::kBeginTxn, "", &r).IsCorruption());
  std::string payload;
  EncodeLogPayload(LogRecord::EndCheckpoint(5, 6), &payload);
  EXPECT_TRUE(DecodeLogPayload(LogRecordType::kEndCheckpoint, payload + "x", &r).IsCorruption());
  // A key length that runs past the payload.
  std::string insert;
  PutVarint32(&insert, 1);
  PutVarint64(&insert, 2);
  PutVarint32(&insert, 1000);
  insert += "short";
  Status s = DecodeLogPayload(LogRecordType::kInsert, insert, &r);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("insert"), std::string_view::npos) << s.ToString();
  EXPECT_TRUE(DecodeLogPayload(LogRecordType::kInvalid, "", &r).IsCorruption());
  EXPECT_TRUE(DecodeLogPayload(static_cast<LogRecordType>(200), "", &r).IsCorruption());
}

TEST(LogFormatTest, ParseRejectsDamagedFrames) {
  std::string frame;
  AppendLogRecordFrame(5, LogRecordType::kCommitTxn, "\x07", &frame);
  LogRecordFrame parsed;
  std::string reason;
  ASSERT_EQ(ParseLogRecordFrame(frame, &parsed, &reason), FrameParseResult::kOk);

  // Every single-bit flip is caught.
  for (size_t i = 0; i < frame.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = frame;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      EXPECT_NE(ParseLogRecordFrame(damaged, &parsed, &reason), FrameParseResult::kOk)
          << "byte " << i << " bit " << bit;
      EXPECT_NE(ParseLogRecordFrameBackward(damaged, &parsed, &reason), FrameParseResult::kOk)
          << "byte " << i << " bit " << bit;
    }
  }
  // Every cut is Truncated.
  for (size_t n = 0; n < frame.size(); ++n) {
    EXPECT_EQ(ParseLogRecordFrame(std::string_view(frame).substr(0, n), &parsed, &reason),
              FrameParseResult::kTruncated)
        << n;
  }
  // A huge length is Bad, not a reason to wait for (or allocate) more bytes.
  std::string huge = frame;
  EncodeFixed32(huge.data(), 0xfffffff0u);
  EXPECT_EQ(ParseLogRecordFrame(huge, &parsed, &reason), FrameParseResult::kBad);
  EXPECT_NE(reason.find("exceeds"), std::string::npos) << reason;
  // Zero bytes are not a record.
  EXPECT_EQ(ParseLogRecordFrame(std::string(64, '\0'), &parsed, &reason), FrameParseResult::kBad);
}

TEST(LogFormatTest, ParseRejectsLsnZeroAndUnknownTypeEvenWithGoodChecksum) {
  std::string frame;
  AppendLogRecordFrame(0, LogRecordType::kCommitTxn, "\x01", &frame);
  LogRecordFrame parsed;
  std::string reason;
  EXPECT_EQ(ParseLogRecordFrame(frame, &parsed, &reason), FrameParseResult::kBad);
  frame.clear();
  AppendLogRecordFrame(1, static_cast<LogRecordType>(99), "\x01", &frame);
  EXPECT_EQ(ParseLogRecordFrame(frame, &parsed, &reason), FrameParseResult::kBad);
  EXPECT_NE(reason.find("unknown record type 99"), std::string::npos) << reason;
}

TEST(LogFormatTest, FileNamesCarrySixteenDigitFirstLsn) {
  EXPECT_EQ(LogFileName(1), "0000000000000001.log");
  EXPECT_EQ(LogFileName(kMaxLsn), "9999999999999999.log");
  Lsn lsn = 0;
  EXPECT_TRUE(ParseLogFileName("0000000000000042.log", &lsn));
  EXPECT_EQ(lsn, 42u);
  EXPECT_FALSE(ParseLogFileName("000000000000042.log", &lsn));
  EXPECT_FALSE(ParseLogFileName("00000000000000042.log", &lsn));
  EXPECT_FALSE(ParseLogFileName("000000000000004x.log", &lsn));
  EXPECT_FALSE(ParseLogFileName("0000000000000042.ft", &lsn));
  EXPECT_FALSE(ParseLogFileName("LOCK", &lsn));
}

TEST(LogFormatTest, FileHeaderRoundTripsAndRejectsDamage) {
  std::string header = EncodeLogFileHeader(1234);
  ASSERT_EQ(header.size(), kLogFileHeaderSize);
  Lsn lsn = 0;
  ASSERT_TRUE(DecodeLogFileHeader(header, &lsn).ok());
  EXPECT_EQ(lsn, 1234u);
  for (size_t i = 0; i < header.size(); ++i) {
    std::string damaged = header;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x10);
    EXPECT_FALSE(DecodeLogFileHeader(damaged, &lsn).ok()) << i;
  }
  EXPECT_TRUE(DecodeLogFileHeader(header.substr(0, 31), &lsn).IsCorruption());
}

TEST(LogFormatTest, HeaderOfAVersionOutsideTheReadableRangeIsNotSupported) {
  Lsn lsn;
  for (uint32_t version : {uint32_t{0}, kLogFormatVersion + 1, uint32_t{1000}}) {
    Status s = DecodeLogFileHeader(HeaderOfVersion(version), &lsn);
    EXPECT_TRUE(s.IsNotSupported()) << version << ": " << s.ToString();
  }
  for (uint32_t version = kOldestLogFormatVersion; version <= kLogFormatVersion; ++version) {
    EXPECT_TRUE(DecodeLogFileHeader(HeaderOfVersion(version), &lsn).ok()) << version;
    EXPECT_EQ(lsn, 1u);
  }
}

TEST(LogFormatTest, CompressiblePayloadsRoundTripThroughSnappy) {
  const std::string value(4000, 'v');
  LogRecord record = LogRecord::Insert(7, 3, "key", value);
  std::string raw;
  EncodeLogPayload(record, &raw);
  std::string packed;
  ASSERT_TRUE(CompressLogPayload(raw, &packed));
  EXPECT_LT(packed.size(), raw.size() / 4);
  std::string restored;
  ASSERT_TRUE(UncompressLogPayload(packed, &restored).ok());
  EXPECT_EQ(restored, raw);
}

TEST(LogFormatTest, SmallOrIncompressiblePayloadsAreStoredAsTheyAre) {
  std::string packed;
  EXPECT_FALSE(CompressLogPayload(std::string(kMinCompressedLogPayload - 1, 'a'), &packed));
  std::mt19937_64 rng(7);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  EXPECT_FALSE(CompressLogPayload(noise, &packed));
}

TEST(LogFormatTest, DamagedOrOverlongCompressedPayloadIsCorruption) {
  std::string packed;
  ASSERT_TRUE(CompressLogPayload(std::string(1000, 'z'), &packed));
  std::string out;
  // Cut short: the snappy stream ends early.
  EXPECT_TRUE(UncompressLogPayload(std::string_view(packed).substr(0, packed.size() / 2), &out)
                  .IsCorruption());
  EXPECT_TRUE(UncompressLogPayload("", &out).IsCorruption());
  // A length header claiming more than any payload may hold is refused before allocating.
  std::string overlong;
  uint64_t claimed = uint64_t{kMaxLogPayloadSize} + 1;
  while (claimed >= 0x80) {
    overlong.push_back(static_cast<char>((claimed & 0x7f) | 0x80));
    claimed >>= 7;
  }
  overlong.push_back(static_cast<char>(claimed));
  overlong += packed.substr(2);
  Status s = UncompressLogPayload(overlong, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("beyond the limit"), std::string_view::npos) << s.ToString();
}

TEST(LogFormatTest, FrameTypeMayCarryTheCompressedFlag) {
  EXPECT_TRUE(IsValidFrameType(static_cast<uint8_t>(LogRecordType::kInsert)));
  EXPECT_TRUE(
      IsValidFrameType(static_cast<uint8_t>(LogRecordType::kInsert) | kCompressedRecordFlag));
  EXPECT_FALSE(IsValidFrameType(kCompressedRecordFlag));
  EXPECT_FALSE(IsValidFrameType(kCompressedRecordFlag | (kMaxLogRecordType + 1)));
}

// Random bytes and mutations of valid frames never crash the parser, never read outside
// the input (ASan/UBSan builds check), and a frame that parses has a size within its input.
TEST(LogFormatTest, ParserSurvivesRandomBytesAndMutations) {
  std::mt19937_64 rng(20240601);
  std::string valid;
  Lsn lsn = 1;
  for (const LogRecord& r : OneOfEachType()) {
    std::string payload;
    EncodeLogPayload(r, &payload);
    AppendLogRecordFrame(lsn++, r.type, payload, &valid);
  }
  for (int iteration = 0; iteration < 20000; ++iteration) {
    std::string input;
    if (iteration % 2 == 0) {
      input.resize(rng() % 80);
      for (char& c : input) c = static_cast<char>(rng());
    } else {
      input = valid.substr(rng() % valid.size());
      int mutations = 1 + static_cast<int>(rng() % 4);
      for (int m = 0; m < mutations && !input.empty(); ++m) {
        input[rng() % input.size()] = static_cast<char>(rng());
      }
      if (rng() % 3 == 0) input.resize(rng() % (input.size() + 1));
    }
    LogRecordFrame frame;
    std::string reason;
    if (ParseLogRecordFrame(input, &frame, &reason) == FrameParseResult::kOk) {
      ASSERT_LE(frame.size, input.size());
      LogRecord record;
      (void)DecodeLogPayload(frame.type, frame.payload, &record).ok();
    }
    if (ParseLogRecordFrameBackward(input, &frame, &reason) == FrameParseResult::kOk) {
      ASSERT_LE(frame.size, input.size());
    }
    // The payload decoder on raw bytes of any type.
    LogRecord record;
    (void)DecodeLogPayload(static_cast<LogRecordType>(rng() % 20), input, &record).ok();
  }
}

}  // namespace
}  // namespace fern
