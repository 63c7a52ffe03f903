// Env and Table behaviour through the public API: opening, reopening, bad input.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/strings.h"

namespace fern {
namespace {

using testing::ScratchDir;

using fern::testing::ReverseComparator;

Status OpenTable(Env* env, const std::string& name, Table** table,
                 TableOptions options = TableOptions()) {
  return env->OpenTable(name, options, table);
}

TEST(EnvTest, PutGetDeleteSurviveReopen) {
  ScratchDir dir;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    Table* table;
    ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
    ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
    ASSERT_TRUE(table->Put(nullptr, "b", "2").ok());
    ASSERT_TRUE(table->Put(nullptr, "", "empty key").ok());
    ASSERT_TRUE(table->Delete(nullptr, "b").ok());
    std::string v;
    ASSERT_TRUE(table->Get(nullptr, "a", &v).ok());
    EXPECT_EQ(v, "1");
    EXPECT_TRUE(table->Get(nullptr, "b", &v).IsNotFound());
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  std::string v;
  ASSERT_TRUE(table->Get(nullptr, "a", &v).ok());
  EXPECT_EQ(v, "1");
  ASSERT_TRUE(table->Get(nullptr, "", &v).ok());
  EXPECT_EQ(v, "empty key");
  EXPECT_TRUE(table->Get(nullptr, "b", &v).IsNotFound());
}

// Bytes in the Env directory's log files.
uint64_t LogBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") total += entry.file_size();
  }
  return total;
}

// 100 bytes that do not compress, the same for the same key.
std::string NoiseValue(const std::string& key) {
  std::mt19937_64 rng(std::hash<std::string>()(key));
  std::string value(100, '\0');
  for (char& c : value) c = static_cast<char>(rng());
  return value;
}

// A clean close checkpoints everything, so the log it leaves holds no record anyone needs:
// it is cut down to a file with the last checkpoint's end, and the next open (and the one
// after, which writes more) still finds every row.
TEST(EnvTest, CleanCloseLeavesAlmostNoLog) {
  ScratchDir dir;
  Options options;
  options.sync_commits = false;
  for (int round = 0; round < 2; ++round) {
    {
      std::unique_ptr<Env> env;
      ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
      Table* table;
      ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
      for (int i = 0; i < 20000; ++i) {
        const std::string key = "r" + std::to_string(round) + "-" + std::to_string(i);
        ASSERT_TRUE(table->Put(nullptr, key, NoiseValue(key)).ok());
      }
      EXPECT_GT(LogBytes(dir.path()), 20000u * 100);
    }
    EXPECT_LT(LogBytes(dir.path()), 4096u);
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
    std::string v;
    for (int r = 0; r <= round; ++r) {
      for (int i = 0; i < 20000; i += 97) {
        const std::string key = "r" + std::to_string(r) + "-" + std::to_string(i);
        ASSERT_TRUE(table->Get(nullptr, key, &v).ok()) << key;
        EXPECT_EQ(v, NoiseValue(key));
      }
    }
  }
}

TEST(EnvTest, SecondOpenOfSameDirectoryFails) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  std::unique_ptr<Env> second;
  Status s = Env::Open(dir.path(), Options(), &second);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("already open"), std::string::npos) << s.ToString();
  env.reset();
  EXPECT_TRUE(Env::Open(dir.path(), Options(), &second).ok());
}

TEST(EnvTest, DirectoryThatIsNotAnEnvIsRejected) {
  ScratchDir dir;
  std::ofstream(dir.Sub("notes.txt")) << "not fern";
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.path(), Options(), &env);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("not a Fern Env"), std::string::npos) << s.ToString();
}

TEST(EnvTest, NegativeBackgroundThreadsIsInvalidArgument) {
  ScratchDir dir;
  Options options;
  options.background_threads = -1;
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.path(), options, &env);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("background_threads"), std::string::npos) << s.ToString();
}

