// The bulk loader through the public API: Env::NewLoader, Loader::Add and Loader::Finish.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "db/suffix_fault_injector.h"
#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;

std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llu", static_cast<unsigned long long>(i));
  return buf;
}

std::string Value(uint64_t i) { return "value-" + std::to_string(i) + std::string(i % 61, 'v'); }

// 0..n-1 in a random order.
std::vector<uint64_t> Shuffled(uint64_t n, uint64_t seed) {
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

// Unsynced commits, and lock waits (a load's wait for readers too) that end after `ms`.
Options ShortWaits(uint32_t ms) {
  Options options;
  options.sync_commits = false;
  options.lock_timeout_ms = ms;
  return options;
}

int CountRunFiles(const std::string& dir) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".run") ++n;
  }
  return n;
}

std::vector<std::string> TableFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".ft") files.push_back(entry.path().string());
  }
  return files;
}

// Runs ftverify on every table file of a closed Env; its exit code must be 0.
void ExpectFtverifyPasses(const std::string& dir) {
#ifdef FERN_FTVERIFY
  for (const std::string& file : TableFiles(dir)) {
    std::string command = std::string(FERN_FTVERIFY) + " " + file + " > /dev/null 2>&1";
    int status = std::system(command.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "ftverify failed on " << file;
  }
#else
  (void)dir;
#endif
}

uint64_t CountRows(Table* table) {
  auto cursor = table->NewCursor(nullptr);
  uint64_t n = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++n;
  EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  return n;
}

// Every row 0..n-1 of Key/Value, through Get and through a cursor both ways.
void ExpectLoaded(Table* table, uint64_t n) {
  std::string v;
  for (uint64_t i = 0; i < n; ++i) {
    Status s = table->Get(nullptr, Key(i), &v);
    ASSERT_TRUE(s.ok()) << Key(i) << ": " << s.ToString();
    ASSERT_EQ(v, Value(i)) << Key(i);
  }
  EXPECT_TRUE(table->Get(nullptr, Key(n), &v).IsNotFound());
  auto cursor = table->NewCursor(nullptr);
  uint64_t i = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++i) {
    ASSERT_EQ(cursor->key(), Key(i));
    ASSERT_EQ(cursor->value(), Value(i));
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(i, n);
  for (cursor->SeekToLast(); cursor->Valid(); cursor->Prev()) {
    --i;
    ASSERT_EQ(cursor->key(), Key(i));
    ASSERT_EQ(cursor->value(), Value(i));
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(i, 0u);
}

// Opens the Env in `dir` and its table "t" of small nodes.
void OpenTableT(const std::string& dir, const Options& options, std::unique_ptr<Env>* env,
                Table** table) {
  ASSERT_TRUE(Env::Open(dir, options, env).ok());
  ASSERT_TRUE((*env)->OpenTable("t", testing::SmallTreeOptions(), table).ok());
}

// The closed Env in `dir` passes ftverify, and reopened holds rows 0..n-1 in table "t".
void ExpectLoadedAfterReopen(const std::string& dir, const Options& options, uint64_t n) {
  ExpectFtverifyPasses(dir);
  std::unique_ptr<Env> env;
  Table* table = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenTableT(dir, options, &env, &table));
  ExpectLoaded(table, n);
}

Status Load(Env* env, Table* table, const std::vector<uint64_t>& order) {
  std::unique_ptr<Loader> loader;
  Status s = env->NewLoader(table, &loader);
  if (!s.ok()) return s;
  for (uint64_t i : order) {
    s = loader->Add(Key(i), Value(i));
    if (!s.ok()) return s;
  }
  return loader->Finish();
}

// Rows appear at once for every reader when a load is installed, so a reader that saw the
// table empty must not be live then: a snapshot (of a kSnapshot transaction or a cursor
// without one) or a serializable transaction that scanned the table makes Finish wait,
// then Busy with nothing loaded; unrelated transactions do not.
TEST(LoaderTest, FinishWaitsForReadersThatSawTheTableEmpty) {
  ScratchDir dir;
  const Options options = ShortWaits(200);
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  Table* other;
  ASSERT_TRUE(env->OpenTable("other", TableOptions(), &other).ok());
  const std::vector<uint64_t> order = {3, 1, 2, 0};
  for (int reader = 0; reader < 3; ++reader) {
    SCOPED_TRACE(reader);
    std::unique_ptr<Txn> txn;
    std::unique_ptr<Cursor> cursor;
    TxnOptions txn_options;
    if (reader == 0) txn_options.isolation = Isolation::kSnapshot;
    if (reader == 2) txn_options.isolation = Isolation::kSerializable;
    if (reader == 1) {
      cursor = table->NewCursor(nullptr);
    } else {
      ASSERT_TRUE(env->Begin(txn_options, &txn).ok());
      cursor = table->NewCursor(txn.get());
    }
    cursor->SeekToFirst();
    ASSERT_FALSE(cursor->Valid());
    Status s = Load(env.get(), table, order);
    EXPECT_TRUE(s.IsBusy()) << s.ToString();
    cursor->SeekToFirst();
    EXPECT_FALSE(cursor->Valid());
    cursor.reset();
    if (txn != nullptr) {
      ASSERT_TRUE(txn->Commit().ok());
    }
    auto fresh = table->NewCursor(nullptr);
    fresh->SeekToFirst();
    EXPECT_FALSE(fresh->Valid());  // nothing was loaded
  }
  // A transaction that holds nothing in the table does not hold the load up.
  std::unique_ptr<Txn> unrelated;
  ASSERT_TRUE(env->Begin(TxnOptions(), &unrelated).ok());
  ASSERT_TRUE(other->Put(unrelated.get(), "k", "v").ok());
  ASSERT_TRUE(Load(env.get(), table, order).ok());
  ASSERT_TRUE(unrelated->Commit().ok());
  ExpectLoaded(table, order.size());
}

// A Finish that returned Busy keeps what it built: once the reader has gone, Finish again
// installs it (no row needs adding again); Add in between is refused.
TEST(LoaderTest, FinishAfterBusyInstallsTheTreeItBuilt) {
  ScratchDir dir;
  const Options options = ShortWaits(100);
  constexpr uint64_t kRows = 30000;
  {
    std::unique_ptr<Env> env;
    Table* table = nullptr;
    ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), options, &env, &table));
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env->NewLoader(table, &loader).ok());
    for (uint64_t i : Shuffled(kRows, 3)) ASSERT_TRUE(loader->Add(Key(i), Value(i)).ok());
    std::unique_ptr<Cursor> reader = table->NewCursor(nullptr);  // saw the table empty
    reader->SeekToFirst();
    ASSERT_FALSE(reader->Valid());
    Status s = loader->Finish();
    ASSERT_TRUE(s.IsBusy()) << s.ToString();
    EXPECT_TRUE(loader->Add(Key(kRows), Value(kRows)).IsInvalidArgument());
    s = loader->Finish();
    EXPECT_TRUE(s.IsBusy()) << s.ToString();
    reader.reset();
    ASSERT_TRUE(loader->Finish().ok());
    EXPECT_TRUE(loader->Finish().IsInvalidArgument());  // called twice
    EXPECT_EQ(CountRunFiles(dir.path()), 0);
    ExpectLoaded(table, kRows);
  }
  ExpectLoadedAfterReopen(dir.path(), options, kRows);
}

