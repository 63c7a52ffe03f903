// Pins, files and accounting of the cachetable. The clock sweep lives in eviction.cc, the
// background threads in evictor.cc and cleaner.cc, checkpoints in checkpoint.cc.
#include "cachetable/cachetable.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "cachetable/cachetable_internal.h"
#include "cachetable/pair.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

Pair* AsPair(void* pair) { return static_cast<Pair*>(pair); }

void UnlockPair(Pair* pair, bool write) {
  if (write) {
    pair->lock.UnlockWrite();
  } else {
    pair->lock.UnlockRead();
  }
}

}  // namespace

// ---- PinnedPair -------------------------------------------------------------------------

PinnedPair::PinnedPair(PinnedPair&& other) noexcept
    : table_(std::exchange(other.table_, nullptr)),
      pair_(std::exchange(other.pair_, nullptr)),
      write_(std::exchange(other.write_, false)) {}

PinnedPair& PinnedPair::operator=(PinnedPair&& other) noexcept {
  if (this != &other) {
    Unpin();
    table_ = std::exchange(other.table_, nullptr);
    pair_ = std::exchange(other.pair_, nullptr);
    write_ = std::exchange(other.write_, false);
  }
  return *this;
}

CacheValue* PinnedPair::value() const {
  return pair_ == nullptr ? nullptr : AsPair(pair_)->value.get();
}

BlockNum PinnedPair::block() const { return pair_ == nullptr ? -1 : AsPair(pair_)->key.block; }

void PinnedPair::MarkDirty() {
  if (pair_ != nullptr && write_) table_->MarkPairDirty(pair_);
}

void PinnedPair::UpdateSize() {
  if (pair_ != nullptr) table_->UpdatePairSize(pair_);
}

void PinnedPair::AddSize(size_t bytes) {
  if (pair_ != nullptr) table_->AddPairSize(pair_, bytes);
}

void PinnedPair::Unpin() {
  if (pair_ == nullptr) return;
  Cachetable* table = std::exchange(table_, nullptr);
  void* pair = std::exchange(pair_, nullptr);
  const bool write = std::exchange(write_, false);
  table->UnpinPair(pair, write);
}

// ---- Cachetable: public entry points ----------------------------------------------------

namespace {

CachetableOptions OptionsWithBudget(size_t budget_bytes) {
  CachetableOptions options;
  options.budget_bytes = budget_bytes;
  return options;
}

// budget * (1 + num / den), but at most `cap` over the budget; saturating.
size_t Mark(size_t budget, size_t num, size_t den, size_t cap) {
  const size_t extra = std::min(budget / den * num + budget % den * num / den, cap);
  return budget > SIZE_MAX - extra ? SIZE_MAX : budget + extra;
}

}  // namespace

Cachetable::Cachetable(const CachetableOptions& options)
    : budget_(options.budget_bytes),
      impl_(std::make_unique<Impl>(options, &size_bytes_)),
      outside_memory_(std::make_shared<OutsideMemory>(options.budget_bytes)) {
  impl_->StartThreads();
  outside_memory_->Attach(&size_bytes_, [impl = impl_.get()] { impl->AfterOutsideCharge(); });
}

Cachetable::Cachetable(size_t budget_bytes) : Cachetable(OptionsWithBudget(budget_bytes)) {}

Cachetable::~Cachetable() {
  outside_memory_->Detach();
  impl_->StopThreads();
}

CacheFileId Cachetable::OpenFile(CacheFileOwner* owner) {
  AnnotatedMutexLock lock(&impl_->list_mu);
  const CacheFileId id = impl_->next_file_id++;
  impl_->files.emplace(id, std::make_unique<CacheFile>(id, owner));
  return id;
}

Status Cachetable::CloseFile(CacheFileId file, bool write_dirty) {
  return impl_->CloseFile(file, write_dirty);
}

Status Cachetable::WriteDirty(CacheFileId file) { return impl_->WriteDirty(file); }

