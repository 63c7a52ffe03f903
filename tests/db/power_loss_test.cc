// Power loss: the crash rounds of crash_harness.h with every kill also taking back what no
// sync made durable (power_loss.h), and checks that the model itself takes back exactly that.
#include "db/power_loss.h"

#include <filesystem>
#include <memory>
#include <string>

#include "db/crash_harness.h"
#include "db/mixed_power_loss.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/file.h"

namespace fern {
namespace {

using testing::PowerLossRecorder;
using testing::ScratchDir;
using testing::UndoUnsynced;
namespace fs = std::filesystem;

std::string Contents(const std::string& path) {
  std::string contents;
  EXPECT_TRUE(ReadFileToString(path, &contents).ok()) << path;
  return contents;
}

// Records, in the current process, the changes `work` makes in `dir`, then undoes the
// unsynced ones; returns how many it undid.
template <typename Work>
int RecordAndUndo(const ScratchDir& dir, Work work) {
  const std::string journal = dir.Sub("journal");
  PowerLossRecorder recorder(journal, dir.path());
  EXPECT_TRUE(recorder.ok());
  SetFaultInjector(&recorder);
  work();
  SetFaultInjector(nullptr);
  return UndoUnsynced(journal);
}

void WriteFile(const std::string& path, std::string_view data, bool sync) {
  std::unique_ptr<File> file;
  ASSERT_TRUE(File::Open(path, File::Mode::kCreateTruncate, &file).ok());
  ASSERT_TRUE(file->Write(0, data).ok());
  if (sync) {
    ASSERT_TRUE(file->Sync().ok());
  }
}

// Directory `d` holding a file "f" of "0123456789", both durable.
void MakeSyncedFile(const std::string& d) {
  ASSERT_TRUE(CreateDirIfMissing(d).ok());
  WriteFile(d + "/f", "0123456789", /*sync=*/true);
  ASSERT_TRUE(SyncDir(d).ok());
}

TEST(PowerLossModelTest, KeepsSyncedWritesAndTakesBackTheRest) {
  ScratchDir dir;
  const std::string d = dir.Sub("d");
  ASSERT_NO_FATAL_FAILURE(MakeSyncedFile(d));
  RecordAndUndo(dir, [&] {
    std::unique_ptr<File> file;
    ASSERT_TRUE(File::Open(d + "/f", File::Mode::kReadWrite, &file).ok());
    ASSERT_TRUE(file->Write(2, "ab").ok());
    ASSERT_TRUE(file->Sync().ok());
    ASSERT_TRUE(file->Write(5, "cd").ok());     // lost
    ASSERT_TRUE(file->Write(10, "tail").ok());  // lost, with the size it added
  });
  EXPECT_EQ(Contents(d + "/f"), "01ab456789");
}

// A write still in flight when a sync of its file began (another thread's) is not made
// durable by that sync.
TEST(PowerLossModelTest, ASyncThatBeganBeforeAWriteCompletedDoesNotCoverIt) {
  ScratchDir dir;
  const std::string d = dir.Sub("d");
  ASSERT_NO_FATAL_FAILURE(MakeSyncedFile(d));
  const std::string journal = dir.Sub("journal");
  PowerLossRecorder recorder(journal, dir.path());
  ASSERT_TRUE(recorder.ok());
  size_t size = 2;
  ASSERT_TRUE(recorder.BeforeWrite(d + "/f", 4, &size).ok());
  ASSERT_TRUE(recorder.BeforeSync(d + "/f").ok());  // the other thread's sync begins
  {
    std::unique_ptr<File> file;  // the write itself, not recorded again
    ASSERT_TRUE(File::Open(d + "/f", File::Mode::kReadWrite, &file).ok());
    ASSERT_TRUE(file->Write(4, "xy").ok());
  }
  recorder.AfterWrite(d + "/f", 4, 2);
  recorder.AfterSync(d + "/f");
  EXPECT_EQ(UndoUnsynced(journal), 1);
  EXPECT_EQ(Contents(d + "/f"), "0123456789");
}

TEST(PowerLossModelTest, TakesBackResizesUntilSynced) {
  ScratchDir dir;
  const std::string d = dir.Sub("d");
  ASSERT_TRUE(CreateDirIfMissing(d).ok());
  WriteFile(d + "/f", "0123456789", /*sync=*/true);
  WriteFile(d + "/g", "abcdef", /*sync=*/true);
  ASSERT_TRUE(SyncDir(d).ok());
  RecordAndUndo(dir, [&] {
    std::unique_ptr<File> f;
    ASSERT_TRUE(File::Open(d + "/f", File::Mode::kReadWrite, &f).ok());
    ASSERT_TRUE(f->Truncate(4).ok());
    std::unique_ptr<File> g;
    ASSERT_TRUE(File::Open(d + "/g", File::Mode::kReadWrite, &g).ok());
    ASSERT_TRUE(g->Truncate(3).ok());
    ASSERT_TRUE(g->Sync().ok());
  });
  EXPECT_EQ(Contents(d + "/f"), "0123456789");
  EXPECT_EQ(Contents(d + "/g"), "abc");
}

TEST(PowerLossModelTest, NamesNeedTheDirectorySynced) {
  ScratchDir dir;
  const std::string d = dir.Sub("d");
  ASSERT_TRUE(CreateDirIfMissing(d).ok());
  WriteFile(d + "/old", "old contents", /*sync=*/true);
  WriteFile(d + "/gone", "removed", /*sync=*/true);
  ASSERT_TRUE(SyncDir(d).ok());
  const int undone = RecordAndUndo(dir, [&] {
    WriteFile(d + "/new", "synced data, unsynced name", /*sync=*/true);
    WriteFile(d + "/old.tmp", "replacement", /*sync=*/true);
    ASSERT_TRUE(RenameFile(d + "/old.tmp", d + "/old").ok());
    ASSERT_TRUE(RemoveFile(d + "/gone").ok());
  });
  EXPECT_EQ(undone, 4);  // two creations, the rename, the removal
  EXPECT_FALSE(fs::exists(d + "/new"));
  EXPECT_FALSE(fs::exists(d + "/old.tmp"));
  EXPECT_EQ(Contents(d + "/old"), "old contents");
  EXPECT_EQ(Contents(d + "/gone"), "removed");
}

TEST(PowerLossModelTest, KeepsWhatTheDirectorySyncMadeDurable) {
  ScratchDir dir;
  const std::string d = dir.Sub("d");
  ASSERT_TRUE(CreateDirIfMissing(d).ok());
  WriteFile(d + "/old", "old contents", /*sync=*/true);
  ASSERT_TRUE(SyncDir(d).ok());
  RecordAndUndo(dir, [&] {
    ASSERT_TRUE(WriteFileAtomically(d + "/old", "replacement").ok());
    WriteFile(d + "/later", "unsynced name", /*sync=*/true);
  });
  EXPECT_EQ(Contents(d + "/old"), "replacement");
  EXPECT_FALSE(fs::exists(d + "/later"));
}

TEST(PowerLossModelTest, ANewDirectoryIsSyncedIntoItsParent) {
  ScratchDir dir;
  RecordAndUndo(dir, [&] { ASSERT_TRUE(CreateDirIfMissing(dir.Sub("d")).ok()); });
  EXPECT_TRUE(fs::is_directory(dir.Sub("d")));
}

TEST(PowerLossTest, SyncedCommitsSurvivePowerLoss) {
  ScratchDir dir;
  testing::RunCrashRounds(dir.Sub("env"), /*sync=*/true, /*kills=*/20, /*seed=*/21,
                          /*power_loss=*/true);
}

TEST(PowerLossTest, UnsyncedCommitsRecoverToAPrefixAfterPowerLoss) {
  ScratchDir dir;
  testing::RunCrashRounds(dir.Sub("env"), /*sync=*/false, /*kills=*/20, /*seed=*/22,
                          /*power_loss=*/true);
}

TEST(PowerLossTest, MixedWorkSurvivesPowerLossSynced) {
  ScratchDir dir;
  testing::RunMixedPowerLossRounds(dir.Sub("env"), /*sync=*/true, /*kills=*/15, /*seed=*/23);
}

TEST(PowerLossTest, MixedWorkRecoversToAPrefixAfterPowerLossUnsynced) {
  ScratchDir dir;
  testing::RunMixedPowerLossRounds(dir.Sub("env"), /*sync=*/false, /*kills=*/15, /*seed=*/24);
}

}  // namespace
}  // namespace fern