// Destroying a Loader whose Finish returned Busy abandons the built tree: the table stays
// empty, its file holds no block of it, and a new load works.
TEST(LoaderTest, LoaderDestroyedAfterBusyLeavesTheTableEmpty) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenTableT(dir.path(), ShortWaits(50), &env, &table));
  {
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env->NewLoader(table, &loader).ok());
    for (uint64_t i : Shuffled(20000, 4)) ASSERT_TRUE(loader->Add(Key(i), Value(i)).ok());
    std::unique_ptr<Txn> snapshot;
    TxnOptions txn_options;
    txn_options.isolation = Isolation::kSnapshot;
    ASSERT_TRUE(env->Begin(txn_options, &snapshot).ok());
    std::string v;
    ASSERT_TRUE(table->Get(snapshot.get(), Key(1), &v).IsNotFound());
    ASSERT_TRUE(loader->Finish().IsBusy());
  }
  EXPECT_EQ(CountRows(table), 0u);
  ASSERT_TRUE(Load(env.get(), table, Shuffled(500, 5)).ok());
  ExpectLoaded(table, 500);
  env.reset();
  ExpectFtverifyPasses(dir.path());
}

TEST(LoaderTest, LoadsRowsGivenInRandomOrderAndKeepsThemAcrossReopen) {
  ScratchDir dir;
  constexpr uint64_t kRows = 200000;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    Status s = Load(env.get(), table, Shuffled(kRows, 1));
    ASSERT_TRUE(s.ok()) << s.ToString();
    ExpectLoaded(table, kRows);
  }
  ExpectFtverifyPasses(dir.path());
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
  ExpectLoaded(table, kRows);
}

