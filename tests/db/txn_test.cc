// Explicit transactions through the public API: atomicity, isolation, locks, nesting,
// durability across SIGKILL, and XA prepare/recover.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "txn_fixture.h"
#include "util/strings.h"

namespace fern {
namespace {

using testing::ScratchDir;

class TxnTest : public testing::TxnFixture {
 protected:
  Options EnvOptions() const override {
    Options options = TxnFixture::EnvOptions();
    options.sync_commits = true;
    return options;
  }
};

TEST_F(TxnTest, CommitPublishesAndAbortLeavesNoTrace) {
  auto a = Begin();
  ASSERT_TRUE(table_->Put(a.get(), "k1", "a1").ok());
  ASSERT_TRUE(table_->Put(a.get(), "k2", "a2").ok());
  EXPECT_EQ(Read(a.get(), "k1"), "a1");      // own writes
  EXPECT_EQ(Read(nullptr, "k1"), "<none>");  // not yet committed
  ASSERT_TRUE(a->Commit().ok());
  EXPECT_EQ(Read(nullptr, "k1"), "a1");

  auto b = Begin();
  ASSERT_TRUE(table_->Put(b.get(), "k1", "b1").ok());
  ASSERT_TRUE(table_->Delete(b.get(), "k2").ok());
  ASSERT_TRUE(table_->Put(b.get(), "k3", "b3").ok());
  EXPECT_EQ(Read(b.get(), "k2"), "<none>");
  ASSERT_TRUE(b->Abort().ok());
  EXPECT_EQ(Read(nullptr, "k1"), "a1");
  EXPECT_EQ(Read(nullptr, "k2"), "a2");
  EXPECT_EQ(Read(nullptr, "k3"), "<none>");
}

TEST_F(TxnTest, CursorSeesOwnWritesMergedWithCommittedRows) {
  ASSERT_TRUE(table_->Put(nullptr, "a", "1").ok());
  ASSERT_TRUE(table_->Put(nullptr, "c", "3").ok());
  auto txn = Begin();
  ASSERT_TRUE(table_->Put(txn.get(), "b", "2").ok());
  ASSERT_TRUE(table_->Delete(txn.get(), "c").ok());
  auto cursor = table_->NewCursor(txn.get());
  std::string seen;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) seen += std::string(cursor->key());
  EXPECT_EQ(seen, "ab");
  auto outside = table_->NewCursor(nullptr);
  seen.clear();
  for (outside->SeekToFirst(); outside->Valid(); outside->Next())
    seen += std::string(outside->key());
  EXPECT_EQ(seen, "ac");
}

TEST_F(TxnTest, SnapshotIsolationReadsAsOfBegin) {
  auto setup = Begin();
  ASSERT_TRUE(table_->Put(setup.get(), "k", "old").ok());
  ASSERT_TRUE(setup->Commit().ok());
  auto snapshot = Begin(Isolation::kSnapshot);
  auto committed = Begin(Isolation::kReadCommitted);
  EXPECT_EQ(Read(snapshot.get(), "k"), "old");
  auto writer = Begin();
  ASSERT_TRUE(table_->Put(writer.get(), "k", "new").ok());
  ASSERT_TRUE(writer->Commit().ok());
  EXPECT_EQ(Read(snapshot.get(), "k"), "old");
  EXPECT_EQ(Read(committed.get(), "k"), "new");
}

// A snapshot transaction may not write or lock for update a row another transaction
// committed after its snapshot (a write conflict: Busy, and the transaction stays usable;
// first committer wins, as in RocksDB's snapshot transactions);
// rows committed before it began, rows nobody changed, and rows it wrote itself are fine.
// Read committed transactions act on the newest row without a check.
// A refused write takes back the row lock it took, as RocksDB does: the row's other writers
// go on, while rows the transaction did write stay locked.
TEST_F(TxnTest, ASnapshotWriteConflictGivesBackItsRowLock) {
  ASSERT_TRUE(table_->Put(nullptr, "row", "0").ok());
  auto snapshot = Begin(Isolation::kSnapshot);
  ASSERT_TRUE(table_->Put(snapshot.get(), "mine", "1").ok());
  ASSERT_TRUE(table_->Put(nullptr, "row", "other").ok());  // after the snapshot

  EXPECT_TRUE(table_->Put(snapshot.get(), "row", "0+1").IsBusy());
  // Autocommits never wait for a lock: each finds the row free.
  EXPECT_TRUE(table_->Put(nullptr, "row", "second").ok());
  std::string value;
  EXPECT_TRUE(table_->GetForUpdate(snapshot.get(), "row", &value).IsBusy());
  EXPECT_TRUE(table_->Delete(nullptr, "row").ok());
  EXPECT_TRUE(table_->Put(snapshot.get(), "row", "again").IsBusy());
  EXPECT_TRUE(table_->Put(nullptr, "row", "third").ok());
  // The row it wrote stays locked until it ends.
  EXPECT_TRUE(table_->Put(nullptr, "mine", "other").IsBusy());
  ASSERT_TRUE(snapshot->Commit().ok());
  EXPECT_EQ(Read(nullptr, "row"), "third");
  EXPECT_EQ(Read(nullptr, "mine"), "1");
  EXPECT_TRUE(table_->Put(nullptr, "mine", "other").ok());
}

TEST_F(TxnTest, SnapshotWritesOfRowsCommittedSinceTheSnapshotAreBusy) {
  for (const char* key : {"before", "changed", "deleted", "locked", "untouched"}) {
    ASSERT_TRUE(table_->Put(nullptr, key, "0").ok());
  }
  auto snapshot = Begin(Isolation::kSnapshot);
  auto committed = Begin(Isolation::kReadCommitted);
  ASSERT_TRUE(table_->Put(snapshot.get(), "before", "1").ok());
  EXPECT_EQ(Read(snapshot.get(), "changed"), "0");
  // An autocommitted write and a transaction's, both after the snapshot.
  ASSERT_TRUE(table_->Put(nullptr, "changed", "other").ok());
  auto writer = Begin();
  ASSERT_TRUE(table_->Delete(writer.get(), "deleted").ok());
  ASSERT_TRUE(table_->Put(writer.get(), "locked", "other").ok());
  ASSERT_TRUE(table_->Put(writer.get(), "new", "other").ok());
  ASSERT_TRUE(writer->Commit().ok());

  // The read-modify-write that would lose the other update.
  Status s = table_->Put(snapshot.get(), "changed", "0+1");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_TRUE(table_->Delete(snapshot.get(), "deleted").IsBusy());
  EXPECT_TRUE(table_->Put(snapshot.get(), "deleted", "again").IsBusy());
  // An Insert reports a row committed since the snapshot as present, a delete as a conflict.
  EXPECT_TRUE(table_->Insert(snapshot.get(), "new", "mine").IsAlreadyExists());
  EXPECT_TRUE(table_->Insert(snapshot.get(), "deleted", "mine").IsBusy());
  std::string value;
  EXPECT_TRUE(table_->GetForUpdate(snapshot.get(), "locked", &value).IsBusy());
  // Rows it may write: unchanged since the snapshot, or written by itself already.
  EXPECT_TRUE(table_->Put(snapshot.get(), "untouched", "1").ok());
  EXPECT_TRUE(table_->Put(snapshot.get(), "before", "2").ok());
  EXPECT_TRUE(table_->Put(snapshot.get(), "fresh", "1").ok());
  std::unique_ptr<Txn> child;
  ASSERT_TRUE(snapshot->BeginChild(&child).ok());
  EXPECT_TRUE(table_->Put(child.get(), "untouched", "child").ok());
  EXPECT_TRUE(table_->Put(child.get(), "changed", "child").IsBusy());
  ASSERT_TRUE(child->Commit().ok());
  ASSERT_TRUE(snapshot->Commit().ok());
  EXPECT_EQ(Read(nullptr, "changed"), "other");
  EXPECT_EQ(Read(nullptr, "untouched"), "child");
  EXPECT_EQ(Read(nullptr, "before"), "2");

  // Read committed: no conflict check.
  EXPECT_TRUE(table_->Put(committed.get(), "changed", "rc").ok());
  ASSERT_TRUE(committed->Commit().ok());
  EXPECT_EQ(Read(nullptr, "changed"), "rc");
}

TEST_F(TxnTest, ReadUncommittedSeesOtherTransactionsUncommittedWrites) {
  ASSERT_TRUE(table_->Put(nullptr, "k", "committed").ok());
  auto writer = Begin();
  ASSERT_TRUE(table_->Put(writer.get(), "k", "dirty").ok());
  ASSERT_TRUE(table_->Put(writer.get(), "new", "dirty too").ok());
  auto dirty = Begin(Isolation::kReadUncommitted);
  auto committed = Begin(Isolation::kReadCommitted);
  EXPECT_EQ(Read(dirty.get(), "k"), "dirty");
  EXPECT_EQ(Read(dirty.get(), "new"), "dirty too");
  EXPECT_EQ(Read(committed.get(), "k"), "committed");
  EXPECT_EQ(Read(committed.get(), "new"), "<none>");
  {
    auto cursor = table_->NewCursor(dirty.get());
    std::string rows;
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
      rows += std::string(cursor->key()) + "=" + std::string(cursor->value()) + ";";
    }
    EXPECT_EQ(rows, "k=dirty;new=dirty too;");
  }
  ASSERT_TRUE(table_->Delete(writer.get(), "k").ok());
  EXPECT_EQ(Read(dirty.get(), "k"), "<none>");
  ASSERT_TRUE(writer->Abort().ok());
  EXPECT_EQ(Read(dirty.get(), "k"), "committed");
  EXPECT_EQ(Read(dirty.get(), "new"), "<none>");
  ASSERT_TRUE(dirty->Commit().ok());
  ASSERT_TRUE(committed->Commit().ok());
}

