// The data fernbench generates must be exactly what WORKLOADS.md defines, byte for byte: the
// expected bytes below were computed independently of this code.
#include "fernbench/data.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fern::bench {
namespace {

std::string Hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

TEST(KeyTest, IsSixteenZeroPaddedDecimalDigits) {
  EXPECT_EQ(Key(0).view(), "0000000000000000");
  EXPECT_EQ(Key(42).view(), "0000000000000042");
  EXPECT_EQ(Key(9999999999999999).view(), "9999999999999999");
}

TEST(KeyTest, IncrementCarriesAcrossDigits) {
  Key key(1999);
  key.Increment();
  EXPECT_EQ(key.view(), "0000000000002000");
  for (uint64_t i = 2000; i < 12345; ++i) {
    ASSERT_EQ(key.view(), Key(i).view());
    key.Increment();
  }
}

TEST(SplitMix64Test, MatchesTheReferenceSequence) {
  uint64_t state = 0;
  EXPECT_EQ(SplitMix64Next(&state), 0xE220A8397B1DCDAFu);
  EXPECT_EQ(SplitMix64Next(&state), 0x6E789E6AA1B965F4u);
}

TEST(ValueTest, IsFiftySplitMixBytesTwice) {
  const std::string seed0 =
      "afcd1d7b39a820e2f465b9a16a9e786e4f450980185dc406ec814c72a8b88bf89b74a8516a89391beaa2"
      "7e740c9fcb53e132";
  const std::string seed100007 =
      "3a0864e4453f183da0882f3ac29980098fecf941803fa894a07ce2307149170b94e2ee439b6e75922607"
      "c992e4341cfebd62";
  EXPECT_EQ(Hex(Value(0).view()), seed0 + seed0);
  EXPECT_EQ(Hex(Value(100007).view()), seed100007 + seed100007);
  EXPECT_EQ(Value(1).view().size(), kValueBytes);
  EXPECT_NE(Value(1).view(), Value(2).view());
}

TEST(PermutationTest, FollowsTheFormula) {
  Permutation order(100000);
  EXPECT_EQ(order(0), 12345u);
  EXPECT_EQ(order(1), 48106u);
  EXPECT_EQ(order(4), 55389u);
  EXPECT_EQ(Permutation(10000)(2), 3867u);
  // j * 2654435761 overflows 64 bits here; the product must be taken in full.
  EXPECT_EQ(Permutation(2000000)(uint64_t{1} << 63), 882233u);
  EXPECT_EQ(Permutation(2000000)(1999999), 1576584u);
}

TEST(PermutationTest, IsABijectionForValidN) {
  for (uint64_t n : {1u, 2u, 7u, 1000u, 10000u, 65537u}) {
    ASSERT_TRUE(Permutation::IsValidN(n));
    Permutation order(n);
    std::vector<bool> seen(n, false);
    for (uint64_t j = 0; j < n; ++j) {
      uint64_t i = order(j);
      ASSERT_LT(i, n);
      ASSERT_FALSE(seen[i]) << "n=" << n << " maps two j to " << i;
      seen[i] = true;
    }
  }
}

TEST(PermutationTest, RejectsNSharingAFactorWithTheMultiplier) {
  EXPECT_FALSE(Permutation::IsValidN(0));
  EXPECT_FALSE(Permutation::IsValidN(kPermutationMultiplier));
  EXPECT_FALSE(Permutation::IsValidN(3 * kPermutationMultiplier));
  EXPECT_TRUE(Permutation::IsValidN(2000000));
}

}  // namespace
}  // namespace fern::bench