void Cachetable::SetCleanerPeriod(uint32_t period_ms) { impl_->SetCleanerPeriod(period_ms); }

bool Cachetable::RunCleanerPass() { return impl_->CleanerPass(); }

Status Cachetable::BeginCheckpoint(CacheFileId file) {
  return impl_->BeginCheckpoint(file, [] { return Status::OK(); });
}

Status Cachetable::BeginCheckpoint(CacheFileId file, absl::FunctionRef<Status()> owner_begin) {
  return impl_->BeginCheckpoint(file, owner_begin);
}

Status Cachetable::EndCheckpoint(CacheFileId file, bool drop_written) {
  return impl_->EndCheckpoint(file, drop_written);
}

Status Cachetable::Pin(CacheFileId file, BlockNum block, Lock lock, PinnedPair* pin) {
  return PinWithMode(file, block, lock, /*wait=*/true, /*fetch=*/true, pin);
}

Status Cachetable::TryPin(CacheFileId file, BlockNum block, Lock lock, PinnedPair* pin) {
  return PinWithMode(file, block, lock, /*wait=*/false, /*fetch=*/true, pin);
}

Status Cachetable::PinIfCached(CacheFileId file, BlockNum block, Lock lock, PinnedPair* pin) {
  return PinWithMode(file, block, lock, /*wait=*/true, /*fetch=*/false, pin);
}

Status Cachetable::PinWithMode(CacheFileId file, BlockNum block, Lock lock, bool wait, bool fetch,
                               PinnedPair* pin) {
  pin->Unpin();
  if (wait) {
    const PairKey key{file, block};
    impl_->BeforePin(lock == Lock::kRead ? &key : nullptr);
  }
  Pair* pair = nullptr;
  FERN_RETURN_IF_ERROR(impl_->Pin(file, block, lock, wait, fetch, &pair));
  pin->table_ = this;
  pin->pair_ = pair;
  pin->write_ = lock == Lock::kWrite;
  return Status::OK();
}

void Cachetable::PinNew(CacheFileId file, BlockNum block, std::unique_ptr<CacheValue> value,
                        PinnedPair* pin) {
  pin->Unpin();
  impl_->BeforePin(/*read_of=*/nullptr);
  Pair* pair = impl_->PinNew(file, block, std::move(value));
  if (pair == nullptr) return;
  pin->table_ = this;
  pin->pair_ = pair;
  pin->write_ = true;
}

void Cachetable::Remove(PinnedPair* pin) {
  if (!pin->pinned() || pin->table_ != this) return;
  if (!pin->write_) {
    pin->Unpin();
    return;
  }
  Pair* pair = AsPair(std::exchange(pin->pair_, nullptr));
  pin->table_ = nullptr;
  pin->write_ = false;
  impl_->Remove(pair);
}

bool Cachetable::IsCached(CacheFileId file, BlockNum block) {
  const PairKey key{file, block};
  PairBucket& bucket = impl_->table.BucketOf(key);
  AnnotatedMutexLock lock(&bucket.mu);
  return bucket.pairs.contains(key);
}