TEST(EnvTest, BufferBudgetPercentIsCheckedAndKeepsEveryRow) {
  ScratchDir dir;
  Options too_much;
  too_much.buffer_budget_percent = 61;
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.path(), too_much, &env);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("buffer_budget_percent"), std::string::npos) << s.ToString();

  Options options;
  options.buffer_budget_percent = 50;
  options.cache_bytes = size_t{2} << 20;
  options.sync_commits = false;
  TableOptions small;
  small.node_bytes = 64 << 10;
  small.basement_bytes = 4 << 10;
  constexpr int kRows = 30000;
  auto key = [](int i) { return "key" + std::to_string(i); };
  {
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(OpenTable(env.get(), "t", &table, small).ok());
    for (int n = 0; n < kRows; ++n) {
      const int i = (n * 7919) % kRows;
      ASSERT_TRUE(table->Put(nullptr, key(i), std::string(80, 'a' + i % 26)).ok());
    }
    env.reset();
  }
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table, small).ok());
  std::string value;
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(table->Get(nullptr, key(i), &value).ok()) << i;
    ASSERT_EQ(value, std::string(80, 'a' + i % 26)) << i;
  }
}

TEST(EnvTest, CreateIfMissingAndErrorIfExists) {
  ScratchDir dir;
  Options no_create;
  no_create.create_if_missing = false;
  std::unique_ptr<Env> env;
  EXPECT_TRUE(Env::Open(dir.Sub("absent"), no_create, &env).IsInvalidArgument());
  ASSERT_TRUE(Env::Open(dir.Sub("env"), Options(), &env).ok());
  env.reset();
  Options exclusive;
  exclusive.error_if_exists = true;
  EXPECT_TRUE(Env::Open(dir.Sub("env"), exclusive, &env).IsInvalidArgument());
  EXPECT_TRUE(Env::Open(dir.Sub("env"), no_create, &env).ok());
}

TEST(EnvTest, OversizedKeysAndValuesAreInvalidArgument) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  std::string big_key(kMaxKeyBytes + 1, 'k');
  std::string max_key(kMaxKeyBytes, 'k');
  EXPECT_TRUE(table->Put(nullptr, big_key, "v").IsInvalidArgument());
  EXPECT_TRUE(table->Put(nullptr, max_key, "v").ok());
  std::string big_value(kMaxValueBytes + 1, 'v');
  EXPECT_TRUE(table->Put(nullptr, "k", big_value).IsInvalidArgument());
  std::string v;
  EXPECT_TRUE(table->Get(nullptr, big_key, &v).IsInvalidArgument());
  ASSERT_TRUE(table->Get(nullptr, max_key, &v).ok());
  EXPECT_EQ(v, "v");
}

// Every output pointer of the API given as nullptr is InvalidArgument (GetProperty: false),
// never a crash.
TEST(EnvTest, NullOutputPointersAreInvalidArgument) {
  ScratchDir dir;
  EXPECT_TRUE(Env::Open(dir.path(), Options(), nullptr).IsInvalidArgument());
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  EXPECT_TRUE(env->OpenTable("t", TableOptions(), nullptr).IsInvalidArgument());
  EXPECT_TRUE(env->Begin(TxnOptions(), nullptr).IsInvalidArgument());
  EXPECT_TRUE(env->NewLoader(nullptr, nullptr).IsInvalidArgument());
  EXPECT_TRUE(env->RecoverPrepared(nullptr).IsInvalidArgument());
  EXPECT_FALSE(env->GetProperty("fern.stats", nullptr));
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  ASSERT_TRUE(table->Put(nullptr, "k", "v").ok());
  EXPECT_TRUE(table->Get(nullptr, "k", nullptr).IsInvalidArgument());
  EXPECT_TRUE(table->GetForUpdate(nullptr, "k", nullptr).IsInvalidArgument());
  std::unique_ptr<Txn> txn;
  ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
  EXPECT_TRUE(table->Get(txn.get(), "k", nullptr).IsInvalidArgument());
  EXPECT_TRUE(txn->BeginChild(nullptr).IsInvalidArgument());
  EXPECT_TRUE(table->Put(txn.get(), "k", "w").ok());  // the transaction is still usable
  ASSERT_TRUE(txn->Commit().ok());
}

TEST(EnvTest, LargestValueRoundTrips) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  std::string value(kMaxValueBytes, 'x');
  value[12345] = 'y';
  ASSERT_TRUE(table->Put(nullptr, "big", value).ok());
  ASSERT_TRUE(env->Checkpoint().ok());
  std::string got;
  ASSERT_TRUE(table->Get(nullptr, "big", &got).ok());
  EXPECT_EQ(got, value);
}

