// UpdateAll against concurrent transactions: without a transaction it waits for (or runs
// after) every transaction holding a lock in the table, instead of slipping a broadcast
// under a serializable reader or beneath an uncommitted update that would then bury it; in
// a kSnapshot transaction it is first-committer-wins, like any write.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;

// Appends `extra` to the row (an absent row starts empty).
Options AppendingOptions(uint32_t lock_timeout_ms = 4000) {
  Options options;
  options.sync_commits = false;
  options.lock_timeout_ms = lock_timeout_ms;
  options.update_function = [](std::string_view, const std::string_view* old,
                               std::string_view extra) -> std::optional<std::string> {
    return (old != nullptr ? std::string(*old) : std::string()) + std::string(extra);
  };
  return options;
}

// Opens the Env in `dir` and its table "t" into `*table`.
void OpenTableT(const std::string& dir, const Options& options, std::unique_ptr<Env>* env,
                Table** table) {
  ASSERT_TRUE(Env::Open(dir, options, env).ok());
  ASSERT_TRUE((*env)->OpenTable("t", TableOptions(), table).ok());
}

std::string Read(Table* table, Txn* txn, const std::string& key) {
  std::string value;
  Status s = table->Get(txn, key, &value);
  return s.ok() ? value : s.ToString();
}

TEST(UpdateAllTest, AutocommitWaitsForAnUncommittedUpdateAndLandsOnItsResult) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), AppendingOptions(), &env, &table));
  ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
  std::unique_ptr<Txn> writer;
  ASSERT_TRUE(env->Begin(TxnOptions(), &writer).ok());
  ASSERT_TRUE(table->Update(writer.get(), "a", "z").ok());
  Status broadcast;
  std::thread all([&] { broadcast = table->UpdateAll(nullptr, "x"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(writer->Commit().ok());
  all.join();
  ASSERT_TRUE(broadcast.ok()) << broadcast.ToString();
  EXPECT_EQ(Read(table, nullptr, "a"), "1zx");  // neither update lost
}

TEST(UpdateAllTest, AutocommitDoesNotChangeRowsASerializableTransactionRead) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(
      OpenTableT(dir.path(), AppendingOptions(/*lock_timeout_ms=*/200), &env, &table));
  ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
  TxnOptions serializable;
  serializable.isolation = Isolation::kSerializable;
  std::unique_ptr<Txn> reader;
  ASSERT_TRUE(env->Begin(serializable, &reader).ok());
  EXPECT_EQ(Read(table, reader.get(), "a"), "1");
  Status s = table->UpdateAll(nullptr, "y");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_EQ(Read(table, reader.get(), "a"), "1");
  ASSERT_TRUE(reader->Commit().ok());
  ASSERT_TRUE(table->UpdateAll(nullptr, "y").ok());
  EXPECT_EQ(Read(table, nullptr, "a"), "1y");
}

TEST(UpdateAllTest, AutocommitAfterAnUncommittedUpdateAllKeepsBoth) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), AppendingOptions(), &env, &table));
  ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
  std::unique_ptr<Txn> first;
  ASSERT_TRUE(env->Begin(TxnOptions(), &first).ok());
  ASSERT_TRUE(table->UpdateAll(first.get(), "x").ok());
  Status second;
  std::thread all([&] { second = table->UpdateAll(nullptr, "y"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(first->Commit().ok());
  all.join();
  ASSERT_TRUE(second.ok()) << second.ToString();
  EXPECT_EQ(Read(table, nullptr, "a"), "1xy");
  env.reset();
  ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), AppendingOptions(), &env, &table));
  EXPECT_EQ(Read(table, nullptr, "a"), "1xy");
}

