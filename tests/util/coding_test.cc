#include "util/coding.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace fern {
namespace {

TEST(CodingTest, FixedIntegersAreLittleEndian) {
  std::string out;
  PutFixed16(&out, 0x0102);
  PutFixed32(&out, 0x03040506);
  PutFixed64(&out, 0x0708090a0b0c0d0eULL);
  EXPECT_EQ(out, std::string("\x02\x01\x06\x05\x04\x03\x0e\x0d\x0c\x0b\x0a\x09\x08\x07", 14));
}

TEST(CodingTest, FixedIntegersRoundTrip) {
  const std::vector<uint64_t> values = {0,
                                        1,
                                        0x7f,
                                        0x80,
                                        0xff,
                                        0xffff,
                                        0x12345678,
                                        0xffffffffULL,
                                        1ULL << 63,
                                        UINT64_MAX,
                                        0xdeadbeefcafef00dULL};
  std::string out;
  for (uint64_t v : values) {
    PutFixed8(&out, static_cast<uint8_t>(v));
    PutFixed16(&out, static_cast<uint16_t>(v));
    PutFixed32(&out, static_cast<uint32_t>(v));
    PutFixed64(&out, v);
  }
  Decoder decoder(out);
  for (uint64_t v : values) {
    uint8_t v8;
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    ASSERT_TRUE(decoder.GetFixed8(&v8));
    ASSERT_TRUE(decoder.GetFixed16(&v16));
    ASSERT_TRUE(decoder.GetFixed32(&v32));
    ASSERT_TRUE(decoder.GetFixed64(&v64));
    EXPECT_EQ(v8, static_cast<uint8_t>(v));
    EXPECT_EQ(v16, static_cast<uint16_t>(v));
    EXPECT_EQ(v32, static_cast<uint32_t>(v));
    EXPECT_EQ(v64, v);
  }
  EXPECT_TRUE(decoder.empty());
}

TEST(CodingTest, VarintsRoundTripAtEveryLengthBoundary) {
  std::vector<uint64_t> values = {0, UINT64_MAX};
  for (int bits = 1; bits < 64; ++bits) {
    uint64_t power = uint64_t{1} << bits;
    values.push_back(power - 1);
    values.push_back(power);
    values.push_back(power + 1);
  }
  std::string out;
  for (uint64_t v : values) {
    size_t before = out.size();
    PutVarint64(&out, v);
    EXPECT_EQ(out.size() - before, VarintLength(v)) << v;
  }
  Decoder decoder(out);
  for (uint64_t v : values) {
    uint64_t got;
    ASSERT_TRUE(decoder.GetVarint64(&got)) << v;
    EXPECT_EQ(got, v);
  }
  EXPECT_TRUE(decoder.empty());
  EXPECT_EQ(VarintLength(0), 1u);
  EXPECT_EQ(VarintLength(127), 1u);
  EXPECT_EQ(VarintLength(128), 2u);
  EXPECT_EQ(VarintLength(UINT64_MAX), 10u);
}

TEST(CodingTest, Varint32RoundTripsAndRejectsWiderValues) {
  std::string out;
  PutVarint32(&out, 0);
  PutVarint32(&out, 300);
  PutVarint32(&out, UINT32_MAX);
  PutVarint64(&out, uint64_t{UINT32_MAX} + 1);
  Decoder decoder(out);
  uint32_t v;
  ASSERT_TRUE(decoder.GetVarint32(&v));
  EXPECT_EQ(v, 0u);
  ASSERT_TRUE(decoder.GetVarint32(&v));
  EXPECT_EQ(v, 300u);
  ASSERT_TRUE(decoder.GetVarint32(&v));
  EXPECT_EQ(v, UINT32_MAX);
  EXPECT_FALSE(decoder.GetVarint32(&v));
}

TEST(CodingTest, LengthPrefixedRoundTrips) {
  std::string out;
  PutLengthPrefixed(&out, "");
  PutLengthPrefixed(&out, "key");
  PutLengthPrefixed(&out, std::string(1000, 'x'));
  PutLengthPrefixed(&out, std::string_view("\0\x01\xff", 3));
  Decoder decoder(out);
  std::string_view s;
  ASSERT_TRUE(decoder.GetLengthPrefixed(&s));
  EXPECT_EQ(s, "");
  ASSERT_TRUE(decoder.GetLengthPrefixed(&s));
  EXPECT_EQ(s, "key");
  ASSERT_TRUE(decoder.GetLengthPrefixed(&s));
  EXPECT_EQ(s, std::string(1000, 'x'));
  ASSERT_TRUE(decoder.GetLengthPrefixed(&s));
  EXPECT_EQ(s, std::string_view("\0\x01\xff", 3));
  EXPECT_TRUE(decoder.empty());
}

TEST(CodingTest, DecoderRejectsTruncatedFixedIntegers) {
  const std::string bytes(7, '\x5a');
  for (size_t len = 0; len < 8; ++len) {
    Decoder decoder(std::string_view(bytes).substr(0, std::min(len, bytes.size())));
    uint64_t v64;
    EXPECT_FALSE(decoder.GetFixed64(&v64)) << len;
    EXPECT_EQ(decoder.remaining(), std::min(len, bytes.size())) << "consumed on failure";
  }
  uint8_t v8;
  uint16_t v16;
  uint32_t v32;
  EXPECT_FALSE(Decoder("").GetFixed8(&v8));
  EXPECT_FALSE(Decoder("a").GetFixed16(&v16));
  EXPECT_FALSE(Decoder("abc").GetFixed32(&v32));
}

TEST(CodingTest, DecoderRejectsTruncatedVarint) {
  std::string full;
  PutVarint64(&full, UINT64_MAX);
  ASSERT_EQ(full.size(), 10u);
  for (size_t len = 0; len < full.size(); ++len) {
    Decoder decoder(std::string_view(full).substr(0, len));
    uint64_t v;
    EXPECT_FALSE(decoder.GetVarint64(&v)) << "length " << len;
  }
}

TEST(CodingTest, DecoderRejectsOverlongVarint) {
  // Eleven bytes with the continuation bit: no uint64 is that long.
  std::string bytes(10, '\x80');
  bytes.push_back('\x01');
  uint64_t v;
  EXPECT_FALSE(Decoder(bytes).GetVarint64(&v));
}

TEST(CodingTest, DecoderRejectsVarintOverflowingSixtyFourBits) {
  // Ten bytes whose last carries bits beyond bit 63: silently dropping them would decode
  // damaged bytes as a plausible value.
  std::string bytes(9, '\xff');
  bytes.push_back('\x02');
  uint64_t v;
  EXPECT_FALSE(Decoder(bytes).GetVarint64(&v));
  bytes.back() = '\x01';
  ASSERT_TRUE(Decoder(bytes).GetVarint64(&v));
  EXPECT_EQ(v, UINT64_MAX);
}

TEST(CodingTest, DecoderRejectsTruncatedBytesAndLengthPrefixed) {
  std::string out;
  PutLengthPrefixed(&out, "hello");
  for (size_t len = 0; len < out.size(); ++len) {
    Decoder decoder(std::string_view(out).substr(0, len));
    std::string_view s;
    EXPECT_FALSE(decoder.GetLengthPrefixed(&s)) << "length " << len;
  }
  Decoder decoder("abc");
  std::string_view s;
  EXPECT_FALSE(decoder.GetBytes(4, &s));
  EXPECT_FALSE(decoder.Skip(4));
  EXPECT_TRUE(decoder.Skip(1));
  ASSERT_TRUE(decoder.GetBytes(2, &s));
  EXPECT_EQ(s, "bc");
  EXPECT_TRUE(decoder.empty());
}

TEST(CodingTest, DecoderRestIsWhatRemains) {
  std::string out;
  PutFixed32(&out, 7);
  out += "tail";
  Decoder decoder(out);
  uint32_t v;
  ASSERT_TRUE(decoder.GetFixed32(&v));
  EXPECT_EQ(decoder.rest(), "tail");
  EXPECT_EQ(decoder.remaining(), 4u);
}

}  // namespace
}  // namespace fern
