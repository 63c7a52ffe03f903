// The clock sweep: full eviction of cold pairs and partial eviction of warm clean ones.
//
// A sweep visits pairs from its head's hand. A pair someone holds or waits for, or whose lock
// cannot be taken at once, is passed over untouched — the sweep never waits for a pair. A
// pair with a clock count above zero loses one count and, when clean, is offered to its
// owner's PartialEvict. A pair at zero is evicted: written first if dirty, then removed and
// its value destroyed. The owner callbacks and value destructors run with the pair locked
// exclusively and the table mutex released; a client that pins the pair meanwhile waits on
// the pair's lock and then finds it cached and clean (a dirty pair someone is waiting for is
// kept after its write) or, once it is removed, fetches it again.
#include <memory>
#include <utility>

#include "cachetable/cachetable.h"
#include "cachetable/cachetable_internal.h"
#include "cachetable/pair.h"

namespace fern {

void Cachetable::EvictIfOverBudget() {
  impl_->Sweep(&impl_->evictor, budget_, /*wait_if_running=*/true);
}

void Cachetable::Impl::Sweep(SweepHead* head, size_t target_bytes, bool wait_if_running) {
  AnnotatedMutexLock table_lock(&mu);
  if (head->running) {
    if (!wait_if_running) return;
    while (head->running) mu.Wait(&sweep_done_cv);
  }
  head->running = true;
  // Stops after two laps in a row without progress: every pair pinned, locked, or failing
  // to write. Progress includes lowering a clock count, so a lap's worth of warm pairs is
  // never mistaken for a stuck clock.
  size_t idle_visits = 0;
  while (size_bytes.load(std::memory_order_relaxed) > target_bytes && !clock.empty() &&
         idle_visits < 2 * clock.size()) {
    Pair* pair = static_cast<Pair*>(clock.Advance(&head->hand));
    if (SweepVisit(pair)) {
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

bool Cachetable::Impl::SweepVisit(Pair* pair) {
  // refs > 0: pinned, waited for, or still being fetched. Refs are taken only under `mu`,
  // so none can appear until this visit releases it.
  if (pair->refs() > 0 || !pair->lock.TryLockWrite()) {
    return false;
  }
  pair->AddRef();
  CacheFileOwner* owner = pair->file->owner;

  if (pair->clock_count > 0) {
    const int clock_count = --pair->clock_count;
    if (!pair->dirty.load(std::memory_order_relaxed) &&
        !pair->checkpoint_pending.load(std::memory_order_relaxed)) {
      mu.Unlock();
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
      mu.Lock();
    }
    pair->lock.UnlockWrite();
    ReleaseRef(pair);
    return true;
  }

  if (pair->dirty.load(std::memory_order_relaxed)) {
    mu.Unlock();
    const Status status = WriteLockedPair(pair);
    mu.Lock();
    // A failed write keeps the data cached and dirty (WriteLockedPair recorded the error).
    // A pair a client began to wait for during the write stays, now clean, for that client.
    if (!status.ok() || pair->refs() > 1) {
      pair->lock.UnlockWrite();
      ReleaseRef(pair);
      return status.ok();
    }
  }

  const size_t bytes = UnlinkLocked(pair);
  full_evictions.fetch_add(1, std::memory_order_relaxed);
  bytes_evicted.fetch_add(bytes, std::memory_order_relaxed);
  std::unique_ptr<CacheValue> value = std::move(pair->value);
  pair->lock.UnlockWrite();
  ReleaseRef(pair);  // the last ref: nobody else found the pair while `mu` was held
  mu.Unlock();
  value.reset();
  mu.Lock();
  return true;
}

}  // namespace fern
