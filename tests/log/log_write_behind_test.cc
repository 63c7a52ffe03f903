// LogWriterOptions::write_behind: full buffers are written out by the writer's own thread,
// appenders wait only at twice the buffer size, and nothing is lost or reordered.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "log/log_test_util.h"
#include "log/log_writer.h"

namespace fern {
namespace {

// Holds every log write while the gate is closed, and notes which threads wrote then.
class GatedLogWrites : public FaultInjector {
 public:
  Status BeforeWrite(const std::string& path, uint64_t, size_t*) override {
    if (!IsLogPath(path)) return Status::OK();
    std::unique_lock<std::mutex> lock(mu_);
    if (!open_) writers_.insert(std::this_thread::get_id());
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    --waiting_;
    ++writes_;
    return Status::OK();
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits (up to 10 s) until a write is held at the gate.
  bool AwaitHeldWrite() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [this] { return waiting_ > 0; });
  }
  std::set<std::thread::id> writers() {
    std::lock_guard<std::mutex> lock(mu_);
    return writers_;
  }
  int writes() {
    std::lock_guard<std::mutex> lock(mu_);
    return writes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int waiting_ = 0;
  int writes_ = 0;
  std::set<std::thread::id> writers_;
};

// Opens the gate when it goes out of scope: declared after the writer, so that a failed
// assertion cannot leave the writer's destructor waiting for a held write.
class OpenOnExit {
 public:
  explicit OpenOnExit(GatedLogWrites* gate) : gate_(gate) {}
  ~OpenOnExit() { gate_->Open(); }

 private:
  GatedLogWrites* gate_;
};

constexpr size_t kBufferBytes = 4096;

std::unique_ptr<LogWriter> OpenWriteBehind(const std::string& dir) {
  LogWriterOptions options;
  options.buffer_bytes = kBufferBytes;
  options.write_behind = true;
  std::unique_ptr<LogWriter> writer;
  Status s = LogWriter::Open(dir, options, &writer);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return writer;
}

// Appends inserts keyed by their decimal index, from `first`, until `bytes` more are
// appended (as plain frames). Returns the index after the last one.
int AppendInsertsFor(LogWriter* writer, int first, uint64_t bytes) {
  const uint64_t target = writer->stats().bytes + bytes;
  int i = first;
  while (writer->stats().bytes < target) {
    Lsn lsn = 0;
    const std::string key = std::to_string(i);
    Status s =
        writer->Append(LogRecord::Insert(1, static_cast<TxnId>(i), key, key + "-value"), &lsn);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) break;
    ++i;
  }
  return i;
}

TEST(LogWriteBehindTest, AFullBufferIsWrittenByTheWritersThreadWhileAppendsGoOn) {
  ScratchDir dir;
  GatedLogWrites gate;
  ScopedFaultInjector scope(&gate);
  int n = 0;
  {
    auto writer = OpenWriteBehind(dir.path());
    OpenOnExit open_on_exit(&gate);
    gate.Close();
    // Past one buffer: the write-out starts on the writer's thread and is held at the gate,
    // while this thread appends on (it would hang here if it wrote out itself).
    n = AppendInsertsFor(writer.get(), 0, kBufferBytes + kBufferBytes / 2);
    ASSERT_TRUE(gate.AwaitHeldWrite());
    const std::set<std::thread::id> writers = gate.writers();
    ASSERT_EQ(writers.size(), 1u);
    EXPECT_NE(*writers.begin(), std::this_thread::get_id());
    gate.Open();
    ASSERT_TRUE(writer->Flush().ok());
    EXPECT_EQ(writer->durable_lsn(), 0u);  // write-behind never syncs
  }
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(read[i].key, std::to_string(i));
    EXPECT_EQ(read[i].record.lsn, static_cast<Lsn>(i + 1));
  }
}

TEST(LogWriteBehindTest, AnAppenderWaitsOnceTwoBuffersAreWaiting) {
  ScratchDir dir;
  GatedLogWrites gate;
  ScopedFaultInjector scope(&gate);
  std::atomic<int> appended{0};
  std::atomic<bool> done{false};
  {
    auto writer = OpenWriteBehind(dir.path());
    OpenOnExit open_on_exit(&gate);
    gate.Close();
    std::thread appender([&] {
      appended = AppendInsertsFor(writer.get(), 0, 6 * kBufferBytes);
      done = true;
    });
    // Joins the appender on every way out of this scope, before the writer goes.
    struct Joiner {
      std::thread* t;
      GatedLogWrites* gate;
      ~Joiner() {
        gate->Open();
        if (t->joinable()) t->join();
      }
    } joiner{&appender, &gate};
    ASSERT_TRUE(gate.AwaitHeldWrite());
    // One buffer is held at the gate and the next fills to twice the buffer size; the
    // appender must then wait rather than buffer without bound.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_FALSE(done.load());
    const LogWriterStats stats = writer->stats();
    EXPECT_LT(stats.bytes, 4 * kBufferBytes) << "appends went on past the bound";
    gate.Open();
    appender.join();
    ASSERT_TRUE(writer->Flush().ok());
    EXPECT_GE(gate.writes(), 3);
  }
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), static_cast<size_t>(appended.load()));
  for (size_t i = 0; i < read.size(); ++i) EXPECT_EQ(read[i].key, std::to_string(i));
}

// Appenders and syncers on several threads with write-behind on: every synced LSN is
// durable when Sync returns, and the log reads back complete and in order.
TEST(LogWriteBehindTest, SyncersAndAppendersTogetherLoseAndReorderNothing) {
  ScratchDir dir;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 3000;
  {
    auto writer = OpenWriteBehind(dir.path());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          Lsn lsn = 0;
          const std::string key = std::to_string(t * kPerThread + i);
          ASSERT_TRUE(
              writer->Append(LogRecord::Insert(1, 1, key, std::string(40, 'v')), &lsn).ok());
          if (t == 0 && i % 100 == 0) {
            ASSERT_TRUE(writer->Sync(lsn).ok());
            ASSERT_GE(writer->durable_lsn(), lsn);
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_GT(writer->stats().writes, 10u);
  }
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), static_cast<size_t>(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);  // each thread's records appear in its order
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].record.lsn, static_cast<Lsn>(i + 1));
    const int key = std::stoi(read[i].key);
    const int t = key / kPerThread;
    EXPECT_EQ(key % kPerThread, next[t]++);
  }
}

}  // namespace
}  // namespace fern
