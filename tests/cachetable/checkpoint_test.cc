// Checkpoint support: pending marks, clones taken by write pins, writes for the checkpoint by
// EndCheckpoint and by eviction, and the begin's exclusion of writes in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "cachetable/cachetable.h"
#include "cachetable/fake_disk.h"

namespace fern {
namespace {

using Lock = Cachetable::Lock;

bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 10000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

class CheckpointTest : public ::testing::Test {
 protected:
  void Open(size_t budget = size_t{1} << 20, bool evictor_thread = true) {
    CachetableOptions options;
    options.budget_bytes = budget;
    options.evictor_thread = evictor_thread;
    table_ = std::make_unique<Cachetable>(options);
    file_ = table_->OpenFile(&disk_);
  }
  void TearDown() override {
    if (table_ == nullptr) return;
    disk_.FailWrites(Status::OK());
    EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/false).ok());
    table_.reset();
  }
  void CloneEverything() {
    disk_.SetCloneRule([](BlockNum) { return false; });
  }
  // Pins `block` for write, sets its data and marks it dirty.
  void Change(BlockNum block, const std::string& data) {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, block, Lock::kWrite, &pin).ok());
    pin.as<FakeValue>()->data = data;
    pin.MarkDirty();
  }
  std::string Read(BlockNum block) {
    PinnedPair pin;
    EXPECT_TRUE(table_->Pin(file_, block, Lock::kRead, &pin).ok());
    return pin.pinned() ? pin.as<FakeValue>()->data : "";
  }
  Status Begin() {
    return table_->BeginCheckpoint(file_, [this] {
      disk_.BeginImage();
      return Status::OK();
    });
  }
  Status End() {
    Status status = table_->EndCheckpoint(file_);
    disk_.EndImage();
    return status;
  }

  FakeDisk disk_{/*base_bytes=*/100};
  std::unique_ptr<Cachetable> table_;
  CacheFileId file_ = 0;
};

TEST_F(CheckpointTest, WritePinOfPendingDirtyPairClonesItAndTheCloneKeepsThePrePinContents) {
  Open();
  CloneEverything();
  Gate write_clone;
  disk_.SetBeforeCloneWrite([&](BlockNum) { static_cast<void>(write_clone.Wait()); });
  disk_.Put(1, "v0");
  Change(1, "v1");
  ASSERT_TRUE(Begin().ok());

  Change(1, "v2");  // cloned first
  EXPECT_EQ(disk_.clones_made.load(), 1);
  EXPECT_EQ(table_->stats().clones, 1u);
  Change(1, "v3");  // no longer pending: no second clone
  EXPECT_EQ(disk_.clones_made.load(), 1);
  // The clone's write is held open while the original moved on twice.
  ASSERT_TRUE(Eventually([&] { return disk_.clone_writes.load() == 1; }));
  EXPECT_EQ(disk_.ImageOf(1), "v0");
  write_clone.Open();

  ASSERT_TRUE(End().ok());
  EXPECT_EQ(disk_.ImageOf(1), "v1");
  EXPECT_EQ(disk_.checkpoint_writes.load(), 0);
  EXPECT_EQ(table_->stats().checkpoint_pairs_written, 1u);
  // The original stayed dirty, for the next checkpoint.
  EXPECT_EQ(Read(1), "v3");
  ASSERT_TRUE(table_->WriteDirty(file_).ok());
  EXPECT_EQ(disk_.Get(1), "v3");
  EXPECT_EQ(disk_.PlainWritesOf(1), 1);
}

TEST_F(CheckpointTest, EndCheckpointWritesThePendingDirtyPairsLeft) {
  Open();
  CloneEverything();
  for (int i = 0; i < 5; ++i) disk_.Put(i, StrCat("c", i));
  for (int i = 0; i < 3; ++i) Change(i, StrCat("d", i));
  EXPECT_EQ(Read(3), "c3");
  EXPECT_EQ(Read(4), "c4");
  ASSERT_TRUE(Begin().ok());
  Change(3, "d3");  // clean when the checkpoint began: nothing to clone
  EXPECT_EQ(disk_.clones_made.load(), 0);

  ASSERT_TRUE(End().ok());
  EXPECT_EQ(disk_.checkpoint_writes.load(), 3);
  const auto image = disk_.Image();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(image.at(i), StrCat("d", i));
  EXPECT_EQ(image.at(3), "c3");
  EXPECT_EQ(image.at(4), "c4");
  EXPECT_EQ(table_->stats().checkpoint_pairs_written, 3u);
  // Only the pair changed after the begin is still dirty.
  ASSERT_TRUE(table_->WriteDirty(file_).ok());
  EXPECT_EQ(disk_.writes.load(), 1);
  EXPECT_EQ(disk_.PlainWritesOf(3), 1);
}

