#include "txn/deadlock_detector.h"

#include <vector>

#include "gtest/gtest.h"

namespace fern {
namespace {

bool Set(DeadlockDetector* d, TxnId waiter, std::vector<TxnId> holders) {
  return d->SetWaits(waiter, holders);
}

TEST(DeadlockDetectorTest, ChainWithoutCycleIsAccepted) {
  DeadlockDetector d;
  EXPECT_TRUE(Set(&d, 1, {2}));
  EXPECT_TRUE(Set(&d, 2, {3}));
  EXPECT_TRUE(Set(&d, 3, {4}));
  EXPECT_EQ(d.waiter_count(), 3u);
  EXPECT_TRUE(d.WaitsFor(2, 3));
}

TEST(DeadlockDetectorTest, TwoWayCycleIsRefusedAndLeavesNoEdges) {
  DeadlockDetector d;
  EXPECT_TRUE(Set(&d, 1, {2}));
  EXPECT_FALSE(Set(&d, 2, {1}));
  EXPECT_FALSE(d.WaitsFor(2, 1));
  EXPECT_EQ(d.waiter_count(), 1u);
}

TEST(DeadlockDetectorTest, LongCycleThroughOneOfSeveralHoldersIsRefused) {
  DeadlockDetector d;
  EXPECT_TRUE(Set(&d, 1, {2, 5}));
  EXPECT_TRUE(Set(&d, 2, {3}));
  EXPECT_TRUE(Set(&d, 3, {4}));
  EXPECT_FALSE(Set(&d, 4, {6, 1}));
  EXPECT_TRUE(Set(&d, 4, {6}));
}

TEST(DeadlockDetectorTest, DiamondIsNotACycle) {
  DeadlockDetector d;
  EXPECT_TRUE(Set(&d, 1, {2, 3}));
  EXPECT_TRUE(Set(&d, 2, {4}));
  EXPECT_TRUE(Set(&d, 3, {4}));
  EXPECT_TRUE(Set(&d, 5, {1}));
}

TEST(DeadlockDetectorTest, SetWaitsReplacesEarlierEdges) {
  DeadlockDetector d;
  EXPECT_TRUE(Set(&d, 1, {2}));
  EXPECT_TRUE(Set(&d, 1, {3}));
  EXPECT_FALSE(d.WaitsFor(1, 2));
  EXPECT_TRUE(Set(&d, 2, {1}));  // 1 no longer waits for 2
  EXPECT_TRUE(Set(&d, 1, {}));
  EXPECT_EQ(d.waiter_count(), 1u);
}

TEST(DeadlockDetectorTest, AddedAndRemovedEdgesCountForCycles) {
  DeadlockDetector d;
  EXPECT_TRUE(Set(&d, 1, {2}));
  d.AddWait(1, 3);
  EXPECT_FALSE(Set(&d, 3, {1}));
  d.RemoveWait(1, 3);
  EXPECT_TRUE(Set(&d, 3, {1}));
  d.RemoveWait(1, 2);
  EXPECT_FALSE(d.WaitsFor(1, 2));
  d.ClearWaits(3);
  EXPECT_EQ(d.waiter_count(), 0u);
}

}  // namespace
}  // namespace fern