TEST_F(TxnTest, ConflictingWriteTimesOutWithBusy) {
  auto a = Begin();
  auto b = Begin();
  ASSERT_TRUE(table_->Put(a.get(), "k", "a").ok());
  Status s = table_->Put(b.get(), "k", "b");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  ASSERT_TRUE(a->Commit().ok());
  EXPECT_TRUE(table_->Put(b.get(), "k", "b").ok());
  ASSERT_TRUE(b->Commit().ok());
  EXPECT_EQ(Read(nullptr, "k"), "b");
}

TEST_F(TxnTest, LockCycleGivesOneMemberDeadlock) {
  Options options;
  options.lock_timeout_ms = 5000;
  table_ = nullptr;
  env_.reset();
  ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
  ASSERT_TRUE(env_->OpenTable("t", TableOptions(), &table_).ok());
  auto a = Begin();
  auto b = Begin();
  ASSERT_TRUE(table_->Put(a.get(), "x", "a").ok());
  ASSERT_TRUE(table_->Put(b.get(), "y", "b").ok());
  std::atomic<int> deadlocks{0};
  std::thread ta([&] {
    Status s = table_->Put(a.get(), "y", "a");
    if (s.IsDeadlock()) {
      ++deadlocks;
      a->Abort().ok();
    }
  });
  std::thread tb([&] {
    Status s = table_->Put(b.get(), "x", "b");
    if (s.IsDeadlock()) {
      ++deadlocks;
      b->Abort().ok();
    }
  });
  ta.join();
  tb.join();
  EXPECT_EQ(deadlocks.load(), 1);
}

