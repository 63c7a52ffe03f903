#include "cachetable/cachetable.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "cachetable/fake_disk.h"

namespace fern {
namespace {

using Lock = Cachetable::Lock;

// Values are 100 bytes plus their data unless a test says otherwise.
constexpr size_t kBase = 100;

std::string DataOf(const PinnedPair& pin) { return pin.as<FakeValue>()->data; }

// Polls `done` for up to 10 s; true once it holds.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 10000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

class CachetableTest : public ::testing::Test {
 protected:
  // These tests check the sweep itself, so they run without the evictor thread: Unpin
  // evicts synchronously and every effect is visible when it returns.
  void Open(size_t budget, size_t base_bytes = kBase, size_t warm_bytes = 0) {
    disk_ = std::make_unique<FakeDisk>(base_bytes, warm_bytes);
    CachetableOptions options;
    options.budget_bytes = budget;
    options.evictor_thread = false;
    table_ = std::make_unique<Cachetable>(options);
    file_ = table_->OpenFile(disk_.get());
  }
  void TearDown() override {
    if (table_ != nullptr) {
      disk_->FailWrites(Status::OK());
      EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/false).ok());
    }
  }
  // Writes `count` blocks "data-<i>" to the disk.
  void Fill(int count) {
    for (int i = 0; i < count; ++i) disk_->Put(i, StrCat("data-", i));
  }
  void PinAndUnpin(BlockNum block, Lock lock = Lock::kRead) {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, block, lock, &pin).ok());
  }

  std::unique_ptr<FakeDisk> disk_;
  std::unique_ptr<Cachetable> table_;
  CacheFileId file_ = 0;
};

TEST_F(CachetableTest, MissFetchesThenHitDoesNot) {
  Open(1 << 20);
  Fill(1);
  {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, 0, Lock::kRead, &pin).ok());
    EXPECT_TRUE(pin.pinned());
    EXPECT_FALSE(pin.write_locked());
    EXPECT_EQ(pin.block(), 0);
    EXPECT_EQ(DataOf(pin), "data-0");
  }
  PinAndUnpin(0);
  PinAndUnpin(0, Lock::kWrite);
  CachetableStats stats = table_->stats();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.pairs, 1u);
  EXPECT_EQ(stats.size_bytes, kBase + 6);
  EXPECT_EQ(disk_->fetches.load(), 1);
}

TEST_F(CachetableTest, PinNewThenUnpinThenPinIsAHit) {
  Open(1 << 20);
  {
    PinnedPair pin;
    table_->PinNew(file_, 9, disk_->NewValue("fresh"), &pin);
    ASSERT_TRUE(pin.pinned());
    EXPECT_TRUE(pin.write_locked());
  }
  EXPECT_TRUE(table_->IsCached(file_, 9));
  PinnedPair pin;
  ASSERT_TRUE(table_->Pin(file_, 9, Lock::kRead, &pin).ok());
  EXPECT_EQ(DataOf(pin), "fresh");
  EXPECT_EQ(table_->stats().hits, 1u);
  EXPECT_EQ(table_->stats().misses, 0u);
  EXPECT_EQ(disk_->fetches.load(), 0);
}

TEST_F(CachetableTest, UpdateSizeAndUnpinTrackMemory) {
  Open(1 << 20);
  PinnedPair pin;
  table_->PinNew(file_, 1, disk_->NewValue("ab"), &pin);
  EXPECT_EQ(table_->size_bytes(), kBase + 2);
  pin.as<FakeValue>()->data = std::string(50, 'x');
  pin.UpdateSize();
  EXPECT_EQ(table_->size_bytes(), kBase + 50);
  pin.as<FakeValue>()->data = "y";
  pin.Unpin();
  EXPECT_EQ(table_->size_bytes(), kBase + 1);
  EXPECT_EQ(table_->stats().size_bytes, kBase + 1);
}

TEST_F(CachetableTest, AddSizeAccountsForGrowthWithoutReadingTheValue) {
  Open(1 << 20);
  Fill(1);
  PinnedPair pin;
  ASSERT_TRUE(table_->Pin(file_, 0, Lock::kRead, &pin).ok());
  EXPECT_EQ(table_->size_bytes(), kBase + 6);
  FakeValue* value = pin.as<FakeValue>();
  const int reads = value->size_reads.load();
  value->warm_bytes += 40;  // a reader loads a part under its read pin
  pin.AddSize(40);
  EXPECT_EQ(value->size_reads.load(), reads);
  EXPECT_EQ(table_->size_bytes(), kBase + 6 + 40);
  pin.Unpin();  // a read unpin leaves the size as it was told
  EXPECT_EQ(table_->stats().size_bytes, kBase + 6 + 40);
}