TEST(LoaderTest, LoadedTreeSurvivesCrashRightAfterFinish) {
  // Finish makes the load durable itself: a process that dies right after it (no close,
  // no further checkpoint) leaves the whole load behind.
  ScratchDir dir;
  constexpr uint64_t kRows = 20000;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::unique_ptr<Env> env;
    Options options;
    options.checkpoint_period_ms = 0;
    if (!Env::Open(dir.path(), options, &env).ok()) ::_exit(3);
    Table* table;
    if (!env->OpenTable("t", testing::SmallTreeOptions(), &table).ok()) ::_exit(4);
    if (!Load(env.get(), table, Shuffled(kRows, 2)).ok()) ::_exit(5);
    ::_exit(0);  // no destructors: no final checkpoint
  }
  int status;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ExpectLoadedAfterReopen(dir.path(), Options(), kRows);
}

TEST(LoaderTest, KeyAddedTwiceFailsFinishNamingItAndLoadsNothing) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
  std::unique_ptr<Loader> loader;
  ASSERT_TRUE(env->NewLoader(table, &loader).ok());
  for (uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(loader->Add(Key(i), Value(i)).ok());
  ASSERT_TRUE(loader->Add(Key(123), "again").ok());
  Status s = loader->Finish();
  EXPECT_TRUE(s.IsAlreadyExists()) << s.ToString();
  EXPECT_NE(s.ToString().find(Key(123)), std::string::npos) << s.ToString();
  EXPECT_TRUE(loader->Finish().IsAlreadyExists());
  EXPECT_FALSE(loader->Add(Key(5000), "x").ok());
  EXPECT_EQ(CountRows(table), 0u);
  loader.reset();
  EXPECT_EQ(CountRunFiles(dir.path()), 0);
  // The table is usable, and can be loaded again.
  ASSERT_TRUE(Load(env.get(), table, Shuffled(1000, 3)).ok());
  ExpectLoaded(table, 1000);
}

TEST(LoaderTest, KeyAddedTwiceAcrossSpilledRunsFailsAndFreesWhatWasBuilt) {
  ScratchDir dir;
  Options options;
  options.cache_bytes = size_t{4} << 20;  // runs of 1 MiB
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env->NewLoader(table, &loader).ok());
    std::vector<uint64_t> order = Shuffled(60000, 4);
    // The duplicate is the largest key, added first and last (so in different runs): the
    // merge meets it only after the tree below it was written.
    order.erase(std::find(order.begin(), order.end(), 59999));
    order.push_back(59999);
    ASSERT_TRUE(loader->Add(Key(59999), "first").ok());
    for (uint64_t i : order) ASSERT_TRUE(loader->Add(Key(i), Value(i)).ok());
    EXPECT_GT(CountRunFiles(dir.path()), 1);
    Status s = loader->Finish();
    EXPECT_TRUE(s.IsAlreadyExists()) << s.ToString();
    EXPECT_NE(s.ToString().find(Key(59999)), std::string::npos) << s.ToString();
    EXPECT_EQ(CountRunFiles(dir.path()), 0);
    EXPECT_EQ(CountRows(table), 0u);
    ASSERT_TRUE(table->Put(nullptr, "after", "1").ok());
  }
  // No block written for the failed load is left in the file.
  ExpectFtverifyPasses(dir.path());
}

