// A CacheFileOwner for cachetable tests: a std::map "disk" of block contents, values of
// configurable memory size, counters of every callback, injectable errors, and hooks that run
// before a fetch or a write (to hold a callback open while a test arranges a race).
//
// Checkpoints are modelled like TreeFile's: BeginImage() copies the disk into a checkpoint
// "image"; checkpoint writes (WriteBlockForCheckpoint, WriteCheckpointClone) go to the image,
// and to the disk too unless a plain WriteBlock of the block came after BeginImage (the newer
// version wins on disk). So after EndCheckpoint the image must hold every block as of the
// begin, and the disk always holds each block's newest written version.
//
// Thread-safe: callbacks may come from any thread. Uses std::mutex so that ThreadSanitizer
// sees its synchronization.
#ifndef FERN_TESTS_CACHETABLE_FAKE_DISK_H_
#define FERN_TESTS_CACHETABLE_FAKE_DISK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cachetable/cachetable.h"
#include "util/strings.h"

namespace fern {

// `data` is what goes to disk; `base_bytes` stands for the rest of a node's footprint and
// `warm_bytes` for a part PartialEvict may drop (like a decompressed basement).
class FakeValue : public CacheValue {
 public:
  FakeValue(std::string data, size_t base_bytes, size_t warm_bytes)
      : data(std::move(data)), base_bytes(base_bytes), warm_bytes(warm_bytes) {}
  size_t MemoryBytes() const override {
    size_reads.fetch_add(1, std::memory_order_relaxed);
    return data.size() + base_bytes + warm_bytes;
  }
  size_t CleanerPriority() const override { return cleaner_priority; }

  std::string data;
  size_t base_bytes;
  size_t warm_bytes;
  size_t cleaner_priority = 0;
  mutable std::atomic<int> size_reads{0};  // MemoryBytes() calls
};

class FakeDisk : public CacheFileOwner {
 public:
  explicit FakeDisk(size_t base_bytes = 100, size_t warm_bytes = 0)
      : base_bytes_(base_bytes), warm_bytes_(warm_bytes) {}

  std::unique_ptr<FakeValue> NewValue(std::string data) const {
    return std::make_unique<FakeValue>(std::move(data), base_bytes_, warm_bytes_);
  }

  void Put(BlockNum block, std::string data) {
    std::lock_guard<std::mutex> lock(mu_);
    blocks_[block] = std::move(data);
  }
  std::optional<std::string> Get(BlockNum block) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocks_.find(block);
    if (it == blocks_.end()) return std::nullopt;
    return it->second;
  }
  void FailFetches(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fetch_error_ = std::move(status);
  }
  void FailWrites(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    write_error_ = std::move(status);
  }
  // Every n-th WriteBlock fails with IOError (0: none).
  void FailEveryNthWrite(int n) { fail_every_nth_write_.store(n); }
  // Hooks run on the callback's thread, outside the disk's mutex; set them before the
  // callbacks they should see can run.
  void SetBeforeFetch(std::function<void(BlockNum)> hook) { before_fetch_ = std::move(hook); }
  void SetBeforeWrite(std::function<void(BlockNum)> hook) { before_write_ = std::move(hook); }
  void SetBeforeCloneWrite(std::function<void(BlockNum)> hook) {
    before_clone_write_ = std::move(hook);
  }
  void SetCleanerRun(std::function<void(BlockNum)> hook) { cleaner_run_ = std::move(hook); }
  // CloneForCheckpoint declines (returns nullptr) for blocks where `decline` is true; by
  // default it declines every block.
  void SetCloneRule(std::function<bool(BlockNum)> decline) { decline_clone_ = std::move(decline); }
  void FailCloneWrites(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    clone_write_error_ = std::move(status);
  }