TEST_F(TxnTest, NestedTransactions) {
  auto parent = Begin();
  ASSERT_TRUE(table_->Put(parent.get(), "p", "parent").ok());
  {
    std::unique_ptr<Txn> child;
    ASSERT_TRUE(parent->BeginChild(&child).ok());
    EXPECT_TRUE(table_->Put(parent.get(), "q", "x").IsInvalidArgument());  // child is live
    ASSERT_TRUE(table_->Put(child.get(), "c1", "kept").ok());
    ASSERT_TRUE(table_->Put(child.get(), "p", "child's").ok());
    ASSERT_TRUE(child->Commit().ok());
  }
  EXPECT_EQ(Read(parent.get(), "p"), "child's");
  {
    std::unique_ptr<Txn> child;
    ASSERT_TRUE(parent->BeginChild(&child).ok());
    ASSERT_TRUE(table_->Put(child.get(), "c2", "dropped").ok());
    ASSERT_TRUE(table_->Put(child.get(), "p", "aborted child's").ok());
    ASSERT_TRUE(child->Abort().ok());
  }
  EXPECT_EQ(Read(parent.get(), "p"), "child's");
  EXPECT_EQ(Read(parent.get(), "c2"), "<none>");
  EXPECT_EQ(Read(nullptr, "c1"), "<none>");
  ASSERT_TRUE(parent->Commit().ok());
  EXPECT_EQ(Read(nullptr, "c1"), "kept");
  EXPECT_EQ(Read(nullptr, "p"), "child's");
  EXPECT_EQ(Read(nullptr, "c2"), "<none>");
}

