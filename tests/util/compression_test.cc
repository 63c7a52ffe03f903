#include "util/compression.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "util/coding.h"

namespace fern {
namespace {

const std::vector<Compression> kAllCodecs = {Compression::kNone, Compression::kSnappy,
                                             Compression::kZlib, Compression::kZstd,
                                             Compression::kLzma};

// Looks like a basement: sorted keys with repetitive values.
std::string CompressibleData(size_t bytes) {
  std::string data;
  for (uint64_t i = 0; data.size() < bytes; ++i) {
    data += "key" + std::to_string(1000000 + i * 7);
    data += ":value-of-moderate-length-";
    data += std::to_string(i % 13);
    data += ';';
  }
  data.resize(bytes);
  return data;
}

std::string RandomData(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(bytes, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  return data;
}

std::string Compress(Compression codec, std::string_view raw, int level = 0) {
  std::string frame;
  Status s = CompressPartition(codec, level, raw, &frame);
  EXPECT_TRUE(s.ok()) << CompressionName(codec) << ": " << s.ToString();
  return frame;
}

// A frame with the given tag and declared size, followed by `payload`.
std::string MakeFrame(uint8_t tag, uint64_t declared, std::string_view payload) {
  std::string frame;
  PutFixed8(&frame, tag);
  PutVarint64(&frame, declared);
  frame.append(payload);
  return frame;
}

// Splits a frame into its declared size and payload.
void ParseFrame(std::string_view frame, uint64_t* declared, std::string_view* payload) {
  Decoder decoder(frame);
  uint8_t tag;
  ASSERT_TRUE(decoder.GetFixed8(&tag));
  ASSERT_TRUE(decoder.GetVarint64(declared));
  *payload = decoder.rest();
}

// Decompresses possibly damaged bytes; the only acceptable outcomes are Corruption, or OK with
// exactly the declared number of bytes.
Status DecompressDamaged(std::string_view frame, std::string* out = nullptr) {
  std::string local;
  std::string& raw = out != nullptr ? *out : local;
  raw = "stale";
  Compression codec;
  Status s = DecompressPartition(frame, &raw, &codec);
  if (s.ok()) {
    uint64_t declared = 0;
    std::string_view payload;
    ParseFrame(frame, &declared, &payload);
    EXPECT_EQ(raw.size(), declared);
    EXPECT_EQ(static_cast<uint8_t>(codec), static_cast<uint8_t>(frame[0]));
  } else {
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_TRUE(raw.empty()) << "output left behind on error";
  }
  return s;
}

class CodecTest : public testing::TestWithParam<Compression> {};

TEST_P(CodecTest, RoundTripsCompressibleData) {
  const std::string raw = CompressibleData(200000);
  const std::string frame = Compress(GetParam(), raw);
  if (GetParam() != Compression::kNone) {
    EXPECT_LT(frame.size(), raw.size() / 2) << CompressionName(GetParam());
  }
  std::string back;
  Compression codec;
  ASSERT_TRUE(DecompressPartition(frame, &back, &codec).ok());
  EXPECT_EQ(codec, GetParam());
  EXPECT_EQ(back, raw);
}

TEST_P(CodecTest, RoundTripsRandomData) {
  for (size_t size : {1, 17, 4096, 65536 + 3}) {
    const std::string raw = RandomData(size, size);
    std::string back;
    ASSERT_TRUE(DecompressPartition(Compress(GetParam(), raw), &back).ok()) << size;
    EXPECT_EQ(back, raw) << size;
  }
}

// The output buffer's old bytes (a recycled buffer) never show through, whether it held
// more or fewer of them than the frame decodes to.
TEST_P(CodecTest, OverwritesWhatTheOutputBufferHeld) {
  const std::string raw = CompressibleData(20000);
  const std::string frame = Compress(GetParam(), raw);
  for (size_t stale : {size_t{0}, size_t{100}, size_t{19999}, size_t{20000}, size_t{65536}}) {
    std::string back(stale, '\x5a');
    ASSERT_TRUE(DecompressPartition(frame, &back).ok()) << stale;
    EXPECT_EQ(back, raw) << CompressionName(GetParam()) << " over " << stale << " stale bytes";
  }
}

TEST_P(CodecTest, RoundTripsEmptyInput) {
  const std::string frame = Compress(GetParam(), "");
  std::string back = "not empty";
  ASSERT_TRUE(DecompressPartition(frame, &back).ok());
  EXPECT_TRUE(back.empty());
}

TEST_P(CodecTest, FrameStartsWithCodecTagAndUncompressedSize) {
  const std::string raw = CompressibleData(5000);
  const std::string frame = Compress(GetParam(), raw);
  ASSERT_FALSE(frame.empty());
  EXPECT_EQ(static_cast<uint8_t>(frame[0]), static_cast<uint8_t>(GetParam()));
  uint64_t declared = 0;
  std::string_view payload;
  ParseFrame(frame, &declared, &payload);
  EXPECT_EQ(declared, raw.size());
  Compression peeked;
  ASSERT_TRUE(PeekCodec(frame, &peeked));
  EXPECT_EQ(peeked, GetParam());
}

TEST_P(CodecTest, CompressAppendsToExistingBytes) {
  std::string buffer = "prefix";
  ASSERT_TRUE(CompressPartition(GetParam(), 0, "payload", &buffer).ok());
  ASSERT_EQ(buffer.substr(0, 6), "prefix");
  std::string back;
  ASSERT_TRUE(DecompressPartition(std::string_view(buffer).substr(6), &back).ok());
  EXPECT_EQ(back, "payload");
}

TEST_P(CodecTest, EveryLevelRoundTrips) {
  const std::string raw = CompressibleData(20000);
  // Out-of-range levels are clamped; lzma stops at 6 here because preset 9 reserves
  // ~700 MiB to compress.
  std::vector<int> levels = {-1000, -5, -1, 0, 1, 2, 3, 5, 9};
  if (GetParam() != Compression::kLzma) levels.insert(levels.end(), {19, 1000});
  for (int level : levels) {
    if (GetParam() == Compression::kLzma && level > 6) continue;
    std::string back;
    ASSERT_TRUE(DecompressPartition(Compress(GetParam(), raw, level), &back).ok()) << level;
    EXPECT_EQ(back, raw) << "level " << level;
  }
}

TEST_P(CodecTest, TruncatedFrameIsCorruption) {
  const std::string frame = Compress(GetParam(), CompressibleData(3000));
  for (size_t len = 0; len < frame.size(); ++len) {
    Status s = DecompressDamaged(std::string_view(frame).substr(0, len));
    EXPECT_TRUE(s.IsCorruption()) << CompressionName(GetParam()) << " prefix " << len;
  }
}

TEST_P(CodecTest, TrailingByteIsCorruption) {
  std::string frame = Compress(GetParam(), CompressibleData(3000));
  frame.push_back('\0');
  EXPECT_TRUE(DecompressDamaged(frame).IsCorruption());
}

TEST_P(CodecTest, DeclaredSizeMismatchIsCorruption) {
  const std::string raw = CompressibleData(3000);
  uint64_t declared = 0;
  std::string_view payload;
  const std::string frame = Compress(GetParam(), raw);
  ParseFrame(frame, &declared, &payload);
  const uint8_t tag = static_cast<uint8_t>(GetParam());
  for (uint64_t wrong : {uint64_t{0}, declared - 1, declared + 1, declared * 2}) {
    Status s = DecompressDamaged(MakeFrame(tag, wrong, payload));
    EXPECT_TRUE(s.IsCorruption()) << CompressionName(GetParam()) << " declared " << wrong;
  }
}

TEST_P(CodecTest, AbsurdDeclaredSizeIsCorruption) {
  const std::string frame = Compress(GetParam(), "abc");
  uint64_t declared = 0;
  std::string_view payload;
  ParseFrame(frame, &declared, &payload);
  const uint8_t tag = static_cast<uint8_t>(GetParam());
  for (uint64_t absurd : {kMaxPartitionBytes + 1, uint64_t{1} << 40, UINT64_MAX}) {
    Status s = DecompressDamaged(MakeFrame(tag, absurd, payload));
    EXPECT_TRUE(s.IsCorruption()) << absurd;
    EXPECT_NE(s.ToString().find("limit"), std::string::npos) << s.ToString();
  }
  // Within the limit but far beyond what the payload holds: rejected as well.
  EXPECT_TRUE(DecompressDamaged(MakeFrame(tag, kMaxPartitionBytes, payload)).IsCorruption());
}

TEST_P(CodecTest, FlippedBitsNeverCrashAndChecksummedCodecsReportThem) {
  const std::string raw = CompressibleData(1500);
  const std::string frame = Compress(GetParam(), raw);
  // zlib (Adler-32) and lzma (CRC32) check their contents, so they never return wrong bytes
  // (a flip in deflate's final padding bits is harmless and decodes fine); the others rely on
  // the caller's partition checksum, so a flip in their payload may decode to wrong bytes of
  // the right length. Fern's own header (tag and size) is always checked.
  const bool self_checking = GetParam() == Compression::kZlib || GetParam() == Compression::kLzma;
  uint64_t declared = 0;
  std::string_view payload;
  ParseFrame(frame, &declared, &payload);
  const size_t header_size = frame.size() - payload.size();
  int corrupt = 0;
  int flips = 0;
  for (size_t byte = 0; byte < frame.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = frame;
      damaged[byte] ^= static_cast<char>(1 << bit);
      std::string back;
      Status s = DecompressDamaged(damaged, &back);
      ++flips;
      if (s.IsCorruption()) ++corrupt;
      if (byte < header_size) {
        EXPECT_TRUE(s.IsCorruption())
            << CompressionName(GetParam()) << " byte " << byte << " bit " << bit;
      }
      if (self_checking && s.ok()) {
        EXPECT_EQ(back, raw) << CompressionName(GetParam()) << " byte " << byte << " bit " << bit;
      }
    }
  }
  if (GetParam() != Compression::kNone) {
    EXPECT_GT(corrupt, flips / 4);
  }
}

TEST_P(CodecTest, RandomPayloadsNeverCrash) {
  std::mt19937_64 rng(static_cast<uint64_t>(GetParam()) + 1);
  for (int i = 0; i < 3000; ++i) {
    const size_t payload_size = rng() % 200;
    const uint64_t declared = i % 2 == 0 ? payload_size : rng() % 100000;
    std::string frame =
        MakeFrame(static_cast<uint8_t>(GetParam()), declared, RandomData(payload_size, rng()));
    (void)DecompressDamaged(frame);
  }
}

TEST_P(CodecTest, ReadsBackFramesOfEveryOtherCodec) {
  // A table whose codec changed holds frames of several codecs; decoding follows each
  // frame's tag, whatever codec was used last on this thread.
  const std::string raw = CompressibleData(10000);
  std::vector<std::string> frames;
  for (Compression writer : kAllCodecs) frames.push_back(Compress(writer, raw));
  (void)Compress(GetParam(), raw);
  for (size_t i = 0; i < frames.size(); ++i) {
    std::string back;
    Compression codec;
    ASSERT_TRUE(DecompressPartition(frames[i], &back, &codec).ok());
    EXPECT_EQ(codec, kAllCodecs[i]);
    EXPECT_EQ(back, raw);
    std::string current;
    ASSERT_TRUE(DecompressPartition(Compress(GetParam(), raw), &current).ok());
    EXPECT_EQ(current, raw);
  }
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CodecTest, testing::ValuesIn(kAllCodecs),
                         [](const testing::TestParamInfo<Compression>& info) {
                           return std::string(CompressionName(info.param));
                         });

TEST(CompressionTest, DecompressRejectsEmptyFrame) {
  std::string raw;
  Status s = DecompressPartition("", &raw);
  EXPECT_TRUE(s.IsCorruption());
  Compression codec;
  EXPECT_FALSE(PeekCodec("", &codec));
}

TEST(CompressionTest, DecompressRejectsUnknownTag) {
  for (int tag = 5; tag < 256; ++tag) {
    std::string raw;
    Status s = DecompressPartition(MakeFrame(static_cast<uint8_t>(tag), 3, "abc"), &raw);
    EXPECT_TRUE(s.IsCorruption()) << tag;
    EXPECT_NE(s.ToString().find("unknown codec tag " + std::to_string(tag)), std::string::npos)
        << s.ToString();
    Compression codec;
    EXPECT_FALSE(PeekCodec(MakeFrame(static_cast<uint8_t>(tag), 3, "abc"), &codec));
  }
}

TEST(CompressionTest, DecompressRejectsTruncatedSize) {
  std::string raw;
  EXPECT_TRUE(DecompressPartition(std::string("\x03\x80", 2), &raw).IsCorruption());
  EXPECT_TRUE(DecompressPartition(std::string("\x00", 1), &raw).IsCorruption());
  std::string overlong(1, '\x00');
  overlong.append(11, '\xff');
  EXPECT_TRUE(DecompressPartition(overlong, &raw).IsCorruption());
}

TEST(CompressionTest, CompressRejectsUnknownCodec) {
  std::string frame = "kept";
  Status s = CompressPartition(static_cast<Compression>(9), 0, "abc", &frame);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(frame, "kept");
}

TEST(CompressionTest, CompressRejectsPartitionLargerThanTheLimit) {
  // An untouched anonymous mapping: readable, costs no memory as long as nothing reads it.
  const size_t size = kMaxPartitionBytes + 1;
  void* region = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(region, MAP_FAILED);
  std::string frame;
  Status s = CompressPartition(Compression::kZstd, 0,
                               std::string_view(static_cast<const char*>(region), size), &frame);
  munmap(region, size);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_TRUE(frame.empty());
}

TEST(CompressionTest, ZstdFrameWithForeignMagicIsCorruption) {
  std::string raw;
  Status s = DecompressPartition(MakeFrame(3, 4, "\x28\xb5\x2f\xfe garbage"), &raw);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.ToString().find("zstd"), std::string::npos) << s.ToString();
}

TEST(CompressionTest, NamesRoundTrip) {
  for (Compression codec : kAllCodecs) {
    Compression parsed;
    ASSERT_TRUE(ParseCompressionName(CompressionName(codec), &parsed));
    EXPECT_EQ(parsed, codec);
  }
  EXPECT_STREQ(CompressionName(Compression::kZstd), "zstd");
  EXPECT_STREQ(CompressionName(static_cast<Compression>(42)), "unknown");
  Compression untouched = Compression::kLzma;
  EXPECT_FALSE(ParseCompressionName("gzip", &untouched));
  EXPECT_FALSE(ParseCompressionName("unknown", &untouched));
  EXPECT_EQ(untouched, Compression::kLzma);
}

TEST(CompressionTest, HighZstdLevelDoesNotDisturbLaterCalls) {
  // Level 19 on 1 MiB grows the thread's context past what is kept cached.
  const std::string raw = CompressibleData(size_t{1} << 20);
  std::string back;
  ASSERT_TRUE(DecompressPartition(Compress(Compression::kZstd, raw, 19), &back).ok());
  EXPECT_EQ(back, raw);
  ASSERT_TRUE(DecompressPartition(Compress(Compression::kZstd, raw), &back).ok());
  EXPECT_EQ(back, raw);
}

TEST(CompressionTest, FourMegabyteNodeRoundTripsWithZstd) {
  const std::string raw = CompressibleData(size_t{4} << 20);
  std::string back;
  ASSERT_TRUE(DecompressPartition(Compress(Compression::kZstd, raw), &back).ok());
  EXPECT_EQ(back, raw);
}

}  // namespace
}  // namespace fern
