#include "log/log_writer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "log/log_test_util.h"

namespace fern {
namespace {

std::unique_ptr<LogWriter> OpenWriter(const std::string& dir, LogWriterOptions options = {}) {
  std::unique_ptr<LogWriter> writer;
  Status s = LogWriter::Open(dir, options, &writer);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return writer;
}

std::string ValueFor(Lsn i) { return std::string(static_cast<size_t>(i % 97), 'a' + i % 26); }

// Appends `n` inserts whose key is the decimal index and returns their LSNs.
std::vector<Lsn> AppendInserts(LogWriter* writer, int n, int first = 0) {
  std::vector<Lsn> lsns;
  for (int i = first; i < first + n; ++i) {
    Lsn lsn = 0;
    std::string key = std::to_string(i);
    std::string value = ValueFor(static_cast<Lsn>(i));
    Status s = writer->Append(LogRecord::Insert(1, static_cast<TxnId>(i), key, value), &lsn);
    EXPECT_TRUE(s.ok()) << s.ToString();
    lsns.push_back(lsn);
  }
  return lsns;
}

TEST(LogWriterTest, RecordsOfEveryTypeReadBackInOrderWithConsecutiveLsns) {
  ScratchDir dir;
  std::vector<LogRecord> records = {
      LogRecord::BeginTxn(5, 0),
      LogRecord::BeginTxn(6, 5),
      LogRecord::Insert(1, 6, "k", "v"),
      LogRecord::Delete(1, 6, "d"),
      LogRecord::Update(1, 6, "u", "extra"),
      LogRecord::UpdateBroadcast(1, 6, "all"),
      LogRecord::CommitTxn(6),
      LogRecord::PrepareTxn(5, "xid"),
      LogRecord::AbortTxn(5),
      LogRecord::TableCreate(2, "t", "t.ft"),
      LogRecord::TableOpen(2, "t", "t.ft"),
      LogRecord::TableDrop(2, "t"),
      LogRecord::BeginCheckpoint(1),
      LogRecord::EndCheckpoint(1, 13),
      LogRecord::AutocommitInsert(1, 7, "a", "b"),
      LogRecord::AutocommitDelete(1, 8, "a"),
  };
  {
    auto writer = OpenWriter(dir.path());
    for (size_t i = 0; i < records.size(); ++i) {
      Lsn lsn;
      // Half through the typed path, half through the raw-payload path.
      if (i % 2 == 0) {
        ASSERT_TRUE(writer->Append(records[i], &lsn).ok());
      } else {
        std::string payload;
        EncodeLogPayload(records[i], &payload);
        ASSERT_TRUE(writer->Append(records[i].type, payload, &lsn).ok());
      }
      EXPECT_EQ(lsn, i + 1);
    }
    ASSERT_TRUE(writer->Sync(writer->last_lsn()).ok());
    EXPECT_EQ(writer->durable_lsn(), records.size());
  }
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    LogRecord expected = records[i];
    expected.lsn = i + 1;
    EXPECT_EQ(read[i].record, expected) << i;
  }
  EXPECT_EQ(LogFilePaths(dir.path()).size(), 1u);
  EXPECT_EQ(LogFilePaths(dir.path())[0], dir.path() + "/0000000000000001.log");
}

TEST(LogWriterTest, ManyRecordsAcrossRotationsReadForwardAndBackward) {
  ScratchDir dir;
  LogWriterOptions options;
  options.max_file_bytes = 8192;
  options.buffer_bytes = 3000;
  constexpr int kRecords = 5000;
  {
    auto writer = OpenWriter(dir.path(), options);
    AppendInserts(writer.get(), kRecords);
    ASSERT_TRUE(writer->Sync(writer->last_lsn()).ok());
    EXPECT_GT(writer->stats().files_created, 20u);
  }
  std::vector<std::string> paths = LogFilePaths(dir.path());
  ASSERT_GT(paths.size(), 20u);

  std::vector<OwnedRecord> forward;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &forward).ok());
  ASSERT_EQ(forward.size(), static_cast<size_t>(kRecords));
  // A file takes records until its header and their plain frames reach the limit, so it
  // exceeds it by at most one record; packed (groups of up to 3000 bytes here), it holds less.
  std::map<std::string, uint64_t> plain_bytes;
  for (const OwnedRecord& r : forward) {
    std::string payload;
    EncodeLogPayload(r.record, &payload);
    plain_bytes[r.path] += payload.size() + kRecordOverhead;
  }
  for (size_t i = 0; i + 1 < paths.size(); ++i) {
    EXPECT_GE(plain_bytes[paths[i]] + kLogFileHeaderSize, options.max_file_bytes);
    EXPECT_LT(plain_bytes[paths[i]] + kLogFileHeaderSize, options.max_file_bytes + 200);
    EXPECT_LT(FileSize(paths[i]), plain_bytes[paths[i]] + kLogFileHeaderSize);
  }
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(forward[i].record.lsn, static_cast<Lsn>(i + 1));
    EXPECT_EQ(forward[i].key, std::to_string(i));
    EXPECT_EQ(forward[i].value, ValueFor(static_cast<Lsn>(i)));
    // Each file is named after the LSN of its first record.
    if (i == 0 || forward[i].path != forward[i - 1].path) {
      EXPECT_EQ(forward[i].offset, kLogFileHeaderSize);
      EXPECT_EQ(forward[i].path, dir.path() + "/" + LogFileName(forward[i].record.lsn));
    }
  }

  std::vector<OwnedRecord> backward;
  ASSERT_TRUE(ReadBackward(dir.path(), &backward).ok());
  ASSERT_EQ(backward.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(backward[i].record, forward[kRecords - 1 - i].record);
  }

  // Seeking lands on the requested LSN wherever it is.
  for (Lsn target : {Lsn{1}, Lsn{2}, Lsn{777}, Lsn{2500}, Lsn{kRecords}}) {
    std::vector<OwnedRecord> tail;
    ASSERT_TRUE(ReadForward(dir.path(), target, &tail).ok());
    ASSERT_EQ(tail.size(), kRecords - target + 1);
    EXPECT_EQ(tail.front().record.lsn, target);
  }
  std::vector<OwnedRecord> none;
  ASSERT_TRUE(ReadForward(dir.path(), kRecords + 1, &none).ok());
  EXPECT_TRUE(none.empty());
}