TEST_F(CachetableTest, EvictionKeepsSizeWithinBudgetAndDoesNotWriteCleanPairs) {
  const size_t budget = 10 * (kBase + 8);
  Open(budget);
  Fill(200);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 200; ++i) {
      PinAndUnpin(i);
      ASSERT_LE(table_->size_bytes(), budget) << "after block " << i;
    }
  }
  CachetableStats stats = table_->stats();
  EXPECT_LE(stats.pairs, 10u);
  EXPECT_GE(stats.full_evictions, 380u);
  EXPECT_GT(stats.bytes_evicted, 0u);
  EXPECT_EQ(stats.dirty_writes, 0u);
  EXPECT_EQ(disk_->writes.load(), 0);
}

TEST_F(CachetableTest, DirtyPairsAreWrittenBeforeEvictionAndComeBack) {
  const size_t budget = 5 * (kBase + 10);
  Open(budget);
  Fill(20);
  for (int i = 0; i < 20; ++i) {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, i, Lock::kWrite, &pin).ok());
    pin.as<FakeValue>()->data = StrCat("changed-", i);
    pin.MarkDirty();
  }
  for (int i = 20; i < 40; ++i) {
    PinnedPair pin;
    table_->PinNew(file_, i, disk_->NewValue(StrCat("new-", i)), &pin);
  }
  EXPECT_LE(table_->size_bytes(), budget);
  EXPECT_GE(table_->stats().full_evictions, 30u);
  // Every pair that left the cache went to disk first.
  for (int i = 0; i < 40; ++i) {
    if (table_->IsCached(file_, i)) continue;
    EXPECT_EQ(disk_->Get(i), i < 20 ? StrCat("changed-", i) : StrCat("new-", i));
  }
  for (int i = 0; i < 40; ++i) {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, i, Lock::kRead, &pin).ok());
    EXPECT_EQ(DataOf(pin), i < 20 ? StrCat("changed-", i) : StrCat("new-", i));
  }
  EXPECT_EQ(table_->stats().write_errors, 0u);
}

TEST_F(CachetableTest, PartialEvictionDropsWarmPartsOfCleanPairsFirst) {
  // Two values of 50 + 50 warm + 6 data bytes; the budget is 30 bytes short of both.
  Open(2 * 106 - 30, /*base_bytes=*/50, /*warm_bytes=*/50);
  Fill(2);
  PinAndUnpin(0);
  PinAndUnpin(1);
  CachetableStats stats = table_->stats();
  EXPECT_EQ(stats.partial_evictions, 1u);
  EXPECT_EQ(stats.bytes_evicted, 50u);
  EXPECT_EQ(stats.full_evictions, 0u);
  EXPECT_EQ(stats.size_bytes, 106u + 56u);
  EXPECT_EQ(disk_->partial_evicts.load(), 1);
  EXPECT_TRUE(table_->IsCached(file_, 0));
  EXPECT_TRUE(table_->IsCached(file_, 1));
}

TEST_F(CachetableTest, PartialEvictionTakesTheFreedBytesTheOwnerReports) {
  // Three values of 50 + 50 warm + 6 data bytes; the budget is 30 bytes short of all three.
  Open(3 * 106 - 30, /*base_bytes=*/50, /*warm_bytes=*/50);
  disk_->report_freed_bytes = true;
  Fill(3);
  PinAndUnpin(0);
  PinAndUnpin(1);
  auto size_reads = [this] {
    int reads = 0;
    for (BlockNum b : {0, 1}) {
      PinnedPair pin;
      EXPECT_TRUE(table_->Pin(file_, b, Lock::kRead, &pin).ok());
      reads += pin.as<FakeValue>()->size_reads.load();
    }
    return reads;
  };
  const int reads_before = size_reads();
  PinAndUnpin(2);  // over budget: one value loses its warm part
  ASSERT_EQ(disk_->partial_evicts.load(), 1);
  // The new size came from the owner's report, not from a MemoryBytes() call.
  EXPECT_EQ(size_reads(), reads_before);
  CachetableStats stats = table_->stats();
  EXPECT_EQ(stats.bytes_evicted, 50u);
  EXPECT_EQ(stats.size_bytes, 3 * 106u - 50u);
}

