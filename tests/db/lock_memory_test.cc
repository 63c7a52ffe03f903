// The Env's lock memory stays near its budget (an eighth of cache_bytes, at least 4 MiB):
// row locks with big keys, and a transaction spread over many tables, escalate once the
// Env's locks are over it, instead of growing with the rows (fern.stats: locks.memory_bytes).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int64_t kBudget = int64_t{4} << 20;  // the floor; a 16 MiB cache's eighth is less

class LockMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.cache_bytes = size_t{16} << 20;
    options.sync_commits = false;
    options.lock_timeout_ms = 100;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
  }
  int64_t Stat(const std::string& name) {
    std::string stats;
    EXPECT_TRUE(env_->GetProperty("fern.stats", &stats));
    return testing::StatValue(stats, name);
  }
  std::unique_ptr<Txn> Begin(Isolation isolation) {
    TxnOptions options;
    options.isolation = isolation;
    std::unique_ptr<Txn> txn;
    EXPECT_TRUE(env_->Begin(options, &txn).ok());
    return txn;
  }

  testing::ScratchDir dir_;
  std::unique_ptr<Env> env_;
};

// A serializable reader of absent 8 KiB keys read-locks each: ~25 KB a lock, 50 MB for
// these 2,000 without the budget.
TEST_F(LockMemoryTest, BigKeysEscalateOnceTheLocksAreOverBudget) {
  Table* table;
  ASSERT_TRUE(env_->OpenTable("t", TableOptions(), &table).ok());
  EXPECT_EQ(Stat("locks.memory_budget"), kBudget);
  std::unique_ptr<Txn> reader = Begin(Isolation::kSerializable);
  int64_t most = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string key = testing::NumberedKey(i) + std::string(8 << 10, 'k');
    std::string value;
    ASSERT_TRUE(table->Get(reader.get(), key, &value).IsNotFound());
    if (i % 100 == 99) most = std::max(most, Stat("locks.memory_bytes"));
  }
  EXPECT_GT(most, 0);
  // The budget, plus what escalation leaves: fewer than 128 locks since the last.
  EXPECT_LT(most, 2 * kBudget);
  EXPECT_GE(Stat("table.t.lock_escalations"), 1);
  // The escalated read range still keeps writers out of what was read.
  std::unique_ptr<Txn> writer = Begin(Isolation::kSnapshot);
  EXPECT_TRUE(table->Put(writer.get(), testing::NumberedKey(500) + std::string(8 << 10, 'k'), "v")
                  .IsBusy());
  ASSERT_TRUE(writer->Abort().ok());
  ASSERT_TRUE(reader->Commit().ok());
  EXPECT_EQ(Stat("locks.memory_bytes"), 0);
}

// 2,000 rows in each of 30 tables in one transaction: ~10 MB of row locks, 2,000 a table
// being far below the per-table count that escalates on its own.
TEST_F(LockMemoryTest, ATransactionSpreadOverManyTablesEscalatesToo) {
  std::vector<Table*> tables(30);
  for (size_t t = 0; t < tables.size(); ++t) {
    ASSERT_TRUE(env_->OpenTable("t" + std::to_string(t), TableOptions(), &tables[t]).ok());
  }
  std::unique_ptr<Txn> txn = Begin(Isolation::kSnapshot);
  for (Table* table : tables) {
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(table->Put(txn.get(), testing::NumberedKey(i), "v").ok());
    }
  }
  EXPECT_LT(Stat("locks.memory_bytes"), kBudget + (kBudget / 2));
  int64_t escalations = 0;
  for (size_t t = 0; t < tables.size(); ++t) {
    escalations += Stat("table.t" + std::to_string(t) + ".lock_escalations");
  }
  EXPECT_GE(escalations, 10);
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(Stat("locks.memory_bytes"), 0);
  std::string value;
  ASSERT_TRUE(tables.back()->Get(nullptr, testing::NumberedKey(1999), &value).ok());
  EXPECT_EQ(value, "v");
}

}  // namespace
}  // namespace fern