TEST(LoaderTest, NewLoaderRejectsNonEmptyTableAndSecondLoader) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* full;
  ASSERT_TRUE(env->OpenTable("full", TableOptions(), &full).ok());
  ASSERT_TRUE(full->Put(nullptr, "k", "v").ok());
  std::unique_ptr<Loader> loader;
  EXPECT_TRUE(env->NewLoader(full, &loader).IsInvalidArgument());
  EXPECT_EQ(loader, nullptr);

  // A row written and deleted again leaves the table empty.
  ASSERT_TRUE(full->Delete(nullptr, "k").ok());
  EXPECT_TRUE(env->NewLoader(full, &loader).ok());
  std::unique_ptr<Loader> second;
  EXPECT_TRUE(env->NewLoader(full, &second).IsInvalidArgument());
  loader.reset();
  EXPECT_TRUE(env->NewLoader(full, &second).ok());

  EXPECT_TRUE(env->NewLoader(nullptr, &loader).IsInvalidArgument());
}

TEST(LoaderTest, NewLoaderRejectsTableWithUncommittedRow) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::unique_ptr<Txn> txn;
  ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
  ASSERT_TRUE(table->Put(txn.get(), "k", "v").ok());
  std::unique_ptr<Loader> loader;
  EXPECT_TRUE(env->NewLoader(table, &loader).IsInvalidArgument());
  ASSERT_TRUE(txn->Abort().ok());
}

TEST(LoaderTest, AddRejectsKeysAndValuesBeyondTheLimits) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::unique_ptr<Loader> loader;
  ASSERT_TRUE(env->NewLoader(table, &loader).ok());
  EXPECT_TRUE(loader->Add(std::string(kMaxKeyBytes + 1, 'k'), "v").IsInvalidArgument());
  EXPECT_TRUE(loader->Add("k", std::string(kMaxValueBytes + 1, 'v')).IsInvalidArgument());
  // Rejected rows are not part of the load; the rest is.
  ASSERT_TRUE(loader->Add(std::string(kMaxKeyBytes, 'k'), "largest key").ok());
  ASSERT_TRUE(loader->Add("", "empty key").ok());
  ASSERT_TRUE(loader->Finish().ok());
  EXPECT_TRUE(loader->Finish().IsInvalidArgument());
  EXPECT_TRUE(loader->Add("z", "late").IsInvalidArgument());
  std::string v;
  ASSERT_TRUE(table->Get(nullptr, "", &v).ok());
  EXPECT_EQ(v, "empty key");
  ASSERT_TRUE(table->Get(nullptr, std::string(kMaxKeyBytes, 'k'), &v).ok());
  EXPECT_EQ(v, "largest key");
  EXPECT_EQ(CountRows(table), 2u);
}

TEST(LoaderTest, FinishWithoutRowsLeavesTableEmptyAndUsable) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::unique_ptr<Loader> loader;
  ASSERT_TRUE(env->NewLoader(table, &loader).ok());
  ASSERT_TRUE(loader->Finish().ok());
  EXPECT_EQ(CountRows(table), 0u);
  ASSERT_TRUE(table->Put(nullptr, "k", "v").ok());
  EXPECT_EQ(CountRows(table), 1u);
}

TEST(LoaderTest, DestroyedLoaderLeavesTableEmptyAndNoRunFiles) {
  ScratchDir dir;
  Options options;
  options.cache_bytes = size_t{4} << 20;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env->NewLoader(table, &loader).ok());
    for (uint64_t i : Shuffled(50000, 5)) ASSERT_TRUE(loader->Add(Key(i), Value(i)).ok());
    EXPECT_GT(CountRunFiles(dir.path()), 0);
    loader.reset();
    EXPECT_EQ(CountRunFiles(dir.path()), 0);
    EXPECT_EQ(CountRows(table), 0u);
    ASSERT_TRUE(env->Checkpoint().ok());
  }
  ExpectFtverifyPasses(dir.path());
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  EXPECT_EQ(CountRows(table), 0u);
}

