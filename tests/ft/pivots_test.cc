#include "ft/pivots.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using fern::testing::ReverseComparator;

// Keys over a small alphabet (zero bytes included), so that heads tie, keys are prefixes
// of each other and some run past the eight head bytes.
std::string RandomKey(std::mt19937_64& rng, const std::string& prefix) {
  static const char kAlphabet[] = {'\0', 'a', 'b', '\xff'};
  std::string key = prefix;
  const size_t length = rng() % 13;
  for (size_t i = 0; i < length; ++i) key.push_back(kAlphabet[rng() % 4]);
  return key;
}

std::vector<std::string> RandomSortedKeys(std::mt19937_64& rng, size_t n,
                                          const std::string& prefix) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < n; ++i) keys.push_back(RandomKey(rng, prefix));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

// Every bound Pivots gives for `probes` (and their neighbours) equals the standard
// algorithms' on its keys, which must equal `model`.
void ExpectSearchesMatch(const Pivots& pivots, const std::vector<std::string>& model,
                         const std::vector<std::string>& probes, const Comparator& cmp) {
  ASSERT_EQ(pivots.keys(), model);
  auto less = [&cmp](std::string_view a, std::string_view b) { return cmp.Compare(a, b) < 0; };
  std::vector<std::string> all = probes;
  for (const std::string& key : model) {
    all.push_back(key);
    all.push_back(key + '\0');
    all.push_back(key + '\x7f');
    if (!key.empty()) all.push_back(key.substr(0, key.size() - 1));
  }
  all.push_back("");
  for (const std::string& probe : all) {
    const auto upper = std::upper_bound(model.begin(), model.end(), probe, less) - model.begin();
    const auto lower = std::lower_bound(model.begin(), model.end(), probe, less) - model.begin();
    EXPECT_EQ(pivots.UpperBound(probe, cmp), static_cast<size_t>(upper))
        << ::testing::PrintToString(probe);
    EXPECT_EQ(pivots.LowerBound(probe, cmp), static_cast<size_t>(lower))
        << ::testing::PrintToString(probe);
  }
}

TEST(PivotsTest, SearchesAgreeWithTheStandardAlgorithms) {
  std::mt19937_64 rng(7);
  for (const std::string prefix : {"", "0000000001", "table\x01key\xff"}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{300}}) {
      Pivots pivots;
      std::vector<std::string> keys = RandomSortedKeys(rng, n, prefix);
      pivots.Assign(keys);
      std::vector<std::string> probes;
      for (int i = 0; i < 50; ++i) probes.push_back(RandomKey(rng, prefix));
      for (int i = 0; i < 10; ++i) probes.push_back(RandomKey(rng, ""));
      ExpectSearchesMatch(pivots, keys, probes, *BytewiseComparator());
    }
  }
}

TEST(PivotsTest, AnotherComparatorSearchesTheKeysInItsOrder) {
  std::mt19937_64 rng(11);
  ReverseComparator reverse;
  std::vector<std::string> keys = RandomSortedKeys(rng, 200, "k");
  std::reverse(keys.begin(), keys.end());
  Pivots pivots;
  pivots.Assign(keys);
  std::vector<std::string> probes;
  for (int i = 0; i < 100; ++i) probes.push_back(RandomKey(rng, i % 2 ? "k" : ""));
  ExpectSearchesMatch(pivots, keys, probes, reverse);
}