  void BeginImage() {
    std::lock_guard<std::mutex> lock(mu_);
    image_ = blocks_;
    written_since_begin_.clear();
    checkpointing_ = true;
  }
  void EndImage() {
    std::lock_guard<std::mutex> lock(mu_);
    checkpointing_ = false;
  }
  std::map<BlockNum, std::string> Image() const {
    std::lock_guard<std::mutex> lock(mu_);
    return image_;
  }
  // Successful WriteBlock calls for `block`.
  int PlainWritesOf(BlockNum block) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plain_writes_.find(block);
    return it == plain_writes_.end() ? 0 : it->second;
  }
  std::optional<std::string> ImageOf(BlockNum block) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = image_.find(block);
    if (it == image_.end()) return std::nullopt;
    return it->second;
  }

  Status FetchBlock(BlockNum block, std::unique_ptr<CacheValue>* value) override {
    fetches.fetch_add(1);
    if (before_fetch_) before_fetch_(block);
    std::lock_guard<std::mutex> lock(mu_);
    if (!fetch_error_.ok()) return fetch_error_;
    auto it = blocks_.find(block);
    if (it == blocks_.end()) return Status::NotFound(StrCat("fake disk: no block ", block));
    *value = std::make_unique<FakeValue>(it->second, base_bytes_, warm_bytes_);
    return Status::OK();
  }

  Status WriteBlock(BlockNum block, CacheValue* value) override {
    const int n = writes.fetch_add(1) + 1;
    if (before_write_) before_write_(block);
    const int every = fail_every_nth_write_.load();
    if (every > 0 && n % every == 0) {
      return Status::IOError(StrCat("fake disk: injected failure writing block ", block));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!write_error_.ok()) return write_error_;
    blocks_[block] = static_cast<FakeValue*>(value)->data;
    ++plain_writes_[block];
    if (checkpointing_) written_since_begin_[block] = true;
    return Status::OK();
  }

  Status WriteBlockForCheckpoint(BlockNum block, CacheValue* value) override {
    checkpoint_writes.fetch_add(1);
    if (before_write_) before_write_(block);
    std::lock_guard<std::mutex> lock(mu_);
    if (!write_error_.ok()) return write_error_;
    WriteImageLocked(block, static_cast<FakeValue*>(value)->data);
    return Status::OK();
  }

  std::unique_ptr<CacheValue> CloneForCheckpoint(BlockNum block, const CacheValue& value) override {
    if (!decline_clone_ || decline_clone_(block)) return nullptr;
    clones_made.fetch_add(1);
    const auto& fake = static_cast<const FakeValue&>(value);
    auto clone = std::make_unique<FakeValue>(fake.data, fake.base_bytes, fake.warm_bytes);
    clone->cleaner_priority = fake.cleaner_priority;
    return clone;
  }

  Status WriteCheckpointClone(BlockNum block, std::unique_ptr<CacheValue> clone) override {
    clone_writes.fetch_add(1);
    if (before_clone_write_) before_clone_write_(block);
    std::lock_guard<std::mutex> lock(mu_);
    if (!clone_write_error_.ok()) return clone_write_error_;
    WriteImageLocked(block, static_cast<FakeValue*>(clone.get())->data);
    return Status::OK();
  }

  void CleanerRun(BlockNum block) override {
    cleaner_runs.fetch_add(1);
    if (cleaner_run_) cleaner_run_(block);
  }

  void WrittenButKept(BlockNum block, CacheValue* value) override {
    std::lock_guard<std::mutex> lock(mu_);
    kept_.push_back(block);
  }
  // The blocks WrittenButKept was called for, in order.
  std::vector<BlockNum> KeptBlocks() const {
    std::lock_guard<std::mutex> lock(mu_);
    return kept_;
  }

  bool PartialEvict(BlockNum block, CacheValue* value, int clock_count,
                    size_t* freed_bytes) override {
    auto* fake = static_cast<FakeValue*>(value);
    if (fake->warm_bytes == 0) return false;
    if (report_freed_bytes.load()) *freed_bytes = fake->warm_bytes;
    fake->warm_bytes = 0;
    partial_evicts.fetch_add(1);
    return true;
  }

  std::atomic<int> fetches{0};
  std::atomic<int> writes{0};
  std::atomic<int> partial_evicts{0};
  // Whether PartialEvict tells the cachetable how many bytes it freed.
  std::atomic<bool> report_freed_bytes{false};
  std::atomic<int> checkpoint_writes{0};  // WriteBlockForCheckpoint calls
  std::atomic<int> clones_made{0};
  std::atomic<int> clone_writes{0};
  std::atomic<int> cleaner_runs{0};

 private:
  void WriteImageLocked(BlockNum block, const std::string& data) {
    image_[block] = data;
    if (!written_since_begin_[block]) blocks_[block] = data;
  }

  const size_t base_bytes_;
  const size_t warm_bytes_;
  mutable std::mutex mu_;
  std::map<BlockNum, std::string> blocks_;
  std::map<BlockNum, std::string> image_;
  std::map<BlockNum, bool> written_since_begin_;
  std::map<BlockNum, int> plain_writes_;
  bool checkpointing_ = false;
  Status fetch_error_;
  Status write_error_;
  Status clone_write_error_;
  std::atomic<int> fail_every_nth_write_{0};
  std::function<void(BlockNum)> before_fetch_;
  std::function<void(BlockNum)> before_write_;
  std::function<void(BlockNum)> before_clone_write_;
  std::function<void(BlockNum)> cleaner_run_;
  std::vector<BlockNum> kept_;  // guarded by mu_
  std::function<bool(BlockNum)> decline_clone_;
};

// A one-shot gate: Wait() blocks until Open(), or for 10 s at most so that a broken
// cachetable fails its test instead of hanging it. Returns whether the gate opened.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

}  // namespace fern

#endif  // FERN_TESTS_CACHETABLE_FAKE_DISK_H_