TEST(LogWriterTest, ReopenContinuesWithTheNextLsn) {
  ScratchDir dir;
  {
    auto writer = OpenWriter(dir.path());
    AppendInserts(writer.get(), 10);
    ASSERT_TRUE(writer->Sync(10).ok());
  }
  {
    auto writer = OpenWriter(dir.path());
    EXPECT_EQ(writer->last_lsn(), 10u);
    EXPECT_EQ(writer->durable_lsn(), 10u);
    std::vector<Lsn> lsns = AppendInserts(writer.get(), 5, 10);
    EXPECT_EQ(lsns.front(), 11u);
    ASSERT_TRUE(writer->Sync(lsns.back()).ok());
  }
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), 15u);
  for (size_t i = 0; i < read.size(); ++i) EXPECT_EQ(read[i].key, std::to_string(i));
}

TEST(LogWriterTest, GroupCommitSyncsFarFewerTimesThanCommitsAndLosesNothing) {
  ScratchDir dir;
  LogFaultInjector injector;
  // 200 us per fdatasync: a fast SSD. Commits that arrive while one runs share the next.
  injector.set_sync_delay_us(200);
  constexpr int kThreads = 4;
  constexpr int kCommitsPerThread = 500;
  std::vector<std::vector<Lsn>> synced(kThreads);
  int syncs_before = 0;
  {
    auto writer = OpenWriter(dir.path());
    ScopedFaultInjector scope(&injector);
    syncs_before = injector.syncs();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kCommitsPerThread; ++i) {
          std::string key = StrCat(t, "/", i);
          std::string value(100, static_cast<char>('a' + t));
          Lsn lsn = 0;
          Status s = writer->Append(LogRecord::AutocommitInsert(1, 1, key, value), &lsn);
          if (s.ok()) s = writer->Sync(lsn);
          ASSERT_TRUE(s.ok()) << s.ToString();
          synced[t].push_back(lsn);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    int syncs = injector.syncs() - syncs_before;
    constexpr int kCommits = kThreads * kCommitsPerThread;
    std::printf("group commit: %d commits, %d fdatasyncs (%.2f commits per sync)\n", kCommits,
                syncs, static_cast<double>(kCommits) / syncs);
    EXPECT_LT(syncs, kCommits / 2);
    EXPECT_EQ(static_cast<int>(writer->stats().syncs), syncs);
  }
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), static_cast<size_t>(kThreads * kCommitsPerThread));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kCommitsPerThread; ++i) {
      const OwnedRecord& r = read[synced[t][i] - 1];
      EXPECT_EQ(r.key, StrCat(t, "/", i));
      EXPECT_EQ(r.record.type, LogRecordType::kAutocommitInsert);
    }
  }
}

