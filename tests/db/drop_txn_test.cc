// DropTable and the transactions that wrote the table: a live transaction whose table was
// dropped cannot commit (it is aborted whole, its other tables' writes with it), and a
// prepared one keeps its tables from being dropped until it ends.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;

class DropTxnTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    Options options;
    options.sync_commits = false;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    ASSERT_TRUE(env_->OpenTable("doomed", TableOptions(), &doomed_).ok());
    ASSERT_TRUE(env_->OpenTable("kept", TableOptions(), &kept_).ok());
  }

  std::unique_ptr<Txn> Begin() {
    std::unique_ptr<Txn> txn;
    EXPECT_TRUE(env_->Begin(TxnOptions(), &txn).ok());
    return txn;
  }

  bool Has(Table* table, const std::string& key) {
    std::string value;
    Status s = table->Get(nullptr, key, &value);
    EXPECT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
    return s.ok();
  }

  ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* doomed_ = nullptr;
  Table* kept_ = nullptr;
};

TEST_F(DropTxnTest, CommitAfterItsTableWasDroppedFailsAndAbortsTheWholeTransaction) {
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_TRUE(doomed_->Put(txn.get(), "a", "1").ok());
  ASSERT_TRUE(kept_->Put(txn.get(), "b", "2").ok());
  ASSERT_TRUE(env_->DropTable("doomed").ok());
  Status s = txn->Commit();
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("doomed"), std::string::npos) << s.ToString();
  EXPECT_NE(s.ToString().find("aborted"), std::string::npos) << s.ToString();
  // Ended: aborted, not committed.
  EXPECT_TRUE(txn->Commit().IsInvalidArgument());
  EXPECT_FALSE(Has(kept_, "b"));
  // Its row lock is gone with it.
  ASSERT_TRUE(kept_->Put(nullptr, "b", "3").ok());
  env_.reset();
  Open();
  std::string value;
  ASSERT_TRUE(kept_->Get(nullptr, "b", &value).ok());
  EXPECT_EQ(value, "3");
  EXPECT_FALSE(Has(doomed_, "a"));
}

TEST_F(DropTxnTest, ACommittedChildsWritesInADroppedTableFailTheParentsCommit) {
  std::unique_ptr<Txn> parent = Begin();
  ASSERT_TRUE(kept_->Put(parent.get(), "p", "1").ok());
  std::unique_ptr<Txn> child;
  ASSERT_TRUE(parent->BeginChild(&child).ok());
  ASSERT_TRUE(doomed_->Put(child.get(), "c", "1").ok());
  ASSERT_TRUE(child->Commit().ok());
  ASSERT_TRUE(env_->DropTable("doomed").ok());
  EXPECT_TRUE(parent->Commit().IsInvalidArgument());
  EXPECT_FALSE(Has(kept_, "p"));
}

TEST_F(DropTxnTest, AnAbortedChildsWritesDoNotTieItsParentToTheTable) {
  std::unique_ptr<Txn> parent = Begin();
  ASSERT_TRUE(kept_->Put(parent.get(), "p", "1").ok());
  std::unique_ptr<Txn> child;
  ASSERT_TRUE(parent->BeginChild(&child).ok());
  ASSERT_TRUE(doomed_->Put(child.get(), "c", "1").ok());
  ASSERT_TRUE(child->Abort().ok());
  ASSERT_TRUE(env_->DropTable("doomed").ok());
  Status s = parent->Commit();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(Has(kept_, "p"));
}

TEST_F(DropTxnTest, CommitsOfOtherTablesAreUnaffected) {
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_TRUE(kept_->Put(txn.get(), "b", "2").ok());
  ASSERT_TRUE(env_->DropTable("doomed").ok());
  Status s = txn->Commit();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(Has(kept_, "b"));
}

TEST_F(DropTxnTest, APreparedTransactionKeepsItsTableFromBeingDropped) {
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_TRUE(doomed_->Put(txn.get(), "a", "1").ok());
  ASSERT_TRUE(txn->Prepare("xa-1").ok());
  EXPECT_EQ(txn->xid(), "xa-1");
  Status s = env_->DropTable("doomed");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  // The refused drop left the table working.
  ASSERT_TRUE(doomed_->Put(nullptr, "z", "9").ok());
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(txn->xid(), "");  // ended: no longer prepared
  EXPECT_TRUE(Has(doomed_, "a"));
  ASSERT_TRUE(env_->DropTable("doomed").ok());
}

