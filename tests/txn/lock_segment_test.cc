#include "txn/lock_segment.h"

#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace fern {
namespace {

std::vector<TxnId> Ids(const ReaderIds& readers) {
  return std::vector<TxnId>(readers.ids().begin(), readers.ids().end());
}

TEST(SegmentBoundTest, KeepsKeySideAndEdgeInlineAndOnTheHeap) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{16}, SegmentBound::kInlineKeyBytes,
                      SegmentBound::kInlineKeyBytes + 1, size_t{300}}) {
    std::string key(size, '\0');
    for (size_t i = 0; i < size; ++i) key[i] = static_cast<char>(i * 37 + 1);
    for (bool after : {false, true}) {
      SegmentBound bound(key, after, 0);
      EXPECT_EQ(bound.key(), key) << size;
      EXPECT_EQ(bound.after(), after);
      EXPECT_EQ(bound.edge(), 0);
    }
  }
  SegmentBound low("", false, -1);
  SegmentBound high("", false, 1);
  EXPECT_EQ(low.edge(), -1);
  EXPECT_EQ(high.edge(), 1);
  EXPECT_FALSE(high.after());
}

TEST(SegmentBoundTest, CopiesAreDeepAndMovesHandOverTheKey) {
  const std::string long_key(100, 'x');
  const std::string short_key = "short";
  SegmentBound a(long_key, true, 0);
  SegmentBound copy(a);
  EXPECT_EQ(copy.key(), long_key);
  EXPECT_NE(copy.key().data(), a.key().data());
  EXPECT_TRUE(copy.after());

  SegmentBound moved(std::move(a));
  EXPECT_EQ(moved.key(), long_key);
  a = SegmentBound(short_key, false, 0);  // a moved-from bound takes a new value
  EXPECT_EQ(a.key(), short_key);

  copy = a;  // a heap key replaced by an inline one
  EXPECT_EQ(copy.key(), short_key);
  EXPECT_FALSE(copy.after());
  copy = moved;  // and back
  EXPECT_EQ(copy.key(), long_key);
  copy = std::move(moved);
  EXPECT_EQ(copy.key(), long_key);
  SegmentBound& self = copy;
  copy = self;
  EXPECT_EQ(copy.key(), long_key);

  // Relocation by a growing vector moves every bound.
  std::vector<SegmentBound> bounds;
  for (int i = 0; i < 100; ++i) {
    bounds.emplace_back(std::string(static_cast<size_t>(i), static_cast<char>('a' + i % 26)),
                        i % 2 == 0, 0);
  }
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(bounds[i].key(),
              std::string(static_cast<size_t>(i), static_cast<char>('a' + i % 26)));
    EXPECT_EQ(bounds[i].after(), i % 2 == 0);
  }
}

// Random inserts and erases, checked against a std::set; ids include ones with the top bit
// set, which cannot be kept in place.
TEST(ReaderIdsTest, MatchesASetUnderRandomInsertsAndErases) {
  std::mt19937_64 rng(5);
  const TxnId pool[] = {1, 2, 3, 7, 1000, (TxnId{1} << 63) + 4, ~TxnId{0}};
  ReaderIds readers;
  std::set<TxnId> model;
  for (int step = 0; step < 20000; ++step) {
    const TxnId id = pool[rng() % std::size(pool)];
    switch (rng() % 5) {
      case 0:
      case 1:
        readers.Insert(id);
        model.insert(id);
        break;
      case 2:
      case 3:
        readers.Erase(id);
        model.erase(id);
        break;
      default: {
        ReaderIds copy(readers);
        EXPECT_TRUE(copy == readers);
        ReaderIds moved(std::move(copy));
        EXPECT_TRUE(moved == readers);
        ReaderIds assigned;
        assigned.Insert(9);
        assigned = moved;
        EXPECT_TRUE(assigned == readers);
        if (rng() % 50 == 0) {
          readers.Clear();
          model.clear();
        }
      }
    }
    ASSERT_EQ(Ids(readers), std::vector<TxnId>(model.begin(), model.end())) << "step " << step;
    ASSERT_EQ(readers.empty(), model.empty());
    ASSERT_EQ(readers.Contains(id), model.count(id) == 1);
  }
}

TEST(ReaderIdsTest, EqualityComparesTheIds) {
  ReaderIds a;
  ReaderIds b;
  EXPECT_TRUE(a == b);
  a.Insert(5);
  EXPECT_FALSE(a == b);
  b.Insert(5);
  EXPECT_TRUE(a == b);
  a.Insert(6);
  b.Insert(7);
  EXPECT_FALSE(a == b);
  a.Erase(6);
  b.Erase(7);
  EXPECT_TRUE(a == b);
}

}  // namespace
}  // namespace fern
