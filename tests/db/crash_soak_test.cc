// The crash soak (label "soak", not in the default run): 500 kills in each mode.
#include "db/crash_harness.h"
#include "test_util.h"

namespace fern {
namespace {

TEST(CrashSoak, SyncedCommitsSurvive500Kills) {
  testing::ScratchDir dir;
  testing::RunCrashRounds(dir.Sub("env"), /*sync=*/true, /*kills=*/500, /*seed=*/11);
}

TEST(CrashSoak, UnsyncedCommitsRecoverToAPrefixOver500Kills) {
  testing::ScratchDir dir;
  testing::RunCrashRounds(dir.Sub("env"), /*sync=*/false, /*kills=*/500, /*seed=*/12);
}

}  // namespace
}  // namespace fern