TEST_F(CheckpointTest, OwnerThatCannotCloneGetsThePairWrittenBeforeThePinIsGranted) {
  Open();  // the fake declines to clone by default
  disk_.Put(5, "old");
  Change(5, "before");
  ASSERT_TRUE(Begin().ok());
  {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, 5, Lock::kWrite, &pin).ok());
    EXPECT_EQ(disk_.checkpoint_writes.load(), 1);
    EXPECT_EQ(disk_.ImageOf(5), "before");
    pin.as<FakeValue>()->data = "after";
    pin.MarkDirty();
  }
  ASSERT_TRUE(End().ok());
  EXPECT_EQ(disk_.checkpoint_writes.load(), 1);
  EXPECT_EQ(disk_.ImageOf(5), "before");
  EXPECT_EQ(table_->stats().clones, 0u);
  ASSERT_TRUE(table_->WriteDirty(file_).ok());
  EXPECT_EQ(disk_.Get(5), "after");
}

TEST_F(CheckpointTest, EvictionOfPendingDirtyPairGoesThroughWriteBlockForCheckpoint) {
  // Synchronous eviction, room for about two pairs.
  Open(/*budget=*/2 * 105, /*evictor_thread=*/false);
  disk_.Put(0, "zero");
  Change(0, "zero!");
  ASSERT_TRUE(Begin().ok());
  for (int i = 1; i < 8 && table_->IsCached(file_, 0); ++i) {
    PinnedPair pin;
    table_->PinNew(file_, i, disk_.NewValue(StrCat("new", i)), &pin);
  }
  ASSERT_FALSE(table_->IsCached(file_, 0));
  EXPECT_EQ(disk_.checkpoint_writes.load(), 1);
  EXPECT_EQ(disk_.PlainWritesOf(0), 0);
  EXPECT_EQ(disk_.ImageOf(0), "zero!");
  EXPECT_EQ(disk_.Get(0), "zero!");
  ASSERT_TRUE(End().ok());
  EXPECT_EQ(disk_.checkpoint_writes.load(), 1);
  EXPECT_EQ(table_->stats().checkpoint_pairs_written, 1u);
  EXPECT_EQ(Read(0), "zero!");
}

