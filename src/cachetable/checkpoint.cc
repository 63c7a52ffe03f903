// Checkpoint support: pending marks, copy-on-write clones and the checkpoint writers.
//
// A checkpoint of a file captures each of its pairs as of BeginCheckpoint. A pair's
// contents at the begin reach the checkpoint exactly once, by whichever comes first:
//   - a write pin: the pair is cloned (CloneForCheckpoint) and the clone queued for
//     WriteCheckpointClone on the checkpoint writers, or, if the owner cannot clone, written
//     on the pinning thread (WriteBlockForCheckpoint) before the client may change it;
//   - eviction, WriteDirty or CloseFile: WriteLockedPair writes a pending pair with
//     WriteBlockForCheckpoint;
//   - EndCheckpoint, for the pending dirty pairs left.
// A pending clean pair is already on disk as of the begin, so it only loses its mark.
//
// No write of a pair may straddle the begin: a plain write that started before the begin
// but reached the file after the owner's begin would put the begin's contents in the
// current version only, and the checkpoint would keep the older block. So BeginCheckpoint
// drains the file's writes in flight and holds new ones back (WriteLockedPair waits on
// `checkpoint_beginning`) while the owner's begin runs and the marks are set.
#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "cachetable/cachetable.h"
#include "cachetable/cachetable_internal.h"
#include "cachetable/pair.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace fern {

Status CacheFileOwner::WriteCheckpointClone(BlockNum block, std::unique_ptr<CacheValue> clone) {
  return Status::NotSupported(
      StrCat("cachetable: the owner cloned block ", block, " but cannot write clones"));
}

Status Cachetable::Impl::BeginCheckpoint(CacheFileId file_id,
                                         absl::FunctionRef<Status()> owner_begin) {
  CacheFile* file = nullptr;
  {
    AnnotatedMutexLock list_lock(&list_mu);
    auto file_it = files.find(file_id);
    if (file_it == files.end() || file_it->second->closing.load(std::memory_order_relaxed)) {
      return Status::InvalidArgument(
          StrCat("cachetable: BeginCheckpoint of file ", file_id, ", not open"));
    }
    file = file_it->second.get();
    if (file->checkpoint_beginning || file->checkpoint_in_progress) {
      return Status::InvalidArgument(
          StrCat("cachetable: BeginCheckpoint of file ", file_id, ": one is in progress"));
    }
    file->checkpoint_beginning = true;
    while (file->writes_in_flight > 0) list_mu.Wait(&files_cv);
  }
  // CloseFile refuses the file while `checkpoint_beginning`, so `file` stays valid.
  const Status status = owner_begin();
  AnnotatedMutexLock list_lock(&list_mu);
  file->checkpoint_beginning = false;
  files_cv.SignalAll();
  if (!status.ok()) return status;
  file->checkpoint_in_progress = true;
  file->checkpoint_error = Status::OK();
  for (Pair* pair : file->pairs) pair->checkpoint_pending.store(true, std::memory_order_relaxed);
  return status;
}

void Cachetable::Impl::BeforeWritePin(Pair* pair) {
  // A write pin cannot overlap a begin (BeginCheckpoint's contract), so a clear mark read
  // here without `list_mu` stays clear for this pin: the write pin of a pair that is not
  // pending takes no table-wide mutex. A pending one takes `list_mu` once per checkpoint,
  // next to a clone or a write of the whole value.
  if (!pair->checkpoint_pending.load(std::memory_order_relaxed)) return;
  CacheFile* file = pair->file;
  {
    AnnotatedMutexLock list_lock(&list_mu);
    if (!pair->checkpoint_pending.load(std::memory_order_relaxed)) return;
    if (!pair->dirty.load(std::memory_order_relaxed)) {
      pair->checkpoint_pending.store(false, std::memory_order_relaxed);
      return;
    }
  }
  // Pending and dirty, and it stays so while this thread holds the lock: EndCheckpoint and
  // eviction need the lock to write it.
  CacheFileOwner* owner = file->owner;
  const BlockNum block = pair->key.block;
  std::unique_ptr<CacheValue> clone = owner->CloneForCheckpoint(block, *pair->value);
  if (clone == nullptr) {
    const Status status = WriteLockedPair(pair);
    if (!status.ok()) {
      // The client is about to change the pair: its contents as of the begin are lost to
      // this checkpoint, which must fail. The pair stays dirty for the next one.
      AnnotatedMutexLock list_lock(&list_mu);
      pair->checkpoint_pending.store(false, std::memory_order_relaxed);
      if (file->checkpoint_error.ok()) file->checkpoint_error = status;
    }
    return;
  }
  clones.fetch_add(1, std::memory_order_relaxed);
  // The clone counts against the budget until it is written.
  const size_t clone_bytes = clone->MemoryBytes();
  size_bytes.fetch_add(clone_bytes, std::memory_order_relaxed);
  {
    AnnotatedMutexLock list_lock(&list_mu);
    pair->checkpoint_pending.store(false, std::memory_order_relaxed);
    ++file->clone_writes_in_flight;
  }
  // std::function must be copyable, so the clone travels as a raw pointer; the task always
  // runs (ThreadPool runs queued tasks before it stops) and takes ownership back.
  CacheValue* raw_clone = clone.release();
  checkpoint_writers->Schedule([this, file, owner, block, raw_clone, clone_bytes] {
    const Status status =
        owner->WriteCheckpointClone(block, std::unique_ptr<CacheValue>(raw_clone));
    size_bytes.fetch_sub(clone_bytes, std::memory_order_relaxed);
    AnnotatedMutexLock list_lock(&list_mu);
    if (status.ok()) {
      checkpoint_pairs_written.fetch_add(1, std::memory_order_relaxed);
    } else if (file->checkpoint_error.ok()) {
      file->checkpoint_error = status;
    }
    // The last touch of `file`: CloseFile and EndCheckpoint wait for this count.
    if (--file->clone_writes_in_flight == 0) files_cv.SignalAll();
  });
}