TEST(LoaderTest, LoadLargerThanTheCacheSpillsRunsAndWorks) {
  ScratchDir dir;
  Options options;
  options.cache_bytes = size_t{4} << 20;
  constexpr uint64_t kRows = 500000;
  const std::string value(100, 'x');
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env->NewLoader(table, &loader).ok());
    // 58 MB of rows against runs of 1 MiB: more runs than one merge takes.
    for (uint64_t i : Shuffled(kRows, 6)) {
      ASSERT_TRUE(loader->Add(Key(i), value.substr(0, 90) + Key(i).substr(6)).ok());
    }
    EXPECT_GT(CountRunFiles(dir.path()), 16);
    Status s = loader->Finish();
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(CountRunFiles(dir.path()), 0);
  }
  ExpectFtverifyPasses(dir.path());
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  auto cursor = table->NewCursor(nullptr);
  uint64_t i = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++i) {
    ASSERT_EQ(cursor->key(), Key(i));
    ASSERT_EQ(cursor->value(), value.substr(0, 90) + Key(i).substr(6));
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(i, kRows);
  std::string v;
  for (uint64_t k : Shuffled(kRows, 7)) {
    if (k % 97 != 0) continue;
    ASSERT_TRUE(table->Get(nullptr, Key(k), &v).ok()) << Key(k);
    ASSERT_EQ(v, value.substr(0, 90) + Key(k).substr(6));
  }
}

TEST(LoaderTest, WritesAndTransactionsWorkOnALoadedTable) {
  ScratchDir dir;
  Options options;
  options.sync_commits = false;  // 20,000 fsyncs would take the test's whole time
  constexpr uint64_t kRows = 50000;
  std::map<std::string, std::string> model;
  for (uint64_t i = 0; i < kRows; ++i) model[Key(i)] = Value(i);
  auto check = [&model](Table* table) {
    auto cursor = table->NewCursor(nullptr);
    auto it = model.begin();
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++it) {
      ASSERT_NE(it, model.end());
      ASSERT_EQ(cursor->key(), it->first);
      ASSERT_EQ(cursor->value(), it->second);
    }
    ASSERT_TRUE(cursor->status().ok());
    EXPECT_EQ(it, model.end());
  };
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    ASSERT_TRUE(Load(env.get(), table, Shuffled(kRows, 8)).ok());

    std::mt19937_64 rng(9);
    for (int n = 0; n < 20000; ++n) {
      uint64_t i = rng() % (kRows + kRows / 4);
      std::string key = Key(i);
      if (rng() % 3 == 0) {
        ASSERT_TRUE(table->Delete(nullptr, key).ok());
        model.erase(key);
      } else {
        std::string value = "new-" + std::to_string(n);
        ASSERT_TRUE(table->Put(nullptr, key, value).ok());
        model[key] = value;
      }
    }
    EXPECT_TRUE(table->Insert(nullptr, Key(kRows + kRows), "fresh").ok());
    model[Key(kRows + kRows)] = "fresh";
    EXPECT_TRUE(table->Insert(nullptr, model.begin()->first, "dup").IsAlreadyExists());

    std::unique_ptr<Txn> committed;
    ASSERT_TRUE(env->Begin(TxnOptions(), &committed).ok());
    ASSERT_TRUE(table->Put(committed.get(), Key(7), "txn").ok());
    ASSERT_TRUE(table->Delete(committed.get(), Key(8)).ok());
    ASSERT_TRUE(committed->Commit().ok());
    model[Key(7)] = "txn";
    model.erase(Key(8));
    std::unique_ptr<Txn> aborted;
    ASSERT_TRUE(env->Begin(TxnOptions(), &aborted).ok());
    ASSERT_TRUE(table->Put(aborted.get(), Key(9), "gone").ok());
    ASSERT_TRUE(table->Delete(aborted.get(), Key(10)).ok());
    ASSERT_TRUE(aborted->Abort().ok());
    check(table);
    ASSERT_TRUE(table->Optimize().ok());
    check(table);
    ASSERT_TRUE(env->Checkpoint().ok());
    ASSERT_TRUE(table->Put(nullptr, "after-checkpoint", "logged").ok());
    model["after-checkpoint"] = "logged";
  }
  ExpectFtverifyPasses(dir.path());
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
  check(table);
}

