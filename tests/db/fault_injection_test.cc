// Fault injection through the public API: failed and torn log writes, failed log and table
// fsyncs, failed table writes during a checkpoint, a damaged log record, a failed catalog
// write. The promise under test: an acknowledged (synced) write is never lost, a failure is
// reported with the file it happened in, and damage is reported, not served.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "db/suffix_fault_injector.h"
#include "fern/fern.h"
#include "gtest/gtest.h"
#include "log/log_reader.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::CopyCrashImage;
using testing::OnlyFileEndingWith;
using testing::ScratchDir;
using testing::SuffixFaultInjector;
using Fault = SuffixFaultInjector::Fault;
using Rows = std::map<std::string, std::string>;

constexpr char kTable[] = "t";
constexpr int kKeys = 400;

// WORKLOADS.md-like rows: 16-byte keys, 100-byte values that change with the operation.
std::string Key(int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016d", (i * 7919) % kKeys);
  return buf;
}
std::string Value(int op) {
  std::string v = "op" + std::to_string(op) + "-";
  v.resize(100, static_cast<char>('a' + op % 26));
  return v;
}
bool IsDelete(int op) { return op % 7 == 6; }

Options SyncedOptions() {
  Options options;
  options.sync_commits = true;
  options.cache_bytes = size_t{64} << 20;  // no eviction: table writes happen in checkpoints
  return options;
}

// Small nodes, so a few hundred rows make a tree of several dozen blocks.
TableOptions SmallNodes() {
  TableOptions options;
  options.node_bytes = 8 << 10;
  options.basement_bytes = 1 << 10;
  return options;
}

// Runs operations [first, first + count) and records each acknowledged one in `*model`.
void WriteAcknowledged(Table* table, int first, int count, Rows* model) {
  for (int op = first; op < first + count; ++op) {
    if (IsDelete(op)) {
      ASSERT_TRUE(table->Delete(nullptr, Key(op)).ok()) << op;
      model->erase(Key(op));
    } else {
      ASSERT_TRUE(table->Put(nullptr, Key(op), Value(op)).ok()) << op;
      (*model)[Key(op)] = Value(op);
    }
  }
}

Rows ReadRows(Table* table) {
  Rows rows;
  auto cursor = table->NewCursor(nullptr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    rows.emplace(std::string(cursor->key()), std::string(cursor->value()));
  }
  EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  return rows;
}

// Opens `dir` (recovering) with no injector installed and reads the whole table.
Status ReopenAndRead(const std::string& dir, Rows* rows) {
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir, SyncedOptions(), &env);
  if (!s.ok()) return s;
  Table* table;
  s = env->OpenTable(kTable, SmallNodes(), &table);
  if (!s.ok()) return s;
  *rows = ReadRows(table);
  return Status::OK();
}