// Four committers form groups of four; when three stop, the one left must not wait for
// them forever: its gathers time out and it learns to expect fewer.
TEST(LogWriterTest, GroupCommitGoesOnWhenCommittersStop) {
  ScratchDir dir;
  LogFaultInjector injector;
  injector.set_sync_delay_us(200);
  constexpr int kThreads = 4;
  constexpr int kCommitsTogether = 200;
  constexpr int kCommitsAlone = 200;
  auto writer = OpenWriter(dir.path());
  ScopedFaultInjector scope(&injector);
  auto commit = [&](int t, int i) {
    Lsn lsn = 0;
    Status s = writer->Append(LogRecord::AutocommitInsert(1, 1, StrCat(t, "/", i), "v"), &lsn);
    if (s.ok()) s = writer->Sync(lsn);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_GE(writer->durable_lsn(), lsn);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCommitsTogether; ++i) commit(t, i);
      if (t != 0) return;
      for (int i = kCommitsTogether; i < kCommitsTogether + kCommitsAlone; ++i) commit(t, i);
    });
  }
  for (std::thread& thread : threads) thread.join();
  const int commits = kThreads * kCommitsTogether + kCommitsAlone;
  EXPECT_EQ(writer->durable_lsn(), static_cast<Lsn>(commits));
  // A round takes every buffered record, so a record appended just before another
  // committer's round may be durable before its own Sync: that Sync counts no request.
  // Each of the lone committer's commits needs one: nobody else appends then.
  EXPECT_LE(static_cast<int>(writer->stats().sync_requests), commits);
  EXPECT_GE(static_cast<int>(writer->stats().sync_requests), kCommitsAlone);
}

// A failed fdatasync in the middle of group commit reaches every committer waiting for it,
// including one gathering a group and those that arrive after: none hangs, and none is
// told OK for a record that was not made durable.
TEST(LogWriterTest, SyncFailureDuringGroupCommitReachesEveryCommitter) {
  ScratchDir dir;
  LogFaultInjector injector;
  injector.set_sync_delay_us(100);
  constexpr int kThreads = 4;
  auto writer = OpenWriter(dir.path());
  ScopedFaultInjector scope(&injector);
  injector.FailSyncsFrom(injector.syncs() + 50);
  std::vector<Lsn> last_ok(kThreads, 0);
  std::vector<Status> failure(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        Lsn lsn = 0;
        Status s = writer->Append(LogRecord::AutocommitInsert(1, 1, StrCat(t, "/", i), "v"), &lsn);
        if (s.ok()) s = writer->Sync(lsn);
        if (!s.ok()) {
          failure[t] = s;
          return;
        }
        last_ok[t] = lsn;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(failure[t].IsIOError()) << t << ": " << failure[t].ToString();
    EXPECT_LE(last_ok[t], writer->durable_lsn()) << t;
  }
  EXPECT_TRUE(writer->status().IsIOError());
}

TEST(LogWriterTest, SyncOfAnLsnNeverAppendedIsInvalidArgument) {
  ScratchDir dir;
  auto writer = OpenWriter(dir.path());
  EXPECT_TRUE(writer->Sync(0).ok());
  EXPECT_TRUE(writer->Sync(1).IsInvalidArgument());
  Lsn lsn;
  ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(1), &lsn).ok());
  EXPECT_TRUE(writer->Sync(lsn).ok());
  EXPECT_TRUE(writer->Sync(lsn + 1).IsInvalidArgument());
  EXPECT_TRUE(writer->status().ok());
}

