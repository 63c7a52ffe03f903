// The clock sweep: full eviction of cold pairs and partial eviction of warm clean ones.
//
// A sweep visits pairs from its head's hand. A pair someone holds or waits for, or whose lock
// cannot be taken at once, is passed over untouched — the sweep never waits for a pair. A
// pair with a clock count above zero loses one count and, when clean, is offered to its
// owner's PartialEvict. A pair at zero is evicted: written first if dirty, then removed and
// its value destroyed. The sweep holds the list mutex and takes a pair's bucket mutex for
// the two decisions that must not race a pin: whether anyone holds or waits for the pair
// (taking the sweep's own ref and the pair's lock), and whether the pair can leave the table.
// The owner callbacks and value destructors run with the pair locked exclusively and no table
// mutex held; a client that pins the pair meanwhile waits on the pair's lock and then finds
// it cached and clean (a dirty pair someone is waiting for is kept after its write) or, once
// it is removed, fetches it again.
#include <memory>
#include <utility>

#include "cachetable/cachetable.h"
#include "cachetable/cachetable_internal.h"
#include "cachetable/pair.h"

namespace fern {

void Cachetable::EvictIfOverBudget() {
  impl_->Sweep(&impl_->evictor, budget_, /*wait_if_running=*/true, /*write_now=*/true);
}

void Cachetable::Impl::Sweep(SweepHead* head, size_t target_bytes, bool wait_if_running,
                             bool write_now) {
  AnnotatedMutexLock list_lock(&list_mu);
  if (head->running) {
    if (!wait_if_running) return;
    while (head->running) list_mu.Wait(&sweep_done_cv);
  }
  head->running = true;
  // Stops after two laps in a row without progress: every pair pinned, locked, or failing
  // to write. Progress includes lowering a clock count, so a lap's worth of warm pairs is
  // never mistaken for a stuck clock.
  size_t idle_visits = 0;
  while (size_bytes.load(std::memory_order_relaxed) > target_bytes && !clock.empty() &&
         idle_visits < 2 * clock.size()) {
    Pair* pair = static_cast<Pair*>(clock.Advance(&head->hand));
    if (SweepVisit(pair, write_now)) {
      idle_visits = 0;
      if (clients_waiting.load(std::memory_order_relaxed) > 0 &&
          size_bytes.load(std::memory_order_relaxed) <= release_bytes) {
        NotifyWaitingClients();
      }
    } else {
      ++idle_visits;
    }
  }
  head->running = false;
  sweep_done_cv.SignalAll();
}

bool Cachetable::Impl::SweepVisit(Pair* pair, bool write_now) {
  PairBucket& bucket = table.BucketOf(pair->key);
  bool evict = false;
  int clock_count = 0;  // after this visit lowered it
  {
    // refs > 0: pinned, waited for, or still being fetched. A pin takes its ref under the
    // bucket mutex, so none can appear while it is held.
    AnnotatedMutexLock bucket_lock(&bucket.mu);
    if (pair->refs() > 0 || !pair->lock.TryLockWrite()) return false;
    pair->AddRef();
    const int count = pair->clock_count.load(std::memory_order_relaxed);
    if (count > 0) {
      clock_count = count - 1;
      pair->clock_count.store(clock_count, std::memory_order_relaxed);
    } else {
      evict = true;
    }
  }
  CacheFileOwner* owner = pair->file->owner;

  if (!evict) {
    if (!pair->dirty.load(std::memory_order_relaxed) &&
        !pair->checkpoint_pending.load(std::memory_order_relaxed)) {
      list_mu.Unlock();
      size_t freed = CacheFileOwner::kUnknownSize;
      if (owner->PartialEvict(pair->key.block, pair->value.get(), clock_count, &freed)) {
        const SizeChange change = freed == CacheFileOwner::kUnknownSize
                                      ? RefreshSize(pair)
                                      : AdjustSize(pair, freed, /*grew=*/false);
        partial_evictions.fetch_add(1, std::memory_order_relaxed);
        if (change.before > change.after) {
          bytes_evicted.fetch_add(change.before - change.after, std::memory_order_relaxed);
        }
      }
      list_mu.Lock();
    }
    pair->lock.UnlockWrite();
    ReleaseRef(pair);
    return true;
  }

  const bool was_dirty = pair->dirty.load(std::memory_order_relaxed);
  if (was_dirty && !write_now && WriteBackHeldOff(*pair->file)) {
    // Stays cached and dirty until the retry time: its file's writes are failing (a full
    // disk).
    pair->lock.UnlockWrite();
    ReleaseRef(pair);
    return false;
  }
  bool write_ok = true;
  if (was_dirty) {
    list_mu.Unlock();
    write_ok = WriteLockedPair(pair).ok();
    list_mu.Lock();
  }
  size_t bytes = 0;
  {
    // With both mutexes held no ref can be taken, so a count of 1 (this sweep's) stays 1.
    AnnotatedMutexLock bucket_lock(&bucket.mu);
    // A failed write keeps the data cached and dirty (WriteLockedPair recorded the error).
    // A pair a client began to wait for meanwhile stays (clean, if written) for that client.
    if (write_ok && pair->refs() == 1) bytes = UnlinkLocked(pair, bucket);
  }
  if (!pair->removed()) {
    if (was_dirty && write_ok) {
      written_but_kept.fetch_add(1, std::memory_order_relaxed);
      list_mu.Unlock();
      owner->WrittenButKept(pair->key.block, pair->value.get());
      list_mu.Lock();
    }
    pair->lock.UnlockWrite();
    ReleaseRef(pair);
    return was_dirty && write_ok;  // a successful write is progress
  }
  full_evictions.fetch_add(1, std::memory_order_relaxed);
  bytes_evicted.fetch_add(bytes, std::memory_order_relaxed);
  std::unique_ptr<CacheValue> value = std::move(pair->value);
  pair->lock.UnlockWrite();
  ReleaseRef(pair);  // the last ref: nobody could take one once it left the table
  list_mu.Unlock();
  value.reset();
  list_mu.Lock();
  return true;
}

}  // namespace fern