TEST(LoaderTest, WriteDuringLoadMakesFinishFailAndFreesTheBuiltTree) {
  ScratchDir dir;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env->NewLoader(table, &loader).ok());
    for (uint64_t i : Shuffled(20000, 10)) ASSERT_TRUE(loader->Add(Key(i), Value(i)).ok());
    ASSERT_TRUE(table->Put(nullptr, "written", "meanwhile").ok());
    // Checkpoints during the load leave the table's file alone.
    ASSERT_TRUE(env->Checkpoint().ok());
    Status s = loader->Finish();
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_EQ(CountRows(table), 1u);
  }
  ExpectFtverifyPasses(dir.path());
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
  std::string v;
  ASSERT_TRUE(table->Get(nullptr, "written", &v).ok());
  EXPECT_EQ(v, "meanwhile");
  EXPECT_EQ(CountRows(table), 1u);
}

TEST(LoaderTest, FailedCommitLeavesTableEmptyAndUsable) {
  using testing::SuffixFaultInjector;
  constexpr uint64_t kRows = 20000;
  // A load whose commit checkpoint cannot write its block table. A dry run counts the
  // writes to the table file Finish makes: the built nodes, then the block table, then the
  // header.
  int finish_writes = 0;
  for (bool fail : {false, true}) {
    ScratchDir dir;
    SuffixFaultInjector injector(".ft", SuffixFaultInjector::Fault::kFailWrite);
    {
      std::unique_ptr<Env> env;
      ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
      Table* table;
      ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
      std::unique_ptr<Loader> loader;
      ASSERT_TRUE(env->NewLoader(table, &loader).ok());
      for (uint64_t i : Shuffled(kRows, 16)) ASSERT_TRUE(loader->Add(Key(i), Value(i)).ok());
      const int before = injector.calls();
      if (fail) injector.Arm(finish_writes - 1);
      Status s = loader->Finish();
      if (!fail) {
        ASSERT_TRUE(s.ok()) << s.ToString();
        finish_writes = injector.calls() - before;
        ASSERT_GT(finish_writes, 2);
        continue;
      }
      EXPECT_EQ(injector.faults(), 1);
      EXPECT_TRUE(s.IsIOError()) << s.ToString();
      EXPECT_NE(s.ToString().find("block table"), std::string::npos) << s.ToString();
      EXPECT_EQ(CountRows(table), 0u);
      ASSERT_TRUE(table->Put(nullptr, "after", "1").ok());
      ASSERT_TRUE(env->Checkpoint().ok());
    }
    if (!fail) continue;
    ExpectFtverifyPasses(dir.path());
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    EXPECT_EQ(CountRows(table), 1u);
    std::string v;
    EXPECT_TRUE(table->Get(nullptr, "after", &v).ok());
  }
}

// A table whose rows were all deleted is empty to its users, though its deletes are still
// buffered in internal nodes: NewLoader pushes them down and collects them, and the load
// goes ahead. A table with a row left is refused.
TEST(LoaderTest, TableWhoseRowsWereAllDeletedTakesALoad) {
  ScratchDir dir;
  Options options;
  options.sync_commits = false;
  constexpr uint64_t kRows = 30000;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    for (uint64_t i : Shuffled(kRows, 14)) ASSERT_TRUE(table->Put(nullptr, Key(i), "old").ok());
    for (uint64_t i = 1; i < kRows; ++i) ASSERT_TRUE(table->Delete(nullptr, Key(i)).ok());
    std::unique_ptr<Loader> loader;
    EXPECT_TRUE(env->NewLoader(table, &loader).IsInvalidArgument());  // Key(0) is left
    ASSERT_TRUE(table->Delete(nullptr, Key(0)).ok());
    Status s = Load(env.get(), table, Shuffled(kRows, 15));
    ASSERT_TRUE(s.ok()) << s.ToString();
    ExpectLoaded(table, kRows);
  }
  // The old tree's nodes were freed with the install: none is left unreachable.
  ExpectFtverifyPasses(dir.path());
}

using fern::testing::ReverseComparator;

TEST(LoaderTest, LoadFollowsTheTablesComparator) {
  ScratchDir dir;
  ReverseComparator reverse;
  TableOptions options = testing::SmallTreeOptions();
  options.comparator = &reverse;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", options, &table).ok());
  constexpr uint64_t kRows = 30000;
  ASSERT_TRUE(Load(env.get(), table, Shuffled(kRows, 11)).ok());
  auto cursor = table->NewCursor(nullptr);
  uint64_t i = kRows;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    --i;
    ASSERT_EQ(cursor->key(), Key(i));
  }
  EXPECT_EQ(i, 0u);
  std::string v;
  ASSERT_TRUE(table->Get(nullptr, Key(1234), &v).ok());
  EXPECT_EQ(v, Value(1234));
}

