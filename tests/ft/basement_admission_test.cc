// BasementAdmission remembers the misses of the last one to two windows and admits a
// basement on its second miss within them, with few false admissions.
#include "ft/basement_admission.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace fern {
namespace {

uint64_t Id(uint64_t i) { return i * 0x2545F4914F6CDD1Dull + 7; }

TEST(BasementAdmissionTest, AdmitsOnTheSecondMiss) {
  BasementAdmission admission(100);
  EXPECT_FALSE(admission.RecordMiss(Id(1)));
  EXPECT_TRUE(admission.RecordMiss(Id(1)));
  EXPECT_FALSE(admission.RecordMiss(Id(2)));
}

TEST(BasementAdmissionTest, RemembersAWindowOfMissesAndForgetsAfterTwo) {
  constexpr uint64_t kWindow = 1000;
  BasementAdmission admission(kWindow);
  EXPECT_FALSE(admission.RecordMiss(Id(0)));
  // A window's worth of other misses later, the first is still remembered...
  for (uint64_t i = 1; i < kWindow; ++i) admission.RecordMiss(Id(1000000 + i));
  EXPECT_TRUE(admission.RecordMiss(Id(0)));
  // ...and forgotten once two more windows have passed.
  EXPECT_FALSE(admission.RecordMiss(Id(1)));
  for (uint64_t i = 0; i < 2 * kWindow; ++i) admission.RecordMiss(Id(2000000 + i));
  EXPECT_FALSE(admission.RecordMiss(Id(1)));
}

// A window counts units of weight: misses on basements four times the default size fill it
// four times sooner, so the same number of them that a window of single units remembers is
// forgotten.
TEST(BasementAdmissionTest, HeavierMissesFillTheWindowSooner) {
  constexpr uint64_t kWindow = 1000;
  BasementAdmission light(kWindow);
  BasementAdmission heavy(kWindow);
  EXPECT_FALSE(light.RecordMiss(Id(0), 1));
  EXPECT_FALSE(heavy.RecordMiss(Id(0), 4));
  // A window of single units; four windows of weight 4.
  for (uint64_t i = 1; i < kWindow; ++i) {
    light.RecordMiss(Id(1000000 + i), 1);
    heavy.RecordMiss(Id(1000000 + i), 4);
  }
  EXPECT_TRUE(light.RecordMiss(Id(0), 1));
  EXPECT_FALSE(heavy.RecordMiss(Id(0), 4));
  // Within a quarter window of weight 4, a repeat is still admitted.
  EXPECT_FALSE(heavy.RecordMiss(Id(7), 4));
  for (uint64_t i = 0; i < kWindow / 8; ++i) heavy.RecordMiss(Id(2000000 + i), 4);
  EXPECT_TRUE(heavy.RecordMiss(Id(7), 4));
}

TEST(BasementAdmissionTest, FewFirstMissesAreTakenForRepeats) {
  constexpr uint64_t kWindow = 4096;
  BasementAdmission admission(kWindow);
  int admitted = 0;
  constexpr int kMisses = 100000;
  for (int i = 0; i < kMisses; ++i) admitted += admission.RecordMiss(Id(i)) ? 1 : 0;
  // ~10 bits and 3 probes per remembered miss, two windows full: about 1.5% to 3%.
  EXPECT_LT(admitted, kMisses / 20);
}

TEST(BasementAdmissionTest, ATinyWindowStillWorks) {
  BasementAdmission admission(1);
  EXPECT_FALSE(admission.RecordMiss(Id(5)));
  EXPECT_TRUE(admission.RecordMiss(Id(5)));
  EXPECT_FALSE(admission.RecordMiss(Id(6)));
  EXPECT_FALSE(admission.RecordMiss(Id(7)));
  EXPECT_FALSE(admission.RecordMiss(Id(8)));
  EXPECT_FALSE(admission.RecordMiss(Id(5)));
}

}  // namespace
}  // namespace fern
