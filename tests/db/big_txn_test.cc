// Transactions bigger than their memory: past WriteSet::kDefaultMemoryLimit the write set
// spills to the transaction's rollback file in the Env directory, and past
// LockTree::kDefaultEscalateAt row locks in a table the locks escalate to ranges. Commit,
// abort, a child's commit into its parent and a crash must all treat every row as before.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "db/write_set.h"
#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "txn/lock_tree.h"

namespace fern {
namespace {

// More rows than either limit: the write set spills (16-byte keys, ~70 bytes a row in
// memory) and the locks escalate.
constexpr int kBigRows = 160'000;
static_assert(kBigRows > LockTree::kDefaultEscalateAt);
static_assert(kBigRows * 57 > WriteSet::kDefaultMemoryLimit);

// 16 bytes, even numbers only, in a scattered order: the keys between them (NumberedKey of
// an odd number) are free key space that escalation takes.
std::string BigKey(int i) { return testing::NumberedKey(2 * ((i * 7919) % kBigRows)) + "-bigtxn-"; }

class BigTxnTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    Options options;
    options.sync_commits = false;
    options.cache_bytes = size_t{32} << 20;
    options.lock_timeout_ms = 50;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    ASSERT_TRUE(env_->OpenTable("t", TableOptions(), &table_).ok());
  }
  void Reopen() {
    table_ = nullptr;
    env_.reset();
    Open();
  }
  std::vector<std::string> RollbackFiles() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
      if (IsRollbackFileName(e.path().filename().string())) out.push_back(e.path().string());
    }
    return out;
  }
  size_t CountRows() {
    std::unique_ptr<Cursor> c = table_->NewCursor(nullptr);
    size_t n = 0;
    for (c->SeekToFirst(); c->Valid(); c->Next()) ++n;
    EXPECT_TRUE(c->status().ok()) << c->status().ToString();
    return n;
  }
  std::unique_ptr<Txn> Begin() {
    std::unique_ptr<Txn> txn;
    EXPECT_TRUE(env_->Begin(TxnOptions(), &txn).ok());
    return txn;
  }
  void WriteBig(Txn* txn, const std::string& value) {
    for (int i = 0; i < kBigRows; ++i) {
      ASSERT_TRUE(table_->Put(txn, BigKey(i), value).ok()) << i;
    }
  }

  // Closes the Env; a child process opens it, writes kBigRows in one transaction, prepares
  // it with `xid` unless that is empty, and is killed.
  void CrashDuringBigTransaction(const std::string& xid) {
    table_ = nullptr;
    env_.reset();
    ASSERT_TRUE(testing::CrashAfterChild([&] {
      Open();
      std::unique_ptr<Txn> txn;
      if (!env_->Begin(TxnOptions(), &txn).ok()) return 1;
      for (int i = 0; i < kBigRows; ++i) {
        if (!table_->Put(txn.get(), BigKey(i), "v").ok()) return 2;
      }
      if (RollbackFiles().size() != 1) return 3;
      if (!xid.empty() && !txn->Prepare(xid).ok()) return 4;
      testing::CrashNow();
      return 5;
    }));
  }

  testing::ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
};

TEST_F(BigTxnTest, CommitResolvesEverySpilledRowAndRemovesTheRollbackFile) {
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_NO_FATAL_FAILURE(WriteBig(txn.get(), "v1"));
  // The same rows again: recorded again past the spill, resolved twice, harmless.
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(table_->Put(txn.get(), BigKey(i), "v2").ok());
  EXPECT_EQ(RollbackFiles().size(), 1u);

  // Escalated: another transaction cannot write in the key space between the rows, only
  // outside the first and the last.
  std::unique_ptr<Txn> other = Begin();
  EXPECT_TRUE(table_->Put(other.get(), testing::NumberedKey(3), "x").IsBusy());
  EXPECT_TRUE(table_->Put(other.get(), testing::NumberedKey(2 * kBigRows + 1), "x").ok());
  ASSERT_TRUE(other->Commit().ok());

  // Uncommitted rows stay invisible to others.
  std::string value;
  EXPECT_TRUE(table_->Get(nullptr, BigKey(5), &value).IsNotFound());
  std::string stats;
  ASSERT_TRUE(env_->GetProperty("fern.stats", &stats));
  EXPECT_GE(testing::StatValue(stats, "txn.rollback_spills"), 1);
  EXPECT_GE(testing::StatValue(stats, "table.t.lock_escalations"), 1);
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_TRUE(RollbackFiles().empty());
  EXPECT_EQ(CountRows(), static_cast<size_t>(kBigRows) + 1);
  ASSERT_TRUE(table_->Get(nullptr, BigKey(5), &value).ok());
  EXPECT_EQ(value, "v2");
  ASSERT_TRUE(table_->Get(nullptr, BigKey(kBigRows - 1), &value).ok());
  EXPECT_EQ(value, "v1");
  // The locks went with the commit.
  EXPECT_TRUE(table_->Put(nullptr, testing::NumberedKey(3), "free").ok());

  // Committed, not left provisional: the same after a reopen and an Optimize.
  Reopen();
  ASSERT_TRUE(table_->Optimize().ok());
  EXPECT_EQ(CountRows(), static_cast<size_t>(kBigRows) + 2);
  ASSERT_TRUE(table_->Get(nullptr, BigKey(kBigRows / 2), &value).ok());
}