// Polls CheckWritable (which retries a failed write once its back-off has passed) for up to
// 10 s; returns its last answer.
Status WaitUntilWritable(LogWriter* writer) {
  Status s;
  for (int i = 0; i < 2000; ++i) {
    s = writer->CheckWritable();
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return s;
}

// The log in `dir` holds exactly the inserts AppendInserts made for 0..n-1, as LSNs 1..n.
void ExpectInsertsInOrder(const std::string& dir, size_t n) {
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir, 0, &read).ok());
  ASSERT_EQ(read.size(), n);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(read[i].record.lsn, i + 1);
    ASSERT_EQ(read[i].key, std::to_string(i));
    ASSERT_EQ(read[i].value, ValueFor(i));
  }
}

TEST(LogWriterTest, FailedWriteRefusesAppendsUntilARetrySucceedsAndLosesNothing) {
  ScratchDir dir;
  LogFaultInjector injector;
  {
    auto writer = OpenWriter(dir.path());
    std::vector<Lsn> durable = AppendInserts(writer.get(), 3);
    ASSERT_TRUE(writer->Sync(durable.back()).ok());

    ScopedFaultInjector scope(&injector);
    injector.FailWritesFrom(injector.writes() + 1);
    std::vector<Lsn> kept = AppendInserts(writer.get(), 2, 3);
    Status s = writer->Sync(kept.back());
    ASSERT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_NE(s.message().find("injected write failure"), std::string_view::npos);
    EXPECT_NE(s.message().find("retry"), std::string_view::npos) << s.ToString();
    EXPECT_EQ(writer->durable_lsn(), durable.back());

    // While writes fail, every call says so (retrying at most once per back-off).
    Lsn lsn;
    EXPECT_TRUE(writer->Append(LogRecord::CommitTxn(9), &lsn).IsIOError());
    EXPECT_TRUE(writer->Sync(kept.front()).IsIOError());
    EXPECT_TRUE(writer->Flush().IsIOError());
    EXPECT_TRUE(writer->status().IsIOError());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_TRUE(writer->CheckWritable().IsIOError());
    EXPECT_GE(writer->stats().write_retries, 1u);
    EXPECT_EQ(writer->last_lsn(), kept.back());

    // The disk recovers: a retry writes the kept records where the failed write left off.
    injector.StopFailingWrites();
    s = WaitUntilWritable(writer.get());
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(writer->status().ok());
    EXPECT_EQ(writer->durable_lsn(), kept.back());
    std::vector<Lsn> later = AppendInserts(writer.get(), 2, 5);
    EXPECT_EQ(later.front(), kept.back() + 1);
    ASSERT_TRUE(writer->Sync(later.back()).ok());
  }
  ExpectInsertsInOrder(dir.path(), 7);
}

// The log in `dir` holds the inserts AppendInserts made for 0..n-1, then CommitTxn(42).
void ExpectInsertsThenCommit(const std::string& dir, size_t n) {
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir, 0, &read).ok());
  ASSERT_EQ(read.size(), n + 1);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(read[i].key, std::to_string(i));
  LogRecord commit = LogRecord::CommitTxn(42);
  commit.lsn = n + 1;
  EXPECT_EQ(read.back().record, commit);
}

TEST(LogWriterTest, TornWriteIsOverwrittenByTheRetry) {
  ScratchDir dir;
  LogFaultInjector injector;
  {
    auto writer = OpenWriter(dir.path());
    ASSERT_TRUE(writer->Sync(AppendInserts(writer.get(), 4).back()).ok());
    ScopedFaultInjector scope(&injector);
    injector.FailWritesFrom(injector.writes() + 1, /*tear_to=*/10);
    Status s = writer->Sync(AppendInserts(writer.get(), 3, 4).back());
    ASSERT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_NE(s.message().find("torn"), std::string_view::npos) << s.ToString();
    injector.StopFailingWrites();
    s = WaitUntilWritable(writer.get());
    ASSERT_TRUE(s.ok()) << s.ToString();
    Lsn lsn;
    ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(42), &lsn).ok());
    EXPECT_EQ(lsn, 8u);
    ASSERT_TRUE(writer->Sync(lsn).ok());
  }
  ExpectInsertsThenCommit(dir.path(), 7);
}