TEST(EnvTest, DifferentComparatorOnReopenIsInvalidArgument) {
  ScratchDir dir;
  ReverseComparator reverse;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    TableOptions options;
    options.comparator = &reverse;
    Table* table;
    ASSERT_TRUE(OpenTable(env.get(), "r", &table, options).ok());
    ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
    ASSERT_TRUE(table->Put(nullptr, "b", "2").ok());
    auto cursor = table->NewCursor(nullptr);
    cursor->SeekToFirst();
    ASSERT_TRUE(cursor->Valid());
    EXPECT_EQ(cursor->key(), "b");  // reverse order
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  Status s = OpenTable(env.get(), "r", &table);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("test.Reverse"), std::string::npos) << s.ToString();
  TableOptions options;
  options.comparator = &reverse;
  ASSERT_TRUE(OpenTable(env.get(), "r", &table, options).ok());
}

TEST(EnvTest, CompressionMayChangeOnReopen) {
  ScratchDir dir;
  const Compression codecs[] = {Compression::kZstd, Compression::kSnappy, Compression::kLzma,
                                Compression::kZlib, Compression::kNone};
  int round = 0;
  Options env_options;
  env_options.sync_commits = false;  // 10,000 puts; durability is not what this tests
  for (Compression codec : codecs) {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), env_options, &env).ok());
    TableOptions options;
    options.compression = codec;
    options.node_bytes = 64 << 10;
    options.basement_bytes = 4 << 10;
    Table* table;
    ASSERT_TRUE(OpenTable(env.get(), "t", &table, options).ok());
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(table
                      ->Put(nullptr, "r" + std::to_string(round) + "-" + std::to_string(i),
                            std::string(50, static_cast<char>('a' + round)))
                      .ok());
    }
    ++round;
    // Every earlier round's rows, written with other codecs, still read back.
    for (int r = 0; r < round; ++r) {
      std::string v;
      ASSERT_TRUE(table->Get(nullptr, "r" + std::to_string(r) + "-1999", &v).ok());
      EXPECT_EQ(v, std::string(50, static_cast<char>('a' + r)));
    }
  }
}

TEST(EnvTest, TablesAreIndependentAndDropRemovesOne) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table *a, *b;
  ASSERT_TRUE(OpenTable(env.get(), "a", &a).ok());
  ASSERT_TRUE(OpenTable(env.get(), "b", &b).ok());
  ASSERT_TRUE(a->Put(nullptr, "k", "in a").ok());
  ASSERT_TRUE(b->Put(nullptr, "k", "in b").ok());
  ASSERT_TRUE(env->DropTable("a").ok());
  std::string v;
  EXPECT_TRUE(a->Get(nullptr, "k", &v).IsInvalidArgument());  // stale pointer fails cleanly
  EXPECT_TRUE(env->DropTable("a").IsNotFound());
  ASSERT_TRUE(b->Get(nullptr, "k", &v).ok());
  EXPECT_EQ(v, "in b");
  Table* again;
  ASSERT_TRUE(OpenTable(env.get(), "a", &again).ok());
  EXPECT_TRUE(again->Get(nullptr, "k", &v).IsNotFound());
  env.reset();
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  ASSERT_TRUE(OpenTable(env.get(), "b", &b).ok());
  ASSERT_TRUE(b->Get(nullptr, "k", &v).ok());
}

uint64_t StatValue(Env* env, const std::string& name) {
  std::string stats;
  EXPECT_TRUE(env->GetProperty("fern.stats", &stats));
  const size_t at = stats.find("\n" + name + ": ");
  if (at == std::string::npos) {
    ADD_FAILURE() << name << " not in fern.stats";
    return 0;
  }
  return std::stoull(stats.substr(at + name.size() + 3));
}

