// Internal nodes' message buffers do not hold the cache hostage when many tables are
// written at once. One transaction writing round-robin over ten tables keeps ten roots just
// above the leaves, each buffering its byte share of the cache; their buffers grew in step,
// so their arenas doubled together and held twice their bytes, more than the cache. Every
// root was in use, so the evictor wrote them whole again and again without evicting one:
// the commit wrote ~300 MB of internal nodes per table and took ten times as long as the
// same rows in one table. A node the evictor writes but must keep now has its heaviest
// buffer flushed (FractalTree::WrittenButKept).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr size_t kCacheBytes = size_t{16} << 20;
constexpr int kTables = 10;

class BufferMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.cache_bytes = kCacheBytes;
    options.sync_commits = false;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    for (int t = 0; t < kTables; ++t) {
      Table* table;
      ASSERT_TRUE(env_->OpenTable("t" + std::to_string(t), TableOptions(), &table).ok());
      tables_.push_back(table);
    }
  }
  int64_t Stat(const std::string& name) {
    std::string stats;
    EXPECT_TRUE(env_->GetProperty("fern.stats", &stats));
    return testing::StatValue(stats, name);
  }
  // Bytes of internal nodes (written minus leaves written) over every table.
  int64_t InternalBytesWritten() {
    int64_t sum = 0;
    for (int t = 0; t < kTables; ++t) {
      const std::string prefix = "table.t" + std::to_string(t) + ".";
      sum += Stat(prefix + "node_bytes_written") - Stat(prefix + "leaf_bytes_written");
    }
    return sum;
  }

  testing::ScratchDir dir_;
  std::unique_ptr<Env> env_;
  std::vector<Table*> tables_;
};

TEST_F(BufferMemoryTest, ARoundRobinTransactionOverTenTablesCommitsWithoutRewritingRoots) {
  std::unique_ptr<Txn> txn;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &txn).ok());
  // 300,000 rows of ~120 bytes: 36 MB, over twice the cache, 3.6 MB a table.
  // Distinct keys in random order: multiplying by an odd number permutes 32-bit values.
  const std::string value(100, 'v');
  for (uint32_t i = 0; i < 300000; ++i) {
    const std::string key = std::to_string(i * 2654435761u);
    ASSERT_TRUE(tables_[i % kTables]->Put(txn.get(), key, value).ok());
  }
  const int64_t before = InternalBytesWritten();
  ASSERT_TRUE(txn->Commit().ok());
  // The commit's messages flush to the leaves; the roots are written a few times at most
  // (about 1 MB apiece here), not at every evictor pass (190 MB in all before).
  EXPECT_LT(InternalBytesWritten() - before, static_cast<int64_t>(kCacheBytes));
  // And every row is there.
  for (int t = 0; t < kTables; ++t) {
    std::unique_ptr<Cursor> cursor = tables_[t]->NewCursor(nullptr);
    int rows = 0;
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++rows;
    ASSERT_TRUE(cursor->status().ok());
    EXPECT_EQ(rows, 30000) << "table t" << t;
  }
}

}  // namespace
}  // namespace fern
