// A tree's values stored out of line, read through it: row batches over many big rows stay
// within their byte budget in both directions and still cover every row once, and reads
// that only ask whether a row exists never read its value block.
#include <memory>
#include <string>
#include <vector>

#include "cachetable/cachetable.h"
#include "ft/out_of_line_value.h"
#include "ft/tree.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int kRows = 120;
constexpr size_t kValueBytes = 100000;  // out of line: >= kOutOfLineValueBytes

std::string BigValue(int i) {
  std::string value(kValueBytes, static_cast<char>('a' + i % 26));
  value.replace(0, 8, testing::NumberedKey(i));
  return value;
}

class TreeValuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TreeConfig config;
    config.comparator = BytewiseComparator();
    ASSERT_TRUE(FractalTree::Create(dir_.Sub("t.ft"), config, &cache_, &tree_).ok());
    for (int i = 0; i < kRows; ++i) {
      ASSERT_TRUE(tree_->Put(testing::NumberedKey(i), BigValue(i)).ok());
    }
    ASSERT_TRUE(tree_->Optimize().ok());
    ASSERT_EQ(tree_->value_counts().written, uint64_t{kRows});
  }
  void TearDown() override { ASSERT_TRUE(tree_->Close(/*checkpoint=*/false).ok()); }

  // The most rows a batch may hold: past the first, values up to the budget.
  static constexpr size_t kMostRows = (size_t{4} << 20) / kValueBytes + 1;

  testing::ScratchDir dir_;
  Cachetable cache_{size_t{16} << 20};
  std::unique_ptr<FractalTree> tree_;
};

TEST_F(TreeValuesTest, ForwardBatchesStayWithinTheByteBudgetAndCoverEveryRow) {
  std::vector<int> seen;
  std::string from;
  RowBatch batch;
  for (int batches = 0;; ++batches) {
    ASSERT_LT(batches, kRows) << "no progress";
    ASSERT_TRUE(tree_->ReadBatch(FractalTree::Locate::kAtOrAfter, from, 512, &batch).ok());
    EXPECT_GE(batch.size(), 1u);
    EXPECT_LE(batch.size(), kMostRows);
    for (size_t r = 0; r < batch.size(); ++r) {
      const int i = static_cast<int>(seen.size());
      ASSERT_EQ(batch.key(r), testing::NumberedKey(i));
      ASSERT_EQ(batch.value(r), BigValue(i));
      seen.push_back(i);
    }
    if (!batch.has_upper) break;
    from = batch.upper;
  }
  EXPECT_EQ(seen.size(), size_t{kRows});
}

TEST_F(TreeValuesTest, BackwardBatchesStayWithinTheByteBudgetAndCoverEveryRow) {
  int next = kRows - 1;  // the next row expected, walking down
  RowBatch batch;
  ASSERT_TRUE(tree_->ReadBatch(FractalTree::Locate::kLast, "", 512, &batch).ok());
  for (int batches = 0;; ++batches) {
    ASSERT_LT(batches, kRows) << "no progress";
    EXPECT_GE(batch.size(), 1u);
    EXPECT_LE(batch.size(), kMostRows);
    for (size_t r = batch.size(); r-- > 0;) {
      ASSERT_EQ(batch.key(r), testing::NumberedKey(next));
      ASSERT_EQ(batch.value(r), BigValue(next));
      --next;
    }
    if (!batch.has_lower) break;
    const std::string before = batch.lower;
    ASSERT_TRUE(tree_->ReadBatch(FractalTree::Locate::kBefore, before, 512, &batch).ok());
  }
  EXPECT_EQ(next, -1);
}

TEST_F(TreeValuesTest, ExistenceChecksReadNoValueBlock) {
  const uint64_t read = tree_->value_counts().read;
  EXPECT_TRUE(tree_->Get(testing::NumberedKey(7), /*value=*/nullptr).ok());
  EXPECT_TRUE(tree_->Get("absent", /*value=*/nullptr).IsNotFound());
  EXPECT_TRUE(tree_->Insert(testing::NumberedKey(8), "again").IsAlreadyExists());
  EXPECT_EQ(tree_->value_counts().read, read);
  std::string value;
  ASSERT_TRUE(tree_->Get(testing::NumberedKey(7), &value).ok());
  EXPECT_EQ(value, BigValue(7));
  EXPECT_EQ(tree_->value_counts().read, read + 1);
}

TEST_F(TreeValuesTest, CachedValuesAreReadOnceAndNeverOutliveTheirBlock) {
  const uint64_t read = tree_->value_counts().read;
  std::string value;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(tree_->Get(testing::NumberedKey(3), &value).ok());
    EXPECT_EQ(value, BigValue(3));
  }
  EXPECT_EQ(tree_->value_counts().read, read + 1);  // then cached
  // Rewriting the rows frees their blocks, whose numbers new values then take: no read may
  // meet a freed block's cached value.
  for (int round = 1; round <= 3; ++round) {
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(tree_->Put(testing::NumberedKey(i), BigValue(i + 100 * round)).ok());
    }
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(tree_->Get(testing::NumberedKey(i), &value).ok());
      ASSERT_EQ(value, BigValue(i + 100 * round)) << i << " round " << round;
    }
  }
  EXPECT_EQ(tree_->value_counts().freed, 30u);
}

TEST(TreeValuesWriteTest, EveryWriteAFileRefusesFailsAndCounts) {
  testing::ScratchDir dir;
  const std::string path = dir.Sub("t.ft");
  {
    std::unique_ptr<TreeFile> file;
    ASSERT_TRUE(TreeFile::Create(path, FileHeader(), &file).ok());
  }
  std::unique_ptr<TreeFile> read_only;
  ASSERT_TRUE(TreeFile::Open(path, /*read_only=*/true, &read_only).ok());
  TreeValues values(read_only.get(), [] { return std::pair(Compression::kZstd, 0); });
  ASSERT_EQ(values.out_of_line_threshold(), kOutOfLineValueBytes);
  std::string ref;
  EXPECT_TRUE(values.Write(BigValue(1), &ref).IsNotSupported());
  EXPECT_TRUE(values.Write(BigValue(2), &ref).IsNotSupported());
  EXPECT_EQ(values.counts().write_failures, 2u);
  EXPECT_EQ(values.counts().written, 0u);
  EXPECT_EQ(read_only->stats().blocks, 0u);
}

}  // namespace
}  // namespace fern
