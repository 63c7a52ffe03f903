// An Env kept in a static is closed by exit, after the main thread's thread_local objects
// are gone: its final checkpoint still compresses and writes (util/thread_cache.h), the
// process exits cleanly, and the next open finds every row.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;

std::unique_ptr<Env>& StaticEnv() {
  static std::unique_ptr<Env> env;
  return env;
}

std::string Key(int i) { return "key" + std::to_string(i); }

// In a child process: opens the Env into the static, writes and checkpoints from the main
// thread (so its thread keeps codec contexts and read buffers), writes more, and exits with
// the Env open. Exit code 0 unless something failed before exit.
[[noreturn]] void WriteAndExitWithEnvOpen(const std::string& dir) {
  Options options;
  options.sync_commits = false;
  options.checkpoint_period_ms = 0;
  Table* table = nullptr;
  if (!Env::Open(dir, options, &StaticEnv()).ok() ||
      !StaticEnv()->OpenTable("t", TableOptions(), &table).ok()) {
    std::_Exit(2);
  }
  const std::string value(300, 'v');
  for (int i = 0; i < 20000; ++i) {
    if (!table->Put(nullptr, Key(i), value).ok()) std::_Exit(3);
  }
  if (!StaticEnv()->Checkpoint().ok()) std::_Exit(4);
  std::string read;
  for (int i = 0; i < 20000; i += 97) {
    if (!table->Get(nullptr, Key(i), &read).ok()) std::_Exit(5);
  }
  // Dirty nodes for the final checkpoint that exit runs.
  for (int i = 20000; i < 30000; ++i) {
    if (!table->Put(nullptr, Key(i), value).ok()) std::_Exit(6);
  }
  std::exit(0);
}

TEST(EnvExitTest, EnvInAStaticIsClosedCleanlyByExit) {
  ScratchDir dir;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) WriteAndExitWithEnvOpen(dir.path());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died: status " << status;
  ASSERT_EQ(WEXITSTATUS(status), 0);

  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
  int rows = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++rows;
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(rows, 30000);
}

}  // namespace
}  // namespace fern
