// The power-loss soak (label "soak", not in the default run): 300 power losses in each mode
// of each workload.
#include "db/crash_harness.h"
#include "db/mixed_power_loss.h"
#include "test_util.h"

namespace fern {
namespace {

TEST(PowerLossSoak, SyncedCommitsSurvive300PowerLosses) {
  testing::ScratchDir dir;
  testing::RunCrashRounds(dir.Sub("env"), /*sync=*/true, /*kills=*/300, /*seed=*/31,
                          /*power_loss=*/true);
}

TEST(PowerLossSoak, UnsyncedCommitsRecoverToAPrefixOver300PowerLosses) {
  testing::ScratchDir dir;
  testing::RunCrashRounds(dir.Sub("env"), /*sync=*/false, /*kills=*/300, /*seed=*/32,
                          /*power_loss=*/true);
}

TEST(PowerLossSoak, MixedWorkSurvives300PowerLossesSynced) {
  testing::ScratchDir dir;
  testing::RunMixedPowerLossRounds(dir.Sub("env"), /*sync=*/true, /*kills=*/300, /*seed=*/33);
}

TEST(PowerLossSoak, MixedWorkRecoversToAPrefixOver300PowerLossesUnsynced) {
  testing::ScratchDir dir;
  testing::RunMixedPowerLossRounds(dir.Sub("env"), /*sync=*/false, /*kills=*/300, /*seed=*/34);
}

}  // namespace
}  // namespace fern