TEST(LogWriterTest, TornWriteNeverRetriedIsCutOffAtReopen) {
  ScratchDir dir;
  LogFaultInjector injector;
  {
    ScopedFaultInjector scope(&injector);  // outlives the writer: its last try fails too
    auto writer = OpenWriter(dir.path());
    ASSERT_TRUE(writer->Sync(AppendInserts(writer.get(), 4).back()).ok());
    injector.FailWritesFrom(injector.writes() + 1, /*tear_to=*/10);
    Status s = writer->Sync(AppendInserts(writer.get(), 3, 4).back());
    ASSERT_TRUE(s.IsIOError()) << s.ToString();
  }
  std::string path = LogFilePaths(dir.path()).back();
  uint64_t torn_size = FileSize(path);
  {
    auto writer = OpenWriter(dir.path());
    EXPECT_EQ(writer->last_lsn(), 4u);
    EXPECT_LT(FileSize(path), torn_size);
    Lsn lsn;
    ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(42), &lsn).ok());
    EXPECT_EQ(lsn, 5u);
    ASSERT_TRUE(writer->Sync(lsn).ok());
  }
  ExpectInsertsThenCommit(dir.path(), 4);
}

TEST(LogWriterTest, FailedWritesAcrossRotationsAreRetriedWithoutLossOrDuplicateFiles) {
  ScratchDir dir;
  LogFaultInjector injector;
  LogWriterOptions options;
  options.max_file_bytes = 1024;  // a rotation every few records
  int appended = 0;
  {
    auto writer = OpenWriter(dir.path(), options);
    ScopedFaultInjector scope(&injector);
    // Every third write fails: record writes and new files' headers alike.
    injector.FailEveryNthWrite(3);
    int failures = 0;
    while (appended < 300) {
      Lsn lsn;
      std::string key = std::to_string(appended);
      Status s = writer->Append(
          LogRecord::Insert(1, static_cast<TxnId>(appended), key, ValueFor(appended)), &lsn);
      if (!s.ok()) {
        ASSERT_TRUE(s.IsIOError()) << s.ToString();
        ASSERT_TRUE(WaitUntilWritable(writer.get()).ok());
        continue;
      }
      ASSERT_EQ(lsn, static_cast<Lsn>(appended) + 1);
      ++appended;
      if (appended % 10 == 0 && !writer->Sync(lsn).ok()) ++failures;
    }
    EXPECT_GT(failures, 0);
    injector.FailEveryNthWrite(0);
    ASSERT_TRUE(WaitUntilWritable(writer.get()).ok());
    ASSERT_TRUE(writer->Sync(writer->last_lsn()).ok());
    std::vector<LogFileInfo> files = writer->files();
    EXPECT_GT(files.size(), 3u);
    for (size_t i = 1; i < files.size(); ++i) EXPECT_LT(files[i - 1].first_lsn, files[i].first_lsn);
  }
  ExpectInsertsInOrder(dir.path(), static_cast<size_t>(appended));
}

// Group commit while writes fail now and then: every record whose Append returned OK is in
// the log once, in LSN order, with no gap, whichever committer's round failed.
TEST(LogWriterTest, ConcurrentCommittersThroughFailingWritesLoseNothing) {
  ScratchDir dir;
  LogFaultInjector injector;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 150;
  std::vector<std::map<Lsn, std::string>> appended(kThreads);
  {
    auto writer = OpenWriter(dir.path());
    ScopedFaultInjector scope(&injector);
    injector.FailEveryNthWrite(5);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread;) {
          std::string key = std::to_string(t) + "-" + std::to_string(i);
          Lsn lsn;
          if (!writer->Append(LogRecord::Insert(1, 1, key, "v"), &lsn).ok()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            continue;
          }
          appended[t][lsn] = key;
          ++i;
          writer->Sync(lsn).ok();  // may fail: its fate is then unknown, but it is kept
        }
      });
    }
    for (auto& thread : threads) thread.join();
    injector.FailEveryNthWrite(0);
    ASSERT_TRUE(WaitUntilWritable(writer.get()).ok());
    ASSERT_TRUE(writer->Sync(writer->last_lsn()).ok());
    EXPECT_GT(writer->stats().write_retries, 0u);
  }
  std::map<Lsn, std::string> all;
  for (const auto& m : appended) all.insert(m.begin(), m.end());
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), all.size());
  size_t i = 0;
  for (const auto& [lsn, key] : all) {
    ASSERT_EQ(read[i].record.lsn, lsn);
    ASSERT_EQ(lsn, i + 1);
    ASSERT_EQ(read[i].key, key);
    ++i;
  }
}

