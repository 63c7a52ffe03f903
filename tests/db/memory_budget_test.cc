// What an Env keeps outside its cache stays bounded (fern.stats: locks.memory_bytes and
// txn.write_set_memory_bytes). A transaction's row locks escalate once they cost 24 MiB in
// all its tables, however few they are (big keys) or however spread; many mid-size
// transactions spill their write sets once these together are over their budget (an
// eighth of cache_bytes, at least 16 MiB), and do not escalate each other's locks.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int64_t kEscalateBytes = int64_t{24} << 20;
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

// A serializable reader of absent 8 KiB keys read-locks each: ~25 KB a lock, 75 MB for
// these 3,000 without the byte threshold (the count's is 131,072).
TEST_F(MemoryBudgetTest, BigKeysEscalateOnceAnOwnersLocksCostTooMuch) {
  Table* table;
  ASSERT_TRUE(env_->OpenTable("t", TableOptions(), &table).ok());
  std::unique_ptr<Txn> reader = Begin(Isolation::kSerializable);
  int64_t most = 0;
  auto key = [](int i) { return testing::NumberedKey(i) + std::string(8 << 10, 'k'); };
  for (int i = 0; i < 3000; ++i) {
    std::string value;
    ASSERT_TRUE(table->Get(reader.get(), key(i), &value).IsNotFound());
    if (i % 100 == 99) most = std::max(most, Stat("locks.memory_bytes"));
  }
  EXPECT_GT(most, kEscalateBytes / 2);
  // The threshold, plus the 128 locks after which escalation runs again.
  EXPECT_LT(most, kEscalateBytes + (int64_t{4} << 20));
  EXPECT_GE(Stat("table.t.lock_escalations"), 1);
  // The escalated read range still keeps writers out of what was read.
  std::unique_ptr<Txn> writer = Begin(Isolation::kSnapshot);
  EXPECT_TRUE(table->Put(writer.get(), key(500), "v").IsBusy());
  ASSERT_TRUE(writer->Abort().ok());
  ASSERT_TRUE(reader->Commit().ok());
  EXPECT_EQ(Stat("locks.memory_bytes"), 0);
}

// One transaction writing 20,000 rows in each of 12 tables: ~40 MB of row locks in all,
// ~3.4 MB in each table. Its account counts them all, so it escalates in the tables it goes
// on writing in once the sum passes 24 MiB.
TEST_F(MemoryBudgetTest, ATransactionSpreadOverManyTablesEscalates) {
  std::vector<Table*> tables(12);
  for (size_t t = 0; t < tables.size(); ++t) {
    ASSERT_TRUE(env_->OpenTable("t" + std::to_string(t), TableOptions(), &tables[t]).ok());
  }
  std::unique_ptr<Txn> txn = Begin(Isolation::kSnapshot);
  int64_t most = 0;
  for (Table* table : tables) {
    for (int i = 0; i < 20000; ++i) {
      ASSERT_TRUE(table->Put(txn.get(), testing::NumberedKey(i), "v").ok());
    }
    most = std::max(most, Stat("locks.memory_bytes"));
  }
  EXPECT_GT(most, kEscalateBytes / 2);
  EXPECT_LT(most, kEscalateBytes + (int64_t{4} << 20));
  EXPECT_GE(Stat("table.t11.lock_escalations"), 1);
  EXPECT_EQ(Stat("table.t0.lock_escalations"), 0);
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(Stat("locks.memory_bytes"), 0);
  std::string value;
  ASSERT_TRUE(tables.back()->Get(nullptr, testing::NumberedKey(19999), &value).ok());
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
  // Their locks (~110 MB together, ~9 MB each) stay: each owner is under the threshold.
  EXPECT_EQ(Stat("table.t.lock_escalations"), 0);
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