int RunFtverify(const std::string& path) {
  std::string command = std::string(FERN_FTVERIFY) + " " + path + " > /dev/null 2>&1";
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool Contains(const Status& s, const std::string& text) {
  return s.ToString().find(text) != std::string::npos;
}

// After a failed log sync: every write fails, whatever the disk does now, and every
// acknowledged row still reads back. `failed_key` may read back too: its record was applied
// before the commit failed, and its outcome is unknown.
void ExpectWritesRefusedReadsServed(Env* env, Table* table, const Rows& model,
                                    const std::string& failed_key) {
  Status s = table->Put(nullptr, "another", "value");
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(Contains(s, "reopen the Env")) << s.ToString();
  s = table->Insert(nullptr, "another", "value");
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  s = table->Delete(nullptr, model.begin()->first);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  s = env->Checkpoint();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  Table* other;
  s = env->OpenTable("other", TableOptions(), &other);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  // A transaction whose write was refused does not commit as if nothing had gone wrong; one
  // that only read does.
  std::unique_ptr<Txn> txn;
  ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
  EXPECT_TRUE(table->Put(txn.get(), "another", "value").IsIOError());
  s = txn->Commit();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(txn->Abort().ok());
  ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
  std::string got;
  EXPECT_TRUE(table->Get(txn.get(), model.begin()->first, &got).ok());
  EXPECT_TRUE(txn->Commit().ok());

  for (const auto& [key, value] : model) {
    std::string got;
    ASSERT_TRUE(table->Get(nullptr, key, &got).ok()) << key;
    EXPECT_EQ(got, value) << key;
  }
  Rows rows = ReadRows(table);
  rows.erase(failed_key);
  Rows expected = model;
  expected.erase(failed_key);
  EXPECT_EQ(rows, expected);
}

// A failed log write (as on a full disk) fails the put that met it; the log keeps the
// record and retries the write, and writes resume without a reopen once a retry succeeds
// (at once here: the fault hits one write). The failed put was applied and its record was
// kept, so it reads back and survives the reopen.
TEST(FaultInjectionTest, FailedLogWriteFailsThePutAndWritesResumeOnceARetrySucceeds) {
  ScratchDir dir;
  SuffixFaultInjector injector(".log", Fault::kFailWrite);
  Rows model;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), SyncedOptions(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
    WriteAcknowledged(table, 0, 60, &model);
    const std::string log = OnlyFileEndingWith(dir.path(), ".log");

    injector.Arm();
    Status s = table->Put(nullptr, Key(60), Value(60));
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s, log)) << s.ToString();
    EXPECT_EQ(injector.faults(), 1);
    EXPECT_EQ(injector.faulted_path(), log);
    model[Key(60)] = Value(60);

    for (int attempt = 0; attempt < 1000; ++attempt) {
      s = table->Put(nullptr, Key(61), Value(61));
      if (s.ok()) break;
      EXPECT_TRUE(s.IsIOError()) << s.ToString();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    model[Key(61)] = Value(61);
    WriteAcknowledged(table, 62, 40, &model);
    ASSERT_TRUE(env->Checkpoint().ok());
    Table* other;
    ASSERT_TRUE(env->OpenTable("other", TableOptions(), &other).ok());
    EXPECT_EQ(ReadRows(table), model);
  }
  Rows rows;
  Status s = ReopenAndRead(dir.path(), &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, model);
}

TEST(FaultInjectionTest, FailedLogSyncFailsTheSyncedPutAndStopsWritesButNotReads) {
  ScratchDir dir;
  SuffixFaultInjector injector(".log", Fault::kFailSync);
  Rows model;
  std::string failed_key = Key(60);
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), SyncedOptions(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
    WriteAcknowledged(table, 0, 60, &model);
    const std::string log = OnlyFileEndingWith(dir.path(), ".log");

    injector.Arm();
    Status s = table->Put(nullptr, failed_key, Value(60));
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s, log)) << s.ToString();
    EXPECT_EQ(injector.faults(), 1);

    injector.Uninstall();
    ExpectWritesRefusedReadsServed(env.get(), table, model, failed_key);
  }
  // The unsynced record did reach the file, so it may come back; nothing else may differ.
  Rows rows;
  Status s = ReopenAndRead(dir.path(), &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  if (auto it = rows.find(failed_key); it != rows.end() && it->second == Value(60)) {
    model[failed_key] = Value(60);
  }
  EXPECT_EQ(rows, model);
}

TEST(FaultInjectionTest, FailedPrepareLeavesTheTransactionUnpreparedInProcess) {
  ScratchDir dir;
  SuffixFaultInjector injector(".log", Fault::kFailSync);
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), SyncedOptions(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
    std::unique_ptr<Txn> txn;
    ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
    ASSERT_TRUE(table->Put(txn.get(), Key(1), Value(1)).ok());
    injector.Arm();
    Status s = txn->Prepare("xid-1");
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_EQ(txn->xid(), "");  // "empty unless prepared"
    s = txn->Commit();
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    // Ends it in memory; its abort record can no longer be logged (writes stopped).
    s = txn->Abort();
    EXPECT_TRUE(s.ok() || s.IsIOError()) << s.ToString();
    EXPECT_TRUE(txn->Abort().IsInvalidArgument());
  }
  // The unsynced prepare record reached the file, so recovery may bring the transaction back
  // prepared (the coordinator decides); its row is visible only if it is then committed.
  injector.Uninstall();
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), SyncedOptions(), &env).ok());
  std::vector<std::unique_ptr<Txn>> prepared;
  ASSERT_TRUE(env->RecoverPrepared(&prepared).ok());
  ASSERT_LE(prepared.size(), 1u);
  Table* table;
  ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
  std::string got;
  if (!prepared.empty()) {
    EXPECT_EQ(prepared[0]->xid(), "xid-1");
    ASSERT_TRUE(prepared[0]->Commit().ok());
    ASSERT_TRUE(table->Get(nullptr, Key(1), &got).ok());
  } else {
    EXPECT_TRUE(table->Get(nullptr, Key(1), &got).IsNotFound());
  }
}