// Between periodic checkpoints, the log's growth starts one: a writer of large values must
// not grow the log without bound for a whole period.
TEST(EnvTest, LogGrowthStartsACheckpointBeforeThePeriodEnds) {
  ScratchDir dir;
  Options options;
  options.sync_commits = false;
  options.cache_bytes = 1 << 20;
  options.checkpoint_period_ms = 3600 * 1000;
  options.checkpoint_log_bytes = 2 << 20;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  std::mt19937_64 rng(3);
  std::string value(64 << 10, '\0');
  for (int round = 0; round < 3; ++round) {
    const uint64_t before = StatValue(env.get(), "checkpoint.taken");
    for (int i = 0; i < 48; ++i) {  // 3 MiB of log that does not compress
      for (char& c : value) c = static_cast<char>(rng());
      ASSERT_TRUE(table->Put(nullptr, "k" + std::to_string(i % 8), value).ok());
    }
    uint64_t taken = 0;
    for (int wait = 0; wait < 100 && taken == 0; ++wait) {  // up to 10 s to notice
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      taken = StatValue(env.get(), "checkpoint.taken") - before;
    }
    EXPECT_GE(taken, 1u) << "round " << round;
    EXPECT_LE(taken, 2u) << "round " << round;  // per 2 MiB of log, not per poll
  }
}

// A queue: rows appended at the tail, the head found with SeekToFirst and deleted. The
// deletes sit in buffers above the leaves; a cursor that meets a whole batch of rows they
// hide has them pushed down (a read-triggered flush), so each SeekToFirst reads a few
// batches, not one per basement the consumed head spans (~1 ms a seek behind 20,000 deletes).
TEST(EnvTest, QueueHeadSeeksStayShortWhileDeletesAreBuffered) {
  ScratchDir dir;
  Options options;
  options.sync_commits = false;
  options.cache_bytes = size_t{64} << 20;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  TableOptions small;
  small.node_bytes = 256 << 10;  // several levels for 20,000 rows
  small.basement_bytes = 4 << 10;
  Table* table;
  ASSERT_TRUE(env->OpenTable("q", small, &table).ok());
  auto key = [](int i) { return StrCat("q", 1000000 + i); };
  constexpr int kWindow = 20000;
  for (int i = 0; i < kWindow; ++i) ASSERT_TRUE(table->Put(nullptr, key(i), "value").ok());
  int head = 0;
  int tail = kWindow;
  auto consume = [&](int n) {
    for (int op = 0; op < n; ++op) {
      auto cursor = table->NewCursor(nullptr);
      cursor->SeekToFirst();
      ASSERT_TRUE(cursor->Valid());
      ASSERT_EQ(cursor->key(), key(head));
      cursor.reset();
      ASSERT_TRUE(table->Delete(nullptr, key(head++)).ok());
      ASSERT_TRUE(table->Put(nullptr, key(tail++), "value").ok());
    }
  };
  consume(10000);
  const uint64_t batches_before = StatValue(env.get(), "table.q.batches_read");
  consume(2000);
  const uint64_t batches = StatValue(env.get(), "table.q.batches_read") - batches_before;
  EXPECT_GT(StatValue(env.get(), "table.q.read_triggered_flushes"), 0u);
  EXPECT_LT(batches, 2000u * 20) << "batches per SeekToFirst: " << batches / 2000.0;
  // Every row from the head on is there, in order.
  auto cursor = table->NewCursor(nullptr);
  int expect = head;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next())
    ASSERT_EQ(cursor->key(), key(expect++));
  EXPECT_EQ(expect, tail);
}

size_t OpenDescriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

// A dropped table's file is closed at once: creating and dropping tables over and over
// neither runs out of descriptors nor keeps deleted files' space.
TEST(EnvTest, DroppedTablesKeepNoFileOpen) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* kept;
  ASSERT_TRUE(OpenTable(env.get(), "kept", &kept).ok());
  const size_t before = OpenDescriptors();
  for (int round = 0; round < 50; ++round) {
    Table* temp;
    ASSERT_TRUE(OpenTable(env.get(), "temp", &temp).ok());
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(temp->Put(nullptr, std::to_string(i), std::string(100, 'x')).ok());
    }
    ASSERT_TRUE(env->DropTable("temp").ok());
  }
  EXPECT_LE(OpenDescriptors(), before + 2);  // the log may have rotated meanwhile
  ASSERT_TRUE(env->Checkpoint().ok());
  ASSERT_TRUE(kept->Put(nullptr, "k", "v").ok());
  std::string v;
  ASSERT_TRUE(kept->Get(nullptr, "k", &v).ok());
}