TEST_F(CachetableTest, PartialEvictionSkipsDirtyPairs) {
  Open(2 * 106 - 30, /*base_bytes=*/50, /*warm_bytes=*/50);
  Fill(2);
  {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, 0, Lock::kWrite, &pin).ok());
    pin.MarkDirty();
  }
  PinAndUnpin(1);
  // Block 0 is first on the clock but dirty: only block 1 loses its warm part.
  EXPECT_EQ(disk_->partial_evicts.load(), 1);
  EXPECT_EQ(table_->stats().full_evictions, 0u);
  PinnedPair pin;
  ASSERT_TRUE(table_->Pin(file_, 0, Lock::kRead, &pin).ok());
  EXPECT_EQ(pin.as<FakeValue>()->warm_bytes, 50u);
}

TEST_F(CachetableTest, PinnedPairsAreNeverEvicted) {
  Open(/*budget=*/0);
  Fill(5);
  PinnedPair pins[4];
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(table_->Pin(file_, i, Lock::kRead, &pins[i]).ok());
  PinAndUnpin(4);  // over budget: the sweep can take only block 4
  table_->EvictIfOverBudget();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(table_->IsCached(file_, i));
  EXPECT_FALSE(table_->IsCached(file_, 4));
  EXPECT_EQ(table_->stats().full_evictions, 1u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(DataOf(pins[i]), StrCat("data-", i));
  for (auto& pin : pins) pin.Unpin();
  EXPECT_EQ(table_->stats().pairs, 0u);
  EXPECT_EQ(table_->size_bytes(), 0u);
}

TEST_F(CachetableTest, FetchErrorPropagatesAndLeavesNoPair) {
  Open(1 << 20);
  Fill(3);
  PinnedPair pin;
  Status status = table_->Pin(file_, 7, Lock::kRead, &pin);
  EXPECT_TRUE(status.IsNotFound()) << status.ToString();
  EXPECT_FALSE(pin.pinned());
  disk_->FailFetches(Status::Corruption("bad checksum in block 2"));
  status = table_->Pin(file_, 2, Lock::kWrite, &pin);
  EXPECT_TRUE(status.IsCorruption()) << status.ToString();
  EXPECT_FALSE(table_->IsCached(file_, 7));
  EXPECT_FALSE(table_->IsCached(file_, 2));
  EXPECT_EQ(table_->stats().pairs, 0u);
  EXPECT_EQ(table_->size_bytes(), 0u);
  disk_->FailFetches(Status::OK());
  ASSERT_TRUE(table_->Pin(file_, 2, Lock::kRead, &pin).ok());
  EXPECT_EQ(DataOf(pin), "data-2");
  EXPECT_EQ(table_->stats().misses, 3u);
}

TEST_F(CachetableTest, FetchErrorReachesThreadsWaitingForTheFetch) {
  Open(1 << 20);
  Fill(4);
  Gate fetch_started, finish_fetch;
  disk_->SetBeforeFetch([&](BlockNum) {
    fetch_started.Open();
    static_cast<void>(finish_fetch.Wait());
  });
  Status first, second;
  std::thread fetcher([&] {
    PinnedPair pin;
    first = table_->Pin(file_, 3, Lock::kRead, &pin);
  });
  EXPECT_TRUE(fetch_started.Wait());
  std::thread waiter([&] {
    PinnedPair pin;
    second = table_->Pin(file_, 3, Lock::kRead, &pin);
  });
  // The waiter has found the placeholder once it counts a hit.
  ASSERT_TRUE(Eventually([&] { return table_->stats().hits == 1; }));
  disk_->FailFetches(Status::IOError("disk on fire"));
  finish_fetch.Open();
  fetcher.join();
  waiter.join();
  EXPECT_TRUE(first.IsIOError()) << first.ToString();
  EXPECT_TRUE(second.IsIOError()) << second.ToString();
  EXPECT_EQ(disk_->fetches.load(), 1);
  EXPECT_FALSE(table_->IsCached(file_, 3));
  EXPECT_EQ(table_->stats().pairs, 0u);
}

TEST_F(CachetableTest, ConcurrentPinWaitsForTheFetchInsteadOfFetchingAgain) {
  Open(1 << 20);
  Fill(4);
  Gate fetch_started, finish_fetch;
  disk_->SetBeforeFetch([&](BlockNum) {
    fetch_started.Open();
    static_cast<void>(finish_fetch.Wait());
  });
  std::string first, second;
  std::thread fetcher([&] {
    PinnedPair pin;
    if (table_->Pin(file_, 3, Lock::kRead, &pin).ok()) first = DataOf(pin);
  });
  EXPECT_TRUE(fetch_started.Wait());
  std::thread waiter([&] {
    PinnedPair pin;
    if (table_->Pin(file_, 3, Lock::kWrite, &pin).ok()) second = DataOf(pin);
  });
  ASSERT_TRUE(Eventually([&] { return table_->stats().hits == 1; }));
  finish_fetch.Open();
  fetcher.join();
  waiter.join();
  EXPECT_EQ(first, "data-3");
  EXPECT_EQ(second, "data-3");
  EXPECT_EQ(disk_->fetches.load(), 1);
}

TEST_F(CachetableTest, FailingWriteBacksRefuseNewWritesOverBudgetUntilOneSucceeds) {
  Open(/*budget=*/0);
  EXPECT_TRUE(table_->WriteBackStatus().ok());
  disk_->FailWrites(Status::IOError("no space left"));
  {
    PinnedPair pin;
    table_->PinNew(file_, 1, disk_->NewValue("precious"), &pin);
  }  // the unpin's sweep fails to write it
  Status s = table_->WriteBackStatus();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("no space left"), std::string::npos) << s.ToString();
  // A sweep within the retry time leaves the dirty pair alone: no second failed write.
  const uint64_t errors = table_->stats().write_errors;
  {
    PinnedPair pin;
    table_->PinNew(file_, 2, disk_->NewValue("second"), &pin);
  }
  EXPECT_EQ(table_->stats().write_errors, errors);

  disk_->FailWrites(Status::OK());
  table_->EvictIfOverBudget();  // writes at once, whatever the retry time
  EXPECT_TRUE(table_->WriteBackStatus().ok());
  EXPECT_EQ(disk_->Get(1), "precious");
  EXPECT_EQ(disk_->Get(2), "second");
}