TEST_F(BigTxnTest, AbortUndoesEverySpilledRow) {
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(table_->Put(nullptr, BigKey(i), "old").ok());
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_NO_FATAL_FAILURE(WriteBig(txn.get(), "new"));
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(table_->Delete(txn.get(), BigKey(i)).ok());
  EXPECT_EQ(RollbackFiles().size(), 1u);
  ASSERT_TRUE(txn->Abort().ok());
  EXPECT_TRUE(RollbackFiles().empty());
  EXPECT_EQ(CountRows(), 1000u);
  std::string value;
  for (int i = 0; i < 1000; i += 37) {
    ASSERT_TRUE(table_->Get(nullptr, BigKey(i), &value).ok()) << i;
    EXPECT_EQ(value, "old");
  }
  ASSERT_TRUE(table_->Optimize().ok());
  EXPECT_EQ(CountRows(), 1000u);
}

// A rollback file damaged before Commit: the commit fails before anything is decided, and
// no reader ever sees part of the transaction (with the commit record logged first, the
// keys resolved before the damage showed as committed and the rest did not until a reopen).
TEST_F(BigTxnTest, ADamagedRollbackFileFailsCommitWithNothingVisible) {
  ASSERT_TRUE(table_->Put(nullptr, "before", "1").ok());
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_NO_FATAL_FAILURE(WriteBig(txn.get(), "v"));
  ASSERT_EQ(RollbackFiles().size(), 1u);
  const std::string file = RollbackFiles()[0];
  std::filesystem::resize_file(file, std::filesystem::file_size(file) / 2);
  Status s = txn->Commit();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("rollback file"), std::string::npos) << s.ToString();
  EXPECT_EQ(CountRows(), 1u);
  EXPECT_FALSE(txn->Abort().ok());  // it too reads the file, as far as it can
  txn.reset();
  EXPECT_EQ(CountRows(), 1u);
  std::string value;
  EXPECT_TRUE(table_->Get(nullptr, BigKey(0), &value).IsNotFound());
  Reopen();
  EXPECT_EQ(CountRows(), 1u);
  EXPECT_TRUE(RollbackFiles().empty());
  EXPECT_TRUE(table_->Put(nullptr, BigKey(0), "after").ok());
}

TEST_F(BigTxnTest, AChildsSpilledWritesPassToItsParent) {
  for (bool parent_commits : {false, true}) {
    std::unique_ptr<Txn> parent = Begin();
    std::unique_ptr<Txn> child;
    ASSERT_TRUE(parent->BeginChild(&child).ok());
    ASSERT_NO_FATAL_FAILURE(WriteBig(child.get(), parent_commits ? "kept" : "gone"));
    ASSERT_TRUE(child->Commit().ok());
    child.reset();
    ASSERT_TRUE(table_->Put(parent.get(), "parent-row", "p").ok());
    if (parent_commits) {
      ASSERT_TRUE(parent->Commit().ok());
    } else {
      ASSERT_TRUE(parent->Abort().ok());
    }
    EXPECT_TRUE(RollbackFiles().empty());
    EXPECT_EQ(CountRows(), parent_commits ? static_cast<size_t>(kBigRows) + 1 : 0u);
  }
  std::string value;
  ASSERT_TRUE(table_->Get(nullptr, BigKey(77), &value).ok());
  EXPECT_EQ(value, "kept");
}

