#include "ft/row_batch.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

namespace fern {
namespace {

// Leaves the calling thread with no spare, whatever earlier tests kept.
void DropSpare() { RowBatch::TakeSpare().reset(); }

TEST(RowBatchTest, AKeptBatchComesBackEmptyWithItsMemory) {
  DropSpare();
  std::unique_ptr<RowBatch> batch = RowBatch::TakeSpare();
  for (int i = 0; i < 16; ++i) batch->Add("key" + std::to_string(i), std::string(100, 'v'));
  batch->has_upper = true;
  batch->upper = "key99";
  const size_t grown = batch->memory_bytes();
  RowBatch* kept = batch.get();
  RowBatch::KeepSpare(std::move(batch));

  std::unique_ptr<RowBatch> again = RowBatch::TakeSpare();
  EXPECT_EQ(again.get(), kept);
  EXPECT_TRUE(again->empty());
  EXPECT_FALSE(again->has_upper);
  EXPECT_TRUE(again->upper.empty());
  EXPECT_EQ(again->memory_bytes(), grown);
  // Taken: the next cursor on the thread gets a batch of its own.
  std::unique_ptr<RowBatch> other = RowBatch::TakeSpare();
  EXPECT_NE(other.get(), kept);
}

TEST(RowBatchTest, AThreadKeepsOneSpareAndNoneThatGrewLarge) {
  DropSpare();
  std::unique_ptr<RowBatch> big = RowBatch::TakeSpare();
  big->Add("k", std::string(RowBatch::kMaxSpareBytes, 'v'));
  RowBatch::KeepSpare(std::move(big));
  std::unique_ptr<RowBatch> first = RowBatch::TakeSpare();
  EXPECT_LT(first->memory_bytes(), RowBatch::kMaxSpareBytes);  // a new one

  std::unique_ptr<RowBatch> second = RowBatch::TakeSpare();
  RowBatch* kept = first.get();
  RowBatch::KeepSpare(std::move(first));
  RowBatch::KeepSpare(std::move(second));  // the thread has one: freed
  EXPECT_EQ(RowBatch::TakeSpare().get(), kept);
}

TEST(RowBatchTest, SparesBelongToTheirThread) {
  DropSpare();
  std::unique_ptr<RowBatch> batch = RowBatch::TakeSpare();
  RowBatch* kept = batch.get();
  RowBatch::KeepSpare(std::move(batch));
  RowBatch* taken_elsewhere = nullptr;
  std::unique_ptr<RowBatch> elsewhere;
  std::thread([&] {
    elsewhere = RowBatch::TakeSpare();
    taken_elsewhere = elsewhere.get();
  }).join();
  EXPECT_NE(taken_elsewhere, kept);
  EXPECT_EQ(RowBatch::TakeSpare().get(), kept);
}

}  // namespace
}  // namespace fern
