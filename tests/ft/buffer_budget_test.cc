// BufferBudget: height-1 nodes share a byte budget for their buffers while the cache is
// full, within [node_bytes, kMaxGrowth * node_bytes] each, and trees give their share back
// when they close; and every internal node keeps to its share of what the buffers may fill
// together (FitLimit), so that the upper levels stay in the cache.
#include "ft/buffer_budget.h"

#include <limits>
#include <memory>
#include <random>
#include <string>

#include "cachetable/cachetable.h"
#include "ft/tree.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

// No bound on what the buffers may fill together.
constexpr size_t kNoFit = std::numeric_limits<size_t>::max();

TEST(BufferBudgetTest, EachHeight1NodeGetsItsShareWithinBounds) {
  constexpr size_t kNode = 1 << 20;
  BufferBudget budget(size_t{12} << 20, kNoFit);
  // Nothing counted yet: one node's share, capped at kMaxGrowth node_bytes.
  EXPECT_EQ(budget.LimitFor(kNode), BufferBudget::kMaxGrowth * kNode);
  budget.Replace(0, 4);  // a tree with 4 height-1 nodes
  EXPECT_EQ(budget.LimitFor(kNode), 3 * kNode);
  budget.Replace(0, 2);  // a second tree
  EXPECT_EQ(budget.LimitFor(kNode), 2 * kNode);
  budget.Replace(4, 10);  // the first tree grew
  EXPECT_EQ(budget.nodes(), 12u);
  EXPECT_EQ(budget.LimitFor(kNode), kNode);
  budget.Replace(0, 100);  // far more nodes than the budget covers: never below node_bytes
  EXPECT_EQ(budget.LimitFor(kNode), kNode);
  budget.Replace(100, 0);
  budget.Replace(10, 0);
  budget.Replace(2, 0);
  EXPECT_EQ(budget.nodes(), 0u);
}

TEST(BufferBudgetTest, FitLimitSharesTheFitAmongHeight1NodesAboveAFloor) {
  constexpr size_t kNode = 1 << 20;
  BufferBudget budget(0, size_t{12} << 20);
  EXPECT_EQ(budget.LimitFor(kNode), kNode);  // no growth budget
  EXPECT_EQ(budget.FitLimit(1024), size_t{12} << 20);
  budget.Replace(0, 24);
  EXPECT_EQ(budget.FitLimit(1024), size_t{512} << 10);  // below node_bytes: it must fit
  budget.Replace(24, 100000);
  EXPECT_EQ(budget.FitLimit(1024), 1024u);
}

std::string ValueOf(int i) {
  return std::string(60, static_cast<char>('a' + i % 26)) + testing::NumberedKey(i);
}

struct RunResult {
  uint64_t height1_messages = 0;
  uint64_t height1_nodes = 0;
  uint64_t leaf_bytes_written = 0;
  uint64_t largest_flush_bytes = 0;
  size_t budget_nodes_while_open = 0;
  size_t budget_nodes_after_close = 0;
};

// Random-order (or, with `in_order`, ascending) puts of `rows` rows into a new tree under a
// cache of `cache_bytes`, with `budget` (may be null); checks every row, then reports the
// tree's shape and writes.
void WriteAndCheck(const std::string& path, size_t cache_bytes, BufferBudget* budget, int rows,
                   RunResult* result, bool in_order = false) {
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kNone;
  config.node_bytes = 64 << 10;
  config.basement_bytes = 4 << 10;
  config.buffer_budget = budget;
  Cachetable cache(cache_bytes);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
  for (int n = 0; n < rows; ++n) {
    const int i = in_order ? n : static_cast<int>((static_cast<uint64_t>(n) * 7919) % rows);
    ASSERT_TRUE(tree->Put(testing::NumberedKey(i), ValueOf(i)).ok());
  }
  TreeShape shape;
  ASSERT_TRUE(tree->Shape(&shape).ok());
  ASSERT_GE(shape.height, 3) << "the test needs height-1 nodes below the root";
  result->height1_messages = shape.messages_per_level[1];
  result->height1_nodes = shape.nodes_per_level[1];
  result->leaf_bytes_written = tree->stats().leaf_bytes_written.load();
  result->largest_flush_bytes = tree->stats().largest_flush_bytes.load();
  if (budget != nullptr) result->budget_nodes_while_open = budget->nodes();
  std::string value;
  for (int i = 0; i < rows; ++i) {
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok()) << i;
    ASSERT_EQ(value, ValueOf(i)) << i;
  }
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  // Still allocated, as a dropped table's tree stays.
  if (budget != nullptr) result->budget_nodes_after_close = budget->nodes();
}