CachetableStats Cachetable::stats() const {
  CachetableStats stats;
  stats.size_bytes = size_bytes();
  stats.outside_bytes = outside_memory_->charged();
  stats.limit_bytes = budget_;
  {
    AnnotatedMutexLock lock(&impl_->list_mu);
    stats.pairs = impl_->clock.size();
  }
  for (size_t i = 0; i < kPairBuckets; ++i) {
    PairBucket& bucket = impl_->table.bucket(i);
    AnnotatedMutexLock lock(&bucket.mu);
    stats.hits += bucket.hits;
    stats.misses += bucket.misses;
  }
  stats.full_evictions = impl_->full_evictions.load(std::memory_order_relaxed);
  stats.partial_evictions = impl_->partial_evictions.load(std::memory_order_relaxed);
  stats.written_but_kept = impl_->written_but_kept.load(std::memory_order_relaxed);
  stats.bytes_evicted = impl_->bytes_evicted.load(std::memory_order_relaxed);
  stats.dirty_writes = impl_->dirty_writes.load(std::memory_order_relaxed);
  stats.write_errors = impl_->write_errors.load(std::memory_order_relaxed);
  stats.evictor_runs = impl_->evictor_runs.load(std::memory_order_relaxed);
  stats.trims = impl_->trims.load(std::memory_order_relaxed);
  stats.client_waits = impl_->client_waits.load(std::memory_order_relaxed);
  stats.cleaner_runs = impl_->cleaner_runs.load(std::memory_order_relaxed);
  stats.cleaner_calls = impl_->cleaner_calls.load(std::memory_order_relaxed);
  stats.clones = impl_->clones.load(std::memory_order_relaxed);
  stats.checkpoint_pairs_written = impl_->checkpoint_pairs_written.load(std::memory_order_relaxed);
  return stats;
}

Status Cachetable::last_write_error() const {
  AnnotatedMutexLock lock(&impl_->list_mu);
  return impl_->last_write_error;
}

Status Cachetable::WriteBackStatus() const {
  if (!impl_->AnyWriteBackFailing()) return Status::OK();
  if (size_bytes_.load(std::memory_order_relaxed) <= impl_->block_bytes) return Status::OK();
  AnnotatedMutexLock lock(&impl_->list_mu);
  if (!impl_->AnyWriteBackFailing()) return Status::OK();
  return Status::IOError(
      StrCat("the cache is over its budget with changes that cannot be written back, so new "
             "writes are refused until a write-back succeeds; last failure: ",
             impl_->last_write_error.ToString()));
}

void Cachetable::ReturnFreedMemorySoon() {
  impl_->trim_requested.store(true, std::memory_order_relaxed);
}

void Cachetable::UnpinPair(void* pair, bool write) {
  impl_->Unpin(AsPair(pair), write);
  impl_->AfterUnpin(write);
}

void Cachetable::MarkPairDirty(void* pair) {
  AsPair(pair)->dirty.store(true, std::memory_order_relaxed);
}

void Cachetable::UpdatePairSize(void* pair) { impl_->RefreshSize(AsPair(pair)); }

void Cachetable::AddPairSize(void* pair, size_t bytes) {
  impl_->AdjustSize(AsPair(pair), bytes, /*grew=*/true);
}

// ---- Impl: pins -------------------------------------------------------------------------

Cachetable::Impl::Impl(const CachetableOptions& options, std::atomic<size_t>* size_bytes)
    : options(options),
      budget(options.budget_bytes),
      wake_bytes(Mark(options.budget_bytes, kWakeMarkPermille - 1000, 1000, kWakeMarkCapBytes)),
      block_bytes(Mark(options.budget_bytes, kBlockMarkPermille - 1000, 1000, kBlockMarkCapBytes)),
      release_bytes(
          Mark(options.budget_bytes, kReleaseMarkPermille - 1000, 1000, kReleaseMarkCapBytes)),
      size_bytes(*size_bytes) {
  AnnotatedMutexLock lock(&list_mu);
  clock.AddHand(&evictor.hand);
  clock.AddHand(&cleaner.hand);
}

Cachetable::Impl::~Impl() {
  // Files should all be closed; whatever is left is freed without writing.
  for (size_t i = 0; i < kPairBuckets; ++i) {
    absl::flat_hash_map<PairKey, Pair*> leftover;
    {
      PairBucket& bucket = table.bucket(i);
      AnnotatedMutexLock lock(&bucket.mu);
      leftover.swap(bucket.pairs);
    }
    for (auto& [key, pair] : leftover) delete pair;
  }
}

