// A disk that fills. While the log still has room, table-file writes fail, so the cache
// cannot write its changes back: reads must keep being served (they used to wait for the
// evictor's failing sweeps, ~100 ms each, without end), new writes are refused with IOError
// once the cache is past its budget, and everything resumes once space returns. When log
// writes fail, writes and commits are refused while reads go on, and they resume without a
// reopen once the log's retry succeeds.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/fault_injection.h"
#include "util/strings.h"

namespace fern {
namespace {

using testing::ScratchDir;

// Fails every write to a file whose path ends in `suffix` while `full` is set, as ENOSPC
// would.
class FullFiles final : public FaultInjector {
 public:
  explicit FullFiles(std::string suffix) : suffix_(std::move(suffix)) { SetFaultInjector(this); }
  ~FullFiles() override { SetFaultInjector(nullptr); }
  Status BeforeWrite(const std::string& path, uint64_t, size_t*) override {
    if (full.load() && path.size() >= suffix_.size() &&
        path.compare(path.size() - suffix_.size(), suffix_.size(), suffix_) == 0) {
      failed.fetch_add(1);
      return Status::IOError(StrCat(path, ": No space left on device (injected)"));
    }
    return Status::OK();
  }
  std::atomic<bool> full{false};
  std::atomic<int> failed{0};

 private:
  const std::string suffix_;
};

std::string Key(int i) { return StrCat("key", 100000 + i); }
std::string Value(int i, int version) {
  return StrCat("v", version, "-", i, "-", std::string(2000, static_cast<char>('a' + i % 26)));
}

Options SmallCache() {
  Options options;
  options.sync_commits = false;
  options.cache_bytes = 2 << 20;
  return options;
}

TEST(DiskFullTest, ReadsGoOnWritesAreRefusedAndBothResumeWhenSpaceReturns) {
  FullFiles disk(".ft");  // before the Env: its threads consult it until it closes
  ScratchDir dir;
  constexpr int kRows = 3000;
  std::map<std::string, std::string> model;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), SmallCache(), &env).ok());
    Table* table = nullptr;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    for (int i = 0; i < kRows; ++i) {
      ASSERT_TRUE(table->Put(nullptr, Key(i), Value(i, 0)).ok());
      model[Key(i)] = Value(i, 0);
    }
    ASSERT_TRUE(env->Checkpoint().ok());

    // The disk fills: overwrites dirty the cache until it is past its budget with changes it
    // cannot write, and then they are refused (before being logged: no trace).
    disk.full = true;
    Status refused;
    for (int i = 0; i < 4 * kRows && refused.ok(); ++i) {
      Status s = table->Put(nullptr, Key(i % kRows), Value(i % kRows, 1 + i / kRows));
      if (s.ok()) {
        model[Key(i % kRows)] = Value(i % kRows, 1 + i / kRows);
      } else {
        refused = s;
      }
    }
    ASSERT_TRUE(refused.IsIOError()) << refused.ToString();
    EXPECT_NE(refused.ToString().find("cannot be written back"), std::string::npos)
        << refused.ToString();
    EXPECT_GT(disk.failed.load(), 0);
    // A transaction whose write was refused does not commit without it. (Its first write
    // may still be taken: the evictor can bring the cache back under the mark by dropping
    // clean nodes, so it writes until one is refused.)
    {
      std::unique_ptr<Txn> txn;
      ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
      Status s;
      for (int i = 0; i < 4 * kRows && s.ok(); ++i) {
        s = table->Put(txn.get(), Key(i % kRows), "refused");
      }
      ASSERT_TRUE(s.IsIOError()) << s.ToString();
      s = txn->Commit();
      EXPECT_TRUE(s.IsIOError()) << s.ToString();
      ASSERT_TRUE(txn->Abort().ok());
    }

    // Every row reads back. A watchdog turns a stall into a failure instead of a hang.
    std::atomic<bool> reads_done{false};
    std::thread watchdog([&] {
      for (int tenth = 0; tenth < 1200 && !reads_done.load(); ++tenth) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (!reads_done.load()) {
        ADD_FAILURE() << "reads stalled for 120 s on a full disk";
        std::abort();
      }
    });
    for (const auto& [key, value] : model) {
      std::string got;
      Status s = table->Get(nullptr, key, &got);
      ASSERT_TRUE(s.ok()) << key << ": " << s.ToString();
      ASSERT_EQ(got, value) << key;
    }
    reads_done = true;
    watchdog.join();
    std::string stats;
    ASSERT_TRUE(env->GetProperty("fern.stats", &stats));

    // Space returns: once a write-back succeeds (the evictor retries within seconds), writes
    // are accepted again and a checkpoint writes everything out.
    disk.full = false;
    Status s;
    for (int attempt = 0; attempt < 300; ++attempt) {
      s = table->Put(nullptr, Key(0), Value(0, 99));
      if (s.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    model[Key(0)] = Value(0, 99);
    ASSERT_TRUE(env->Checkpoint().ok());
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), SmallCache(), &env).ok());
  Table* table = nullptr;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  for (const auto& [key, value] : model) {
    std::string got;
    ASSERT_TRUE(table->Get(nullptr, key, &got).ok()) << key;
    ASSERT_EQ(got, value) << key;
  }
}