// Every mutation keeps the index in step: after each, searches still agree.
TEST(PivotsTest, EveryMutationKeepsSearchesRight) {
  std::mt19937_64 rng(3);
  std::vector<std::string> model = RandomSortedKeys(rng, 40, "node");
  Pivots pivots;
  pivots.Assign(model);
  std::vector<std::string> probes;
  for (int i = 0; i < 30; ++i) probes.push_back(RandomKey(rng, i % 3 ? "node" : "nod"));
  for (int step = 0; step < 400; ++step) {
    const size_t n = model.size();
    switch (rng() % 8) {
      case 0:  // the immediate successor of a key is below the next one, unless it is it
        if (n > 0) {
          const size_t i = 1 + rng() % n;
          std::string key = model[i - 1] + '\0';
          if (i == n || key != model[i]) {
            model.insert(model.begin() + static_cast<std::ptrdiff_t>(i), key);
            pivots.Insert(i, key);
          }
        }
        break;
      case 1:
        if (n > 0 && !model[0].empty()) {
          std::string key = model[0].substr(0, model[0].size() - 1);
          model.insert(model.begin(), key);
          pivots.Insert(0, key);
        }
        break;
      case 2:
        if (n > 0) {
          const size_t i = rng() % n;
          model.erase(model.begin() + static_cast<std::ptrdiff_t>(i));
          pivots.Erase(i);
        }
        break;
      case 3:
        if (n > 0) {
          model.pop_back();
          pivots.PopBack();
        }
        break;
      case 4: {  // a key above all, sometimes sharing less of the prefix
        std::string key = n == 0 ? "node" : model.back() + "a";
        if (rng() % 4 == 0) key = "p" + key;
        model.push_back(key);
        pivots.PushBack(key);
        break;
      }
      case 5: {
        const size_t keep = n == 0 ? 0 : rng() % (n + 1);
        model.resize(keep);
        pivots.Truncate(keep);
        break;
      }
      case 6: {  // a split and the merge back
        const size_t at = n == 0 ? 0 : rng() % (n + 1);
        std::vector<std::string> taken = pivots.TakeFrom(at);
        ASSERT_EQ(taken, std::vector<std::string>(model.begin() + static_cast<std::ptrdiff_t>(at),
                                                  model.end()));
        ExpectSearchesMatch(pivots,
                            std::vector<std::string>(
                                model.begin(), model.begin() + static_cast<std::ptrdiff_t>(at)),
                            probes, *BytewiseComparator());
        pivots.Append(std::move(taken));
        break;
      }
      case 7:
        if (rng() % 10 == 0) {
          model = RandomSortedKeys(rng, rng() % 60, rng() % 2 ? "node" : "");
          pivots.Assign(model);
        }
        break;
    }
    ExpectSearchesMatch(pivots, model, probes, *BytewiseComparator());
    if (HasFailure()) return;
  }
  Pivots copy = pivots;
  ExpectSearchesMatch(copy, model, probes, *BytewiseComparator());
  pivots.Clear();
  ExpectSearchesMatch(pivots, {}, probes, *BytewiseComparator());
}

TEST(PivotsTest, PivotBetweenIsTheShortestPrefixOfTheRightKeyAboveTheLeft) {
  const Comparator& bytewise = *BytewiseComparator();
  EXPECT_EQ(PivotBetween("abc", "abd", bytewise), "abd");
  EXPECT_EQ(PivotBetween("ab", "abc", bytewise), "abc");  // left a prefix of right
  EXPECT_EQ(PivotBetween("", "xyz", bytewise), "x");
  EXPECT_EQ(PivotBetween("a\xff\xff", "b\x00", bytewise), "b");
  EXPECT_EQ(PivotBetween(std::string("k\0\0", 3), std::string("k\0\x01tail", 7), bytewise),
            std::string("k\0\x01", 3));
  // Long keys whose leading bytes differ get pivots of a few bytes.
  const std::string left = "0000000000001239" + std::string(1000, 'z');
  const std::string right = "0000000000001240" + std::string(1000, 'a');
  EXPECT_EQ(PivotBetween(left, right, bytewise), "000000000000124");

  // Random pairs over a small alphabet (prefixes of each other, zero and 0xff bytes): the
  // pivot lies in (left, right], is a prefix of right, and one byte less would not be above
  // left.
  std::mt19937_64 rng(11);
  for (int round = 0; round < 20000; ++round) {
    std::string a = RandomKey(rng, "");
    std::string b = RandomKey(rng, "");
    if (a == b) continue;
    if (b < a) std::swap(a, b);
    const std::string pivot = PivotBetween(a, b, bytewise);
    ASSERT_LT(a, pivot) << ::testing::PrintToString(a) << " " << ::testing::PrintToString(b);
    ASSERT_LE(pivot, b);
    ASSERT_EQ(b.compare(0, pivot.size(), pivot), 0) << "not a prefix of the right key";
    ASSERT_LE(pivot.substr(0, pivot.size() - 1), a) << "a shorter prefix would do";
  }
}

TEST(PivotsTest, PivotBetweenKeysOfAnotherComparatorIsTheRightKey) {
  ReverseComparator reverse;
  EXPECT_EQ(PivotBetween("abd", "abc", reverse), "abc");
  EXPECT_EQ(PivotBetween("b" + std::string(500, 'q'), "a" + std::string(500, 'q'), reverse),
            "a" + std::string(500, 'q'));
}

}  // namespace
}  // namespace fern
