// How flushes reshape the tree around leaves that empty out.
#include <cstdio>
#include <memory>
#include <string>

#include "cachetable/cachetable.h"
#include "ft/tree.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%07d", i);
  return buf;
}

// A queue's consumed head: every row of the first leaf is deleted while its neighbour is
// nearly full, too full to merge with. The emptied leaf must still leave the tree, or every
// read from the head walks its empty basements until some flush happens to merge it.
TEST(TreeRestructureTest, AnEmptiedLeafLeavesTheTreeBesideAFullNeighbour) {
  testing::ScratchDir dir;
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kNone;
  config.node_bytes = 64 << 10;
  config.basement_bytes = 4 << 10;
  config.fanout = 16;
  Cachetable cache(size_t{64} << 20);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(dir.Sub("t.ft"), config, &cache, &tree).ok());

  constexpr int kRows = 400;
  for (int i = 0; i < kRows; ++i) ASSERT_TRUE(tree->Put(Key(i), std::string(1000, 'a')).ok());
  ASSERT_TRUE(tree->Optimize().ok());
  TreeShape shape;
  ASSERT_TRUE(tree->Shape(&shape).ok());
  ASSERT_GE(shape.rows_per_leaf.size(), 3u) << "the test needs several leaves";
  const int first_rows = static_cast<int>(shape.rows_per_leaf[0]);
  const int second_rows = static_cast<int>(shape.rows_per_leaf[1]);
  const size_t leaves = shape.rows_per_leaf.size();

  // Grows the second leaf to ~85% of a node: above the 3/4 that a merge allows, below a split.
  const size_t grown = config.node_bytes * 85 / 100 / static_cast<size_t>(second_rows) - 40;
  for (int i = first_rows; i < first_rows + second_rows; ++i) {
    ASSERT_TRUE(tree->Put(Key(i), std::string(grown, 'b')).ok());
  }
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  ASSERT_EQ(shape.rows_per_leaf.size(), leaves) << "the grown leaf must not split";
  ASSERT_EQ(shape.rows_per_leaf[1], static_cast<uint64_t>(second_rows));

  for (int i = 0; i < first_rows; ++i) ASSERT_TRUE(tree->Delete(Key(i)).ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  EXPECT_EQ(shape.rows_per_leaf.size(), leaves - 1);
  EXPECT_EQ(shape.rows_per_leaf[0], static_cast<uint64_t>(second_rows));
  EXPECT_EQ(tree->stats().empty_leaves_dropped.load(), 1u);

  // The neighbour now answers for the dropped leaf's keys.
  std::string value;
  EXPECT_TRUE(tree->Get(Key(0), &value).IsNotFound());
  ASSERT_TRUE(tree->Put(Key(1), "back").ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Get(Key(1), &value).ok());
  EXPECT_EQ(value, "back");
  ASSERT_TRUE(tree->Get(Key(first_rows), &value).ok());
  EXPECT_EQ(value, std::string(grown, 'b'));
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());

  // And the shape survives a reopen.
  ASSERT_TRUE(FractalTree::Open(dir.Sub("t.ft"), config, &cache, &tree).ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  EXPECT_EQ(shape.rows_per_leaf.size(), leaves - 1);
  EXPECT_EQ(shape.rows, static_cast<uint64_t>(kRows - first_rows + 1));
  ASSERT_TRUE(tree->Get(Key(1), &value).ok());
  EXPECT_EQ(value, "back");
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

}  // namespace
}  // namespace fern
