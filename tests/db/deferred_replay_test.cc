// A table with a custom comparator is replayed when OpenTable first supplies the comparator,
// after the rest of the Env recovered. What happens in between must not change what that
// late replay finds: a checkpoint must keep the log it needs (a transaction live across the
// table's checkpoint wrote keys before it), and a prepared transaction restored by recovery
// must keep its keys and locks there, and have them resolved as it ends, whether it ends
// before or after the table is opened.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

const testing::ReverseComparator kReverse;

TableOptions Custom() {
  TableOptions options;
  options.comparator = &kReverse;
  return options;
}

// Runs `work` on an Env in `dir` in a child process, which then kills itself.
void CrashAfter(const std::string& dir, const std::function<bool(Env*, Table*)>& work) {
  ASSERT_TRUE(testing::CrashAfterChild([&]() -> int {
    std::unique_ptr<Env> env;
    Table* table;
    if (!Env::Open(dir, Options(), &env).ok() || !env->OpenTable("x", Custom(), &table).ok()) {
      return 3;
    }
    if (!work(env.get(), table)) return 4;
    testing::CrashNow();
    return 5;
  }));
}

std::string GetOrStatus(Table* table, std::string_view key) {
  std::string value;
  Status s = table->Get(nullptr, key, &value);
  return s.ok() ? value : s.ToString();
}

TEST(DeferredReplayTest, ACheckpointBeforeOpenTableKeepsWhatTheReplayNeeds) {
  testing::ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(CrashAfter(dir.path(), [](Env* env, Table* table) {
    std::unique_ptr<Txn> txn;
    return table->Put(nullptr, "k", "old").ok() && env->Checkpoint().ok() &&
           env->Begin(TxnOptions(), &txn).ok() && table->Put(txn.get(), "k", "new").ok() &&
           env->Checkpoint().ok() &&  // the transaction is live across it
           txn->Commit().ok() && table->Put(nullptr, "k2", "later").ok();
  }));
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    ASSERT_TRUE(env->Checkpoint().ok());  // before "x" is opened; the close checkpoints too
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("x", Custom(), &table).ok());
  EXPECT_EQ(GetOrStatus(table, "k"), "new") << "a synced commit was lost";
  EXPECT_EQ(GetOrStatus(table, "k2"), "later");
}

// A transaction prepared in "x" and in a default-comparator table "d", then a crash.
void CrashPrepared(const std::string& dir) {
  CrashAfter(dir, [](Env* env, Table* x) {
    Table* d;
    std::unique_ptr<Txn> txn;
    return env->OpenTable("d", TableOptions(), &d).ok() && x->Put(nullptr, "before", "b").ok() &&
           env->Begin(TxnOptions(), &txn).ok() && x->Put(txn.get(), "xa", "x-value").ok() &&
           d->Put(txn.get(), "xa", "d-value").ok() && txn->Prepare("xid-1").ok() &&
           txn.release() != nullptr;  // kept live (prepared) until the crash
  });
}

enum class When { kEndBeforeOpenTable, kEndAfterOpenTable };

void CheckPreparedEnd(When when, bool commit) {
  testing::ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(CrashPrepared(dir.path()));
  const std::string expect_x = commit ? "x-value" : "NotFound";
  const std::string expect_d = commit ? "d-value" : "NotFound";
  {
    std::unique_ptr<Env> env;
    Options options;
    options.lock_timeout_ms = 50;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    std::vector<std::unique_ptr<Txn>> prepared;
    ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
    ASSERT_EQ(prepared.size(), 1u);
    Table* x = nullptr;
    if (when == When::kEndAfterOpenTable) {
      ASSERT_TRUE(env->OpenTable("x", Custom(), &x).ok());
      // The prepared transaction holds its lock on the key there.
      EXPECT_TRUE(x->Put(nullptr, "xa", "other writer").IsBusy());
    }
    ASSERT_TRUE((commit ? prepared[0]->Commit() : prepared[0]->Abort()).ok());
    if (x == nullptr) {
      ASSERT_TRUE(env->OpenTable("x", Custom(), &x).ok());
    }
    Table* d;
    ASSERT_TRUE(env->OpenTable("d", TableOptions(), &d).ok());
    EXPECT_EQ(GetOrStatus(x, "xa").substr(0, expect_x.size()), expect_x);
    EXPECT_EQ(GetOrStatus(d, "xa").substr(0, expect_d.size()), expect_d);
    EXPECT_EQ(GetOrStatus(x, "before"), "b");
  }
  // And so it stays.
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
  EXPECT_TRUE(prepared.empty());
  Table* x;
  ASSERT_TRUE(env->OpenTable("x", Custom(), &x).ok());
  EXPECT_EQ(GetOrStatus(x, "xa").substr(0, expect_x.size()), expect_x);
}

// A recovered prepared transaction has writes in "x" that only its late replay counts: until
// then DropTable refuses (Busy) rather than let the transaction's committed writes vanish;
// once the table is opened, the replay counts them and the refusal stays until it ends.
TEST(DeferredReplayTest, ATableNotYetReplayedCannotBeDroppedUnderARecoveredPreparedOne) {
  testing::ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(CrashPrepared(dir.path()));
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
  ASSERT_EQ(prepared.size(), 1u);
  Status s = env->DropTable("x");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  Table* x;
  ASSERT_TRUE(env->OpenTable("x", Custom(), &x).ok());
  s = env->DropTable("x");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  ASSERT_TRUE(prepared[0]->Commit().ok());
  EXPECT_EQ(GetOrStatus(x, "xa"), "x-value");
  ASSERT_TRUE(env->DropTable("x").ok());
}

TEST(DeferredReplayTest, PreparedCommittedBeforeItsTableIsOpenedKeepsItsWritesThere) {
  CheckPreparedEnd(When::kEndBeforeOpenTable, /*commit=*/true);
}

TEST(DeferredReplayTest, PreparedCommittedAfterItsTableIsOpenedHeldItsLocksThere) {
  CheckPreparedEnd(When::kEndAfterOpenTable, /*commit=*/true);
}

TEST(DeferredReplayTest, PreparedAbortedBeforeItsTableIsOpenedLeavesNothingThere) {
  CheckPreparedEnd(When::kEndBeforeOpenTable, /*commit=*/false);
}

TEST(DeferredReplayTest, PreparedAbortedAfterItsTableIsOpenedLeavesNothingThere) {
  CheckPreparedEnd(When::kEndAfterOpenTable, /*commit=*/false);
}

}  // namespace
}  // namespace fern