// The same writes into two trees: one without a budget, one with half the cache as its
// budget.
void WriteWithAndWithout(size_t cache_bytes, int rows, RunResult* fixed, RunResult* budgeted) {
  testing::ScratchDir dir;
  WriteAndCheck(dir.Sub("fixed.ft"), cache_bytes, nullptr, rows, fixed);
  BufferBudget budget(cache_bytes / 2, kNoFit);
  WriteAndCheck(dir.Sub("budgeted.ft"), cache_bytes, &budget, rows, budgeted);
}

// ~1.8 MB of rows through a 1 MiB cache: leaves are evicted and rewritten all along. With
// half the cache as the budget, height-1 buffers grow past node_bytes, and each leaf
// rewrite carries more messages.
TEST(TreeBufferBudgetTest, FullCacheLetsHeight1BuffersGrowAndRewritesLeavesLess) {
  RunResult fixed, budgeted;
  WriteWithAndWithout(size_t{1} << 20, 20000, &fixed, &budgeted);
  if (HasFatalFailure()) return;
  EXPECT_EQ(budgeted.budget_nodes_while_open, budgeted.height1_nodes);
  EXPECT_EQ(budgeted.budget_nodes_after_close, 0u) << "a closed tree keeps no share";
  // A message here encodes to ~90 bytes; node_bytes holds ~730 of them.
  const double fixed_per_node =
      static_cast<double>(fixed.height1_messages) / static_cast<double>(fixed.height1_nodes);
  const double budgeted_per_node =
      static_cast<double>(budgeted.height1_messages) / static_cast<double>(budgeted.height1_nodes);
  EXPECT_GT(budgeted_per_node, 1.3 * fixed_per_node)
      << budgeted.height1_nodes << " nodes budgeted, " << fixed.height1_nodes << " fixed";
  EXPECT_LT(budgeted.leaf_bytes_written * 10, fixed.leaf_bytes_written * 8)
      << "budgeted " << budgeted.leaf_bytes_written << " fixed " << fixed.leaf_bytes_written;
}

// While the cache has room, a budget changes nothing: the same writes leave the same
// buffers.
TEST(TreeBufferBudgetTest, RoomInTheCacheKeepsNodeBytes) {
  RunResult fixed, budgeted;
  WriteWithAndWithout(size_t{256} << 20, 40000, &fixed, &budgeted);
  if (HasFatalFailure()) return;
  EXPECT_EQ(budgeted.height1_messages, fixed.height1_messages);
  EXPECT_EQ(budgeted.height1_nodes, fixed.height1_nodes);
}

// An ascending load sends every message to one child. However much the budget lets a node
// hold, no flush moves more than node_bytes (plus the message that crossed it) into one
// child: a leaf is never handed several times its size at once.
TEST(TreeBufferBudgetTest, AnAscendingLoadFlushesAtMostNodeBytesIntoOneChild) {
  testing::ScratchDir dir;
  BufferBudget budget(size_t{1} << 19, kNoFit);
  RunResult run;
  WriteAndCheck(dir.Sub("ascending.ft"), size_t{1} << 20, &budget, 40000, &run,
                /*in_order=*/true);
  if (HasFatalFailure()) return;
  EXPECT_GT(run.largest_flush_bytes, size_t{48} << 10);
  EXPECT_LE(run.largest_flush_bytes, (size_t{64} << 10) + 200);
}

// Random writes into a tree whose height-1 nodes could buffer more than the whole cache at
// node_bytes each, then random point reads. Without the fit bound most reads evicted and
// re-read an internal node whole; with it the internal nodes stay cached. Returns internal
// nodes read per thousand gets on the fresh tree and after the writes.
struct ReadCost {
  uint64_t fresh = 0;
  uint64_t after_writes = 0;
};

