#include "cachetable/clock_list.h"

#include <gtest/gtest.h>

namespace fern {
namespace {

TEST(ClockListTest, NewNodesComeLastForTheHandTheyAreInsertedBehind) {
  ClockList list;
  ClockHand hand;
  list.AddHand(&hand);
  EXPECT_EQ(list.Advance(&hand), nullptr);
  ClockNode a, b, c;
  list.InsertBehind(&a, hand);
  list.InsertBehind(&b, hand);
  list.InsertBehind(&c, hand);
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(list.Advance(&hand), &a);
  EXPECT_EQ(list.Advance(&hand), &b);
  EXPECT_EQ(list.Advance(&hand), &c);
  EXPECT_EQ(list.Advance(&hand), &a);
  ClockNode d;
  list.InsertBehind(&d, hand);  // hand is at b: d goes between a and b
  EXPECT_EQ(list.Advance(&hand), &b);
  EXPECT_EQ(list.Advance(&hand), &c);
  EXPECT_EQ(list.Advance(&hand), &a);
  EXPECT_EQ(list.Advance(&hand), &d);
}

TEST(ClockListTest, HandsMoveIndependentlyAndSkipRemovedNodes) {
  ClockList list;
  ClockHand evictor, cleaner;
  list.AddHand(&evictor);
  ClockNode a, b, c;
  list.InsertBehind(&a, evictor);
  list.InsertBehind(&b, evictor);
  list.InsertBehind(&c, evictor);
  list.AddHand(&cleaner);  // a hand added later starts on some node of the list
  ASSERT_NE(cleaner.position(), nullptr);
  EXPECT_EQ(list.Advance(&evictor), &a);
  while (cleaner.position() != &b) list.Advance(&cleaner);
  EXPECT_EQ(evictor.position(), &b);
  list.Remove(&b);
  EXPECT_EQ(evictor.position(), &c);
  EXPECT_EQ(cleaner.position(), &c);
  EXPECT_EQ(b.clock_next, nullptr);
  EXPECT_EQ(list.Advance(&evictor), &c);
  EXPECT_EQ(list.Advance(&evictor), &a);
  EXPECT_EQ(list.Advance(&cleaner), &c);
  EXPECT_EQ(list.size(), 2u);
}

TEST(ClockListTest, RemovingTheLastNodeLeavesEveryHandNowhere) {
  ClockList list;
  ClockHand first, second;
  list.AddHand(&first);
  list.AddHand(&second);
  ClockNode only;
  list.InsertBehind(&only, first);
  EXPECT_EQ(first.position(), &only);
  EXPECT_EQ(second.position(), &only);
  EXPECT_EQ(list.Advance(&first), &only);
  EXPECT_EQ(first.position(), &only);
  list.Remove(&only);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(first.position(), nullptr);
  EXPECT_EQ(second.position(), nullptr);
  EXPECT_EQ(list.Advance(&second), nullptr);
  ClockNode again;
  list.InsertBehind(&again, second);
  EXPECT_EQ(list.Advance(&second), &again);
}

}  // namespace
}  // namespace fern
