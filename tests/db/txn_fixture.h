// A test fixture for transactions through the public API: one Env in a scratch directory
// with one table "t", and helpers to begin transactions and read rows.
#ifndef FERN_TESTS_DB_TXN_FIXTURE_H_
#define FERN_TESTS_DB_TXN_FIXTURE_H_

#include <memory>
#include <string>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern::testing {

class TxnFixture : public ::testing::Test {
 protected:
  // The options the Env opens with (and reopens with).
  virtual Options EnvOptions() const {
    Options options;
    options.lock_timeout_ms = 100;
    return options;
  }
  void SetUp() override { Open(); }
  void Open() {
    ASSERT_TRUE(Env::Open(dir_.path(), EnvOptions(), &env_).ok());
    ASSERT_TRUE(env_->OpenTable("t", TableOptions(), &table_).ok());
  }
  void Reopen() {
    table_ = nullptr;
    env_.reset();
    Open();
  }
  std::unique_ptr<Txn> Begin(Isolation isolation = Isolation::kReadCommitted) {
    TxnOptions options;
    options.isolation = isolation;
    std::unique_ptr<Txn> txn;
    EXPECT_TRUE(env_->Begin(options, &txn).ok());
    return txn;
  }
  // The row's value as `txn` sees it, or "<none>".
  std::string Read(Txn* txn, const std::string& key) { return ReadRow(table_, txn, key); }

  ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
};

}  // namespace fern::testing

#endif  // FERN_TESTS_DB_TXN_FIXTURE_H_