// A child's commit sends no message: its levels stay in the leaf entries until the
// family's next write, commit or abort on the key folds them, and the family reads through
// them meanwhile. Three generations, with every way a finished level gets folded.
TEST_F(TxnTest, CommittedChildrenLeaveTheirLevelsForTheFamilyToFold) {
  auto injected = [&] {
    std::string stats;
    EXPECT_TRUE(env_->GetProperty("fern.stats", &stats));
    return testing::StatValue(stats, "table.t.messages_injected_depth0");
  };
  ASSERT_TRUE(table_->Put(nullptr, "k", "committed").ok());
  auto root = Begin();
  ASSERT_TRUE(table_->Put(root.get(), "r", "root's").ok());
  std::unique_ptr<Txn> child;
  ASSERT_TRUE(root->BeginChild(&child).ok());
  {
    std::unique_ptr<Txn> grandchild;
    ASSERT_TRUE(child->BeginChild(&grandchild).ok());
    ASSERT_TRUE(table_->Put(grandchild.get(), "k", "grandchild's").ok());
    ASSERT_TRUE(table_->Put(grandchild.get(), "g", "grandchild's").ok());
    ASSERT_TRUE(table_->Put(grandchild.get(), "r", "grandchild's").ok());
    const int64_t before = injected();
    ASSERT_TRUE(grandchild->Commit().ok());
    EXPECT_EQ(injected(), before) << "a child's commit resolved its keys through the tree";
  }
  EXPECT_EQ(Read(child.get(), "k"), "grandchild's");
  // A second grandchild writes over the first one's level, then aborts: the level it
  // folded into its parent's stays.
  {
    std::unique_ptr<Txn> grandchild;
    ASSERT_TRUE(child->BeginChild(&grandchild).ok());
    EXPECT_EQ(Read(grandchild.get(), "g"), "grandchild's");
    ASSERT_TRUE(table_->Put(grandchild.get(), "g", "aborted").ok());
    ASSERT_TRUE(grandchild->Abort().ok());
  }
  EXPECT_EQ(Read(child.get(), "g"), "grandchild's");
  ASSERT_TRUE(table_->Put(child.get(), "c", "child's").ok());
  ASSERT_TRUE(child->Commit().ok());
  EXPECT_EQ(Read(root.get(), "k"), "grandchild's");
  EXPECT_EQ(Read(root.get(), "r"), "grandchild's");
  EXPECT_EQ(Read(nullptr, "k"), "committed");
  EXPECT_EQ(Read(nullptr, "g"), "<none>");
  // A second child's writes and abort, over keys the first one's family left unfolded.
  {
    std::unique_ptr<Txn> second;
    ASSERT_TRUE(root->BeginChild(&second).ok());
    std::unique_ptr<Txn> its_child;
    ASSERT_TRUE(second->BeginChild(&its_child).ok());
    ASSERT_TRUE(table_->Put(its_child.get(), "k", "aborted").ok());
    ASSERT_TRUE(table_->Delete(its_child.get(), "c").ok());
    ASSERT_TRUE(its_child->Commit().ok());
    EXPECT_EQ(Read(second.get(), "c"), "<none>");
    ASSERT_TRUE(second->Abort().ok());
  }
  EXPECT_EQ(Read(root.get(), "k"), "grandchild's");
  EXPECT_EQ(Read(root.get(), "c"), "child's");
  ASSERT_TRUE(root->Commit().ok());
  Reopen();
  EXPECT_EQ(Read(nullptr, "k"), "grandchild's");
  EXPECT_EQ(Read(nullptr, "g"), "grandchild's");
  EXPECT_EQ(Read(nullptr, "r"), "grandchild's");
  EXPECT_EQ(Read(nullptr, "c"), "child's");
}

TEST_F(TxnTest, UseAfterEndIsInvalidArgument) {
  auto txn = Begin();
  ASSERT_TRUE(table_->Put(txn.get(), "k", "v").ok());
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_TRUE(table_->Put(txn.get(), "k", "w").IsInvalidArgument());
  EXPECT_TRUE(txn->Commit().IsInvalidArgument());
  EXPECT_TRUE(txn->Abort().IsInvalidArgument());
}

TEST_F(TxnTest, DestroyingALiveTransactionAbortsIt) {
  {
    auto txn = Begin();
    ASSERT_TRUE(table_->Put(txn.get(), "k", "v").ok());
  }
  EXPECT_EQ(Read(nullptr, "k"), "<none>");
  auto other = Begin();
  EXPECT_TRUE(table_->Put(other.get(), "k", "w").ok());  // the lock was released
}