// A child process loads a table and is killed at some moment of Finish (the first round
// after Finish returned, the others at fractions of the time Finish took in the first: in
// the merge and build, or near the install). After reopening, the table is empty or, if
// Finish had returned, fully loaded — never partly — and run files are gone.
TEST(LoaderTest, KillDuringFinishLeavesTableEmptyOrFullyLoaded) {
  constexpr uint64_t kRows = 60000;
  Options options;
  options.cache_bytes = size_t{4} << 20;
  const double kFractions[] = {0, 0.1, 0.3, 0.5, 0.7, 0.95};
  std::chrono::microseconds finish_time(0);
  int empty = 0;
  int loaded = 0;
  for (int round = 0; round < 6; ++round) {
    ScratchDir dir;
    {
      std::unique_ptr<Env> env;
      ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
      Table* table;
      ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    }
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::unique_ptr<Env> env;
      if (!Env::Open(dir.path(), options, &env).ok()) ::_exit(3);
      Table* table;
      if (!env->OpenTable("t", testing::SmallTreeOptions(), &table).ok()) ::_exit(4);
      std::unique_ptr<Loader> loader;
      if (!env->NewLoader(table, &loader).ok()) ::_exit(5);
      for (uint64_t i : Shuffled(kRows, 20 + round)) {
        if (!loader->Add(Key(i), Value(i)).ok()) ::_exit(6);
      }
      // Checkpoints keep coming while Finish builds: none may name a built block.
      std::thread checkpointer([&env] {
        for (;;) {
          if (!env->Checkpoint().ok()) ::_exit(10);
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      });
      checkpointer.detach();
      char phase = 'F';  // Finish starts
      if (::write(fds[1], &phase, 1) != 1) ::_exit(7);
      if (!loader->Finish().ok()) ::_exit(8);
      phase = 'D';  // Finish returned OK
      if (::write(fds[1], &phase, 1) != 1) ::_exit(9);
      for (;;) ::pause();
    }
    ::close(fds[1]);
    char phase = 0;
    ASSERT_EQ(::read(fds[0], &phase, 1), 1) << "the child died before Finish";
    ASSERT_EQ(phase, 'F');
    auto start = std::chrono::steady_clock::now();
    if (round == 0) {
      ASSERT_EQ(::read(fds[0], &phase, 1), 1) << "Finish failed in the child";
      finish_time = std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - start);
    } else {
      std::this_thread::sleep_for(finish_time * kFractions[round]);
    }
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited with " << WEXITSTATUS(status);
    bool finished = round == 0 || (::read(fds[0], &phase, 1) == 1 && phase == 'D');
    ::close(fds[0]);

    ExpectFtverifyPasses(dir.path());
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    EXPECT_EQ(CountRunFiles(dir.path()), 0);
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    uint64_t rows = CountRows(table);
    if (finished) {
      EXPECT_EQ(rows, kRows) << "round " << round;
    }
    ASSERT_TRUE(rows == 0 || rows == kRows) << "round " << round << ": " << rows << " rows";
    if (rows == 0) {
      ++empty;
      // The table takes a load after the crash.
      ASSERT_TRUE(Load(env.get(), table, Shuffled(1000, 13)).ok());
      EXPECT_EQ(CountRows(table), 1000u);
    } else {
      ++loaded;
      ExpectLoaded(table, kRows);
    }
  }
  // The kill at a tenth of Finish's time at least lands before the install.
  EXPECT_GE(empty, 1);
  std::printf("Finish took %lld us; kills: %d left the table empty, %d fully loaded\n",
              static_cast<long long>(finish_time.count()), empty, loaded);
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