TEST(LogWriterTest, InjectedSyncFailureReturnsIOErrorAndFailsTheWriter) {
  ScratchDir dir;
  LogFaultInjector injector;
  auto writer = OpenWriter(dir.path());
  ScopedFaultInjector scope(&injector);
  injector.FailSyncsFrom(injector.syncs() + 1);
  std::vector<Lsn> lsns = AppendInserts(writer.get(), 2);
  Status s = writer->Sync(lsns.back());
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.message().find("injected fdatasync failure"), std::string_view::npos);
  EXPECT_EQ(writer->durable_lsn(), 0u);
  Lsn lsn;
  EXPECT_EQ(writer->Append(LogRecord::CommitTxn(1), &lsn).ToString(), s.ToString());
  EXPECT_EQ(writer->Sync(lsns.front()).ToString(), s.ToString());
}

TEST(LogWriterTest, FailureDuringRotationFailsTheWriter) {
  ScratchDir dir;
  LogFaultInjector injector;
  LogWriterOptions options;
  options.max_file_bytes = 1024;
  auto writer = OpenWriter(dir.path(), options);
  ScopedFaultInjector scope(&injector);
  // The first sync is the old file's at rotation, before the new file exists.
  injector.FailSyncsFrom(1);
  std::vector<Lsn> lsns = AppendInserts(writer.get(), 100);
  Status s = writer->Flush();
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(writer->Sync(lsns.front()).ToString(), s.ToString());
}

TEST(LogWriterTest, AppenderWritesOutAFullBufferItself) {
  ScratchDir dir;
  LogFaultInjector injector;
  LogWriterOptions options;
  options.buffer_bytes = 1024;
  auto writer = OpenWriter(dir.path(), options);
  ScopedFaultInjector scope(&injector);
  std::string path = LogFilePaths(dir.path()).back();
  AppendInserts(writer.get(), 100);
  EXPECT_GT(injector.writes(), 0);
  EXPECT_EQ(injector.syncs(), 0);
  EXPECT_GT(FileSize(path), 5000u);
  // Flush writes the rest, still without a sync.
  ASSERT_TRUE(writer->Flush().ok());
  EXPECT_EQ(injector.syncs(), 0);
  EXPECT_EQ(writer->durable_lsn(), 0u);
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  EXPECT_EQ(read.size(), 100u);
}

TEST(LogWriterTest, OversizedPayloadIsInvalidArgumentAndLeavesTheWriterUsable) {
  ScratchDir dir;
  auto writer = OpenWriter(dir.path());
  Lsn lsn = 0;
  std::string huge(size_t{kMaxLogPayloadSize} + 1, 'x');
  EXPECT_TRUE(writer->Append(LogRecordType::kInsert, huge, &lsn).IsInvalidArgument());
  EXPECT_TRUE(writer->Append(LogRecord::Insert(1, 1, "k", huge), &lsn).IsInvalidArgument());
  EXPECT_TRUE(writer->Append(LogRecordType::kInvalid, "x", &lsn).IsInvalidArgument());
  ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(1), &lsn).ok());
  EXPECT_EQ(lsn, 1u);
  ASSERT_TRUE(writer->Sync(lsn).ok());
  writer.reset();
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  EXPECT_EQ(read.size(), 1u);
}

// Large compressible payloads are stored snappy-compressed and small or random ones as they
// are; every record reads back exactly, forward and backward.
TEST(LogWriterTest, LargeCompressibleRecordsAreStoredCompressedAndReadBackExactly) {
  ScratchDir dir;
  std::mt19937_64 rng(11);
  std::vector<std::string> values;
  size_t raw_bytes = 0;
  {
    auto writer = OpenWriter(dir.path());
    for (int i = 0; i < 300; ++i) {
      std::string value;
      if (i % 3 == 0) {
        value.resize(2000);
        for (char& c : value) c = static_cast<char>(rng());
      } else if (i % 3 == 1) {
        value = std::string(3000 + i, static_cast<char>('a' + i % 26));
      } else {
        value = "small";
      }
      raw_bytes += value.size();
      Lsn lsn;
      ASSERT_TRUE(writer->Append(LogRecord::Insert(1, 1, std::to_string(i), value), &lsn).ok());
      values.push_back(std::move(value));
    }
    ASSERT_TRUE(writer->Sync(writer->last_lsn()).ok());
  }
  // The random thirds (200 KB) are kept whole; the repeated thirds shrink to almost nothing.
  uint64_t file_bytes = 0;
  for (const std::string& path : LogFilePaths(dir.path())) file_bytes += FileSize(path);
  EXPECT_LT(file_bytes, raw_bytes / 2);
  EXPECT_GT(file_bytes, 100u * 2000);
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(read[i].key, std::to_string(i));
    ASSERT_EQ(read[i].value, values[i]) << i;
  }
  ASSERT_TRUE(ReadBackward(dir.path(), &read).ok());
  ASSERT_EQ(read.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(read[i].value, values[values.size() - 1 - i]) << i;
  }
}

