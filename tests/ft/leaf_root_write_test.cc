// Writes into a tree whose root is a leaf go straight into its basements: whatever order of
// inserts and deletes, the basements stay balanced (none over the basement size unless it
// holds one row, no two neighbours that would fit together in half of it), and every row
// reads back.
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cachetable/cachetable.h"
#include "ft/node_format.h"
#include "ft/tree.h"
#include "ft/tree_file.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr uint32_t kBasementBytes = 1024;

std::string ValueOf(int i) { return std::string(40 + i % 50, static_cast<char>('a' + i % 26)); }

TreeConfig Config() {
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kNone;
  config.node_bytes = 1 << 20;  // the root stays a leaf
  config.basement_bytes = kBasementBytes;
  return config;
}

// The serialized size and row count of each basement of the root, a leaf, as written by the
// last checkpoint.
void RootBasements(const std::string& path, std::vector<uint32_t>* sizes,
                   std::vector<size_t>* rows) {
  std::unique_ptr<TreeFile> file;
  ASSERT_TRUE(TreeFile::Open(path, /*read_only=*/true, &file).ok());
  const BlockNum root = file->header().root;
  std::string bytes;
  ASSERT_TRUE(file->ReadBlock(root, &bytes).ok());
  NodeHeader header;
  size_t needed = 0;
  ASSERT_TRUE(ParseNodeHeader(bytes, bytes.size(), "root", &header, &needed).ok());
  ASSERT_EQ(header.height, 0u) << "the root should still be a leaf";
  for (const PartitionExtent& e : header.extents) {
    std::unique_ptr<Basement> basement;
    ASSERT_TRUE(DecodeLeafPartition(std::string_view(bytes).substr(e.offset, e.size), e,
                                    *BytewiseComparator(), "root", &basement, nullptr)
                    .ok());
    sizes->push_back(e.raw_size);
    rows->push_back(basement->count());
  }
}

TEST(LeafRootWriteTest, InsertsAndDeletesKeepBasementsBalanced) {
  testing::ScratchDir dir;
  const std::string path = dir.path() + "/t.ft";
  Cachetable cache(size_t{64} << 20);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(path, Config(), &cache, &tree).ok());

  constexpr int kRows = 3000;
  std::vector<int> order(kRows);
  for (int i = 0; i < kRows; ++i) order[i] = i;
  std::mt19937 rng(11);
  std::shuffle(order.begin(), order.end(), rng);
  for (int i : order) ASSERT_TRUE(tree->Put(testing::NumberedKey(i), ValueOf(i)).ok());
  // Delete most rows of some stretches, so that their basements shrink until neighbours fit
  // together, and a few scattered ones.
  std::vector<bool> live(kRows, true);
  std::shuffle(order.begin(), order.end(), rng);
  for (int i : order) {
    if (i % 500 < 400 || i % 7 == 0) {
      ASSERT_TRUE(tree->Delete(testing::NumberedKey(i)).ok());
      live[i] = false;
    }
  }
  for (int i = 0; i < kRows; ++i) {
    std::string got;
    Status s = tree->Get(testing::NumberedKey(i), &got);
    if (live[i]) {
      ASSERT_TRUE(s.ok()) << testing::NumberedKey(i) << ": " << s.ToString();
      ASSERT_EQ(got, ValueOf(i));
    } else {
      ASSERT_TRUE(s.IsNotFound()) << testing::NumberedKey(i) << ": " << s.ToString();
    }
  }
  ASSERT_TRUE(tree->Checkpoint().ok());

  std::vector<uint32_t> sizes;
  std::vector<size_t> rows;
  RootBasements(path, &sizes, &rows);
  ASSERT_GT(sizes.size(), 10u);
  for (size_t b = 0; b < sizes.size(); ++b) {
    EXPECT_TRUE(sizes[b] <= kBasementBytes || rows[b] == 1)
        << "basement " << b << " holds " << sizes[b] << " bytes in " << rows[b] << " rows";
    if (b + 1 < sizes.size()) {
      EXPECT_GE(sizes[b] + sizes[b + 1], kBasementBytes / 2)
          << "basements " << b << " and " << b + 1 << " would fit in half a basement";
    }
  }
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

}  // namespace
}  // namespace fern