// A full disk can fail one file's writes while another's succeed (it reuses free blocks
// inside its file where the first must grow): that success must not end the first file's
// failing state, and the first file's failures must not hold back the second's write-backs.
TEST_F(CachetableTest, WriteBackFailureIsKeptPerFile) {
  Open(/*budget=*/0);
  FakeDisk other_disk;
  const CacheFileId other = table_->OpenFile(&other_disk);
  disk_->FailWrites(Status::IOError("no space left"));
  {
    PinnedPair pin;
    table_->PinNew(file_, 1, disk_->NewValue("stuck"), &pin);
  }  // the unpin's sweep fails to write it
  ASSERT_TRUE(table_->WriteBackStatus().IsIOError());
  const uint64_t errors = table_->stats().write_errors;
  {
    PinnedPair pin;
    table_->PinNew(other, 1, other_disk.NewValue("fine"), &pin);
  }  // the sweep writes the other file's pair and leaves the failing file's alone
  EXPECT_EQ(other_disk.Get(1), "fine");
  EXPECT_EQ(table_->stats().write_errors, errors);
  Status s = table_->WriteBackStatus();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();

  // A forced sweep writes both: the other file's write succeeds after the first file's
  // failed, and the first file is still failing.
  {
    PinnedPair pin;
    table_->PinNew(other, 2, other_disk.NewValue("fine too"), &pin);
  }
  table_->EvictIfOverBudget();
  EXPECT_EQ(other_disk.Get(2), "fine too");
  EXPECT_GT(table_->stats().write_errors, errors);
  s = table_->WriteBackStatus();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(table_->IsCached(file_, 1));

  disk_->FailWrites(Status::OK());
  table_->EvictIfOverBudget();
  EXPECT_TRUE(table_->WriteBackStatus().ok());
  EXPECT_EQ(disk_->Get(1), "stuck");
  EXPECT_TRUE(table_->CloseFile(other, /*write_dirty=*/true).ok());
}