TEST(UpdateAllTest, SnapshotTransactionIsBusyOnRowsCommittedSinceItsSnapshot) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), AppendingOptions(), &env, &table));
  ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
  ASSERT_TRUE(table->Put(nullptr, "b", "2").ok());
  TxnOptions snapshot;
  snapshot.isolation = Isolation::kSnapshot;
  // Nothing changed since the snapshot: applies to every row.
  {
    std::unique_ptr<Txn> txn;
    ASSERT_TRUE(env->Begin(snapshot, &txn).ok());
    ASSERT_TRUE(table->UpdateAll(txn.get(), "s").ok());
    ASSERT_TRUE(txn->Commit().ok());
    EXPECT_EQ(Read(table, nullptr, "a"), "1s");
  }
  // A row changed, added or removed since the snapshot: Busy, nothing written, and the
  // transaction goes on.
  for (int change = 0; change < 3; ++change) {
    SCOPED_TRACE(change);
    std::unique_ptr<Txn> txn;
    ASSERT_TRUE(env->Begin(snapshot, &txn).ok());
    const std::string b = Read(table, txn.get(), "b");
    Status other;
    if (change == 0) other = table->Put(nullptr, "b", "T2");
    if (change == 1) other = table->Put(nullptr, "c", "new");
    if (change == 2) other = table->Delete(nullptr, "a");
    ASSERT_TRUE(other.ok()) << other.ToString();
    Status s = table->UpdateAll(txn.get(), "x");
    EXPECT_TRUE(s.IsBusy()) << s.ToString();
    EXPECT_EQ(Read(table, txn.get(), "b"), b);
    ASSERT_TRUE(table->Put(txn.get(), "mine" + std::to_string(change), "v").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  EXPECT_EQ(Read(table, nullptr, "b"), "T2");
  EXPECT_EQ(Read(table, nullptr, "mine2"), "v");
}

// An update function's result over the value limit is not stored: the row stays as the
// update found it (present or absent), through Update, UpdateAll and recovery.
TEST(UpdateAllTest, ResultsOverTheValueLimitLeaveTheRowAsItWas) {
  ScratchDir dir;
  Options options = AppendingOptions();
  options.cache_bytes = 8 << 20;
  options.update_function = [](std::string_view, const std::string_view* old,
                               std::string_view extra) -> std::optional<std::string> {
    if (extra == "huge") return std::string(kMaxValueBytes + 1, 'h');
    return (old != nullptr ? std::string(*old) : std::string()) + std::string(extra);
  };
  const std::string big(kMaxValueBytes - 10, 'b');
  {
    std::unique_ptr<Env> env;
    Table* table;
    ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), options, &env, &table));
    ASSERT_TRUE(table->Put(nullptr, "big", big).ok());
    ASSERT_TRUE(table->Put(nullptr, "small", "s").ok());
    ASSERT_TRUE(table->Update(nullptr, "big", std::string(20, '+')).ok());  // 10 bytes over
    ASSERT_TRUE(table->Update(nullptr, "absent", "huge").ok());
    ASSERT_TRUE(table->UpdateAll(nullptr, "huge").ok());
    ASSERT_TRUE(table->Update(nullptr, "small", "!").ok());
    // Counted where the tree applied them (its only leaf): "big", "absent", then both rows.
    std::string stats;
    ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
    EXPECT_EQ(testing::StatValue(stats, "table.t.update_results_too_big"), 4);
  }
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), options, &env, &table));
  std::string value;
  ASSERT_TRUE(table->Get(nullptr, "big", &value).ok());
  EXPECT_TRUE(value == big) << value.size();
  EXPECT_TRUE(table->Get(nullptr, "absent", &value).IsNotFound());
  EXPECT_EQ(Read(table, nullptr, "small"), "s!");
}

// A prepared transaction's UpdateAll holds the whole table; after a restart the recovered
// transaction holds it again, not only the rows it updated.
TEST(UpdateAllTest, PreparedTransactionKeepsItsTableLockAcrossARestart) {
  ScratchDir dir;
  const Options options = AppendingOptions(/*lock_timeout_ms=*/100);
  {
    std::unique_ptr<Env> env;
    Table* table;
    ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), options, &env, &table));
    ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
    std::unique_ptr<Txn> txn;
    ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
    std::unique_ptr<Txn> child;
    ASSERT_TRUE(txn->BeginChild(&child).ok());
    ASSERT_TRUE(table->UpdateAll(child.get(), "x").ok());
    ASSERT_TRUE(child->Commit().ok());
    ASSERT_TRUE(txn->Prepare("xa-1").ok());
    EXPECT_TRUE(table->Put(nullptr, "new", "row").IsBusy());
    env.reset();  // closes with the transaction prepared, kept for the next open
  }
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), options, &env, &table));
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
  ASSERT_EQ(prepared.size(), 1u);
  Status s = table->Put(nullptr, "new", "row");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  ASSERT_TRUE(prepared[0]->Commit().ok());
  ASSERT_TRUE(table->Put(nullptr, "new", "row").ok());
  EXPECT_EQ(Read(table, nullptr, "a"), "1x");
}

}  // namespace
}  // namespace fern
