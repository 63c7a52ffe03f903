// What a power loss can leave of a log written without fsync: any part of the write-outs
// since the last fdatasync, e.g. a lost write (a hole of zeros) with later write-outs intact.
// The Env then opens with a prefix of the commits, the rows before the hole; a hole in
// records a later sync mark says were durable is Corruption instead (log_format.h).
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "log/log_reader.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;
namespace fs = std::filesystem;

constexpr int kBefore = 2000;  // rows committed before the checkpoint
constexpr int kAfter = 40000;  // unsynced rows after it (~136 bytes of log each): ~5 MiB
// The synced commit comes a quarter of the way in, so ~3.9 MiB of log follow it. The Env's
// log writes behind (LogWriterOptions::write_behind): up to twice its 1 MiB buffer may still
// be in memory when the copy is taken, so at least one whole write-out that began after the
// synced one, and its sync mark, is in the file whatever the writer thread's timing.
constexpr int kSyncedAt = kAfter / 4;

std::string Key(int i) { return "key" + std::to_string(1000000 + i); }

std::string Value(std::mt19937_64* rng) {
  std::string value(100, '\0');
  for (char& c : value) c = static_cast<char>((*rng)());
  return value;
}

// Writes kBefore rows, checkpoints (the log is synced), writes kAfter unsynced rows, of
// which the log holds some write-outs (the writer's buffer fills), then copies the Env while
// it is open: as a crash leaves the files. With `synced_middle`, a synced commit after the
// first kSyncedAt unsynced rows makes everything before it durable.
void MakeCrashedCopy(const std::string& dir, const std::string& copy, bool synced_middle) {
  std::unique_ptr<Env> env;
  Options options;
  options.sync_commits = false;
  options.checkpoint_period_ms = 3600 * 1000;
  ASSERT_TRUE(Env::Open(dir, options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::mt19937_64 rng(11);
  for (int i = 0; i < kBefore; ++i) ASSERT_TRUE(table->Put(nullptr, Key(i), Value(&rng)).ok());
  ASSERT_TRUE(env->Checkpoint().ok());
  for (int i = kBefore; i < kBefore + kAfter; ++i) {
    ASSERT_TRUE(table->Put(nullptr, Key(i), Value(&rng)).ok());
    if (synced_middle && i == kBefore + kSyncedAt) {
      TxnOptions synced;
      synced.sync = true;
      std::unique_ptr<Txn> txn;
      ASSERT_TRUE(env->Begin(synced, &txn).ok());
      ASSERT_TRUE(table->Put(txn.get(), "synced", "row").ok());
      ASSERT_TRUE(txn->Commit().ok());
    }
  }
  fs::copy(dir, copy, fs::copy_options::recursive);
  fs::remove(fs::path(copy) / "LOCK");
}

// Zeroes a 512-byte sector a little after the first record past the checkpoint's end.
void LoseAWriteAfterTheCheckpoint(const std::string& dir) {
  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(dir, &reader).ok());
  ASSERT_TRUE(reader->SeekToFirst().ok());
  bool after_checkpoint = false;
  std::string path;
  uint64_t offset = 0;
  while (reader->Valid()) {
    if (after_checkpoint) {
      path = reader->current_path();
      offset = reader->current_offset();
      break;
    }
    after_checkpoint = reader->record().type == LogRecordType::kEndCheckpoint;
    ASSERT_TRUE(reader->Next().ok());
  }
  ASSERT_FALSE(path.empty()) << "no record after the checkpoint in the log";
  reader.reset();
  const uint64_t sector = (offset / 512 + 8) * 512;
  std::string zeros(512, '\0');
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(sector));
  file.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
}

TEST(TornLogTest, LostWriteInTheUnsyncedTailRecoversAPrefix) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeCrashedCopy(dir.Sub("env"), dir.Sub("copy"), false));
  ASSERT_NO_FATAL_FAILURE(LoseAWriteAfterTheCheckpoint(dir.Sub("copy")));

  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.Sub("copy"), Options(), &env);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::string value;
  for (int i = 0; i < kBefore; ++i) ASSERT_TRUE(table->Get(nullptr, Key(i), &value).ok()) << i;
  // The rows after the checkpoint are a prefix of the commits, cut at the hole.
  int present = 0;
  while (present < kAfter && table->Get(nullptr, Key(kBefore + present), &value).ok()) {
    ++present;
  }
  EXPECT_LT(present, kAfter);
  for (int i = present; i < kAfter; ++i) {
    ASSERT_TRUE(table->Get(nullptr, Key(kBefore + i), &value).IsNotFound()) << i;
  }
  // The Env goes on: new commits after the cut survive a reopen.
  ASSERT_TRUE(table->Put(nullptr, "after", "reopen").ok());
  env.reset();
  ASSERT_TRUE(Env::Open(dir.Sub("copy"), Options(), &env).ok());
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  ASSERT_TRUE(table->Get(nullptr, "after", &value).ok());
  EXPECT_TRUE(table->Get(nullptr, Key(kBefore + present), &value).IsNotFound());
}

TEST(TornLogTest, LostWriteInRecordsASyncMadeDurableIsCorruption) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeCrashedCopy(dir.Sub("env"), dir.Sub("copy"), true));
  ASSERT_NO_FATAL_FAILURE(LoseAWriteAfterTheCheckpoint(dir.Sub("copy")));
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir.Sub("copy"), Options(), &env);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("sync mark says the log was durable"), std::string::npos)
      << s.ToString();
}

}  // namespace
}  // namespace fern
