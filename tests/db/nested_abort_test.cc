// What an aborted child transaction leaves behind, on a tree deep enough that its messages
// wait in internal nodes' buffers: nothing. Its writes filled in its parent's level with
// copies of what the parent saw; those copies must go with the abort, or the parent's commit
// (whose write set does not name a key only the child wrote, and which commits a key the
// parent wrote once in its buffer, without a message) leaves them in the leaf for good,
// where a read-uncommitted reader takes them for the newest version.
#include <memory>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr Isolation kIsolations[] = {Isolation::kReadUncommitted, Isolation::kReadCommitted,
                                     Isolation::kSnapshot, Isolation::kSerializable};

enum class Op { kNone, kPut, kDelete };

Status Apply(Table* table, Txn* txn, Op op, const std::string& key, const std::string& value) {
  switch (op) {
    case Op::kNone:
      return Status::OK();
    case Op::kPut:
      return table->Put(txn, key, value);
    case Op::kDelete:
      return table->Delete(txn, key);
  }
  return Status::OK();
}

class NestedAbortTest : public ::testing::Test {
 protected:
  void Open() {
    Options options;
    options.sync_commits = false;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    TableOptions table_options;
    table_options.node_bytes = 8 << 10;  // 300 rows make a tree of two levels
    table_options.basement_bytes = 1 << 10;
    ASSERT_TRUE(env_->OpenTable("t", table_options, &table_).ok());
  }

  // `key` as a transaction of each isolation level sees it, by Get and by a cursor, all of
  // which must agree with `expected` ("<none>": no row).
  void ExpectEverywhere(const std::string& key, const std::string& expected,
                        const std::string& when) {
    for (Isolation isolation : kIsolations) {
      TxnOptions options;
      options.isolation = isolation;
      std::unique_ptr<Txn> txn;
      ASSERT_TRUE(env_->Begin(options, &txn).ok());
      std::string value;
      Status s = table_->Get(txn.get(), key, &value);
      ASSERT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
      EXPECT_EQ(s.ok() ? value : "<none>", expected)
          << when << ", Get at isolation " << static_cast<int>(isolation);
      std::unique_ptr<Cursor> cursor = table_->NewCursor(txn.get());
      cursor->Seek(key);
      const bool found = cursor->Valid() && cursor->key() == key;
      EXPECT_EQ(found ? std::string(cursor->value()) : "<none>", expected)
          << when << ", cursor at isolation " << static_cast<int>(isolation);
      cursor.reset();
      ASSERT_TRUE(txn->Commit().ok());
    }
  }

  testing::ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
};

// Every combination of what the child did before aborting and what the parent then did,
// with the parent committing or aborting; read back at every isolation level, after an
// Optimize (every buffer flushed into the leaves) and after a reopen.
TEST_F(NestedAbortTest, AnAbortedChildLeavesNoVersionBehind) {
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(table_->Put(nullptr, testing::NumberedKey(i), std::string(50, 'p')).ok());
  }
  struct Case {
    std::string key;
    std::string expected;
  };
  std::vector<Case> cases;
  int n = 0;
  for (Op child : {Op::kPut, Op::kDelete}) {
    for (Op parent : {Op::kNone, Op::kPut, Op::kDelete}) {
      for (bool parent_commits : {true, false}) {
        for (bool parent_first : {false, true}) {
          const std::string key = "case" + std::to_string(n++);
          ASSERT_TRUE(table_->Put(nullptr, key, "old").ok());
          std::unique_ptr<Txn> txn;
          ASSERT_TRUE(env_->Begin(TxnOptions(), &txn).ok());
          // The parent's write before the child's, or after its abort.
          if (parent_first) {
            ASSERT_TRUE(Apply(table_, txn.get(), parent, key, "parent").ok());
          }
          std::unique_ptr<Txn> child_txn;
          ASSERT_TRUE(txn->BeginChild(&child_txn).ok());
          ASSERT_TRUE(Apply(table_, child_txn.get(), child, key, "child").ok());
          ASSERT_TRUE(child_txn->Abort().ok());
          if (!parent_first) {
            ASSERT_TRUE(Apply(table_, txn.get(), parent, key, "parent").ok());
          }
          ASSERT_TRUE((parent_commits ? txn->Commit() : txn->Abort()).ok());
          std::string expected = "old";
          if (parent_commits && parent == Op::kPut) expected = "parent";
          if (parent_commits && parent == Op::kDelete) expected = "<none>";
          cases.push_back({key, expected});
        }
      }
    }
  }
  for (const Case& c : cases) ASSERT_NO_FATAL_FAILURE(ExpectEverywhere(c.key, c.expected, c.key));
  ASSERT_TRUE(table_->Optimize().ok());
  for (const Case& c : cases) {
    ASSERT_NO_FATAL_FAILURE(ExpectEverywhere(c.key, c.expected, c.key + " after Optimize"));
  }
  table_ = nullptr;
  env_.reset();
  ASSERT_NO_FATAL_FAILURE(Open());
  for (const Case& c : cases) {
    ASSERT_NO_FATAL_FAILURE(ExpectEverywhere(c.key, c.expected, c.key + " after reopen"));
  }
  // A later autocommitted delete removes every row it names.
  for (const Case& c : cases) ASSERT_TRUE(table_->Delete(nullptr, c.key).ok());
  ASSERT_TRUE(table_->Optimize().ok());
  for (const Case& c : cases) {
    ASSERT_NO_FATAL_FAILURE(ExpectEverywhere(c.key, "<none>", c.key + " deleted"));
  }
}

}  // namespace
}  // namespace fern
