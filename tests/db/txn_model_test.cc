// The transactional model test: random transactions (some with nested children) commit or
// abort, mixed with autocommitted writes, checkpoints and reopens; the table must always
// equal a std::map that applied exactly the committed writes.
#include <map>
#include <memory>
#include <random>
#include <string>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using Model = std::map<std::string, std::string>;

class TxnModelTest : public ::testing::Test {
 protected:
  void Open() {
    Options options;
    options.sync_commits = false;
    options.cache_bytes = size_t{4} << 20;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    ASSERT_TRUE(env_->OpenTable("model", testing::SmallTreeOptions(), &table_).ok());
  }

  std::string Key() { return "key" + std::to_string(rng_() % 5000); }
  std::string Value() { return std::string(rng_() % 80, static_cast<char>('a' + rng_() % 26)); }

  // Random writes through `txn`, recorded in `pending` (the txn's view of the model).
  void Write(Txn* txn, Model* pending, int ops) {
    for (int i = 0; i < ops; ++i) {
      std::string key = Key();
      if (rng_() % 4 == 0) {
        ASSERT_TRUE(table_->Delete(txn, key).ok());
        pending->erase(key);
      } else {
        std::string value = Value();
        ASSERT_TRUE(table_->Put(txn, key, value).ok());
        (*pending)[key] = value;
      }
      if (rng_() % 5 == 0) {  // a read sees the transaction's own writes
        std::string got;
        Status s = table_->Get(txn, key, &got);
        auto it = pending->find(key);
        if (it == pending->end()) {
          ASSERT_TRUE(s.IsNotFound()) << s.ToString();
        } else {
          ASSERT_TRUE(s.ok()) << s.ToString();
          ASSERT_EQ(got, it->second);
        }
      }
    }
  }

  void CheckAll() {
    auto cursor = table_->NewCursor(nullptr);
    auto it = model_.begin();
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++it) {
      ASSERT_NE(it, model_.end());
      ASSERT_EQ(cursor->key(), it->first);
      ASSERT_EQ(cursor->value(), it->second);
    }
    ASSERT_TRUE(cursor->status().ok());
    ASSERT_EQ(it, model_.end());
  }

  testing::ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
  Model model_;
  std::mt19937_64 rng_{77};
};

TEST_F(TxnModelTest, CommittedTransactionsMatchTheModel) {
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int round = 0; round < 6000; ++round) {
    int kind = static_cast<int>(rng_() % 10);
    if (kind == 0) {
      Model pending = model_;
      ASSERT_NO_FATAL_FAILURE(Write(nullptr, &pending, 5));
      model_ = std::move(pending);
      continue;
    }
    std::unique_ptr<Txn> txn;
    TxnOptions options;
    options.isolation = rng_() % 2 ? Isolation::kSnapshot : Isolation::kReadCommitted;
    ASSERT_TRUE(env_->Begin(options, &txn).ok());
    Model pending = model_;
    ASSERT_NO_FATAL_FAILURE(Write(txn.get(), &pending, 1 + static_cast<int>(rng_() % 12)));
    if (kind <= 3) {  // a nested child that commits or aborts
      std::unique_ptr<Txn> child;
      ASSERT_TRUE(txn->BeginChild(&child).ok());
      Model child_view = pending;
      ASSERT_NO_FATAL_FAILURE(Write(child.get(), &child_view, 1 + static_cast<int>(rng_() % 8)));
      if (rng_() % 2) {
        ASSERT_TRUE(child->Commit().ok());
        pending = std::move(child_view);
      } else {
        ASSERT_TRUE(child->Abort().ok());
      }
    }
    if (rng_() % 3 == 0) {
      ASSERT_TRUE(txn->Abort().ok());
    } else {
      ASSERT_TRUE(txn->Commit().ok());
      model_ = std::move(pending);
    }
    if (round % 1000 == 999) {
      ASSERT_NO_FATAL_FAILURE(CheckAll());
    }
    if (round % 1500 == 1499) {
      ASSERT_TRUE(env_->Checkpoint().ok());
    }
    if (round % 2000 == 1999) {
      table_ = nullptr;
      env_.reset();
      ASSERT_NO_FATAL_FAILURE(Open());
      ASSERT_NO_FATAL_FAILURE(CheckAll());
    }
  }
  ASSERT_TRUE(table_->Optimize().ok());
  ASSERT_NO_FATAL_FAILURE(CheckAll());
}

}  // namespace
}  // namespace fern