// Dropping a failing file's pairs on close ends its failing state with it.
TEST_F(CachetableTest, ClosingAFailingFileEndsItsFailure) {
  Open(/*budget=*/0);
  FakeDisk other_disk;
  const CacheFileId other = table_->OpenFile(&other_disk);
  other_disk.FailWrites(Status::IOError("no space left"));
  {
    PinnedPair pin;
    table_->PinNew(other, 1, other_disk.NewValue("dropped"), &pin);
  }
  ASSERT_TRUE(table_->WriteBackStatus().IsIOError());
  EXPECT_FALSE(table_->CloseFile(other, /*write_dirty=*/true).ok());
  EXPECT_TRUE(table_->WriteBackStatus().IsIOError());
  EXPECT_TRUE(table_->CloseFile(other, /*write_dirty=*/false).ok());
  EXPECT_TRUE(table_->WriteBackStatus().ok());
}

TEST_F(CachetableTest, WriteErrorDuringEvictionKeepsTheData) {
  Open(/*budget=*/0);
  disk_->FailWrites(Status::IOError("no space left"));
  {
    PinnedPair pin;
    table_->PinNew(file_, 1, disk_->NewValue("precious"), &pin);
  }  // Unpin sweeps: the write fails and the sweep gives up instead of spinning.
  EXPECT_TRUE(table_->IsCached(file_, 1));
  EXPECT_FALSE(disk_->Get(1).has_value());
  CachetableStats stats = table_->stats();
  EXPECT_GE(stats.write_errors, 1u);
  EXPECT_EQ(stats.full_evictions, 0u);
  EXPECT_TRUE(table_->last_write_error().IsIOError());

  disk_->FailWrites(Status::OK());
  table_->EvictIfOverBudget();
  EXPECT_FALSE(table_->IsCached(file_, 1));
  EXPECT_EQ(disk_->Get(1), "precious");
  PinnedPair pin;
  ASSERT_TRUE(table_->Pin(file_, 1, Lock::kRead, &pin).ok());
  EXPECT_EQ(DataOf(pin), "precious");
}

TEST_F(CachetableTest, PinDuringEvictionWriteFindsThePairCleanAndCached) {
  Open(/*budget=*/0);
  Gate write_started, finish_write;
  disk_->SetBeforeWrite([&](BlockNum) {
    write_started.Open();
    static_cast<void>(finish_write.Wait());
  });
  std::thread evictor([&] {
    PinnedPair pin;
    table_->PinNew(file_, 5, disk_->NewValue("five"), &pin);
  });  // the Unpin sweeps and blocks inside WriteBlock
  EXPECT_TRUE(write_started.Wait());
  std::string seen;
  int fetches_when_pinned = -1;
  std::thread reader([&] {
    PinnedPair pin;
    if (table_->Pin(file_, 5, Lock::kRead, &pin).ok()) {
      seen = DataOf(pin);
      fetches_when_pinned = disk_->fetches.load();
    }
  });
  ASSERT_TRUE(Eventually([&] { return table_->stats().hits == 1; }));
  finish_write.Open();
  evictor.join();
  reader.join();
  EXPECT_EQ(seen, "five");
  EXPECT_EQ(fetches_when_pinned, 0);
  EXPECT_EQ(disk_->writes.load(), 1);
  EXPECT_EQ(disk_->Get(5), "five");
}

