// A disk that fills while the log still has room: table-file writes fail, so the cache
// cannot write its changes back. Reads must keep being served (they used to wait for the
// evictor's failing sweeps, ~100 ms each, without end), new writes are refused with IOError
// once the cache is past its budget, and everything resumes once space returns.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/fault_injection.h"
#include "util/strings.h"

namespace fern {
namespace {

using testing::ScratchDir;

// Fails every write to a table file while `full` is set, as ENOSPC would.
class FullTableFiles final : public FaultInjector {
 public:
  FullTableFiles() { SetFaultInjector(this); }
  ~FullTableFiles() override { SetFaultInjector(nullptr); }
  Status BeforeWrite(const std::string& path, uint64_t, size_t*) override {
    if (full.load() && path.size() >= 3 && path.compare(path.size() - 3, 3, ".ft") == 0) {
      failed.fetch_add(1);
      return Status::IOError(StrCat(path, ": No space left on device (injected)"));
    }
    return Status::OK();
  }
  std::atomic<bool> full{false};
  std::atomic<int> failed{0};
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
  FullTableFiles disk;  // before the Env: its threads consult it until it closes
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
    // A transaction whose write was refused does not commit without it.
    {
      std::unique_ptr<Txn> txn;
      ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
      Status s = table->Put(txn.get(), Key(1), "refused");
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

}  // namespace
}  // namespace fern