TEST_F(TxnTest, InsertAndGetForUpdateInATransaction) {
  ASSERT_TRUE(table_->Put(nullptr, "k", "v").ok());
  auto a = Begin();
  EXPECT_TRUE(table_->Insert(a.get(), "k", "x").IsAlreadyExists());
  EXPECT_TRUE(table_->Insert(a.get(), "n", "new").ok());
  EXPECT_TRUE(table_->Insert(a.get(), "n", "again").IsAlreadyExists());
  std::string value;
  ASSERT_TRUE(table_->GetForUpdate(a.get(), "k", &value).ok());
  EXPECT_EQ(value, "v");
  auto b = Begin();
  EXPECT_TRUE(table_->Put(b.get(), "k", "b").IsBusy());  // GetForUpdate took the write lock
  ASSERT_TRUE(a->Commit().ok());
}

TEST_F(TxnTest, SerializableReadsTakeSharedLocks) {
  ASSERT_TRUE(table_->Put(nullptr, "k", "v").ok());
  auto reader1 = Begin(Isolation::kSerializable);
  auto reader2 = Begin(Isolation::kSerializable);
  EXPECT_EQ(Read(reader1.get(), "k"), "v");
  EXPECT_EQ(Read(reader2.get(), "k"), "v");  // read locks are shared
  auto writer = Begin();
  EXPECT_TRUE(table_->Put(writer.get(), "k", "w").IsBusy());
  ASSERT_TRUE(reader1->Commit().ok());
  ASSERT_TRUE(reader2->Commit().ok());
  EXPECT_TRUE(table_->Put(writer.get(), "k", "w").ok());
}

TEST_F(TxnTest, CommittedSurvivesReopenUncommittedDoesNot) {
  auto done = Begin();
  ASSERT_TRUE(table_->Put(done.get(), "committed", "yes").ok());
  ASSERT_TRUE(done->Commit().ok());
  auto open = Begin();
  ASSERT_TRUE(table_->Put(open.get(), "uncommitted", "no").ok());
  open.reset();  // aborts
  Reopen();
  EXPECT_EQ(Read(nullptr, "committed"), "yes");
  EXPECT_EQ(Read(nullptr, "uncommitted"), "<none>");
}

// Runs `body` in a forked child and kills the child with SIGKILL once `body` calls its
// argument, `ready` (which never returns: everything `body` holds stays as it is until the
// kill). `body` returns only on failure, with the exit code that names the failed step.
void RunInChildAndKill(const std::function<int(const std::function<void()>& ready)>& body) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    const std::function<void()> ready = [&] {
      char done = 1;
      if (::write(fds[1], &done, 1) != 1) ::_exit(100);
      while (true) ::pause();
    };
    ::_exit(body(ready));
  }
  ::close(fds[1]);
  char done = 0;
  EXPECT_EQ(::read(fds[0], &done, 1), 1) << "the child failed before it was ready";
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
}

// The child writes, commits one transaction, leaves another open (and for XA, prepared),
// then is killed; the parent checks what recovery kept.
void RunAndKill(const std::string& dir, bool prepare) {
  RunInChildAndKill([&](const std::function<void()>& ready) -> int {
    std::unique_ptr<Env> env;
    if (!Env::Open(dir, Options(), &env).ok()) return 3;
    Table* table;
    if (!env->OpenTable("t", TableOptions(), &table).ok()) return 4;
    std::unique_ptr<Txn> a;
    if (!env->Begin(TxnOptions(), &a).ok()) return 5;
    for (int i = 0; i < 100; ++i) {
      if (!table->Put(a.get(), "a" + std::to_string(i), "committed").ok()) return 6;
    }
    if (!a->Commit().ok()) return 7;
    std::unique_ptr<Txn> b;
    if (!env->Begin(TxnOptions(), &b).ok()) return 8;
    for (int i = 0; i < 100; ++i) {
      if (!table->Put(b.get(), "b" + std::to_string(i), "open").ok()) return 9;
    }
    if (!table->Put(b.get(), "a5", "overwritten by b").ok()) return 10;
    if (prepare && !b->Prepare("xa-42").ok()) return 11;
    if (!env->Checkpoint().ok()) return 12;  // b's provisional rows reach the table file
    ready();
    return 0;
  });
}

TEST(TxnRecoveryTest, KilledOpenTransactionIsRolledBack) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(RunAndKill(dir.path(), /*prepare=*/false));
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.path(), Options(), &env);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::string v;
  ASSERT_TRUE(table->Get(nullptr, "a5", &v).ok());
  EXPECT_EQ(v, "committed");
  EXPECT_TRUE(table->Get(nullptr, "b7", &v).IsNotFound());
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
  EXPECT_TRUE(prepared.empty());
  std::unique_ptr<Txn> txn;
  ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
  EXPECT_TRUE(table->Put(txn.get(), "a5", "mine").ok());  // no lock left behind
}

