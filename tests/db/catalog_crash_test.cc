// A table created or dropped after commits that were not synced: a crash right after must
// not keep the catalog change while losing those commits (recovery yields a prefix,
// API.md). The change is durable as soon as the catalog is saved, so the log is made
// durable first.
#include <memory>
#include <string>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int kRows = 10;

Options UnsyncedOptions() {
  Options options;
  options.sync_commits = false;
  options.checkpoint_period_ms = 0;  // no checkpoint makes the log durable meanwhile
  return options;
}

std::string Key(int i) { return "k" + std::to_string(i); }

enum class Change { kDrop, kCreate };

// In a child: kRows unsynced autocommits to "a", then the catalog change, then SIGKILL.
void CrashAfterCatalogChange(const std::string& dir, Change change, bool in_transactions) {
  ASSERT_TRUE(testing::CrashAfterChild([&]() -> int {
    std::unique_ptr<Env> env;
    Options options = UnsyncedOptions();
    if (in_transactions) options.sync_commits = true;  // each transaction opts out instead
    if (!Env::Open(dir, options, &env).ok()) return 3;
    Table* a;
    if (!env->OpenTable("a", TableOptions(), &a).ok()) return 4;
    for (int i = 0; i < kRows; ++i) {
      if (in_transactions) {
        TxnOptions txn_options;
        txn_options.sync = false;
        std::unique_ptr<Txn> txn;
        if (!env->Begin(txn_options, &txn).ok() || !a->Put(txn.get(), Key(i), "v").ok() ||
            !txn->Commit().ok()) {
          return 5;
        }
      } else if (!a->Put(nullptr, Key(i), "v").ok()) {
        return 5;
      }
    }
    Table* c;
    Status s =
        change == Change::kDrop ? env->DropTable("b") : env->OpenTable("c", TableOptions(), &c);
    if (!s.ok()) return 6;
    testing::CrashNow();
    return 7;
  }));
}

void CheckPrefix(Change change, bool in_transactions) {
  testing::ScratchDir scratch;
  const std::string dir = scratch.Sub("env");
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir, Options(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("a", TableOptions(), &table).ok());
    ASSERT_TRUE(env->OpenTable("b", TableOptions(), &table).ok());
    ASSERT_TRUE(table->Put(nullptr, "row of b", "v").ok());
  }
  ASSERT_NO_FATAL_FAILURE(CrashAfterCatalogChange(dir, change, in_transactions));

  std::unique_ptr<Env> env;
  Status s = Env::Open(dir, Options(), &env);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Table* a;
  ASSERT_TRUE(env->OpenTable("a", TableOptions(), &a).ok());
  int present = 0;
  for (int i = 0; i < kRows; ++i) {
    std::string value;
    if (a->Get(nullptr, Key(i), &value).ok()) ++present;
  }
  // The catalog change survived the crash (it is durable when its call returns; DropTable
  // says whether the table exists) ...
  if (change == Change::kDrop) {
    EXPECT_TRUE(env->DropTable("b").IsNotFound());
  } else {
    EXPECT_TRUE(env->DropTable("c").ok());
  }
  // ... so every commit made before it did too.
  EXPECT_EQ(present, kRows) << "the catalog change was kept but commits before it were lost";
}

TEST(CatalogCrashTest, DropTableAfterUnsyncedCommitsKeepsThem) {
  CheckPrefix(Change::kDrop, false);
}

TEST(CatalogCrashTest, DropTableAfterUnsyncedTransactionsKeepsThem) {
  CheckPrefix(Change::kDrop, true);
}

TEST(CatalogCrashTest, CreateTableAfterUnsyncedCommitsKeepsThem) {
  CheckPrefix(Change::kCreate, false);
}

}  // namespace
}  // namespace fern