// A table file replaced by another table's file (both with the same header count, so only
// the file uid tells them apart) is Corruption at open, not the other table's rows served.
// An Env in `dir` with tables "a" (table-1.ft) and "b" (table-2.ft), a row in each,
// checkpointed and closed.
void MakeTablesAAndB(const std::string& dir) {
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir, Options(), &env).ok());
  Table *a, *b;
  ASSERT_TRUE(OpenTable(env.get(), "a", &a).ok());
  ASSERT_TRUE(OpenTable(env.get(), "b", &b).ok());
  ASSERT_TRUE(a->Put(nullptr, "k", "in a").ok());
  ASSERT_TRUE(b->Put(nullptr, "k", "in b").ok());
  ASSERT_TRUE(env->Checkpoint().ok());
}

TEST(EnvTest, AnotherTablesFileIsCorruption) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeTablesAAndB(dir.path()));
  std::filesystem::copy_file(dir.Sub("table-1.ft"), dir.Sub("table-2.ft"),
                             std::filesystem::copy_options::overwrite_existing);
  std::unique_ptr<Env> env;
  const Status s = Env::Open(dir.path(), Options(), &env);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("table-2.ft"), std::string::npos) << s.ToString();
  EXPECT_NE(s.ToString().find("another table's file"), std::string::npos) << s.ToString();
}

// A table file the catalog names but that is gone is Corruption at open, naming the file
// and the table: NotFound would read as "no Env here" to a caller about to create one.
TEST(EnvTest, AMissingTableFileIsCorruption) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeTablesAAndB(dir.path()));
  ASSERT_TRUE(std::filesystem::remove(dir.Sub("table-2.ft")));
  std::unique_ptr<Env> env;
  const Status s = Env::Open(dir.path(), Options(), &env);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("table-2.ft"), std::string::npos) << s.ToString();
  EXPECT_NE(s.ToString().find("table \"b\""), std::string::npos) << s.ToString();
}

TEST(EnvTest, InsertReportsAlreadyExists) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  ASSERT_TRUE(table->Insert(nullptr, "k", "1").ok());
  EXPECT_TRUE(table->Insert(nullptr, "k", "2").IsAlreadyExists());
  std::string v;
  ASSERT_TRUE(table->Get(nullptr, "k", &v).ok());
  EXPECT_EQ(v, "1");
  ASSERT_TRUE(table->Delete(nullptr, "k").ok());
  EXPECT_TRUE(table->Insert(nullptr, "k", "3").ok());
}

// Opens an Env in `dir` whose update function appends `extra` to the row (creating it if
// absent) or deletes the row when `extra` is "delete", and its table "t" with small nodes.
void OpenAppendingEnv(const std::string& dir, uint32_t lock_timeout_ms, std::unique_ptr<Env>* env,
                      Table** table) {
  Options options;
  options.lock_timeout_ms = lock_timeout_ms;
  options.update_function = [](std::string_view key, const std::string_view* old,
                               std::string_view extra) -> std::optional<std::string> {
    if (extra == "delete") return std::nullopt;
    return (old ? std::string(*old) : std::string("")) + std::string(extra);
  };
  ASSERT_TRUE(Env::Open(dir, options, env).ok());
  TableOptions table_options;
  table_options.node_bytes = 16 << 10;
  table_options.basement_bytes = 2 << 10;
  ASSERT_TRUE(OpenTable(env->get(), "t", table, table_options).ok());
}

TEST(EnvTest, UpdateAndUpdateAllApplyTheUpdateFunction) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenAppendingEnv(dir.path(), Options().lock_timeout_ms, &env, &table));
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(table->Put(nullptr, "k" + std::to_string(i), "v").ok());
  }
  ASSERT_TRUE(table->Update(nullptr, "k7", "+x").ok());
  ASSERT_TRUE(table->Update(nullptr, "new", "created").ok());
  ASSERT_TRUE(table->UpdateAll(nullptr, "!").ok());
  ASSERT_TRUE(table->Update(nullptr, "k8", "delete").ok());
  std::string v;
  ASSERT_TRUE(table->Get(nullptr, "k7", &v).ok());
  EXPECT_EQ(v, "v+x!");
  ASSERT_TRUE(table->Get(nullptr, "new", &v).ok());
  EXPECT_EQ(v, "created!");
  EXPECT_TRUE(table->Get(nullptr, "k8", &v).IsNotFound());
  int count = 0;
  auto cursor = table->NewCursor(nullptr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    EXPECT_EQ(cursor->value().back(), '!') << cursor->key();
    ++count;
  }
  EXPECT_EQ(count, 3000);  // 3000 - k8 + new
  ASSERT_TRUE(table->Optimize().ok());
  ASSERT_TRUE(table->Get(nullptr, "k7", &v).ok());
  EXPECT_EQ(v, "v+x!");
}