// A transaction prepared without writing and then committed or aborted is decided for
// good: after a kill it does not come back as prepared.
// Children commit without messages; recovery hands their keys to their parents the same
// way, whether the unfolded levels reached the table file at a checkpoint or are replayed.
TEST(TxnRecoveryTest, CommittedChildrenRecoverWithTheirRoot) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(RunInChildAndKill([&](const std::function<void()>& ready) -> int {
    std::unique_ptr<Env> env;
    if (!Env::Open(dir.path(), Options(), &env).ok()) return 3;
    Table* table;
    if (!env->OpenTable("t", TableOptions(), &table).ok()) return 4;
    // Writes `rows` keys with `prefix` in a child of `parent`, and in a grandchild under it.
    auto family = [&](Txn* parent, const std::string& prefix) -> bool {
      std::unique_ptr<Txn> child, grandchild;
      if (!parent->BeginChild(&child).ok() || !child->BeginChild(&grandchild).ok()) return false;
      for (int i = 0; i < 50; ++i) {
        if (!table->Put(grandchild.get(), prefix + std::to_string(i), "grandchild").ok()) {
          return false;
        }
      }
      if (!grandchild->Commit().ok()) return false;
      if (!table->Put(child.get(), prefix + "0", "child").ok()) return false;
      return child->Commit().ok();
    };
    std::unique_ptr<Txn> kept, lost;
    if (!env->Begin(TxnOptions(), &kept).ok() || !env->Begin(TxnOptions(), &lost).ok()) return 5;
    if (!family(kept.get(), "a") || !family(lost.get(), "b")) return 6;
    if (!env->Checkpoint().ok()) return 7;  // the unfolded levels reach the table file
    if (!family(kept.get(), "c") || !family(lost.get(), "d")) return 8;
    if (!kept->Commit().ok()) return 9;  // synced; `lost` stays open
    ready();
    return 0;
  }));
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  for (const std::string prefix : {"a", "b", "c", "d"}) {
    const bool committed = prefix == "a" || prefix == "c";
    for (int i = 0; i < 50; ++i) {
      std::string v;
      Status s = table->Get(nullptr, prefix + std::to_string(i), &v);
      if (committed) {
        ASSERT_TRUE(s.ok()) << prefix << i << ": " << s.ToString();
        EXPECT_EQ(v, i == 0 ? "child" : "grandchild") << prefix << i;
      } else {
        EXPECT_TRUE(s.IsNotFound()) << prefix << i << ": " << s.ToString();
      }
    }
  }
}

TEST(TxnRecoveryTest, PreparedTransactionWithoutWritesStaysDecidedAfterAKill) {
  ScratchDir dir;
  RunInChildAndKill([&](const std::function<void()>& ready) -> int {
    std::unique_ptr<Env> env;
    if (!Env::Open(dir.path(), Options(), &env).ok()) return 3;
    std::unique_ptr<Txn> committed, aborted;
    if (!env->Begin(TxnOptions(), &committed).ok()) return 4;
    if (!committed->Prepare("xa-committed").ok()) return 5;
    if (!committed->Commit().ok()) return 6;
    if (!env->Begin(TxnOptions(), &aborted).ok()) return 7;
    if (!aborted->Prepare("xa-aborted").ok()) return 8;
    if (!aborted->Abort().ok()) return 9;
    ready();
    return 0;
  });

  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.path(), Options(), &env);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
  EXPECT_TRUE(prepared.empty()) << prepared.size() << " came back, the first "
                                << (prepared.empty() ? "" : prepared[0]->xid());
}