std::unique_ptr<CacheValue> Cachetable::Impl::DropIfUnusedLocked(Pair* pair) {
  PairBucket& bucket = table.BucketOf(pair->key);
  AnnotatedMutexLock list_lock(&list_mu);
  AnnotatedMutexLock bucket_lock(&bucket.mu);
  // With both mutexes held no ref can be taken: a count of 1 (the caller's) stays 1.
  if (pair->refs() != 1) return nullptr;
  const size_t bytes = UnlinkLocked(pair, bucket);
  full_evictions.fetch_add(1, std::memory_order_relaxed);
  bytes_evicted.fetch_add(bytes, std::memory_order_relaxed);
  return std::move(pair->value);
}

Status Cachetable::Impl::EndCheckpoint(CacheFileId file_id, bool drop_written) {
  CacheFile* file = nullptr;
  std::vector<Pair*> to_write;
  std::vector<Pair*> to_drop;  // with drop_written: clean pairs, dropped before any write
  {
    AnnotatedMutexLock list_lock(&list_mu);
    auto file_it = files.find(file_id);
    if (file_it == files.end() || !file_it->second->checkpoint_in_progress) {
      return Status::InvalidArgument(
          StrCat("cachetable: EndCheckpoint of file ", file_id, " without BeginCheckpoint"));
    }
    file = file_it->second.get();
    for (Pair* pair : file->pairs) {
      if (drop_written && !pair->dirty.load(std::memory_order_relaxed)) {
        pair->AddRef();
        to_drop.push_back(pair);
        continue;
      }
      if (!pair->checkpoint_pending.load(std::memory_order_relaxed)) continue;
      // Dirty is read under `list_mu`, where it is cleared, so a pair reported clean here is on
      // disk as of the begin.
      if (!pair->dirty.load(std::memory_order_relaxed)) {
        pair->checkpoint_pending.store(false, std::memory_order_relaxed);
        continue;
      }
      pair->AddRef();
      to_write.push_back(pair);
    }
  }
  // The clean pairs go first, so that the buffers serializing the dirty ones reuse their
  // memory.
  for (Pair* pair : to_drop) {
    pair->lock.LockWrite();
    std::unique_ptr<CacheValue> dropped;
    if (!pair->removed() && !pair->dirty.load(std::memory_order_relaxed)) {
      dropped = DropIfUnusedLocked(pair);
    }
    pair->lock.UnlockWrite();
    ReleaseRef(pair);
    dropped.reset();
  }
  // In block order, which is close to file order for a freshly allocated file.
  std::sort(to_write.begin(), to_write.end(),
            [](const Pair* a, const Pair* b) { return a->key.block < b->key.block; });
  Status first_error;
  for (Pair* pair : to_write) {
    pair->lock.LockWrite();
    bool written = false;
    // A write pin, an eviction or WriteDirty may have handed it over meanwhile.
    if (!pair->removed() && pair->checkpoint_pending.load(std::memory_order_relaxed) &&
        pair->dirty.load(std::memory_order_relaxed)) {
      const Status status = WriteLockedPair(pair);
      written = status.ok();
      if (!status.ok() && first_error.ok()) first_error = status;
    }
    std::unique_ptr<CacheValue> dropped;
    if (written && drop_written) dropped = DropIfUnusedLocked(pair);
    pair->lock.UnlockWrite();
    ReleaseRef(pair);
    dropped.reset();
  }
  AnnotatedMutexLock list_lock(&list_mu);
  while (file->clone_writes_in_flight > 0) list_mu.Wait(&files_cv);
  // Left pending now: pairs whose write failed (still dirty, for the next checkpoint).
  for (Pair* pair : file->pairs) pair->checkpoint_pending.store(false, std::memory_order_relaxed);
  // A lost clone or pin-time write came first: report it before this call's own errors.
  if (!file->checkpoint_error.ok()) first_error = file->checkpoint_error;
  file->checkpoint_error = Status::OK();
  file->checkpoint_in_progress = false;
  return first_error;
}

}  // namespace fern
