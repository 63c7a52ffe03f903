// How flushes reshape the tree around leaves that empty out.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "cachetable/cachetable.h"
#include "ft/tree.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

// Uncompressed, so that node sizes follow the rows written.
TreeConfig Config(uint32_t node_bytes, uint32_t basement_bytes, uint32_t fanout) {
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kNone;
  config.node_bytes = node_bytes;
  config.basement_bytes = basement_bytes;
  config.fanout = fanout;
  return config;
}

// A tree in a fresh directory over a cache of its own.
struct ScratchTree {
  ScratchTree(const TreeConfig& tree_config, size_t cache_bytes)
      : config(tree_config), cache(cache_bytes) {}
  Status Create() { return FractalTree::Create(dir.Sub("t.ft"), config, &cache, &tree); }
  Status Reopen() { return FractalTree::Open(dir.Sub("t.ft"), config, &cache, &tree); }

  testing::ScratchDir dir;
  const TreeConfig config;
  Cachetable cache;
  std::unique_ptr<FractalTree> tree;
};

// A queue's consumed head: every row of the first leaf is deleted while its neighbour is
// nearly full, too full to merge with. The emptied leaf must still leave the tree, or every
// read from the head walks its empty basements until some flush happens to merge it.
TEST(TreeRestructureTest, AnEmptiedLeafLeavesTheTreeBesideAFullNeighbour) {
  ScratchTree scratch(Config(64 << 10, 4 << 10, 16), size_t{64} << 20);
  ASSERT_TRUE(scratch.Create().ok());
  const TreeConfig& config = scratch.config;
  std::unique_ptr<FractalTree>& tree = scratch.tree;

  constexpr int kRows = 400;
  for (int i = 0; i < kRows; ++i)
    ASSERT_TRUE(tree->Put(testing::NumberedKey(i), std::string(1000, 'a')).ok());
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
    ASSERT_TRUE(tree->Put(testing::NumberedKey(i), std::string(grown, 'b')).ok());
  }
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  ASSERT_EQ(shape.rows_per_leaf.size(), leaves) << "the grown leaf must not split";
  ASSERT_EQ(shape.rows_per_leaf[1], static_cast<uint64_t>(second_rows));

  for (int i = 0; i < first_rows; ++i) ASSERT_TRUE(tree->Delete(testing::NumberedKey(i)).ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  EXPECT_EQ(shape.rows_per_leaf.size(), leaves - 1);
  EXPECT_EQ(shape.rows_per_leaf[0], static_cast<uint64_t>(second_rows));
  EXPECT_EQ(tree->stats().empty_leaves_dropped.load(), 1u);

  // The neighbour now answers for the dropped leaf's keys.
  std::string value;
  EXPECT_TRUE(tree->Get(testing::NumberedKey(0), &value).IsNotFound());
  ASSERT_TRUE(tree->Put(testing::NumberedKey(1), "back").ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Get(testing::NumberedKey(1), &value).ok());
  EXPECT_EQ(value, "back");
  ASSERT_TRUE(tree->Get(testing::NumberedKey(first_rows), &value).ok());
  EXPECT_EQ(value, std::string(grown, 'b'));
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());

  // And the shape survives a reopen.
  ASSERT_TRUE(scratch.Reopen().ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  EXPECT_EQ(shape.rows_per_leaf.size(), leaves - 1);
  EXPECT_EQ(shape.rows, static_cast<uint64_t>(kRows - first_rows + 1));
  ASSERT_TRUE(tree->Get(testing::NumberedKey(1), &value).ok());
  EXPECT_EQ(value, "back");
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

// Random puts and deletes of whole key ranges on a tree of small nodes under a small cache,
// so leaves empty out, drop, split and merge at every height while nodes are evicted and
// reread; every key is checked against a model after each round, and after a reopen.
TEST(TreeRestructureTest, RangeDeletesThatEmptyLeavesKeepEveryKey) {
  ScratchTree scratch(Config(16 << 10, 2 << 10, 4), size_t{1} << 20);
  ASSERT_TRUE(scratch.Create().ok());
  std::unique_ptr<FractalTree>& tree = scratch.tree;

  constexpr int kKeys = 6000;
  std::map<int, std::string> model;
  std::mt19937 rng(7);
  auto check_all = [&](int round) {
    std::string value;
    for (int k = 0; k < kKeys; ++k) {
      Status s = tree->Get(testing::NumberedKey(k), &value);
      auto it = model.find(k);
      if (it == model.end()) {
        ASSERT_TRUE(s.IsNotFound()) << "round " << round << " key " << k << ": " << s.ToString();
      } else {
        ASSERT_TRUE(s.ok()) << "round " << round << " key " << k << ": " << s.ToString();
        ASSERT_EQ(value, it->second) << "round " << round << " key " << k;
      }
    }
  };
  for (int round = 0; round < 24; ++round) {
    for (int n = 0; n < 2500; ++n) {
      const int k = static_cast<int>(rng() % kKeys);
      std::string value(40 + rng() % 160, static_cast<char>('a' + round % 26));
      ASSERT_TRUE(tree->Put(testing::NumberedKey(k), value).ok());
      model[k] = std::move(value);
    }
    for (int r = 0; r < 3; ++r) {  // ranges of 300-1,500 keys: whole leaves at a time
      const int first = static_cast<int>(rng() % kKeys);
      const int last = std::min(kKeys, first + 300 + static_cast<int>(rng() % 1200));
      for (int k = first; k < last; ++k) {
        ASSERT_TRUE(tree->Delete(testing::NumberedKey(k)).ok());
        model.erase(k);
      }
    }
    if (round % 3 == 2) {
      ASSERT_TRUE(tree->Optimize().ok());
    }
    ASSERT_NO_FATAL_FAILURE(check_all(round));
  }
  EXPECT_GT(tree->stats().empty_leaves_dropped.load(), 0u);
  TreeShape shape;
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  EXPECT_EQ(shape.rows, model.size());
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  ASSERT_TRUE(scratch.Reopen().ok());
  ASSERT_NO_FATAL_FAILURE(check_all(-1));
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

}  // namespace
}  // namespace fern