// PinIfCached never reads a block: it pins what is cached and reports the rest NotFound,
// including a pair removed while the caller waited for its lock.
TEST_F(CachetableTest, PinIfCachedNeverFetches) {
  Open(1 << 20);
  Fill(2);
  PinnedPair pin;
  EXPECT_TRUE(table_->PinIfCached(file_, 0, Lock::kRead, &pin).IsNotFound());
  EXPECT_FALSE(pin.pinned());
  EXPECT_EQ(disk_->fetches.load(), 0);
  EXPECT_FALSE(table_->IsCached(file_, 0));

  PinAndUnpin(0);
  ASSERT_TRUE(table_->PinIfCached(file_, 0, Lock::kRead, &pin).ok());
  EXPECT_EQ(DataOf(pin), "data-0");
  pin.Unpin();
  EXPECT_EQ(disk_->fetches.load(), 1);

  // A waiter for a write-locked pair that is then removed gets NotFound, not a refetch.
  PinnedPair writer;
  ASSERT_TRUE(table_->Pin(file_, 0, Lock::kWrite, &writer).ok());
  std::atomic<bool> waiting{false};
  Status waited;
  std::thread waiter([&] {
    PinnedPair other;
    waiting.store(true);
    waited = table_->PinIfCached(file_, 0, Lock::kRead, &other);
  });
  ASSERT_TRUE(Eventually([&] { return waiting.load(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  table_->Remove(&writer);
  waiter.join();
  EXPECT_TRUE(waited.IsNotFound()) << waited.ToString();
  EXPECT_EQ(disk_->fetches.load(), 1);
}

TEST_F(CachetableTest, TryPinIsBusyUnderAConflictingLock) {
  Open(1 << 20);
  Fill(2);
  PinnedPair writer;
  ASSERT_TRUE(table_->Pin(file_, 0, Lock::kWrite, &writer).ok());
  PinnedPair other;
  EXPECT_TRUE(table_->TryPin(file_, 0, Lock::kRead, &other).IsBusy());
  EXPECT_TRUE(table_->TryPin(file_, 0, Lock::kWrite, &other).IsBusy());
  EXPECT_FALSE(other.pinned());
  writer.Unpin();

  PinnedPair reader;
  ASSERT_TRUE(table_->TryPin(file_, 0, Lock::kRead, &reader).ok());
  EXPECT_TRUE(table_->TryPin(file_, 0, Lock::kRead, &other).ok());
  PinnedPair third;
  EXPECT_TRUE(table_->TryPin(file_, 0, Lock::kWrite, &third).IsBusy());
  // A miss is fetched, not refused.
  EXPECT_TRUE(table_->TryPin(file_, 1, Lock::kWrite, &third).ok());
  EXPECT_EQ(DataOf(third), "data-1");
}

TEST_F(CachetableTest, ReadPinsAreShared) {
  Open(1 << 20);
  Fill(1);
  PinnedPair mine;
  ASSERT_TRUE(table_->Pin(file_, 0, Lock::kRead, &mine).ok());
  std::atomic<bool> other_pinned{false};
  Gate release;
  std::thread other([&] {
    PinnedPair pin;
    if (table_->Pin(file_, 0, Lock::kRead, &pin).ok()) other_pinned = true;
    static_cast<void>(release.Wait());
  });
  EXPECT_TRUE(Eventually([&] { return other_pinned.load(); }));
  release.Open();
  mine.Unpin();  // lets the other thread through if read pins were (wrongly) exclusive
  other.join();
}

TEST_F(CachetableTest, WritePinWaitsForReadPins) {
  Open(1 << 20);
  Fill(1);
  PinnedPair reader;
  ASSERT_TRUE(table_->Pin(file_, 0, Lock::kRead, &reader).ok());
  std::atomic<bool> writer_pinned{false};
  std::thread writer([&] {
    PinnedPair pin;
    if (table_->Pin(file_, 0, Lock::kWrite, &pin).ok()) writer_pinned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(writer_pinned.load());
  reader.Unpin();
  writer.join();
  EXPECT_TRUE(writer_pinned.load());
}

TEST_F(CachetableTest, MovedPinUnpinsOnce) {
  Open(1 << 20);
  Fill(2);
  PinnedPair a;
  ASSERT_TRUE(table_->Pin(file_, 0, Lock::kWrite, &a).ok());
  PinnedPair b(std::move(a));
  EXPECT_FALSE(a.pinned());
  EXPECT_TRUE(b.pinned());
  PinnedPair c;
  ASSERT_TRUE(table_->Pin(file_, 1, Lock::kWrite, &c).ok());
  c = std::move(b);  // unpins block 1, takes over block 0
  EXPECT_EQ(c.block(), 0);
  PinnedPair probe;
  EXPECT_TRUE(table_->TryPin(file_, 1, Lock::kWrite, &probe).ok());
  EXPECT_TRUE(table_->TryPin(file_, 0, Lock::kRead, &probe).IsBusy());
  c.Unpin();
  EXPECT_TRUE(table_->TryPin(file_, 0, Lock::kWrite, &probe).ok());
}

TEST_F(CachetableTest, RemoveDropsThePairWithoutWriting) {
  Open(1 << 20);
  PinnedPair pin;
  table_->PinNew(file_, 4, disk_->NewValue("doomed"), &pin);
  table_->Remove(&pin);
  EXPECT_FALSE(pin.pinned());
  EXPECT_FALSE(table_->IsCached(file_, 4));
  EXPECT_EQ(table_->size_bytes(), 0u);
  EXPECT_EQ(disk_->writes.load(), 0);
  EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/true).ok());
  EXPECT_EQ(disk_->writes.load(), 0);
  table_.reset();
}

TEST_F(CachetableTest, WriteDirtyWritesEachDirtyPairOnce) {
  Open(1 << 20);
  Fill(3);
  for (int i = 10; i < 13; ++i) {
    PinnedPair pin;
    table_->PinNew(file_, i, disk_->NewValue(StrCat("n", i)), &pin);
  }
  PinAndUnpin(0, Lock::kWrite);  // pinned for write but not dirtied
  ASSERT_TRUE(table_->WriteDirty(file_).ok());
  EXPECT_EQ(disk_->writes.load(), 3);
  EXPECT_EQ(table_->stats().dirty_writes, 3u);
  for (int i = 10; i < 13; ++i) EXPECT_EQ(disk_->Get(i), StrCat("n", i));
  ASSERT_TRUE(table_->WriteDirty(file_).ok());
  EXPECT_EQ(disk_->writes.load(), 3);
  EXPECT_TRUE(table_->IsCached(file_, 10));
}

TEST_F(CachetableTest, CloseFileWritesDirtyPairsAndDropsAll) {
  Open(1 << 20);
  Fill(3);
  {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, 1, Lock::kWrite, &pin).ok());
    pin.as<FakeValue>()->data = "one, changed";
    pin.MarkDirty();
  }
  PinAndUnpin(2);
  {
    PinnedPair pin;
    table_->PinNew(file_, 8, disk_->NewValue("eight"), &pin);
  }
  ASSERT_TRUE(table_->CloseFile(file_, /*write_dirty=*/true).ok());
  EXPECT_EQ(disk_->Get(1), "one, changed");
  EXPECT_EQ(disk_->Get(8), "eight");
  EXPECT_EQ(disk_->writes.load(), 2);
  EXPECT_EQ(table_->stats().pairs, 0u);
  EXPECT_EQ(table_->size_bytes(), 0u);
  PinnedPair pin;
  EXPECT_TRUE(table_->Pin(file_, 2, Lock::kRead, &pin).IsInvalidArgument());
  table_.reset();
}

TEST_F(CachetableTest, CloseFileWithoutWritingDropsDirtyPairs) {
  Open(1 << 20);
  {
    PinnedPair pin;
    table_->PinNew(file_, 8, disk_->NewValue("eight"), &pin);
  }
  ASSERT_TRUE(table_->CloseFile(file_, /*write_dirty=*/false).ok());
  EXPECT_EQ(disk_->writes.load(), 0);
  EXPECT_EQ(table_->stats().pairs, 0u);
  table_.reset();
}

TEST_F(CachetableTest, CloseFileKeepsPairsWhenAWriteFails) {
  Open(1 << 20);
  {
    PinnedPair pin;
    table_->PinNew(file_, 8, disk_->NewValue("eight"), &pin);
  }
  disk_->FailWrites(Status::IOError("read-only file system"));
  EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/true).IsIOError());
  EXPECT_TRUE(table_->IsCached(file_, 8));
  disk_->FailWrites(Status::OK());
  ASSERT_TRUE(table_->CloseFile(file_, /*write_dirty=*/true).ok());
  EXPECT_EQ(disk_->Get(8), "eight");
  table_.reset();
}