Status Cachetable::Impl::Pin(CacheFileId file_id, BlockNum block, Lock lock, bool wait,
                             bool fetch_on_miss, Pair** out) {
  const PairKey key{file_id, block};
  const bool write = lock == Lock::kWrite;
  PairBucket& bucket = table.BucketOf(key);
  for (;;) {
    Pair* pair = nullptr;
    bool locked = false;
    bool fetch = false;
    {
      // The hit path: the bucket's mutex only.
      AnnotatedMutexLock bucket_lock(&bucket.mu);
      auto it = bucket.pairs.find(key);
      if (it != bucket.pairs.end()) {
        pair = it->second;
        FERN_RETURN_IF_ERROR(HitLocked(pair, bucket, write, wait, &locked));
      }
    }
    if (pair == nullptr) {
      if (!fetch_on_miss) {
        return Status::NotFound(
            StrCat("cachetable: block ", block, " of file ", file_id, " is not cached"));
      }
      // A miss inserts under the list mutex, so the pair joins the clock and its file's set
      // in the same step; another thread may have inserted it since the lookup above.
      AnnotatedMutexLock list_lock(&list_mu);
      auto file_it = files.find(file_id);
      if (file_it == files.end() || file_it->second->closing.load(std::memory_order_relaxed)) {
        return Status::InvalidArgument(
            StrCat("cachetable: pin of block ", block, " of file ", file_id, ", not open"));
      }
      AnnotatedMutexLock bucket_lock(&bucket.mu);
      auto it = bucket.pairs.find(key);
      if (it == bucket.pairs.end()) {
        ++bucket.misses;
        pair = InsertLocked(key, file_it->second.get(), bucket);
        fetch = true;
      } else {
        pair = it->second;
        FERN_RETURN_IF_ERROR(HitLocked(pair, bucket, write, wait, &locked));
      }
    }
    if (fetch) {
      FERN_RETURN_IF_ERROR(FetchPlaceholder(pair, lock));
      *out = pair;
      return Status::OK();
    }
    if (!locked) {
      if (write) {
        pair->lock.LockWrite();
      } else {
        pair->lock.LockRead();
      }
    }
    if (pair->removed()) {
      // Evicted, removed or failed to fetch while this thread waited for it.
      Status fetch_status = pair->fetch_status;
      UnlockPair(pair, write);
      ReleaseRef(pair);
      if (!fetch_status.ok()) return fetch_status;
      continue;
    }
    if (write) BeforeWritePin(pair);
    *out = pair;
    return Status::OK();
  }
}

Status Cachetable::Impl::HitLocked(Pair* pair, PairBucket& bucket, bool write, bool wait,
                                   bool* locked) {
  // A pair in the table keeps its file open, so `file` is valid here.
  if (pair->file->closing.load(std::memory_order_relaxed)) {
    return Status::InvalidArgument(StrCat("cachetable: pin of block ", pair->key.block, " of file ",
                                          pair->key.file, ", not open"));
  }
  ++bucket.hits;
  const int clock_count = pair->clock_count.load(std::memory_order_relaxed);
  if (clock_count < kMaxClockCount) {
    pair->clock_count.store(clock_count + 1, std::memory_order_relaxed);
  }
  *locked = write ? pair->lock.TryLockWrite() : pair->lock.TryLockRead();
  if (!*locked && !wait) {
    return Status::Busy(
        StrCat("cachetable: block ", pair->key.block, " of file ", pair->key.file, " is locked"));
  }
  pair->AddRef();
  return Status::OK();
}

Pair* Cachetable::Impl::InsertLocked(const PairKey& key, CacheFile* file, PairBucket& bucket) {
  Pair* pair = new Pair(key, file);
  pair->lock.LockWrite();  // free, so this does not wait
  pair->AddRef();
  bucket.pairs.emplace(key, pair);
  clock.InsertBehind(pair, evictor.hand);
  file->pairs.insert(pair);
  return pair;
}