// A load into a table dropped meanwhile fails with InvalidArgument naming the table (it
// used to be an IOError from writing to the dropped file), and touches no other table.
TEST(LoaderTest, LoadIntoADroppedTableFailsNamingIt) {
  testing::ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  Table* other;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  ASSERT_TRUE(env->OpenTable("other", TableOptions(), &other).ok());
  ASSERT_TRUE(other->Put(nullptr, "k", "v").ok());
  for (bool add_after_drop : {false, true}) {
    SCOPED_TRACE(add_after_drop ? "Add after the drop" : "Finish after the drop");
    if (add_after_drop) {
      ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    }
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env->NewLoader(table, &loader).ok());
    ASSERT_TRUE(loader->Add("a", "1").ok());
    ASSERT_TRUE(env->DropTable("t").ok());
    Status s = add_after_drop ? loader->Add("b", "2") : loader->Finish();
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_NE(s.ToString().find("table \"t\" was dropped"), std::string::npos) << s.ToString();
    s = loader->Finish();
    EXPECT_FALSE(s.ok());
  }
  std::string value;
  ASSERT_TRUE(other->Get(nullptr, "k", &value).ok());
  EXPECT_EQ(value, "v");
  // A dropped table's handle: NewLoader names the drop too.
  std::unique_ptr<Loader> loader;
  Status s = env->NewLoader(table, &loader);
  EXPECT_NE(s.ToString().find("table \"t\" was dropped"), std::string::npos) << s.ToString();
}

// DropTable racing Finish: the drop waits for the build and install under way (Finish OK),
// or comes first and Finish reports it; Finish never writes to the closed file (an IOError
// "Bad file descriptor" when the drop closed it under the build).
TEST(LoaderTest, DropDuringFinishIsReportedAsTheDrop) {
  testing::ScratchDir dir;
  Options options;
  options.cache_bytes = size_t{8} << 20;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  for (int round = 0; round < 6; ++round) {
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env->NewLoader(table, &loader).ok());
    for (uint64_t i : Shuffled(60000, round)) ASSERT_TRUE(loader->Add(Key(i), Value(i)).ok());
    std::thread dropper([&env, round] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5 * round));
      EXPECT_TRUE(env->DropTable("t").ok());
    });
    Status s = loader->Finish();
    dropper.join();
    EXPECT_TRUE(s.ok() || (s.IsInvalidArgument() &&
                           s.ToString().find("table \"t\" was dropped") != std::string::npos))
        << "round " << round << ": " << s.ToString();
    EXPECT_EQ(CountRunFiles(dir.path()), 0);
  }
}

// A Loader the user keeps past its Env: the unfinished load is abandoned when the Env
// closes (its run files removed), later calls say the Env was closed, and destroying the
// Loader then is safe (a finished one too).
TEST(LoaderTest, ALoaderOutlivingItsEnvIsDetached) {
  testing::ScratchDir dir;
  Options options;
  options.cache_bytes = size_t{4} << 20;
  std::unique_ptr<Loader> finished;
  std::unique_ptr<Loader> unfinished;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* done;
    Table* table;
    ASSERT_TRUE(env->OpenTable("done", TableOptions(), &done).ok());
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    ASSERT_TRUE(env->NewLoader(done, &finished).ok());
    for (uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(finished->Add(Key(i), Value(i)).ok());
    ASSERT_TRUE(finished->Finish().ok());
    ASSERT_TRUE(env->NewLoader(table, &unfinished).ok());
    for (uint64_t i : Shuffled(50000, 9)) ASSERT_TRUE(unfinished->Add(Key(i), Value(i)).ok());
    EXPECT_GT(CountRunFiles(dir.path()), 0);
  }
  EXPECT_EQ(CountRunFiles(dir.path()), 0);
  for (Loader* loader : {finished.get(), unfinished.get()}) {
    Status s = loader->Add("k", "v");
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_NE(s.ToString().find("Env was closed"), std::string::npos) << s.ToString();
    s = loader->Finish();
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  }
  ExpectFtverifyPasses(dir.path());
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  finished.reset();  // destroyed under another Env of the same directory
  unfinished.reset();
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  EXPECT_EQ(CountRows(table), 0u);
  ASSERT_TRUE(env->OpenTable("done", TableOptions(), &table).ok());
  EXPECT_EQ(CountRows(table), 1000u);
  // The abandoned table takes a load.
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  ASSERT_TRUE(Load(env.get(), table, Shuffled(100, 1)).ok());
  EXPECT_EQ(CountRows(table), 100u);
}

}  // namespace
}  // namespace fern