TEST(FaultInjectionTest, RecoveryDropsATornLogTailAndKeepsEverythingBefore) {
  ScratchDir dir;
  SuffixFaultInjector injector(".log", Fault::kTornWrite);
  Rows model;
  const std::string image = dir.Sub("image");
  const std::string env_dir = dir.Sub("env");
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(env_dir, SyncedOptions(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
    WriteAcknowledged(table, 0, 40, &model);
    injector.Arm();
    Status s = table->Put(nullptr, Key(40), Value(40));
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s, "torn")) << s.ToString();
    ASSERT_EQ(injector.faults(), 1);
    // kill -9 now.
    CopyCrashImage(env_dir, image);
    injector.Uninstall();
  }

  // The image's log holds the bytes the torn write let through after its last whole
  // record (then, possibly, the zeros of preallocated space).
  const std::string log = OnlyFileEndingWith(image, ".log");
  ASSERT_GT(injector.written_size(), 0u);
  ASSERT_GE(std::filesystem::file_size(log), injector.faulted_offset() + injector.written_size());
  {
    std::unique_ptr<LogReader> reader;
    ASSERT_TRUE(LogReader::Open(image, &reader).ok());
    LogEnd end;
    ASSERT_TRUE(reader->FindEnd(&end).ok());
    EXPECT_EQ(end.valid_end, injector.faulted_offset());
    EXPECT_GE(end.file_size - end.valid_end, injector.written_size());
  }

  {
    std::unique_ptr<Env> env;
    Status s = Env::Open(image, SyncedOptions(), &env);
    ASSERT_TRUE(s.ok()) << s.ToString();
    Table* table;
    ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
    EXPECT_EQ(ReadRows(table), model);
    // The torn bytes are gone and the log continues after the last whole record.
    EXPECT_EQ(std::filesystem::file_size(log), injector.faulted_offset());
    WriteAcknowledged(table, 41, 20, &model);
  }
  Rows rows;
  Status s = ReopenAndRead(image, &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, model);
}

TEST(FaultInjectionTest, FlippedByteInALogRecordBeforeTheTailIsCorruptionWithFileAndOffset) {
  ScratchDir dir;
  const std::string image = dir.Sub("image");
  const std::string env_dir = dir.Sub("env");
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(env_dir, SyncedOptions(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
    Rows model;
    WriteAcknowledged(table, 0, 40, &model);
    CopyCrashImage(env_dir, image);  // every record is still needed by recovery
  }

  // Damage the payload of the 10th of 40 records.
  std::string path;
  uint64_t offset = 0;
  {
    std::unique_ptr<LogReader> reader;
    ASSERT_TRUE(LogReader::Open(image, &reader).ok());
    ASSERT_TRUE(reader->SeekToLsn(10).ok());
    ASSERT_TRUE(reader->Valid());
    ASSERT_EQ(reader->record().lsn, 10u);
    path = reader->current_path();
    offset = reader->current_offset();
  }
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(offset + 20);
    f.seekg(at);
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(at);
    f.write(&c, 1);
    ASSERT_TRUE(f.good());
  }

  std::unique_ptr<Env> env;
  Status s = Env::Open(image, SyncedOptions(), &env);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_TRUE(Contains(s, path + ": offset " + std::to_string(offset) + ":")) << s.ToString();
}

// Which write of the table file an Env::Checkpoint fails. A checkpoint writes the dirty
// node blocks, then the block table, fsyncs, then the header (at offset 0 or 4096), fsyncs.
enum class CheckpointWrite { kFirstBlock, kMiddleBlock, kBlockTable, kHeader };

class CheckpointWriteFaultTest : public ::testing::TestWithParam<CheckpointWrite> {};

// The same workload every time: a table of a few dozen blocks, all dirty.
void BuildDirtyTable(const std::string& dir, std::unique_ptr<Env>* env, Table** table,
                     Rows* model) {
  ASSERT_TRUE(Env::Open(dir, SyncedOptions(), env).ok());
  ASSERT_TRUE((*env)->OpenTable(kTable, SmallNodes(), table).ok());
  WriteAcknowledged(*table, 0, 500, model);
}