TEST_F(CheckpointTest, BeginWaitsForWritesInFlightAndRunsTheOwnerBeginInside) {
  Open();
  disk_.Put(0, "old");
  Change(0, "new");
  Gate write_started, finish_write;
  disk_.SetBeforeWrite([&](BlockNum) {
    write_started.Open();
    static_cast<void>(finish_write.Wait());
  });
  std::thread writer([&] { EXPECT_TRUE(table_->WriteDirty(file_).ok()); });
  ASSERT_TRUE(write_started.Wait());
  std::atomic<bool> owner_began{false};
  std::thread beginner([&] {
    EXPECT_TRUE(table_
                    ->BeginCheckpoint(file_,
                                      [&] {
                                        owner_began = true;
                                        disk_.BeginImage();
                                        return Status::OK();
                                      })
                    .ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(owner_began.load()) << "the begin did not wait for the write in flight";
  finish_write.Open();
  writer.join();
  beginner.join();
  EXPECT_TRUE(owner_began.load());
  // The write landed before the owner's begin, so the image has it and nothing is left.
  EXPECT_EQ(disk_.ImageOf(0), "new");
  ASSERT_TRUE(End().ok());
  EXPECT_EQ(disk_.checkpoint_writes.load(), 0);
}

TEST_F(CheckpointTest, MisuseIsInvalidArgument) {
  Open();
  disk_.Put(0, "a");
  Change(0, "b");
  EXPECT_TRUE(table_->EndCheckpoint(file_).IsInvalidArgument());
  EXPECT_TRUE(table_->BeginCheckpoint(file_ + 7).IsInvalidArgument());
  // A failed owner begin marks nothing.
  EXPECT_TRUE(table_->BeginCheckpoint(file_, [] { return Status::IOError("no"); }).IsIOError());
  EXPECT_TRUE(table_->EndCheckpoint(file_).IsInvalidArgument());
  Change(0, "c");
  EXPECT_EQ(disk_.checkpoint_writes.load(), 0);

  ASSERT_TRUE(table_->BeginCheckpoint(file_).ok());
  EXPECT_TRUE(table_->BeginCheckpoint(file_).IsInvalidArgument());
  EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/true).IsInvalidArgument());
  ASSERT_TRUE(table_->EndCheckpoint(file_).ok());
  EXPECT_EQ(disk_.checkpoint_writes.load(), 1);
}

TEST_F(CheckpointTest, FailedCloneWriteFailsTheCheckpointAndThePairStaysDirty) {
  Open();
  CloneEverything();
  disk_.Put(0, "a");
  Change(0, "b");
  disk_.FailCloneWrites(Status::IOError("clone write failed"));
  ASSERT_TRUE(Begin().ok());
  Change(0, "c");
  EXPECT_TRUE(End().IsIOError());
  EXPECT_EQ(table_->stats().checkpoint_pairs_written, 0u);
  disk_.FailCloneWrites(Status::OK());
  // The next checkpoint takes the pair as it is now.
  ASSERT_TRUE(Begin().ok());
  ASSERT_TRUE(End().ok());
  EXPECT_EQ(disk_.ImageOf(0), "c");
  EXPECT_EQ(disk_.checkpoint_writes.load(), 1);
}

// For a close: EndCheckpoint with drop_written writes the pending dirty pairs as always and
// leaves none of the file's pairs cached, clean ones included, but a pair whose write failed,
// which stays dirty for the next checkpoint.
TEST_F(CheckpointTest, EndCheckpointDroppingWrittenPairsKeepsOnlyTheOnesItCouldNotWrite) {
  Open();
  for (int i = 0; i < 6; ++i) disk_.Put(i, StrCat("c", i));
  for (int i = 0; i < 4; ++i) Change(i, StrCat("d", i));
  EXPECT_EQ(Read(4), "c4");
  EXPECT_EQ(Read(5), "c5");
  ASSERT_TRUE(Begin().ok());
  auto failed_once = std::make_shared<std::atomic<bool>>(false);
  disk_.SetBeforeWrite([this, failed_once](BlockNum block) {
    const bool fail = block == 2 && !failed_once->exchange(true);
    disk_.FailWrites(fail ? Status::IOError("bad sector") : Status::OK());
  });
  const Status status = table_->EndCheckpoint(file_, /*drop_written=*/true);
  disk_.EndImage();
  EXPECT_TRUE(status.IsIOError()) << status.ToString();
  for (BlockNum block : {0, 1, 3, 4, 5}) EXPECT_FALSE(table_->IsCached(file_, block)) << block;
  EXPECT_TRUE(table_->IsCached(file_, 2));
  EXPECT_EQ(table_->size_bytes(), 102u);  // the one pair left: the fake's base size and "d2"
  const auto image = disk_.Image();
  for (int i : {0, 1, 3}) EXPECT_EQ(image.at(i), StrCat("d", i));
  EXPECT_EQ(image.at(2), "c2");

  ASSERT_TRUE(Begin().ok());
  ASSERT_TRUE(End().ok());
  EXPECT_EQ(disk_.ImageOf(2), "d2");
  EXPECT_EQ(Read(0), "d0");  // fetched again, as written
}

TEST_F(CheckpointTest, FailedWriteForCheckpointIsReportedByEnd) {
  Open();
  disk_.Put(0, "a");
  Change(0, "b");
  ASSERT_TRUE(Begin().ok());
  disk_.FailWrites(Status::IOError("disk full"));
  EXPECT_TRUE(End().IsIOError());
  disk_.FailWrites(Status::OK());
  ASSERT_TRUE(Begin().ok());
  ASSERT_TRUE(End().ok());
  EXPECT_EQ(disk_.ImageOf(0), "b");
}

}  // namespace
}  // namespace fern