TEST_F(CachetableTest, FilesAreSeparate) {
  Open(1 << 20);
  FakeDisk other_disk;
  const CacheFileId other = table_->OpenFile(&other_disk);
  ASSERT_NE(other, file_);
  disk_->Put(0, "mine");
  other_disk.Put(0, "theirs");
  PinnedPair a, b;
  ASSERT_TRUE(table_->Pin(file_, 0, Lock::kWrite, &a).ok());
  ASSERT_TRUE(table_->Pin(other, 0, Lock::kWrite, &b).ok());
  EXPECT_EQ(DataOf(a), "mine");
  EXPECT_EQ(DataOf(b), "theirs");
  b.MarkDirty();
  b.Unpin();
  ASSERT_TRUE(table_->CloseFile(other, /*write_dirty=*/true).ok());
  EXPECT_EQ(other_disk.writes.load(), 1);
  EXPECT_EQ(disk_->writes.load(), 0);
  EXPECT_TRUE(table_->IsCached(file_, 0));
}

TEST_F(CachetableTest, PinOfUnknownFileIsInvalidArgument) {
  Open(1 << 20);
  PinnedPair pin;
  EXPECT_TRUE(table_->Pin(file_ + 100, 0, Lock::kRead, &pin).IsInvalidArgument());
  EXPECT_TRUE(table_->WriteDirty(file_ + 100).IsInvalidArgument());
}

}  // namespace
}  // namespace fern
