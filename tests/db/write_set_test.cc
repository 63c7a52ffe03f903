#include "db/write_set.h"

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace fern {
namespace {

// The set never looks through its table pointers: distinct addresses are enough.
TableImpl* FakeTable(uintptr_t n) { return reinterpret_cast<TableImpl*>(n * 64); }

TEST(WriteSetTest, KeepsEachKeyOnceInTheOrderFirstWritten) {
  WriteSet set;
  EXPECT_TRUE(set.empty());
  set.Note(FakeTable(1), "b", /*own=*/true);
  set.Note(FakeTable(1), "a", /*own=*/true);
  set.Note(FakeTable(1), "b", /*own=*/true);   // written twice: no longer a sole write
  set.Note(FakeTable(2), "a", /*own=*/true);   // another table's key is another entry
  set.Note(FakeTable(1), "c", /*own=*/false);  // a committed child's: never sole
  set.Note(FakeTable(1), "", /*own=*/true);    // the empty key is a key
  ASSERT_EQ(set.size(), 5u);
  EXPECT_EQ(set.key(0), "b");
  EXPECT_FALSE(set.sole_write(0));
  EXPECT_EQ(set.key(1), "a");
  EXPECT_EQ(set.table(1), FakeTable(1));
  EXPECT_TRUE(set.sole_write(1));
  EXPECT_EQ(set.key(2), "a");
  EXPECT_EQ(set.table(2), FakeTable(2));
  EXPECT_TRUE(set.sole_write(2));
  EXPECT_EQ(set.key(3), "c");
  EXPECT_FALSE(set.sole_write(3));
  EXPECT_EQ(set.key(4), "");
  EXPECT_TRUE(set.sole_write(4));
}

TEST(WriteSetTest, ReleaseEmptiesTheSetForReuse) {
  WriteSet set;
  for (int i = 0; i < 1000; ++i) set.Note(FakeTable(1), std::to_string(i), true);
  set.Release();
  EXPECT_TRUE(set.empty());
  set.Note(FakeTable(1), "7", true);
  set.Note(FakeTable(1), "7", true);
  ASSERT_EQ(set.size(), 1u);
  EXPECT_FALSE(set.sole_write(0));
}

// Random writes over three tables, keys of 0 to 300 bytes with many repeats, against a
// std::map model of the same contract.
TEST(WriteSetTest, MatchesAModelOverManyWrites) {
  WriteSet set;
  std::map<std::pair<TableImpl*, std::string>, size_t> position;
  std::vector<std::pair<std::pair<TableImpl*, std::string>, bool>> model;
  std::mt19937 rng(5);
  for (int step = 0; step < 200000; ++step) {
    TableImpl* table = FakeTable(1 + rng() % 3);
    std::string key = std::to_string(rng() % 50000);
    if (rng() % 8 == 0) key.append(rng() % 300, static_cast<char>('a' + rng() % 26));
    const bool own = rng() % 5 != 0;
    set.Note(table, key, own);
    auto [it, inserted] = position.try_emplace({table, key}, model.size());
    if (inserted) {
      model.push_back({{table, key}, own});
    } else {
      model[it->second].second = false;
    }
  }
  ASSERT_EQ(set.size(), model.size());
  for (size_t i = 0; i < model.size(); ++i) {
    ASSERT_EQ(set.table(i), model[i].first.first) << i;
    ASSERT_EQ(set.key(i), model[i].first.second) << i;
    ASSERT_EQ(set.sole_write(i), model[i].second) << i;
  }
}

}  // namespace
}  // namespace fern