TEST_P(CheckpointWriteFaultTest, CheckpointFailsTheFileVerifiesAndRecoveryLosesNothing) {
  ScratchDir dir;
  SuffixFaultInjector injector(".ft", Fault::kFailWrite);

  // A dry run counts the table-file writes of the checkpoint.
  int writes = 0;
  {
    std::unique_ptr<Env> env;
    Table* table;
    Rows model;
    BuildDirtyTable(dir.Sub("dry"), &env, &table, &model);
    int before = injector.calls();
    ASSERT_TRUE(env->Checkpoint().ok());
    writes = injector.calls() - before;
  }
  ASSERT_GE(writes, 6) << "the table should have several dirty blocks";
  int nth = 0;
  switch (GetParam()) {
    case CheckpointWrite::kFirstBlock:
      nth = 1;
      break;
    case CheckpointWrite::kMiddleBlock:
      nth = (writes - 2) / 2 + 1;
      break;
    case CheckpointWrite::kBlockTable:
      nth = writes - 1;
      break;
    case CheckpointWrite::kHeader:
      nth = writes;
      break;
  }

  const std::string env_dir = dir.Sub("env");
  const std::string image = dir.Sub("image");
  Rows model;
  Rows before_failure;
  {
    std::unique_ptr<Env> env;
    Table* table;
    BuildDirtyTable(env_dir, &env, &table, &model);
    before_failure = model;
    const std::string file = OnlyFileEndingWith(env_dir, ".ft");
    injector.Arm(nth);
    Status s = env->Checkpoint();
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s, file)) << s.ToString();
    ASSERT_EQ(injector.faults(), 1);
    // The fault hit the write it was meant for (the dry run made the same writes).
    EXPECT_EQ(injector.faulted_offset() < 8192, GetParam() == CheckpointWrite::kHeader)
        << injector.faulted_offset();

    // The last complete checkpoint is intact in a crash image (a copy of the live files;
    // ftverify refuses the live directory while the Env has it open).
    EXPECT_EQ(RunFtverify(file), 2);
    CopyCrashImage(env_dir, image);
    EXPECT_EQ(RunFtverify(OnlyFileEndingWith(image, ".ft")), 0);

    // Writes go on (the log is fine); a failed header write leaves the file's durable state
    // uncertain, so that table refuses further checkpoints until reopened.
    injector.Uninstall();
    WriteAcknowledged(table, 500, 50, &model);
    EXPECT_EQ(ReadRows(table), model);
    s = env->Checkpoint();
    if (GetParam() == CheckpointWrite::kHeader) {
      EXPECT_TRUE(s.IsIOError()) << s.ToString();
      EXPECT_TRUE(Contains(s, file)) << s.ToString();
    } else {
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    WriteAcknowledged(table, 550, 50, &model);
  }

  Rows rows;
  Status s = ReopenAndRead(env_dir, &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, model);

  // The crash image recovers every write acknowledged before the failed checkpoint.
  s = ReopenAndRead(image, &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, before_failure);
}

INSTANTIATE_TEST_SUITE_P(Writes, CheckpointWriteFaultTest,
                         ::testing::Values(CheckpointWrite::kFirstBlock,
                                           CheckpointWrite::kMiddleBlock,
                                           CheckpointWrite::kBlockTable, CheckpointWrite::kHeader),
                         [](const ::testing::TestParamInfo<CheckpointWrite>& info) {
                           switch (info.param) {
                             case CheckpointWrite::kFirstBlock:
                               return "FirstBlock";
                             case CheckpointWrite::kMiddleBlock:
                               return "MiddleBlock";
                             case CheckpointWrite::kBlockTable:
                               return "BlockTable";
                             case CheckpointWrite::kHeader:
                               return "Header";
                           }
                           return "Unknown";
                         });

// Which of the checkpoint's two table-file fsyncs fails: the one that makes the blocks and
// block table durable, or the one after the header write.
class CheckpointSyncFaultTest : public ::testing::TestWithParam<int> {};

TEST_P(CheckpointSyncFaultTest, CheckpointFailsAndNoAcknowledgedWriteIsLost) {
  ScratchDir dir;
  SuffixFaultInjector injector(".ft", Fault::kFailSync);
  const std::string env_dir = dir.Sub("env");
  const std::string image = dir.Sub("image");
  Rows model;
  Rows before_failure;
  {
    std::unique_ptr<Env> env;
    Table* table;
    BuildDirtyTable(env_dir, &env, &table, &model);
    before_failure = model;
    const std::string file = OnlyFileEndingWith(env_dir, ".ft");
    injector.Arm(GetParam());
    Status s = env->Checkpoint();
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s, file)) << s.ToString();
    EXPECT_EQ(injector.faults(), 1);
    EXPECT_EQ(injector.faulted_path(), file);
    CopyCrashImage(env_dir, image);
    EXPECT_EQ(RunFtverify(OnlyFileEndingWith(image, ".ft")), 0);

    // The kernel may have dropped the dirty pages: the table refuses checkpoints from now
    // on, but writes are still logged and acknowledged.
    injector.Uninstall();
    WriteAcknowledged(table, 500, 50, &model);
    s = env->Checkpoint();
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s, file)) << s.ToString();
    WriteAcknowledged(table, 550, 50, &model);
    EXPECT_EQ(ReadRows(table), model);
  }

  Rows rows;
  Status s = ReopenAndRead(env_dir, &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, model);
  EXPECT_EQ(RunFtverify(OnlyFileEndingWith(env_dir, ".ft")), 0);

  s = ReopenAndRead(image, &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, before_failure);
}

