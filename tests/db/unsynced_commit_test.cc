// Unsynced commits reach the log file within Options::log_flush_period_ms, so a crash of
// the process alone keeps the ones older than that (an OS crash may still lose them).
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int kRows = 100;
constexpr uint32_t kFlushPeriodMs = 50;

Options UnsyncedOptions() {
  Options options;
  options.sync_commits = false;
  options.log_flush_period_ms = kFlushPeriodMs;
  return options;
}

std::string Key(int i) { return "key" + std::to_string(1000 + i); }

int CountRows(const std::string& dir) {
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir, UnsyncedOptions(), &env);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return -1;
  Table* table;
  if (!env->OpenTable("t", TableOptions(), &table).ok()) return -1;
  int rows = 0;
  std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++rows;
  EXPECT_TRUE(cursor->status().ok());
  return rows;
}

// The child commits kRows rows (each alone, or all in one transaction), waits three flush
// periods and dies by SIGKILL with its Env open. The rows are far below the log's 1 MiB
// buffer and no checkpoint or synced commit follows them: only the flush period writes them.
void CommitThenCrash(const std::string& dir, bool one_transaction) {
  ASSERT_TRUE(testing::CrashAfterChild([&]() -> int {
    std::unique_ptr<Env> env;
    Options options = UnsyncedOptions();
    if (one_transaction) options.sync_commits = true;  // the transaction opts out instead
    if (!Env::Open(dir, options, &env).ok()) return 2;
    Table* table;
    if (!env->OpenTable("t", TableOptions(), &table).ok()) return 3;
    if (one_transaction) {
      // Creating the table synced the log; the rows come after that.
      TxnOptions txn_options;
      txn_options.sync = false;
      std::unique_ptr<Txn> txn;
      if (!env->Begin(txn_options, &txn).ok()) return 4;
      for (int i = 0; i < kRows; ++i) {
        if (!table->Put(txn.get(), Key(i), "v").ok()) return 5;
      }
      if (!txn->Commit().ok()) return 6;
    } else {
      for (int i = 0; i < kRows; ++i) {
        if (!table->Put(nullptr, Key(i), "v").ok()) return 5;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * kFlushPeriodMs));
    testing::CrashNow();
  }));
}

TEST(UnsyncedCommitTest, AutocommitsOlderThanTheFlushPeriodSurviveAProcessCrash) {
  testing::ScratchDir dir;
  CommitThenCrash(dir.path(), /*one_transaction=*/false);
  EXPECT_EQ(CountRows(dir.path()), kRows);
}

TEST(UnsyncedCommitTest, AnUnsyncedTransactionOlderThanTheFlushPeriodSurvivesAProcessCrash) {
  testing::ScratchDir dir;
  CommitThenCrash(dir.path(), /*one_transaction=*/true);
  EXPECT_EQ(CountRows(dir.path()), kRows);
}

}  // namespace
}  // namespace fern