Status Cachetable::Impl::FetchPlaceholder(Pair* pair, Lock lock) {
  std::unique_ptr<CacheValue> value;
  Status status = pair->file->owner->FetchBlock(pair->key.block, &value);
  if (status.ok() && value == nullptr) {
    status = Status::InvalidArgument(StrCat("cachetable: FetchBlock of block ", pair->key.block,
                                            " of file ", pair->key.file, " gave no value"));
  }
  if (!status.ok()) {
    pair->fetch_status = status;
    Unlink(pair);
    pair->lock.UnlockWrite();
    ReleaseRef(pair);
    return status;
  }
  pair->value = std::move(value);
  RefreshSize(pair);
  if (lock == Lock::kRead) {
    pair->lock.DowngradeToRead();
  } else {
    BeforeWritePin(pair);
  }
  return Status::OK();
}

Pair* Cachetable::Impl::PinNew(CacheFileId file_id, BlockNum block,
                               std::unique_ptr<CacheValue> value) {
  const PairKey key{file_id, block};
  PairBucket& bucket = table.BucketOf(key);
  for (;;) {
    Pair* pair = nullptr;
    bool inserted = false;
    {
      AnnotatedMutexLock list_lock(&list_mu);
      auto file_it = files.find(file_id);
      if (file_it == files.end() || file_it->second->closing.load(std::memory_order_relaxed)) {
        return nullptr;
      }
      AnnotatedMutexLock bucket_lock(&bucket.mu);
      auto it = bucket.pairs.find(key);
      if (it == bucket.pairs.end()) {
        pair = InsertLocked(key, file_it->second.get(), bucket);
        pair->value = std::move(value);
        pair->dirty.store(true, std::memory_order_relaxed);
        inserted = true;
      } else {
        pair = it->second;
        pair->AddRef();
      }
    }
    if (inserted) {
      RefreshSize(pair);
      return pair;
    }
    // Against the contract the block is cached: the new value replaces the cached one.
    pair->lock.LockWrite();
    if (pair->removed()) {
      pair->lock.UnlockWrite();
      ReleaseRef(pair);
      continue;
    }
    BeforeWritePin(pair);
    std::unique_ptr<CacheValue> old = std::exchange(pair->value, std::move(value));
    pair->dirty.store(true, std::memory_order_relaxed);
    RefreshSize(pair);
    return pair;
  }
}

void Cachetable::Impl::Unpin(Pair* pair, bool write) {
  // A read pin leaves the size alone unless its holder said otherwise (UpdateSize), so only
  // write pins re-read it: MemoryBytes walks the value (every basement of a leaf), which
  // cost ~10% of an in-memory point read when every unpin did it.
  if (write) RefreshSize(pair);
  UnlockPair(pair, write);
  ReleaseRef(pair);
}

void Cachetable::Impl::Remove(Pair* pair) {
  Unlink(pair);
  std::unique_ptr<CacheValue> value = std::move(pair->value);
  pair->lock.UnlockWrite();
  ReleaseRef(pair);
}

// ---- Impl: files ------------------------------------------------------------------------

Status Cachetable::Impl::WriteDirty(CacheFileId file_id) {
  std::vector<Pair*> dirty_pairs;
  {
    AnnotatedMutexLock list_lock(&list_mu);
    auto file_it = files.find(file_id);
    if (file_it == files.end()) {
      return Status::InvalidArgument(
          StrCat("cachetable: WriteDirty of file ", file_id, ", not open"));
    }
    for (Pair* pair : file_it->second->pairs) {
      if (!pair->dirty.load(std::memory_order_relaxed)) continue;
      pair->AddRef();
      dirty_pairs.push_back(pair);
    }
  }
  // In block order, which is close to file order for a freshly allocated file.
  std::sort(dirty_pairs.begin(), dirty_pairs.end(),
            [](const Pair* a, const Pair* b) { return a->key.block < b->key.block; });
  Status first_error;
  for (Pair* pair : dirty_pairs) {
    pair->lock.LockWrite();
    if (!pair->removed() && pair->dirty.load(std::memory_order_relaxed)) {
      Status status = WriteLockedPair(pair);
      if (!status.ok() && first_error.ok()) first_error = status;
    }
    pair->lock.UnlockWrite();
    ReleaseRef(pair);
  }
  return first_error;
}