// UpdateAll in a transaction updates every row for that transaction only, locks the
// whole table until it ends, and is undone by an abort.
TEST(EnvTest, UpdateAllInATransactionIsAtomicAndIsolated) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenAppendingEnv(dir.path(), /*lock_timeout_ms=*/50, &env, &table));
  constexpr int kRows = 2000;
  for (int i = 0; i < kRows; ++i)
    ASSERT_TRUE(table->Put(nullptr, "k" + std::to_string(i), "v").ok());
  auto count_suffixed = [&](Txn* txn, const std::string& suffix) {
    int rows = 0, suffixed = 0;
    auto cursor = table->NewCursor(txn);
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++rows) {
      std::string_view v = cursor->value();
      if (v.size() >= suffix.size() && v.substr(v.size() - suffix.size()) == suffix) ++suffixed;
    }
    EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    return std::make_pair(rows, suffixed);
  };
  for (bool commit : {false, true}) {
    SCOPED_TRACE(commit);
    std::unique_ptr<Txn> txn;
    ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
    ASSERT_TRUE(table->Put(txn.get(), "mine", "m").ok());
    ASSERT_TRUE(table->UpdateAll(txn.get(), "!").ok());
    EXPECT_EQ(count_suffixed(txn.get(), "!"), std::make_pair(kRows + 1, kRows + 1));
    EXPECT_EQ(count_suffixed(nullptr, "!"), std::make_pair(kRows, 0));
    std::unique_ptr<Txn> other;
    ASSERT_TRUE(env->Begin(TxnOptions(), &other).ok());
    EXPECT_TRUE(table->Put(other.get(), "k5", "x").IsBusy());
    EXPECT_TRUE(table->Put(other.get(), "zzz new row", "x").IsBusy());
    EXPECT_TRUE(table->Put(nullptr, "", "x").IsBusy());
    ASSERT_TRUE(other->Abort().ok());
    ASSERT_TRUE(commit ? txn->Commit().ok() : txn->Abort().ok());
    std::string v;
    ASSERT_TRUE(table->Get(nullptr, "k5", &v).ok());
    EXPECT_EQ(v, commit ? "v!" : "v");
    EXPECT_EQ(count_suffixed(nullptr, "!"),
              commit ? std::make_pair(kRows + 1, kRows + 1) : std::make_pair(kRows, 0));
  }
}

TEST(EnvTest, UpdateWithoutFunctionIsInvalidArgument) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  EXPECT_TRUE(table->Update(nullptr, "k", "x").IsInvalidArgument());
  EXPECT_TRUE(table->UpdateAll(nullptr, "x").IsInvalidArgument());
}

TEST(EnvTest, BadTableOptionsAreInvalidArgument) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  TableOptions options;
  options.node_bytes = 100;
  EXPECT_TRUE(OpenTable(env.get(), "t", &table, options).IsInvalidArgument());
  options = TableOptions();
  options.basement_bytes = options.node_bytes + 1;
  EXPECT_TRUE(OpenTable(env.get(), "t", &table, options).IsInvalidArgument());
  EXPECT_TRUE(OpenTable(env.get(), "", &table).IsInvalidArgument());
}

TEST(EnvTest, StatsPropertyListsCounters) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  ASSERT_TRUE(table->Put(nullptr, "k", "v").ok());
  std::string stats;
  ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
  EXPECT_GE(testing::StatValue(stats, "cache.limit_bytes"), 1);
  EXPECT_GE(testing::StatValue(stats, "table.t.messages_injected_depth0"), 1);
  EXPECT_FALSE(env->GetProperty("fern.no-such-property", &stats));
}