// Puts (autocommitted) until one succeeds, for up to 10 s.
Status PutWhenWritable(Table* table, const std::string& key, const std::string& value) {
  Status s;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    s = table->Put(nullptr, key, value);
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return s;
}

TEST(DiskFullTest, LogWritesRefusedWhileTheDiskIsFullResumeWithoutAReopen) {
  FullFiles disk(".log");
  ScratchDir dir;
  Options options;
  options.sync_commits = true;
  std::map<std::string, std::string> model;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table = nullptr;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(table->Put(nullptr, Key(i), Value(i, 0)).ok());
      model[Key(i)] = Value(i, 0);
    }
    std::unique_ptr<Txn> pending;  // wrote before the disk filled, commits after
    ASSERT_TRUE(env->Begin(TxnOptions(), &pending).ok());
    ASSERT_TRUE(table->Put(pending.get(), Key(500), Value(500, 0)).ok());

    disk.full = true;
    // The put that meets the full disk fails, but it was applied and its record is kept for
    // the log's retry: its outcome is unknown, and here (space returns) it becomes durable.
    Status s = table->Put(nullptr, Key(1), Value(1, 1));
    ASSERT_TRUE(s.IsIOError()) << s.ToString();
    model[Key(1)] = Value(1, 1);
    // Then writes are refused without being applied, commits too; reads go on.
    s = table->Put(nullptr, Key(2), Value(2, 1));
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_NE(s.ToString().find("No space left"), std::string::npos) << s.ToString();
    s = pending->Commit();
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    {
      std::unique_ptr<Txn> txn;
      ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
      EXPECT_TRUE(table->Put(txn.get(), Key(3), "refused").IsIOError());
      EXPECT_TRUE(txn->Commit().IsIOError());
      EXPECT_TRUE(txn->Abort().ok());
    }
    EXPECT_TRUE(env->Checkpoint().IsIOError());
    for (const auto& [key, value] : model) {
      std::string got;
      ASSERT_TRUE(table->Get(nullptr, key, &got).ok()) << key;
      ASSERT_EQ(got, value) << key;
    }
    const int failed_writes = disk.failed.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (int i = 0; i < 100; ++i) table->Put(nullptr, Key(2), Value(2, 1)).ok();
    // Retries back off: a hundred refused puts cost a few failed writes, not a hundred.
    EXPECT_LT(disk.failed.load() - failed_writes, 10);

    // Space returns: the next retry writes the kept records and writes resume; the
    // transaction whose commit was refused is still live and commits now.
    disk.full = false;
    s = PutWhenWritable(table, Key(2), Value(2, 2));
    ASSERT_TRUE(s.ok()) << s.ToString();
    model[Key(2)] = Value(2, 2);
    s = pending->Commit();
    ASSERT_TRUE(s.ok()) << s.ToString();
    model[Key(500)] = Value(500, 0);
    for (int i = 600; i < 700; ++i) {
      ASSERT_TRUE(table->Put(nullptr, Key(i), Value(i, 0)).ok());
      model[Key(i)] = Value(i, 0);
    }
    ASSERT_TRUE(env->Checkpoint().ok());
    std::string stats;
    ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
    EXPECT_EQ(stats.find("log.write_retries: 0\n"), std::string::npos) << stats;
    EXPECT_NE(stats.find("log.write_retries: "), std::string::npos) << stats;
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table = nullptr;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::map<std::string, std::string> rows;
  auto cursor = table->NewCursor(nullptr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    rows.emplace(std::string(cursor->key()), std::string(cursor->value()));
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(rows, model);
}

}  // namespace
}  // namespace fern
