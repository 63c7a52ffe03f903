// An Env that lost what its tables need opens with Corruption naming the file, never with
// rows silently missing: log files deleted or truncated under tables whose checkpoints they
// held, a log that starts after the catalog's replay LSN, a table whose newest header is
// damaged (the catalog counts each table's headers).
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;
namespace fs = std::filesystem;

constexpr int kRows = 20000;

std::string Key(int i) { return "key" + std::to_string(100000 + i); }

// Writes kRows rows with several checkpoints between them and closes cleanly (the log is
// then trimmed to the last checkpoint's end).
void MakeEnv(const std::string& dir) {
  std::unique_ptr<Env> env;
  Options options;
  options.sync_commits = false;
  options.checkpoint_period_ms = 0;
  ASSERT_TRUE(Env::Open(dir, options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(table->Put(nullptr, Key(i), "v").ok());
    if (i % 5000 == 4999) {
      ASSERT_TRUE(env->Checkpoint().ok());
    }
  }
}

void Overwrite(const fs::path& path, uint64_t offset, size_t bytes) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(offset));
  const std::string junk(bytes, '\x5a');
  file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

// Opens `dir` and reads every row: the Status of the first step that failed, or OK with
// every row present.
Status OpenAndRead(const std::string& dir) {
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir, Options(), &env);
  if (!s.ok()) return s;
  Table* table;
  s = env->OpenTable("t", TableOptions(), &table);
  if (!s.ok()) return s;
  std::string value;
  for (int i = 0; i < kRows; ++i) {
    s = table->Get(nullptr, Key(i), &value);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

std::vector<fs::path> Files(const std::string& dir, const std::string& extension) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == extension) out.push_back(entry.path());
  }
  return out;
}

// Writes kRows rows into table "t" of dir/env, with a checkpoint halfway if asked, and
// copies the open Env to dir/crashed, as a kill -9 would leave it.
void WriteAndCopyAsCrashed(const ScratchDir& dir, bool checkpoint_halfway) {
  std::unique_ptr<Env> env;
  Options options;
  options.checkpoint_period_ms = 0;
  ASSERT_TRUE(Env::Open(dir.Sub("env"), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(table->Put(nullptr, Key(i), "v").ok());
    if (checkpoint_halfway && i == kRows / 2) {
      ASSERT_TRUE(env->Checkpoint().ok());
    }
  }
  fs::copy(dir.Sub("env"), dir.Sub("crashed"));
  fs::remove(dir.Sub("crashed") + "/LOCK");
}

// Opens a copy of dir/crashed whose log files were `damage`d ("none", "deleted", "emptied",
// or "cut" into their header): Corruption naming the log unless "none", and ftverify
// ENV_DIR agrees (exit 1, or 0).
void CheckLogDamage(const ScratchDir& dir, const std::string& damage) {
  SCOPED_TRACE(damage);
  const std::string copy = dir.Sub(damage);
  fs::copy(dir.Sub("crashed"), copy);
  const std::vector<fs::path> logs = Files(copy, ".log");
  ASSERT_FALSE(logs.empty());
  for (const fs::path& log : logs) {
    if (damage == "deleted") fs::remove(log);
    if (damage == "emptied") fs::resize_file(log, 0);
    if (damage == "cut") fs::resize_file(log, 20);
  }
#ifdef FERN_FTVERIFY
  const int status =
      std::system((std::string(FERN_FTVERIFY) + " " + copy + " > /dev/null").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), damage == "none" ? 0 : 1);
#endif
  Status s = OpenAndRead(copy);
  if (damage == "none") {
    EXPECT_TRUE(s.ok()) << s.ToString();
  } else {
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.ToString().find("log"), std::string::npos) << s.ToString();
  }
}

// Rows written after the last checkpoint live only in the log: an Env copied while open (as
// a kill -9 leaves it) whose log is then deleted or emptied has lost them, and says so.
TEST(LogLossTest, DeletedOrEmptiedLogIsCorruption) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(WriteAndCopyAsCrashed(dir, /*checkpoint_halfway=*/true));
  for (const char* damage : {"none", "deleted", "emptied"}) {
    ASSERT_NO_FATAL_FAILURE(CheckLogDamage(dir, damage));
  }
}