INSTANTIATE_TEST_SUITE_P(Syncs, CheckpointSyncFaultTest, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == 1 ? std::string("BlocksAndTable")
                                                  : std::string("Header");
                         });

TEST(FaultInjectionTest, FailedCatalogWriteFailsTableCreationAndLeavesNoTrace) {
  ScratchDir dir;
  SuffixFaultInjector injector("CATALOG.tmp", Fault::kFailWrite);
  Rows model;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), SyncedOptions(), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
    WriteAcknowledged(table, 0, 20, &model);

    injector.Arm();
    Table* other = nullptr;
    Status s = env->OpenTable("other", TableOptions(), &other);
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s, dir.Sub("CATALOG.tmp"))) << s.ToString();
    EXPECT_EQ(other, nullptr);
    EXPECT_FALSE(std::filesystem::exists(dir.Sub("CATALOG.tmp")));
    EXPECT_EQ(OnlyFileEndingWith(dir.path(), ".ft"), dir.Sub("table-1.ft"));

    // Nothing else is affected, and the creation succeeds once the disk does.
    WriteAcknowledged(table, 20, 20, &model);
    injector.Uninstall();
    ASSERT_TRUE(env->OpenTable("other", TableOptions(), &other).ok());
    ASSERT_TRUE(other->Put(nullptr, "k", "v").ok());
  }
  Rows rows;
  Status s = ReopenAndRead(dir.path(), &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, model);
}

// DropTable makes the unsynced commits before it durable first (a crash must not keep the
// drop and lose them): when that sync fails, the drop fails before anything changed.
TEST(FaultInjectionTest, FailedLogSyncFailsDropTableAndTheTableStays) {
  ScratchDir dir;
  SuffixFaultInjector injector(".log", Fault::kFailSync);
  {
    std::unique_ptr<Env> env;
    Options options = SyncedOptions();
    options.sync_commits = false;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    Table* other;
    ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
    ASSERT_TRUE(env->OpenTable("other", TableOptions(), &other).ok());
    ASSERT_TRUE(other->Put(nullptr, "k", "v").ok());
    ASSERT_TRUE(env->Checkpoint().ok());
    Rows model;
    WriteAcknowledged(table, 0, 20, &model);  // not synced

    injector.Arm();
    Status s = env->DropTable("other");
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s, "before changing the catalog")) << s.ToString();
    EXPECT_EQ(injector.faults(), 1);
    injector.Uninstall();
    // The table is still there and readable.
    std::string value;
    s = other->Get(nullptr, "k", &value);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(value, "v");
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), SyncedOptions(), &env).ok());
  EXPECT_TRUE(env->DropTable("other").ok()) << "the failed drop took effect after all";
}

// A crash while an Env is first created must leave a directory that opens: the state is the
// same as after this failed catalog write (a kill -9 at that moment of the first Env::Open).
TEST(FaultInjectionTest, FailedCatalogWriteWhileCreatingAnEnvLeavesADirectoryThatOpens) {
  ScratchDir dir;
  SuffixFaultInjector injector("CATALOG.tmp", Fault::kFailWrite);
  injector.Arm();
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.path(), SyncedOptions(), &env);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(Contains(s, dir.Sub("CATALOG.tmp"))) << s.ToString();
  injector.Uninstall();

  s = Env::Open(dir.path(), SyncedOptions(), &env);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Table* table;
  ASSERT_TRUE(env->OpenTable(kTable, SmallNodes(), &table).ok());
  Rows model;
  WriteAcknowledged(table, 0, 10, &model);
  env.reset();
  Rows rows;
  s = ReopenAndRead(dir.path(), &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(rows, model);
}

}  // namespace
}  // namespace fern
