// Crash tests of multi-row transactions: a child process runs transactions of several rows,
// with a committed and an aborted nested child each and every fifth transaction aborted,
// while checkpoints run every few milliseconds; the parent kills it with SIGKILL at a random
// moment, reopens and checks that every transaction is all or nothing, and (without synced
// commits) that the transactions present are a prefix of those that committed, and (with
// them) that every acknowledged commit is present.
//
// Checkpoints that begin while a transaction is live and end after it committed are the
// case this exists for: replay must still know every key the transaction wrote. The same
// rounds run under power loss too (power_loss.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "db/kill_child.h"
#include "db/power_loss.h"
#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int kRowsPerTxn = 8;

std::string RowKey(int64_t txn, int row) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "t%08lld_%03d", static_cast<long long>(txn), row);
  return buf;
}

bool Aborted(int64_t txn) { return txn % 5 == 0; }

Options TxnCrashOptions(bool sync) {
  Options options;
  options.sync_commits = sync;
  options.cache_bytes = size_t{8} << 20;
  options.checkpoint_period_ms = 20;
  return options;
}

TableOptions TxnCrashTableOptions() {
  TableOptions options;
  options.node_bytes = 64 << 10;
  options.basement_bytes = 8 << 10;
  return options;
}

// The child: transactions from `first` on; acknowledges each commit through `fd`.
[[noreturn]] void TxnWriterMain(const std::string& dir, bool sync, int64_t first, int fd) {
  std::unique_ptr<Env> env;
  if (!Env::Open(dir, TxnCrashOptions(sync), &env).ok()) ::_exit(3);
  Table* table;
  if (!env->OpenTable("t", TxnCrashTableOptions(), &table).ok()) ::_exit(4);
  const std::string filler(60, 'x');
  for (int64_t i = first;; ++i) {
    std::unique_ptr<Txn> txn;
    if (!env->Begin(TxnOptions(), &txn).ok()) ::_exit(5);
    const std::string value = std::to_string(i) + filler;
    for (int row = 0; row < kRowsPerTxn; ++row) {
      if (!table->Put(txn.get(), RowKey(i, row), value).ok()) ::_exit(6);
    }
    std::unique_ptr<Txn> child;
    if (!txn->BeginChild(&child).ok() || !table->Put(child.get(), RowKey(i, 100), value).ok() ||
        !child->Commit().ok()) {
      ::_exit(7);
    }
    if (!txn->BeginChild(&child).ok() ||
        !table->Put(child.get(), RowKey(i, 200), "aborted child").ok() ||
        !table->Put(child.get(), RowKey(i, 1), "aborted child").ok() || !child->Abort().ok()) {
      ::_exit(8);
    }
    if (Aborted(i)) {
      if (!txn->Abort().ok()) ::_exit(9);
      continue;
    }
    if (!txn->Commit().ok()) ::_exit(10);
    if (::write(fd, &i, sizeof(i)) != sizeof(i)) ::_exit(11);
  }
}

// Reopens `dir` and checks the surviving transactions; returns the newest present (0 if
// none), or -1 after a failure.
int64_t CheckTransactions(const std::string& dir, bool sync, int64_t acknowledged) {
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir, TxnCrashOptions(sync), &env);
  EXPECT_TRUE(s.ok()) << "recovery failed: " << s.ToString();
  if (!s.ok()) return -1;
  Table* table;
  s = env->OpenTable("t", TxnCrashTableOptions(), &table);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return -1;
  std::map<int64_t, std::map<int, std::string>> txns;
  auto cursor = table->NewCursor(nullptr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    const std::string key(cursor->key());
    int64_t txn = std::stoll(key.substr(1, 8));
    int row = std::stoi(key.substr(10));
    txns[txn][row] = std::string(cursor->value());
  }
  EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  int failures = 0;
  for (const auto& [txn, rows] : txns) {
    const std::string value = std::to_string(txn) + std::string(60, 'x');
    bool whole = rows.size() == kRowsPerTxn + 1 && rows.count(100) == 1;
    for (const auto& [row, v] : rows) whole = whole && v == value;
    if (!whole || Aborted(txn)) {
      std::string shown;
      for (const auto& [row, v] : rows) shown += " " + std::to_string(row);
      ADD_FAILURE() << "transaction " << txn << (Aborted(txn) ? " (aborted)" : "")
                    << " is not whole: rows" << shown;
      if (++failures > 5) return -1;
    }
  }
  const int64_t newest = txns.empty() ? 0 : txns.rbegin()->first;
  for (int64_t txn = 1; txn < newest; ++txn) {
    if (!Aborted(txn) && txns.count(txn) == 0) {
      ADD_FAILURE() << "not a prefix: transaction " << txn << " missing below " << newest;
      return -1;
    }
  }
  if (sync && acknowledged > newest) {
    ADD_FAILURE() << "acknowledged commit " << acknowledged << " lost (newest present " << newest
                  << ")";
    return -1;
  }
  return failures == 0 ? newest : -1;
}

// With `power_loss`, each kill also takes back what no sync made durable (power_loss.h).
void RunTxnCrashRounds(const std::string& dir, bool sync, int kills, uint64_t seed,
                       bool power_loss = false) {
  const std::string journal = dir + ".journal";
  std::mt19937_64 rng(seed);
  int64_t next = 1;
  for (int round = 0; round < kills; ++round) {
    std::vector<uint64_t> acks;
    std::filesystem::remove(journal);
    ASSERT_TRUE(testing::RunChildAndKill(
        [&](int fd) {
          if (power_loss) {
            testing::RecordUntilKilled(journal, testing::power_loss_internal::ParentOf(dir));
          }
          TxnWriterMain(dir, sync, next, fd);
        },
        std::chrono::milliseconds(100 + rng() % 600), &acks))
        << "round " << round;
    if (power_loss) testing::UndoUnsynced(journal);
    const int64_t acknowledged = acks.empty() ? 0 : static_cast<int64_t>(acks.back());
    if (!std::filesystem::exists(dir)) continue;
    const int64_t newest = CheckTransactions(dir, sync, acknowledged);
    ASSERT_GE(newest, 0) << "round " << round;
    next = newest + 1;
  }
}

TEST(TxnCrashTest, UnsyncedTransactionsRecoverWholeAndInOrder) {
  testing::ScratchDir dir;
  RunTxnCrashRounds(dir.Sub("env"), /*sync=*/false, /*kills=*/12, /*seed=*/3);
}

TEST(TxnCrashTest, SyncedTransactionsSurviveWhole) {
  testing::ScratchDir dir;
  RunTxnCrashRounds(dir.Sub("env"), /*sync=*/true, /*kills=*/6, /*seed=*/4);
}

TEST(TxnCrashTest, UnsyncedTransactionsRecoverWholeAndInOrderAfterPowerLoss) {
  testing::ScratchDir dir;
  RunTxnCrashRounds(dir.Sub("env"), /*sync=*/false, /*kills=*/8, /*seed=*/5,
                    /*power_loss=*/true);
}

TEST(TxnCrashTest, SyncedTransactionsSurviveWholeAfterPowerLoss) {
  testing::ScratchDir dir;
  RunTxnCrashRounds(dir.Sub("env"), /*sync=*/true, /*kills=*/6, /*seed=*/6,
                    /*power_loss=*/true);
}

}  // namespace
}  // namespace fern