TEST_F(DropTxnTest, AnAbortedPreparedTransactionLetsTheDropThrough) {
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_TRUE(doomed_->Put(txn.get(), "a", "1").ok());
  ASSERT_TRUE(txn->Prepare("xa-2").ok());
  EXPECT_TRUE(env_->DropTable("doomed").IsBusy());
  ASSERT_TRUE(txn->Abort().ok());
  EXPECT_EQ(txn->xid(), "");
  ASSERT_TRUE(env_->DropTable("doomed").ok());
}

TEST_F(DropTxnTest, ATransactionWhoseTableWasDroppedCannotPrepare) {
  std::unique_ptr<Txn> txn = Begin();
  ASSERT_TRUE(doomed_->Put(txn.get(), "a", "1").ok());
  ASSERT_TRUE(kept_->Put(txn.get(), "b", "1").ok());
  ASSERT_TRUE(env_->DropTable("doomed").ok());
  Status s = txn->Prepare("xa-3");
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(txn->xid(), "");
  ASSERT_TRUE(txn->Abort().ok());
  EXPECT_FALSE(Has(kept_, "b"));
}

TEST_F(DropTxnTest, ARecoveredPreparedTransactionKeepsItsTableFromBeingDropped) {
  {
    std::unique_ptr<Txn> txn = Begin();
    ASSERT_TRUE(doomed_->Put(txn.get(), "a", "1").ok());
    ASSERT_TRUE(txn->Prepare("xa-4").ok());
    env_.reset();  // the prepared transaction survives for RecoverPrepared
  }
  Open();
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env_->RecoverPrepared(&prepared).ok());
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_EQ(prepared[0]->xid(), "xa-4");
  EXPECT_TRUE(env_->DropTable("doomed").IsBusy());
  ASSERT_TRUE(prepared[0]->Commit().ok());
  EXPECT_TRUE(Has(doomed_, "a"));
  ASSERT_TRUE(env_->DropTable("doomed").ok());
}

// Writers commit transactions that each write one row in both tables while the drop runs:
// every commit either succeeded (its row in "kept" is there) or failed whole (it is not).
TEST_F(DropTxnTest, CommitsRacingTheDropAreAllOrNothing) {
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE(round);
    const std::string name = "racing" + std::to_string(round);
    Table* racing;
    ASSERT_TRUE(env_->OpenTable(name, TableOptions(), &racing).ok());
    std::mutex mu;
    std::vector<std::string> committed;
    std::vector<std::string> refused;
    std::atomic<int> unexpected{0};
    std::vector<std::thread> writers;
    // One transaction of writer `w`; false once the writer should stop.
    auto write_one = [&](int w, int i) {
      const std::string key = name + "/" + std::to_string(w) + "/" + std::to_string(i);
      std::unique_ptr<Txn> txn;
      Status s = env_->Begin(TxnOptions(), &txn);
      if (s.ok()) s = kept_->Put(txn.get(), key, "v");
      if (s.ok()) {
        s = racing->Put(txn.get(), key, "v");
        if (s.IsInvalidArgument()) return false;  // dropped under the write: txn aborts
      }
      if (s.ok()) s = txn->Commit();
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok()) {
        committed.push_back(key);
        return true;
      }
      if (s.IsInvalidArgument()) {
        refused.push_back(key);
      } else {
        ++unexpected;
      }
      return false;
    };
    for (int w = 0; w < 3; ++w) {
      writers.emplace_back([&write_one, w] {
        for (int i = 0; write_one(w, i); ++i) {
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + round % 5 * 3));
    ASSERT_TRUE(env_->DropTable(name).ok());
    for (std::thread& t : writers) t.join();
    EXPECT_EQ(unexpected.load(), 0);
    for (const std::string& key : committed) EXPECT_TRUE(Has(kept_, key)) << key;
    for (const std::string& key : refused) EXPECT_FALSE(Has(kept_, key)) << key;
  }
}

}  // namespace
}  // namespace fern