TEST(TxnRecoveryTest, PreparedTransactionComesBackLiveAndCanCommit) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(RunAndKill(dir.path(), /*prepare=*/true));
  Options options;
  options.lock_timeout_ms = 50;
  {
    std::unique_ptr<Env> env;
    Status s = Env::Open(dir.path(), options, &env);
    ASSERT_TRUE(s.ok()) << s.ToString();
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    std::string v;
    EXPECT_TRUE(table->Get(nullptr, "b7", &v).IsNotFound());  // not committed yet
    // Closing without claiming it keeps it prepared.
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_EQ(prepared[0]->xid(), "xa-42");
  std::unique_ptr<Txn> other;
  ASSERT_TRUE(env->Begin(TxnOptions(), &other).ok());
  EXPECT_TRUE(table->Put(other.get(), "b7", "x").IsBusy());  // it holds its locks
  ASSERT_TRUE(other->Abort().ok());
  ASSERT_TRUE(prepared[0]->Commit().ok());
  std::string v;
  ASSERT_TRUE(table->Get(nullptr, "b7", &v).ok());
  EXPECT_EQ(v, "open");
  ASSERT_TRUE(table->Get(nullptr, "a5", &v).ok());
  EXPECT_EQ(v, "overwritten by b");
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

TEST(TxnLifetimeTest, ClosingTheEnvFirstAbortsOpenTransactionsCleanly) {
  testing::ScratchDir dir;
  std::unique_ptr<Txn> txn;
  std::unique_ptr<Txn> child;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
    ASSERT_TRUE(table->Put(txn.get(), "k", "uncommitted").ok());
    ASSERT_TRUE(txn->BeginChild(&child).ok());
  }
  // The Env is gone: the transactions refuse politely and die without touching it.
  EXPECT_TRUE(child->Commit().IsInvalidArgument());
  EXPECT_TRUE(txn->Commit().IsInvalidArgument());
  EXPECT_TRUE(txn->Abort().IsInvalidArgument());
  child.reset();
  txn.reset();
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::string value;
  EXPECT_TRUE(table->Get(nullptr, "k", &value).IsNotFound());
}

// A prepared transaction outlives its Env's close (it stays prepared in the log). Its
// handle, destroyed afterwards, must not touch the closed Env: a kSnapshot one released its
// snapshot into the freed transaction manager (a use-after-free) until the close released
// it. Every isolation level, and the handle's calls after the close.
TEST(TxnLifetimeTest, PreparedTransactionsOutliveTheirEnvAtEveryIsolationLevel) {
  for (Isolation isolation : {Isolation::kReadUncommitted, Isolation::kReadCommitted,
                              Isolation::kSnapshot, Isolation::kSerializable}) {
    SCOPED_TRACE(static_cast<int>(isolation));
    testing::ScratchDir dir;
    std::unique_ptr<Txn> txn;
    {
      std::unique_ptr<Env> env;
      ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
      Table* table;
      ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
      TxnOptions options;
      options.isolation = isolation;
      ASSERT_TRUE(env->Begin(options, &txn).ok());
      std::string value;
      EXPECT_TRUE(table->Get(txn.get(), "k", &value).IsNotFound());
      ASSERT_TRUE(table->Put(txn.get(), "k", "prepared").ok());
      ASSERT_TRUE(txn->Prepare("xid-" + std::to_string(static_cast<int>(isolation))).ok());
    }
    EXPECT_TRUE(txn->Commit().IsInvalidArgument());
    EXPECT_TRUE(txn->Abort().IsInvalidArgument());
    txn.reset();
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    std::vector<std::unique_ptr<Txn>> prepared;
    ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
    ASSERT_EQ(prepared.size(), 1u);
    ASSERT_TRUE(prepared[0]->Commit().ok());
    std::string value;
    ASSERT_TRUE(table->Get(nullptr, "k", &value).ok());
    EXPECT_EQ(value, "prepared");
  }
}

