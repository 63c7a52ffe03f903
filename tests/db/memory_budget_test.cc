// What an Env keeps outside its cache stays near its budgets (an eighth of cache_bytes each,
// at least 4 MiB for locks and 16 MiB for write sets; fern.stats: locks.memory_bytes and
// txn.write_set_memory_bytes). Row locks with big keys, and a transaction spread over many
// tables, escalate once the Env's locks are over theirs; many mid-size transactions spill
// their write sets once they are over theirs.
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
constexpr int64_t kWriteSetBudget = int64_t{16} << 20;

class MemoryBudgetTest : public ::testing::Test {
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
TEST_F(MemoryBudgetTest, BigKeysEscalateOnceTheLocksAreOverBudget) {
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
TEST_F(MemoryBudgetTest, ATransactionSpreadOverManyTablesEscalatesToo) {
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

// 12 transactions live at once, each writing 40,000 rows with 64-byte keys: ~4.8 MB of
// write set each, under the 8 MiB at which one spills on its own; ~58 MB together.
TEST_F(MemoryBudgetTest, ManyLiveTransactionsSpillTheirWriteSetsOnceOverBudget) {
  Table* table;
  ASSERT_TRUE(env_->OpenTable("t", TableOptions(), &table).ok());
  EXPECT_EQ(Stat("txn.write_set_memory_budget"), kWriteSetBudget);
  constexpr int kTxns = 12;
  constexpr int kRows = 40000;
  std::vector<std::unique_ptr<Txn>> txns;
  for (int t = 0; t < kTxns; ++t) txns.push_back(Begin(Isolation::kSnapshot));
  auto key = [](int t, int i) {
    return "t" + std::to_string(10 + t) + testing::NumberedKey(i) + std::string(40, 'k');
  };
  int64_t most = 0;
  for (int i = 0; i < kRows; ++i) {
    for (int t = 0; t < kTxns; ++t) ASSERT_TRUE(table->Put(txns[t].get(), key(t, i), "v").ok());
    if (i % 2000 == 1999) most = std::max(most, Stat("txn.write_set_memory_bytes"));
  }
  // The budget, plus under a mebibyte a transaction not yet spilled since it went over.
  EXPECT_GT(most, 0);
  EXPECT_LT(most, kWriteSetBudget + kTxns * (int64_t{1} << 20));
  EXPECT_GE(Stat("txn.rollback_spills"), kTxns);
  for (auto& txn : txns) ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(Stat("txn.write_set_memory_bytes"), 0);
  EXPECT_EQ(Stat("locks.memory_bytes"), 0);
  std::string value;
  ASSERT_TRUE(table->Get(nullptr, key(kTxns - 1, kRows - 1), &value).ok());
  ASSERT_TRUE(table->Get(nullptr, key(0, 0), &value).ok());
}

}  // namespace
}  // namespace fern
