#include "util/checksum.h"

#include <gtest/gtest.h>

#include <string>

namespace fern {
namespace {

// The values are XXH3-64 with seed 0, as published by xxHash; they are part of every on-disk
// format, so a change here is a format break, not a test to update.
TEST(ChecksumTest, MatchesXxh3ReferenceValues) {
  EXPECT_EQ(Checksum64(""), 0x2D06800538D394C2ULL);
  EXPECT_EQ(Checksum64("a"), 0xE6C632B61E964E1FULL);
  EXPECT_EQ(Checksum64("abc"), 0x78AF5F94892F3950ULL);
}

TEST(ChecksumTest, Checksum32IsTheLowHalfOfChecksum64) {
  for (std::string data : {"", "a", "fern", "a longer string of bytes to hash, past 16 bytes"}) {
    EXPECT_EQ(Checksum32(data), static_cast<uint32_t>(Checksum64(data))) << data;
  }
}

TEST(ChecksumTest, IsDeterministicAndIndependentOfAlignment) {
  std::string buffer(4096 + 16, '\0');
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<char>(i * 131 + 7);
  const std::string copy = buffer.substr(0, 4096);
  const uint64_t expected = Checksum64(copy);
  for (size_t shift = 0; shift < 16; ++shift) {
    std::string shifted(shift, 'x');
    shifted += copy;
    EXPECT_EQ(Checksum64(std::string_view(shifted).substr(shift)), expected) << shift;
  }
}

TEST(ChecksumTest, DetectsEverySingleBitFlip) {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i);
  const uint64_t original64 = Checksum64(data);
  const uint32_t original32 = Checksum32(data);
  for (size_t byte = 0; byte < data.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      data[byte] ^= static_cast<char>(1 << bit);
      EXPECT_NE(Checksum64(data), original64) << byte << ":" << bit;
      EXPECT_NE(Checksum32(data), original32) << byte << ":" << bit;
      data[byte] ^= static_cast<char>(1 << bit);
    }
  }
}

TEST(ChecksumTest, DependsOnLength) {
  EXPECT_NE(Checksum64(std::string(1, '\0')), Checksum64(std::string(2, '\0')));
  EXPECT_NE(Checksum64(""), Checksum64(std::string(1, '\0')));
}

}  // namespace
}  // namespace fern