// Tables created in a new Env have checkpoints that hold nothing of the log, and their rows
// live only there until the first checkpoint: a log deleted, emptied or cut into its header
// then (a kill -9 first) is Corruption, not empty tables.
TEST(LogLossTest, LogLostBeforeTheFirstCheckpointIsCorruption) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(WriteAndCopyAsCrashed(dir, /*checkpoint_halfway=*/false));
  ASSERT_EQ(Files(dir.Sub("crashed"), ".log").size(), 1u);
  for (const char* damage : {"none", "deleted", "emptied", "cut"}) {
    ASSERT_NO_FATAL_FAILURE(CheckLogDamage(dir, damage));
  }
}

// A table the Env does not open in a session takes no part in its checkpoints, so its
// header stays behind the log the catalog keeps while other tables move it on (it has no
// records there): reopening it later is clean.
TEST(LogLossTest, TablesLeftUnopenedReopenCleanlyAfterTheLogMovedOn) {
  ScratchDir dir;
  Options options;
  options.sync_commits = false;
  for (int round = 0; round < 4; ++round) {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok()) << "round " << round;
    Table* table;
    ASSERT_TRUE(env->OpenTable(round == 0 ? "idle" : "busy", TableOptions(), &table).ok());
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(table->Put(nullptr, Key(round * 100 + i), "v").ok());
    }
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* idle;
  ASSERT_TRUE(env->OpenTable("idle", TableOptions(), &idle).ok());
  std::string value;
  EXPECT_TRUE(idle->Get(nullptr, Key(0), &value).ok());
}

// Damaging the header slot that holds a table's newest header is Corruption naming it,
// never a silent fall back to the older header (whose checkpoint misses the rows since,
// and the log that held them was trimmed); damaging the other slot loses nothing.
TEST(LogLossTest, DamagedNewestHeaderIsCorruption) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeEnv(dir.Sub("env")));
  int corrupt = 0;
  int clean = 0;
  for (uint64_t slot : {0, 1}) {
    SCOPED_TRACE(slot);
    const std::string copy = dir.Sub("slot" + std::to_string(slot));
    fs::copy(dir.Sub("env"), copy);
    const std::vector<fs::path> tables = Files(copy, ".ft");
    ASSERT_EQ(tables.size(), 1u);
    Overwrite(tables[0], slot * 4096 + 16, 64);
    Status s = OpenAndRead(copy);
    if (s.ok()) {
      ++clean;
    } else {
      EXPECT_TRUE(s.IsCorruption()) << s.ToString();
      EXPECT_NE(s.ToString().find("newest header is damaged"), std::string::npos) << s.ToString();
      ++corrupt;
    }
  }
  EXPECT_EQ(corrupt, 1);
  EXPECT_EQ(clean, 1);
}

// A log whose older files are gone, though the catalog says replay starts in them.
TEST(LogLossTest, MissingOlderLogFilesAreCorruption) {
  ScratchDir dir;
  const std::string env_dir = dir.Sub("env");
  {
    std::unique_ptr<Env> env;
    Options options;
    options.sync_commits = false;
    options.checkpoint_period_ms = 0;
    ASSERT_TRUE(Env::Open(env_dir, options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    // A live transaction pins the log from its begin record on, across a checkpoint and the
    // files the log starts after it.
    std::unique_ptr<Txn> txn;
    ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
    ASSERT_TRUE(table->Put(txn.get(), "pinned", "v").ok());
    const std::string value(20000, 'v');
    for (int i = 0; i < 12000; ++i) ASSERT_TRUE(table->Put(nullptr, Key(i), value).ok());
    ASSERT_TRUE(env->Checkpoint().ok());
    ASSERT_GE(Files(env_dir, ".log").size(), 2u);
    // Left as a crash would leave it: copied while open.
    fs::copy(env_dir, dir.Sub("copy"));
    ASSERT_TRUE(txn->Commit().ok());
  }
  std::vector<fs::path> logs = Files(dir.Sub("copy"), ".log");
  std::sort(logs.begin(), logs.end());
  fs::remove(dir.Sub("copy") + "/LOCK");
  fs::remove(logs.front());
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.Sub("copy"), Options(), &env);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

}  // namespace
}  // namespace fern
