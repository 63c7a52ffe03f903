// Crash tests in the default run: 20 kills with synced commits, 20 without.
#include "db/crash_harness.h"
#include "test_util.h"

namespace fern {
namespace {

TEST(CrashTest, SyncedCommitsSurviveKill9) {
  testing::ScratchDir dir;
  testing::RunCrashRounds(dir.Sub("env"), /*sync=*/true, /*kills=*/20, /*seed=*/1);
}

TEST(CrashTest, UnsyncedCommitsRecoverToAPrefix) {
  testing::ScratchDir dir;
  testing::RunCrashRounds(dir.Sub("env"), /*sync=*/false, /*kills=*/20, /*seed=*/2);
}

}  // namespace
}  // namespace fern
