// ftverify ENV_DIR: every table the catalog names is verified, and each file is checked
// against the catalog and the log as Env::Open checks it.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "tools/run_tool.h"

namespace fern {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::ToolResult;

ToolResult Ftverify(const std::string& path) {
  return testing::RunTool(std::string(FERN_FTVERIFY) + " '" + path + "' 2>&1");
}

// An Env with tables "a" (table-1.ft) and "b" (table-2.ft), checkpointed together.
void MakeEnv(const std::string& dir) {
  std::unique_ptr<Env> env;
  Options options;
  options.sync_commits = false;
  ASSERT_TRUE(Env::Open(dir, options, &env).ok());
  Table *a, *b;
  ASSERT_TRUE(env->OpenTable("a", TableOptions(), &a).ok());
  ASSERT_TRUE(env->OpenTable("b", TableOptions(), &b).ok());
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(a->Put(nullptr, "a" + std::to_string(i), std::string(40, 'a')).ok());
    ASSERT_TRUE(b->Put(nullptr, "b" + std::to_string(i), std::string(40, 'b')).ok());
  }
  ASSERT_TRUE(env->Checkpoint().ok());
}

TEST(FtverifyEnvTest, CleanEnvVerifiesEveryTable) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeEnv(dir.path()));
  ToolResult r = Ftverify(dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("table \"a\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("table \"b\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("500 rows"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 tables, 0 problems"), std::string::npos) << r.output;
}

TEST(FtverifyEnvTest, AnotherTablesFileIsAProblem) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeEnv(dir.path()));
  fs::copy_file(dir.Sub("table-1.ft"), dir.Sub("table-2.ft"), fs::copy_options::overwrite_existing);
  ToolResult r = Ftverify(dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("another table's file"), std::string::npos) << r.output;
  // The file alone is a clean table file.
  EXPECT_EQ(Ftverify(dir.Sub("table-2.ft")).exit_code, 0);
}

// The newest header slot damaged: the file alone falls back to the older header (which may
// name a block table since trimmed off the file's end: then the file cannot be opened);
// against the catalog it is a problem either way.
TEST(FtverifyEnvTest, DamagedNewestHeaderIsAProblem) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeEnv(dir.path()));
  int found = 0;
  for (uint64_t slot : {0, 1}) {
    ScratchDir copy;
    fs::copy(dir.path(), copy.path(),
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    {
      std::fstream f(copy.Sub("table-1.ft"), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(slot * 4096 + 16));
      f.write(std::string(64, '\x55').data(), 64);
    }
    ToolResult r = Ftverify(copy.path());
    if (r.exit_code == 1) {
      EXPECT_TRUE(r.output.find("newest header is damaged") != std::string::npos ||
                  r.output.find("cannot open the file") != std::string::npos)
          << r.output;
      ++found;
    } else {
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
  }
  EXPECT_EQ(found, 1);
}

// An older copy of a table file put back in place: clean alone, older than the catalog saw.
TEST(FtverifyEnvTest, OlderCopyOfATableFileIsAProblem) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeEnv(dir.path()));
  ScratchDir saved;
  fs::copy_file(dir.Sub("table-1.ft"), saved.Sub("table-1.ft"));
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    Table* a;
    ASSERT_TRUE(env->OpenTable("a", TableOptions(), &a).ok());
    ASSERT_TRUE(a->Put(nullptr, "later", "row").ok());
  }
  fs::copy_file(saved.Sub("table-1.ft"), dir.Sub("table-1.ft"),
                fs::copy_options::overwrite_existing);
  EXPECT_EQ(Ftverify(dir.Sub("table-1.ft")).exit_code, 0);
  ToolResult r = Ftverify(dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("or the file is an older copy"), std::string::npos) << r.output;
}

TEST(FtverifyEnvTest, MissingLogAndMissingTableFileAreProblems) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeEnv(dir.path()));
  ScratchDir no_log;
  fs::copy(dir.path(), no_log.path(),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  for (const auto& entry : fs::directory_iterator(no_log.path())) {
    if (entry.path().extension() == ".log") fs::remove(entry.path());
  }
  ToolResult r = Ftverify(no_log.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("log files are missing"), std::string::npos) << r.output;

  fs::remove(dir.Sub("table-2.ft"));
  r = Ftverify(dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot open the file"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 problem"), std::string::npos) << r.output;
}

TEST(FtverifyEnvTest, DirectoryThatIsNoEnvCannotBeOpened) {
  ScratchDir dir;
  ToolResult r = Ftverify(dir.path());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("not a Fern Env"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

// An open Env rewrites its files as it checkpoints: the tools refuse it (exit 2, saying
// why) rather than report damage that is not there, and work once it is closed.
TEST(FtverifyEnvTest, ToolsRefuseAnEnvThatIsOpen) {
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeEnv(dir.path()));
  const std::string ftdump = std::string(FERN_FTDUMP) + " '" + dir.Sub("table-1.ft") + "' 2>&1";
  // A symbolic link elsewhere to the file leads to the same Env's lock.
  ScratchDir links;
  fs::create_symlink(dir.Sub("table-1.ft"), links.Sub("link.ft"));
  const std::string ftdump_link = std::string(FERN_FTDUMP) + " '" + links.Sub("link.ft") + "' 2>&1";
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), Options(), &env).ok());
    for (const ToolResult& r :
         {Ftverify(dir.path()), Ftverify(dir.Sub("table-1.ft")), testing::RunTool(ftdump),
          Ftverify(links.Sub("link.ft")), testing::RunTool(ftdump_link)}) {
      EXPECT_EQ(r.exit_code, 2) << r.output;
      EXPECT_NE(r.output.find("the Env is open"), std::string::npos) << r.output;
      EXPECT_NE(r.output.find("inspect a copy"), std::string::npos) << r.output;
    }
  }
  EXPECT_EQ(Ftverify(dir.path()).exit_code, 0);
  EXPECT_EQ(Ftverify(dir.Sub("table-1.ft")).exit_code, 0);
  EXPECT_EQ(testing::RunTool(ftdump).exit_code, 0);
  EXPECT_EQ(Ftverify(links.Sub("link.ft")).exit_code, 0);
  // A table file copied out of its Env directory (no LOCK beside it) is read as it is.
  ScratchDir elsewhere;
  fs::copy_file(dir.Sub("table-1.ft"), elsewhere.Sub("copy.ft"));
  EXPECT_EQ(Ftverify(elsewhere.Sub("copy.ft")).exit_code, 0);
}

// A report that cannot be written (/dev/full fails every write) is exit 2, not a clean 0.
TEST(FtverifyEnvTest, AReportThatCannotBeWrittenIsAnError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(MakeEnv(dir.path()));
  for (const std::string& command :
       {std::string(FERN_FTVERIFY) + " '" + dir.path() + "'",
        std::string(FERN_FTVERIFY) + " '" + dir.Sub("table-1.ft") + "'",
        std::string(FERN_FTDUMP) + " '" + dir.Sub("table-1.ft") + "'",
        std::string(FERN_FTDUMP) + " --json '" + dir.Sub("table-1.ft") + "'"}) {
    SCOPED_TRACE(command);
    ToolResult r = testing::RunTool(command + " 2>&1 >/dev/full");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("cannot write the output"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace fern