Status Cachetable::Impl::CloseFile(CacheFileId file_id, bool write_dirty) {
  CacheFile* file = nullptr;
  {
    AnnotatedMutexLock list_lock(&list_mu);
    auto file_it = files.find(file_id);
    if (file_it == files.end()) {
      return Status::InvalidArgument(
          StrCat("cachetable: CloseFile of file ", file_id, ", not open"));
    }
    file = file_it->second.get();
    if (file->checkpoint_beginning || file->checkpoint_in_progress) {
      return Status::InvalidArgument(
          StrCat("cachetable: CloseFile of file ", file_id, " during its checkpoint"));
    }
    // No owner callback may run once CloseFile returns: stop new cleaner calls and wait for
    // the background work already under way.
    file->callbacks_blocked = true;
    while (file->cleaner_calls_in_flight > 0 || file->clone_writes_in_flight > 0) {
      list_mu.Wait(&files_cv);
    }
  }
  if (write_dirty) {
    Status status = WriteDirty(file_id);
    if (!status.ok()) {
      AnnotatedMutexLock list_lock(&list_mu);
      file->callbacks_blocked = false;
      return status;
    }
  }
  {
    AnnotatedMutexLock list_lock(&list_mu);
    file->closing.store(true, std::memory_order_relaxed);
  }
  // Repeats until the file has no pairs: a pass may meet fetches that began before
  // `closing` was set (they finish, then are dropped on the next pass).
  Status first_error;
  for (;;) {
    std::vector<Pair*> batch;
    {
      AnnotatedMutexLock list_lock(&list_mu);
      if (!first_error.ok()) {
        file->closing.store(false, std::memory_order_relaxed);
        file->callbacks_blocked = false;
        return first_error;
      }
      if (file->pairs.empty()) {
        if (file->write_back_failing.load(std::memory_order_relaxed)) {
          failing_files.fetch_sub(1, std::memory_order_relaxed);
        }
        files.erase(file_id);
        return Status::OK();
      }
      for (Pair* pair : file->pairs) {
        pair->AddRef();
        batch.push_back(pair);
      }
    }
    for (Pair* pair : batch) {
      pair->lock.LockWrite();
      bool keep = pair->removed();
      if (!keep && write_dirty && pair->dirty.load(std::memory_order_relaxed)) {
        Status status = WriteLockedPair(pair);
        if (!status.ok()) {
          keep = true;
          if (first_error.ok()) first_error = status;
        }
      }
      std::unique_ptr<CacheValue> value;
      if (!keep) {
        Unlink(pair);
        value = std::move(pair->value);
      }
      pair->lock.UnlockWrite();
      ReleaseRef(pair);
    }
  }
}

// ---- Impl: helpers ----------------------------------------------------------------------

Cachetable::Impl::SizeChange Cachetable::Impl::RefreshSize(Pair* pair) {
  const size_t now = pair->value == nullptr ? 0 : pair->value->MemoryBytes();
  AnnotatedMutexLock size_lock(&pair->size_mu);
  const size_t before = pair->memory_bytes;
  pair->memory_bytes = now;
  // An unchanged size leaves the shared counter's cache line alone.
  if (now > before) {
    size_bytes.fetch_add(now - before, std::memory_order_relaxed);
    pin_grew_cache = true;
  } else if (now < before) {
    size_bytes.fetch_sub(before - now, std::memory_order_relaxed);
  }
  return SizeChange{before, now};
}