TEST(LogWriterTest, RemoveFilesBeforeDeletesOnlyFilesWhollyBelowTheLsn) {
  ScratchDir dir;
  LogWriterOptions options;
  options.max_file_bytes = 2048;
  auto writer = OpenWriter(dir.path(), options);
  AppendInserts(writer.get(), 1000);
  ASSERT_TRUE(writer->Flush().ok());
  std::vector<LogFileInfo> files = writer->files();
  ASSERT_GT(files.size(), 6u);

  // A checkpoint began in the middle of files[3]: files[0..2] go, files[3] stays.
  Lsn checkpoint_lsn = files[3].first_lsn + 2;
  ASSERT_TRUE(writer->RemoveFilesBefore(checkpoint_lsn).ok());
  std::vector<LogFileInfo> left = writer->files();
  ASSERT_EQ(left.size(), files.size() - 3);
  EXPECT_EQ(left.front().first_lsn, files[3].first_lsn);
  EXPECT_FALSE(PathExists(files[2].path));
  EXPECT_TRUE(PathExists(files[3].path));

  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), checkpoint_lsn, &read).ok());
  ASSERT_FALSE(read.empty());
  EXPECT_EQ(read.front().record.lsn, checkpoint_lsn);
  EXPECT_EQ(read.back().record.lsn, 1000u);
  // From the start, the log now begins with files[3].
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  EXPECT_EQ(read.front().record.lsn, files[3].first_lsn);

  // A file boundary exactly: files[4] starts at the LSN, so files[3] goes.
  ASSERT_TRUE(writer->RemoveFilesBefore(files[4].first_lsn).ok());
  EXPECT_EQ(writer->files().front().first_lsn, files[4].first_lsn);

  // Never the current file, even when everything is below the LSN.
  ASSERT_TRUE(writer->RemoveFilesBefore(writer->last_lsn() + 1).ok());
  ASSERT_EQ(writer->files().size(), 1u);
  EXPECT_EQ(writer->files().front().path, files.back().path);
  Lsn lsn;
  ASSERT_TRUE(writer->Append(LogRecord::CommitTxn(5), &lsn).ok());
  ASSERT_TRUE(writer->Sync(lsn).ok());
  writer.reset();
  auto reopened = OpenWriter(dir.path(), options);
  EXPECT_EQ(reopened->last_lsn(), 1001u);
}

TEST(LogWriterTest, ConcurrentAppendersRotateWithoutLosingOrReorderingRecords) {
  ScratchDir dir;
  LogWriterOptions options;
  options.max_file_bytes = 16 << 10;
  options.buffer_bytes = 4 << 10;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  {
    auto writer = OpenWriter(dir.path(), options);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          Lsn lsn;
          std::string key = StrCat(t, "/", i);
          ASSERT_TRUE(writer->Append(LogRecord::Insert(t, i, key, "v"), &lsn).ok());
          if (i % 100 == 99) {
            ASSERT_TRUE(writer->Sync(lsn).ok());
          } else if (i % 37 == 0) {
            ASSERT_TRUE(writer->Flush().ok());
          }
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  std::vector<OwnedRecord> read;
  ASSERT_TRUE(ReadForward(dir.path(), 0, &read).ok());
  ASSERT_EQ(read.size(), static_cast<size_t>(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);
  for (const OwnedRecord& r : read) {
    int t = static_cast<int>(r.record.table_id);
    EXPECT_EQ(r.key, StrCat(t, "/", next[t]));
    ++next[t];
  }
}

}  // namespace
}  // namespace fern