// A table name may hold any bytes; fern.stats stays one "name: value" a line.
TEST(EnvTest, StatsStayOneCounterALineWhateverTheTableNames) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "evil\nfake.counter: 42", &table).ok());
  ASSERT_TRUE(table->Put(nullptr, "k", "v").ok());
  std::string stats;
  ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
  std::istringstream lines(stats);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t colon = line.find(": ");
    ASSERT_NE(colon, std::string::npos) << line;
    EXPECT_EQ(line.find(':', colon + 1), std::string::npos) << line;
    EXPECT_EQ(line.rfind("fake.", 0), std::string::npos) << line;
  }
  EXPECT_GE(
      testing::StatValue(stats, "table.evil\\x0afake.counter\\x3a 42.messages_injected_depth0"), 1);
}

// Commits that do not sync reach the log in write-outs of many records, which it packs into
// groups: what it writes is well under the plain records' bytes.
TEST(EnvTest, UnsyncedCommitsReachTheLogInGroups) {
  ScratchDir dir;
  Options options;
  options.sync_commits = false;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(OpenTable(env.get(), "t", &table).ok());
  // Values as fernbench's: 50 random bytes twice, so that each record compressed alone
  // (~95 of its ~147 bytes) stays above half.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20000; ++i) {
    std::string half(50, '\0');
    for (char& c : half) c = static_cast<char>(rng());
    char key[17];
    std::snprintf(key, sizeof(key), "%016d", i * 7919 % 20000);
    ASSERT_TRUE(table->Put(nullptr, key, half + half).ok());
  }
  // A synced commit writes out everything before it.
  TxnOptions synced;
  synced.sync = true;
  std::unique_ptr<Txn> txn;
  ASSERT_TRUE(env->Begin(synced, &txn).ok());
  ASSERT_TRUE(table->Put(txn.get(), "last", "row").ok());
  ASSERT_TRUE(txn->Commit().ok());
  std::string stats;
  ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
  const int64_t appended = testing::StatValue(stats, "log.bytes");
  const int64_t written = testing::StatValue(stats, "log.bytes_written");
  EXPECT_GE(appended, 20000 * 140);
  EXPECT_LT(written * 2, appended) << written << " of " << appended;
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

TEST(EnvTest, CheckpointerThreadTakesPeriodicCheckpoints) {
  testing::ScratchDir dir;
  Options options;
  options.checkpoint_period_ms = 20;
  options.sync_commits = false;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  int64_t taken = 0;
  for (int i = 0; i < 400 && taken < 3; ++i) {
    ASSERT_TRUE(table->Put(nullptr, "k" + std::to_string(i), "v").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::string stats;
    ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
    taken = testing::StatValue(stats, "checkpoint.taken");
  }
  EXPECT_GE(taken, 3);
}

TEST(EnvTest, ZeroCheckpointPeriodTakesNoBackgroundCheckpoints) {
  testing::ScratchDir dir;
  Options options;
  options.checkpoint_period_ms = 0;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string stats;
  ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
  EXPECT_EQ(testing::StatValue(stats, "checkpoint.taken"), 0);
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

TEST(EnvTest, EvictorCleanerAndCheckpointerAreObservablyAtWork) {
  testing::ScratchDir dir;
  Options options;
  options.sync_commits = false;
  options.cache_bytes = size_t{2} << 20;
  options.cleaner_period_ms = 5;
  options.checkpoint_period_ms = 50;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  TableOptions table_options;
  table_options.node_bytes = 32 << 10;
  table_options.basement_bytes = 4 << 10;
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", table_options, &table).ok());
  std::string stats;
  auto stat = [&](const char* name) { return testing::StatValue(stats, name); };
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 500; ++i) {
      int k = (round * 500 + i) * 7919 % 100000;
      ASSERT_TRUE(table->Put(nullptr, "key" + std::to_string(k), std::string(60, 'v')).ok());
    }
    ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
    if (stat("cache.evictor_runs") > 0 && stat("cleaner.calls") > 0 &&
        stat("table.t.cleaner_flushes") > 0 && stat("checkpoint.taken") > 1 &&
        stat("checkpoint.pairs_written") > 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(stat("cache.evictor_runs"), 0) << stats;
  EXPECT_GT(stat("cleaner.calls"), 0) << stats;
  EXPECT_GT(stat("table.t.cleaner_flushes"), 0) << stats;
  EXPECT_GT(stat("checkpoint.taken"), 1) << stats;
  EXPECT_GT(stat("checkpoint.pairs_written"), 0) << stats;
  EXPECT_LE(stat("cache.size_bytes"), 2 * (int64_t{2} << 20)) << stats;
}

}  // namespace
}  // namespace fern