// One-write transactions commit their buffered write in place (no commit message) when the
// tree has internal nodes. Against a model: random one-write, several-write and nested
// transactions, some aborted, interleaved with autocommitted writes and with snapshot
// transactions that must keep reading as of their begin and get Busy for rows committed
// since; then everything again after a reopen.
TEST_F(TxnTest, CommitsInPlaceKeepEveryReaderAndConflictRule) {
  TableOptions small;
  small.node_bytes = 8 << 10;  // internal nodes after a few hundred rows
  small.basement_bytes = 1 << 10;
  Table* table;
  ASSERT_TRUE(env_->OpenTable("small", small, &table).ok());
  std::map<std::string, std::string> model;
  auto key = [](uint64_t i) { return StrCat("key", 10000 + i % 3000); };
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(table->Put(nullptr, key(i), "v0").ok());
    model[key(i)] = "v0";
  }
  auto read = [&](Txn* txn, const std::string& k) {
    std::string value;
    Status s = table->Get(txn, k, &value);
    EXPECT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
    return s.ok() ? value : "<none>";
  };
  std::mt19937_64 rng(7);
  struct Snapshot {
    std::unique_ptr<Txn> txn;
    std::map<std::string, std::string> seen;  // the model at its begin
  };
  std::vector<Snapshot> snapshots;
  for (int round = 0; round < 3000; ++round) {
    const std::string value = StrCat("v", round);
    const int kind = static_cast<int>(rng() % 10);
    if (kind == 0) {  // a snapshot begins; or one checks its view and ends
      if (snapshots.size() < 4) {
        snapshots.push_back({Begin(Isolation::kSnapshot), model});
        read(snapshots.back().txn.get(), key(0));  // takes the snapshot
      } else {
        Snapshot& old = snapshots[rng() % snapshots.size()];
        for (int probe = 0; probe < 20; ++probe) {
          const std::string k = key(rng());
          auto it = old.seen.find(k);
          ASSERT_EQ(read(old.txn.get(), k), it == old.seen.end() ? "<none>" : it->second) << k;
          auto now = model.find(k);
          const bool changed = (it == old.seen.end()) != (now == model.end()) ||
                               (now != model.end() && now->second != it->second);
          if (changed) {
            Status s = table->Put(old.txn.get(), k, "snapshot");
            EXPECT_TRUE(s.IsBusy()) << k << ": " << s.ToString();
          }
        }
        ASSERT_TRUE(old.txn->Abort().ok());
        std::swap(old, snapshots.back());
        snapshots.pop_back();
      }
      continue;
    }
    const std::string k = key(rng());
    const std::string k2 = key(rng());
    std::unique_ptr<Txn> txn = Begin();
    std::vector<std::pair<std::string, std::string>> writes;  // in order; "<none>": delete
    if (kind <= 5) {                                          // one write
      if (rng() % 4 == 0) {
        ASSERT_TRUE(table->Delete(txn.get(), k).ok());
        writes.emplace_back(k, "<none>");
      } else {
        ASSERT_TRUE(table->Put(txn.get(), k, value).ok());
        writes.emplace_back(k, value);
      }
    } else if (kind <= 7) {  // the same key twice, then a delete
      ASSERT_TRUE(table->Put(txn.get(), k, value + "a").ok());
      ASSERT_TRUE(table->Put(txn.get(), k, value).ok());
      ASSERT_TRUE(table->Delete(txn.get(), k2).ok());
      writes = {{k, value}, {k2, "<none>"}};
    } else {  // a committed child writes, then the parent
      std::unique_ptr<Txn> child;
      ASSERT_TRUE(txn->BeginChild(&child).ok());
      ASSERT_TRUE(table->Put(child.get(), k, value + "c").ok());
      ASSERT_TRUE(child->Commit().ok());
      ASSERT_TRUE(table->Put(txn.get(), k2, value).ok());
      writes = {{k, value + "c"}, {k2, value}};
    }
    if (rng() % 8 == 0) {
      ASSERT_TRUE(txn->Abort().ok());
      continue;
    }
    ASSERT_TRUE(txn->Commit().ok());
    for (const auto& [row, v] : writes) {
      if (v == "<none>") {
        model.erase(row);
      } else {
        model[row] = v;
      }
    }
    if (rng() % 5 == 0) {
      ASSERT_TRUE(table->Put(nullptr, k2, value + "auto").ok());
      model[k2] = value + "auto";
    }
  }
  for (Snapshot& old : snapshots) ASSERT_TRUE(old.txn->Abort().ok());
  snapshots.clear();
  std::string stats;
  ASSERT_TRUE(env_->GetProperty("fern.stats", &stats));
  EXPECT_EQ(stats.find("table.small.commits_in_place: 0\n"), std::string::npos) << stats;
  ASSERT_NE(stats.find("table.small.commits_in_place: "), std::string::npos) << stats;
  // With no transaction live, a dirty reader sees what everyone does: no provisional
  // version may be left behind by a commit.
  auto check = [&](Table* t) {
    for (Isolation isolation : {Isolation::kReadCommitted, Isolation::kReadUncommitted}) {
      std::unique_ptr<Txn> reader = Begin(isolation);
      std::map<std::string, std::string> rows;
      auto cursor = t->NewCursor(reader.get());
      for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
        rows.emplace(std::string(cursor->key()), std::string(cursor->value()));
      }
      ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
      EXPECT_EQ(rows, model);
      cursor.reset();
      ASSERT_TRUE(reader->Commit().ok());
    }
  };
  check(table);
  Reopen();
  ASSERT_TRUE(env_->OpenTable("small", small, &table).ok());
  check(table);
}

}  // namespace
}  // namespace fern
