// Update and UpdateAll messages need Options::update_function wherever they are applied:
// in recovery's replay, in a flush into a leaf, in a read that merges buffered messages.
// An Env opened without it must refuse to apply them, clearly, and keep them: opened with
// the function again, every acknowledged update is there. A recovery that fails this way
// (or any other) must leave the Env as it found it, so the next open replays the same log.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

std::optional<std::string> Append(std::string_view, const std::string_view* old,
                                  std::string_view extra) {
  return (old != nullptr ? std::string(*old) : std::string()) + std::string(extra);
}

Options WithFunction(bool with) {
  Options options;
  if (with) options.update_function = Append;
  return options;
}

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%06d", i);
  return buf;
}

bool MentionsTheFunction(const Status& s) {
  return s.IsInvalidArgument() && s.ToString().find("update_function") != std::string::npos;
}

TEST(UpdateFunctionTest, LoggedUpdatesWaitForTheFunctionThroughFailedOpens) {
  testing::ScratchDir dir;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), WithFunction(true), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
  }
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Synced autocommits, then a crash: no close, no checkpoint after them.
    Options options = WithFunction(true);
    options.checkpoint_period_ms = 0;
    std::unique_ptr<Env> env;
    if (!Env::Open(dir.path(), options, &env).ok()) ::_exit(3);
    Table* table;
    if (!env->OpenTable("t", TableOptions(), &table).ok()) ::_exit(4);
    if (!table->Update(nullptr, "b", "logged").ok()) ::_exit(5);
    if (!table->UpdateAll(nullptr, "+all").ok()) ::_exit(6);
    ::_exit(0);
  }
  int status;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  // Twice: the first failed recovery must not have moved the Env past those records.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Env> env;
    Status s = Env::Open(dir.path(), WithFunction(false), &env);
    EXPECT_TRUE(MentionsTheFunction(s)) << "attempt " << attempt << ": " << s.ToString();
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), WithFunction(true), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::string value;
  ASSERT_TRUE(table->Get(nullptr, "a", &value).ok());
  EXPECT_EQ(value, "1+all");
  ASSERT_TRUE(table->Get(nullptr, "b", &value).ok());
  EXPECT_EQ(value, "logged+all");
}

TEST(UpdateFunctionTest, BufferedUpdatesAreRefusedNotDroppedWithoutTheFunction) {
  testing::ScratchDir dir;
  constexpr int kRows = 20000;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), WithFunction(true), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    for (int i = 0; i < kRows; ++i) ASSERT_TRUE(table->Put(nullptr, Key(i), "v").ok());
    ASSERT_TRUE(table->Optimize().ok());
    // Both stay buffered above the leaves through the close's checkpoint.
    ASSERT_TRUE(table->UpdateAll(nullptr, "+all").ok());
    ASSERT_TRUE(table->Update(nullptr, Key(100), "+one").ok());
  }
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), WithFunction(false), &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
    std::string value;
    Status s = table->Get(nullptr, Key(200), &value);
    EXPECT_TRUE(MentionsTheFunction(s)) << s.ToString();
    std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
    cursor->SeekToFirst();
    EXPECT_FALSE(cursor->Valid());
    EXPECT_TRUE(MentionsTheFunction(cursor->status())) << cursor->status().ToString();
    cursor.reset();
    s = table->Optimize();  // would flush the updates into the leaves
    EXPECT_TRUE(MentionsTheFunction(s)) << s.ToString();
  }
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), WithFunction(true), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
  ASSERT_TRUE(table->Optimize().ok());
  std::string value;
  for (int i = 0; i < kRows; i += 97) {
    ASSERT_TRUE(table->Get(nullptr, Key(i), &value).ok()) << i;
    EXPECT_EQ(value, i == 100 ? "v+all+one" : "v+all") << i;
  }
  ASSERT_TRUE(table->Get(nullptr, Key(100), &value).ok());
  EXPECT_EQ(value, "v+all+one");
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

// Inverts the bits of the byte at `offset` of `path`.
void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(file.good()) << path;
  file.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  file.read(&byte, 1);
  byte = static_cast<char>(~byte);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(&byte, 1);
  ASSERT_TRUE(file.good()) << path;
}

// Damage in the middle of the log fails recovery with Corruption, and keeps failing it: the
// failed open must not checkpoint what it had replayed, which would make the next open skip
// the damaged record and every one after it.
TEST(FailedRecoveryTest, ACorruptLogRecordFailsEveryOpenAlike) {
  testing::ScratchDir dir;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Options options;
    options.checkpoint_period_ms = 0;
    std::unique_ptr<Env> env;
    if (!Env::Open(dir.path(), options, &env).ok()) ::_exit(3);
    Table* table;
    if (!env->OpenTable("t", TableOptions(), &table).ok()) ::_exit(4);
    for (int i = 0; i < 2000; ++i) {
      const std::string value(100, static_cast<char>('a' + i % 26));
      if (!table->Put(nullptr, Key(i), value).ok()) ::_exit(5);
    }
    ::_exit(0);
  }
  int status;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::string log;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().extension() == ".log" &&
        (log.empty() ||
         std::filesystem::file_size(entry.path()) > std::filesystem::file_size(log))) {
      log = entry.path().string();
    }
  }
  ASSERT_FALSE(log.empty());
  // The file is preallocated with zeros past its records: damage the middle of the records.
  std::ifstream in(log, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t written = bytes.find_last_not_of('\0') + 1;
  ASSERT_GT(written, 100000u);
  ASSERT_NO_FATAL_FAILURE(FlipByte(log, written / 2));
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Env> env;
    Status s = Env::Open(dir.path(), Options(), &env);
    EXPECT_TRUE(s.IsCorruption()) << "attempt " << attempt << ": " << s.ToString();
  }
}

}  // namespace
}  // namespace fern