TEST_F(BigTxnTest, AnAbortedChildsSpilledWritesLeaveItsParentsRows) {
  std::unique_ptr<Txn> parent = Begin();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(table_->Put(parent.get(), BigKey(i), "p").ok());
  std::unique_ptr<Txn> child;
  ASSERT_TRUE(parent->BeginChild(&child).ok());
  ASSERT_NO_FATAL_FAILURE(WriteBig(child.get(), "c"));
  // Written again past the spill: aborted twice.
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(table_->Delete(child.get(), BigKey(i)).ok());
  EXPECT_EQ(RollbackFiles().size(), 1u);  // the child's: the parent's 1,000 rows stay in memory
  ASSERT_TRUE(child->Abort().ok());
  std::string value;
  for (int i = 0; i < 2000; i += 7) {
    Status s = table_->Get(parent.get(), BigKey(i), &value);
    if (i < 1000) {
      ASSERT_TRUE(s.ok()) << i << ": " << s.ToString();
      EXPECT_EQ(value, "p");
    } else {
      EXPECT_TRUE(s.IsNotFound()) << i;
    }
  }
  ASSERT_TRUE(parent->Commit().ok());
  EXPECT_TRUE(RollbackFiles().empty());
  EXPECT_EQ(CountRows(), 1000u);
  ASSERT_TRUE(table_->Optimize().ok());
  EXPECT_EQ(CountRows(), 1000u);
  ASSERT_TRUE(table_->Get(nullptr, BigKey(999), &value).ok());
  EXPECT_EQ(value, "p");
}

TEST_F(BigTxnTest, ACrashMidTransactionLeavesNoRowAndNoRollbackFile) {
  ASSERT_TRUE(table_->Put(nullptr, "before", "1").ok());
  ASSERT_NO_FATAL_FAILURE(CrashDuringBigTransaction(/*xid=*/""));
  EXPECT_EQ(RollbackFiles().size(), 1u);  // left by the crash
  Open();
  EXPECT_TRUE(RollbackFiles().empty());
  EXPECT_EQ(CountRows(), 1u);
}

TEST_F(BigTxnTest, APreparedBigTransactionComesBackAfterACrashAndCommits) {
  ASSERT_NO_FATAL_FAILURE(CrashDuringBigTransaction("big-xid"));
  Open();
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env_->RecoverPrepared(&prepared).ok());
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_EQ(prepared[0]->xid(), "big-xid");
  // Its locks came back with it, escalated.
  std::unique_ptr<Txn> other = Begin();
  EXPECT_TRUE(table_->Put(other.get(), testing::NumberedKey(3), "x").IsBusy());
  ASSERT_TRUE(other->Abort().ok());
  EXPECT_EQ(RollbackFiles().size(), 1u);  // the restored transaction's write set spilled
  ASSERT_TRUE(prepared[0]->Commit().ok());
  EXPECT_TRUE(RollbackFiles().empty());
  EXPECT_EQ(CountRows(), static_cast<size_t>(kBigRows));
  Reopen();
  EXPECT_EQ(CountRows(), static_cast<size_t>(kBigRows));
}

TEST_F(BigTxnTest, APreparedTransactionsRollbackFileGoesWhenItsEnvCloses) {
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_NO_FATAL_FAILURE(WriteBig(txn.get(), "v"));
  ASSERT_TRUE(txn->Prepare("kept-open").ok());
  EXPECT_EQ(RollbackFiles().size(), 1u);
  table_ = nullptr;
  env_.reset();  // the caller still holds the prepared transaction
  EXPECT_TRUE(RollbackFiles().empty());
  EXPECT_TRUE(txn->Commit().IsInvalidArgument());
  Open();
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env_->RecoverPrepared(&prepared).ok());
  ASSERT_EQ(prepared.size(), 1u);
  txn.reset();  // the old object, destroyed after the new Env took the same id
  ASSERT_TRUE(prepared[0]->Commit().ok());
  EXPECT_TRUE(RollbackFiles().empty());
  EXPECT_EQ(CountRows(), static_cast<size_t>(kBigRows));
}

}  // namespace
}  // namespace fern
