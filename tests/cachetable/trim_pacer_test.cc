#include "cachetable/trim_pacer.h"

#include <algorithm>
#include <cstdint>

#include "gtest/gtest.h"

namespace fern {
namespace {

constexpr size_t kBudget = size_t{64} << 20;
constexpr size_t kSlack = size_t{32} << 20;

TEST(TrimPacerTest, DueEarlyAfterASixteenthAndFullyAfterAQuarterOfTheBudget) {
  TrimPacer pacer(kBudget, kSlack);
  EXPECT_EQ(pacer.due(), TrimPacer::Due::kNo);
  pacer.AddEvicted(kBudget / 16 - 1);
  EXPECT_EQ(pacer.due(), TrimPacer::Due::kNo);
  pacer.AddEvicted(1);
  EXPECT_EQ(pacer.due(), TrimPacer::Due::kEarly);
  pacer.AddEvicted(kBudget / 4);
  EXPECT_EQ(pacer.due(), TrimPacer::Due::kFull);
  pacer.Trimmed(kSlack / 2);
  EXPECT_EQ(pacer.due(), TrimPacer::Due::kNo);
  EXPECT_EQ(pacer.scale(), 1u);
}

TEST(TrimPacerTest, TrimsThatGiveBackLittleBackOffUntilOneGivesBackMore) {
  TrimPacer pacer(kBudget, kSlack);
  uint64_t expected = 1;
  for (int i = 0; i < 10; ++i) {
    pacer.AddEvicted(kBudget / 16 * pacer.scale() - 1);
    EXPECT_EQ(pacer.due(), TrimPacer::Due::kNo) << i;
    pacer.AddEvicted(1);
    ASSERT_NE(pacer.due(), TrimPacer::Due::kNo) << i;
    pacer.Trimmed(kSlack / 8 - 1);  // gave back next to nothing
    expected = std::min<uint64_t>(expected * 2, TrimPacer::kMaxScale);
    EXPECT_EQ(pacer.scale(), expected) << i;
  }
  EXPECT_EQ(pacer.scale(), TrimPacer::kMaxScale);
  pacer.Trimmed(kSlack / 8);
  EXPECT_EQ(pacer.scale(), 1u);
}

TEST(TrimPacerTest, AFullDueTrimNotNeededStartsTheCountAgainAndAnEarlyOneDoesNot) {
  TrimPacer pacer(kBudget, kSlack);
  pacer.AddEvicted(kBudget / 16);
  pacer.NotNeeded(pacer.due());
  EXPECT_EQ(pacer.due(), TrimPacer::Due::kEarly);
  pacer.AddEvicted(kBudget / 4);
  pacer.NotNeeded(pacer.due());
  EXPECT_EQ(pacer.due(), TrimPacer::Due::kNo);
  EXPECT_EQ(pacer.scale(), 1u);
}

TEST(TrimPacerTest, QuietRunsAreDueEachRunUntilTrimsGiveBackLittle) {
  TrimPacer pacer(kBudget, kSlack);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(pacer.QuietRunDue()) << i;
  pacer.Trimmed(kSlack / 8 - 1);
  pacer.Trimmed(kSlack / 8 - 1);
  ASSERT_EQ(pacer.scale(), 4u);
  // One run in four now.
  int due = 0;
  for (int i = 0; i < 16; ++i) due += pacer.QuietRunDue() ? 1 : 0;
  EXPECT_EQ(due, 4);
  pacer.Trimmed(kSlack);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(pacer.QuietRunDue()) << i;
}

}  // namespace
}  // namespace fern