Cachetable::Impl::SizeChange Cachetable::Impl::AdjustSize(Pair* pair, size_t bytes, bool grew) {
  AnnotatedMutexLock size_lock(&pair->size_mu);
  const size_t before = pair->memory_bytes;
  if (!grew) bytes = std::min(bytes, before);
  pair->memory_bytes = grew ? before + bytes : before - bytes;
  if (grew) {
    size_bytes.fetch_add(bytes, std::memory_order_relaxed);
    pin_grew_cache = true;
  } else {
    size_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  }
  return SizeChange{before, pair->memory_bytes};
}

size_t Cachetable::Impl::Unlink(Pair* pair) {
  PairBucket& bucket = table.BucketOf(pair->key);
  AnnotatedMutexLock list_lock(&list_mu);
  AnnotatedMutexLock bucket_lock(&bucket.mu);
  return UnlinkLocked(pair, bucket);
}

size_t Cachetable::Impl::UnlinkLocked(Pair* pair, PairBucket& bucket) {
  bucket.pairs.erase(pair->key);
  clock.Remove(pair);
  pair->file->pairs.erase(pair);
  pair->MarkRemoved();
  size_t bytes = 0;
  {
    AnnotatedMutexLock size_lock(&pair->size_mu);
    bytes = std::exchange(pair->memory_bytes, 0);
  }
  size_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  return bytes;
}

Status Cachetable::Impl::WriteLockedPair(Pair* pair) {
  // The pair is locked and not removed, so it is in its file's set and the file is open.
  CacheFile* file = pair->file;
  bool for_checkpoint = false;
  uint64_t failures_before = 0;
  {
    AnnotatedMutexLock list_lock(&list_mu);
    while (file->checkpoint_beginning) list_mu.Wait(&files_cv);
    ++file->writes_in_flight;
    failures_before = file->write_back_failures;
    // Stays as read until this write ends: only a holder of the pair's lock or a checkpoint
    // begin (held back above) changes it.
    for_checkpoint = pair->checkpoint_pending.load(std::memory_order_relaxed);
  }
  CacheFileOwner* owner = file->owner;
  const Status status = for_checkpoint
                            ? owner->WriteBlockForCheckpoint(pair->key.block, pair->value.get())
                            : owner->WriteBlock(pair->key.block, pair->value.get());
  dirty_writes.fetch_add(1, std::memory_order_relaxed);
  AnnotatedMutexLock list_lock(&list_mu);
  if (--file->writes_in_flight == 0) files_cv.SignalAll();
  if (status.ok()) {
    // Only a write begun after the latest failure shows that writes work again (one begun
    // before the disk filled may still succeed).
    if (file->write_back_failing.load(std::memory_order_relaxed) &&
        failures_before == file->write_back_failures) {
      file->write_back_failing.store(false, std::memory_order_relaxed);
      failing_files.fetch_sub(1, std::memory_order_relaxed);
      file->write_back_retry = absl::InfinitePast();
    }
    pair->dirty.store(false, std::memory_order_relaxed);
    if (for_checkpoint) {
      pair->checkpoint_pending.store(false, std::memory_order_relaxed);
      checkpoint_pairs_written.fetch_add(1, std::memory_order_relaxed);
    }
    return status;
  }
  write_errors.fetch_add(1, std::memory_order_relaxed);
  ++file->write_back_failures;
  last_write_error = status;
  if (file->write_back_failing.load(std::memory_order_relaxed)) {
    file->write_back_backoff = std::min(file->write_back_backoff * 2, kMaxWriteBackRetry);
  } else {
    file->write_back_failing.store(true, std::memory_order_relaxed);
    failing_files.fetch_add(1, std::memory_order_relaxed);
    file->write_back_backoff = kMinWriteBackRetry;
  }
  file->write_back_retry = absl::Now() + file->write_back_backoff;
  return status;
}

bool Cachetable::Impl::WriteBackHeldOff(const CacheFile& file) {
  return file.write_back_failing.load(std::memory_order_relaxed) &&
         absl::Now() < file.write_back_retry;
}

}  // namespace fern