ReadCost NodesReadPerThousandGets(bool fit) {
  testing::ScratchDir dir;
  constexpr size_t kCache = size_t{1} << 20;
  constexpr int kRows = 40000;
  BufferBudget budget(0, fit ? kCache / 100 * 60 : kNoFit);
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kNone;
  config.node_bytes = 64 << 10;
  config.basement_bytes = 4 << 10;
  config.fanout = 4;  // many height-1 nodes for few rows
  config.buffer_budget = &budget;
  Cachetable cache(kCache);
  std::unique_ptr<FractalTree> tree;
  EXPECT_TRUE(FractalTree::Create(dir.Sub("t.ft"), config, &cache, &tree).ok());
  std::mt19937_64 rng(1);
  auto gets = [&] {
    const uint64_t before = tree->stats().internal_nodes_read.load();
    std::string value;
    for (int n = 0; n < 4000; ++n) {
      Status s = tree->Get(testing::NumberedKey(static_cast<int>(rng() % (2 * kRows))), &value);
      EXPECT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
    }
    return (tree->stats().internal_nodes_read.load() - before) / 4;
  };
  for (int i = 0; i < kRows; ++i)
    EXPECT_TRUE(tree->Put(testing::NumberedKey(2 * i), ValueOf(i)).ok());  // in order
  ReadCost cost;
  cost.fresh = gets();
  for (int n = 0; n < kRows; ++n) {
    const int i = static_cast<int>(rng() % (2 * kRows));
    EXPECT_TRUE(tree->Put(testing::NumberedKey(i), ValueOf(i)).ok());
  }
  TreeShape shape;
  EXPECT_TRUE(tree->Shape(&shape).ok());
  EXPECT_GT(shape.nodes_per_level[1] * config.node_bytes, kCache) << "the test needs this";
  cost.after_writes = gets();
  EXPECT_TRUE(tree->Close(/*checkpoint=*/false).ok());
  return cost;
}

TEST(TreeBufferBudgetTest, InternalBuffersKeepToTheFitSoReadsDoNotRereadInternalNodes) {
  const ReadCost unbounded = NodesReadPerThousandGets(/*fit=*/false);
  const ReadCost bounded = NodesReadPerThousandGets(/*fit=*/true);
  EXPECT_LT(bounded.after_writes, 2 * bounded.fresh + 200)
      << "fresh " << bounded.fresh << "; unbounded: " << unbounded.after_writes;
  EXPECT_GT(unbounded.after_writes, 2 * bounded.after_writes)
      << "fresh " << unbounded.fresh << ", bounded " << bounded.after_writes;
}

// With a buffer budget, a leaf splits at an even share of a quarter of the cache among the
// Env's open trees, when that is below node_bytes: every tree keeps a hot leaf or two
// cached, and twenty trees with 2 MiB leaves at a 16 MiB cache made the evictor rewrite them
// over and over. Alone, the same tree keeps node_bytes; as the other trees close, its leaves
// may grow back.
TEST(TreeBufferBudgetTest, LeavesSplitAtTheirTreesShareOfTheCache) {
  constexpr size_t kCache = size_t{16} << 20;
  constexpr int kRows = 8000;  // ~0.8 MB of rows: one leaf under node_bytes
  auto leaves_after_load = [&](int other_trees) {
    testing::ScratchDir dir;
    BufferBudget budget(0, kNoFit);
    budget.AddTree(other_trees);
    TreeConfig config;
    config.comparator = BytewiseComparator();
    config.compression = Compression::kNone;
    config.node_bytes = 2 << 20;
    config.basement_bytes = 16 << 10;
    config.buffer_budget = &budget;
    Cachetable cache(kCache);
    std::unique_ptr<FractalTree> tree;
    EXPECT_TRUE(FractalTree::Create(dir.Sub("t.ft"), config, &cache, &tree).ok());
    for (int i = 0; i < kRows; ++i) {
      EXPECT_TRUE(tree->Put(testing::NumberedKey(i * 7919 % kRows), ValueOf(i)).ok());
    }
    EXPECT_TRUE(tree->Optimize().ok());
    TreeShape shape;
    EXPECT_TRUE(tree->Shape(&shape).ok());
    EXPECT_EQ(budget.trees(), static_cast<size_t>(other_trees) + 1);
    EXPECT_TRUE(tree->Close(/*checkpoint=*/false).ok());
    EXPECT_EQ(budget.trees(), static_cast<size_t>(other_trees));
    return shape.nodes_per_level.empty() ? uint64_t{0} : shape.nodes_per_level[0];
  };
  EXPECT_EQ(leaves_after_load(0), 1u);
  // 20 trees: 16 MiB / 4 / 20 = ~200 KiB a leaf.
  const uint64_t leaves = leaves_after_load(19);
  EXPECT_GE(leaves, 3u);
  EXPECT_LE(leaves, 20u);
}

}  // namespace
}  // namespace fern
