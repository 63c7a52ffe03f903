#include "txn/lock_tree.h"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "util/strings.h"

namespace fern {

namespace {

template <typename Vector>
void AddUnique(Vector* ids, TxnId id) {
  if (std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(id);
}

const char* ModeName(LockTree::Mode mode) {
  return mode == LockTree::Mode::kRead ? "read" : "write";
}

std::string DescribeOwners(std::span<const TxnId> owners) {
  std::string out;
  for (TxnId id : owners) out += StrCat(out.empty() ? "" : ", ", id);
  return out;
}

// "held by 4, 7", "queued behind 9" or both.
std::string DescribeBlockers(std::span<const TxnId> holders, std::span<const TxnId> queued) {
  std::string out;
  if (!holders.empty()) out = StrCat("held by ", DescribeOwners(holders));
  if (!queued.empty()) {
    out += StrCat(holders.empty() ? "" : "; ", "queued behind ", DescribeOwners(queued));
  }
  return out;
}

}  // namespace

LockTree::LockTree(const Comparator& comparator, DeadlockDetector& detector, size_t escalate_at,
                   MemoryBudget* memory, int64_t escalate_bytes)
    : comparator_(comparator),
      detector_(detector),
      less_{&comparator},
      escalate_at_(std::max<size_t>(escalate_at, 1)),
      memory_(memory),
      escalate_bytes_(escalate_bytes),
      segments_(less_) {}

LockTree::~LockTree() {
  MutexLock lock(&mu_);
  assert(waiters_.empty() && "LockTree destroyed while a request waits");
  // Locks still held (a table dropped under a prepared transaction) give their memory back.
  for (const auto& [owner, ranges] : owned_) {
    if (memory_ != nullptr) memory_->Add(-ranges.bytes);
    if (ranges.account != nullptr) ranges.account->fetch_sub(ranges.bytes);
  }
}

int64_t LockTree::RangeBytes(BoundRef start, BoundRef end) {
  // A segment map entry is 40 bytes (lock_segment.h); with the btree's nodes about 64.
  constexpr int64_t kSegmentEntryBytes = 64;
  constexpr int64_t kHeapBlockBytes = 16;  // malloc's overhead for a key stored out of line
  auto bound = [](BoundRef b) {
    const int64_t key = static_cast<int64_t>(b.key.size());
    return kSegmentEntryBytes +
           (b.key.size() > SegmentBound::kInlineKeyBytes ? key + kHeapBlockBytes : 0);
  };
  constexpr int64_t kListEntryBytes = 32;  // OwnedRanges::Range, in a vector
  const int64_t listed = kListEntryBytes + static_cast<int64_t>(start.key.size()) +
                         (start.key == end.key ? 0 : static_cast<int64_t>(end.key.size()));
  return bound(start) + bound(end) + listed;
}

bool LockTree::Equal(BoundRef a, BoundRef b) const { return !less_(a, b) && !less_(b, a); }

std::string LockTree::Describe(BoundRef start, BoundRef end) {
  auto side = [](BoundRef b) {
    if (b.edge != 0) return std::string(b.edge < 0 ? "-inf" : "+inf");
    return StrCat("'", EscapeBytes(b.key), "'");
  };
  return StrCat("[", side(start), ", ", side(end), "]");
}

Status LockTree::Acquire(TxnId owner, std::string_view lo, std::string_view hi, Mode mode,
                         absl::Duration timeout) {
  return AcquireRange(owner, &lo, &hi, mode, timeout);
}

Status LockTree::AcquireRange(TxnId owner, const std::string_view* lo, const std::string_view* hi,
                              Mode mode, absl::Duration timeout, const Account& account,
                              bool* granted) {
  if (granted != nullptr) *granted = false;
  if (owner == kNoTxn) return Status::InvalidArgument("lock owner is transaction 0");
  if (lo != nullptr && hi != nullptr && comparator_.Compare(*lo, *hi) > 0) {
    return Status::InvalidArgument(
        StrCat("lock range is empty: '", EscapeBytes(*lo), "' > '", EscapeBytes(*hi), "'"));
  }
  const BoundRef start = lo != nullptr ? BoundRef{*lo, false, 0} : BoundRef{{}, false, -1};
  const BoundRef end = hi != nullptr ? BoundRef{*hi, true, 0} : BoundRef{{}, false, 1};
  // Set at the first conflict, so that an uncontended request does not read the clock.
  absl::Time deadline = absl::InfiniteFuture();
  bool have_deadline = false;
  Waiter self{owner, start, end, mode, {}, {}, {}};
  bool registered = false;
  Status result;

  MutexLock lock(&mu_);
  if (TryGrantInGap(owner, start, end, mode, account)) {
    if (granted != nullptr) *granted = true;
    return Status::OK();
  }
  while (true) {
    self.holders.clear();
    self.queued.clear();
    const bool covered = Scan(owner, self.start, self.end, mode, &self.holders);
    if (!covered && timeout > absl::ZeroDuration()) QueueBehind(self, &self.queued);
    if (self.holders.empty() && self.queued.empty()) {
      if (!covered) {
        // Its edges from the last wait are stale; the grant may add edges towards it.
        if (registered) detector_.ClearWaits(owner);
        GrantRequest(owner, start, end, mode, account);
        if (granted != nullptr) *granted = true;
      }
      break;
    }
    if (!have_deadline) {
      deadline = absl::Now() + std::max(timeout, absl::ZeroDuration());
      have_deadline = true;
    }
    if (absl::Now() >= deadline) {
      result = Status::Busy(StrCat("lock wait for ", ModeName(mode), " ", Describe(start, end),
                                   " by transaction ", owner, " timed out; ",
                                   DescribeBlockers(self.holders, self.queued)));
      break;
    }
    std::vector<TxnId> requeued;
    const bool waits = detector_.SetWaits(owner, self.holders, &self.queued, this, &requeued);
    // Requests whose queue edges closed a cycle through this one look again.
    for (Waiter* w : waiters_) {
      if (std::find(requeued.begin(), requeued.end(), w->owner) == requeued.end()) continue;
      w->queued.clear();
      w->wake.Signal();
    }
    if (!waits) {
      result = Status::Deadlock(StrCat(
          "transaction ", owner, " waiting for ", ModeName(mode), " ", Describe(start, end), " ",
          DescribeBlockers(self.holders, self.queued), " would close a cycle of lock waits"));
      break;
    }
    if (self.holders.empty() && self.queued.empty()) {
      // It went before the queued requests that wait for it, and nothing holds the range.
      GrantRequest(owner, start, end, mode, account);
      if (granted != nullptr) *granted = true;
      break;
    }
    if (!registered) {
      waiters_.push_back(&self);
      registered = true;
    }
    mu_.WaitWithDeadline(&self.wake, deadline);
  }
  if (registered) {
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &self));
    detector_.ClearWaits(owner);
    // Requests queued behind this one no longer wait for it: had it been granted, they
    // wait for its lock now (Grant made them), else they go on without it.
    LeaveQueue(owner);
  }
  return result;
}

bool LockTree::TryGrantInGap(TxnId owner, BoundRef start, BoundRef end, Mode mode,
                             const Account& account) {
  if (!waiters_.empty()) return false;
  // The first bound after `start`: none may lie in [start, end], and the segment in force at
  // `start` (the one before it) must be unlocked.
  auto next = segments_.upper_bound(start);
  if (next != segments_.end() && !less_(end, next->first)) return false;
  if (next != segments_.begin()) {
    auto in_force = std::prev(next);
    if (!in_force->second.empty() || !less_(in_force->first, start)) return false;
  }
  // [start, end] lies inside an unlocked segment: it becomes the owner's, between two new
  // bounds. The map stays canonical: unlocked segments surround it.
  Holders held;
  if (mode == Mode::kWrite) {
    held.writer = owner;
  } else {
    held.readers.Insert(owner);
  }
  auto after = segments_.emplace_hint(next, Bound(end.key, end.after, end.edge), Holders{});
  segments_.emplace_hint(after, Bound(start.key, start.after, start.edge), std::move(held));
  RecordGrant(owner, start, end, account);
  return true;
}

void LockTree::GrantRequest(TxnId owner, BoundRef start, BoundRef end, Mode mode,
                            const Account& account) {
  Grant(owner, start, end, mode);
  RecordGrant(owner, start, end, account);
}

void LockTree::RecordGrant(TxnId owner, BoundRef start, BoundRef end, const Account& account) {
  OwnedRanges& ranges = owned_[owner];
  if (ranges.account == nullptr) ranges.account = account;
  const int64_t added = ranges.Add(start, end);
  if (memory_ != nullptr) memory_->Add(added);
  int64_t cost = ranges.bytes;
  if (ranges.account != nullptr) cost = ranges.account->fetch_add(added) + added;
  const bool over_count =
      ranges.size() >= (ranges.escalate_at != 0 ? ranges.escalate_at : escalate_at_);
  const bool over_memory =
      cost >= escalate_bytes_ && ranges.size() >= ranges.escalate_for_memory_at;
  if (over_count || over_memory) Escalate(owner);
}

void LockTree::QueueBehind(const Waiter& self, WaitList* queued) const {
  for (const Waiter* w : waiters_) {
    if (w == &self) break;  // the rest queued later
    if (w->owner == self.owner) continue;
    if (self.mode == Mode::kRead && w->mode == Mode::kRead) continue;
    if (!less_(w->start, self.end) || !less_(self.start, w->end)) continue;
    // A request waiting for this owner does not hold it up: it could never go first.
    if (w->WaitsFor(self.owner)) continue;
    if (std::find(self.holders.begin(), self.holders.end(), w->owner) != self.holders.end()) {
      continue;  // already waited for as a holder
    }
    AddUnique(queued, w->owner);
  }
}

void LockTree::LeaveQueue(TxnId owner) {
  for (Waiter* w : waiters_) {
    auto ahead = std::find(w->queued.begin(), w->queued.end(), owner);
    if (ahead == w->queued.end()) continue;
    w->queued.erase(ahead);
    detector_.RemoveWait(w->owner, owner);
    if (w->holders.empty() && w->queued.empty()) w->wake.Signal();
  }
}

bool LockTree::Scan(TxnId owner, BoundRef start, BoundRef end, Mode mode,
                    WaitList* blockers) const {
  auto it = segments_.upper_bound(start);
  bool covered = it != segments_.begin();
  if (covered) --it;  // the segment in force at `start`
  for (; it != segments_.end() && less_(it->first, end); ++it) {
    const Holders& h = it->second;
    if (h.writer != kNoTxn && h.writer != owner) AddUnique(blockers, h.writer);
    if (mode == Mode::kWrite) {
      for (TxnId reader : h.readers.ids()) {
        if (reader != owner) AddUnique(blockers, reader);
      }
      covered = covered && h.writer == owner;
    } else {
      covered = covered && (h.writer == owner || h.readers.Contains(owner));
    }
  }
  return covered;
}

void LockTree::Split(BoundRef at) {
  auto it = segments_.lower_bound(at);
  if (it != segments_.end() && Equal(Ref(it->first), at)) return;
  Holders in_force = it == segments_.begin() ? Holders{} : std::prev(it)->second;
  segments_.emplace_hint(it, Bound(at.key, at.after, at.edge), std::move(in_force));
}

void LockTree::Grant(TxnId owner, BoundRef start, BoundRef end, Mode mode) {
  Split(end);
  Split(start);
  for (auto it = segments_.find(start); it != segments_.end() && less_(it->first, end); ++it) {
    Holders& h = it->second;
    if (mode == Mode::kWrite) {
      h.writer = owner;
      h.readers.Clear();
    } else if (h.writer != owner) {
      h.readers.Insert(owner);
    }
  }
  Coalesce(start, end);

  // Waiters on an overlapping range that this lock conflicts with now wait for `owner` too,
  // as a holder (those queued behind its request did already, as a request).
  for (Waiter* w : waiters_) {
    if (w->owner == owner) continue;
    if (mode == Mode::kRead && w->mode == Mode::kRead) continue;
    if (!less_(w->start, end) || !less_(start, w->end)) continue;
    if (std::find(w->holders.begin(), w->holders.end(), owner) != w->holders.end()) continue;
    auto ahead = std::find(w->queued.begin(), w->queued.end(), owner);
    if (ahead != w->queued.end()) w->queued.erase(ahead);
    w->holders.push_back(owner);
    detector_.AddWait(w->owner, owner);
  }
}

void LockTree::Coalesce(BoundRef start, BoundRef end) {
  auto it = segments_.lower_bound(start);
  if (it != segments_.begin()) --it;
  Holders previous = it == segments_.begin() ? Holders{} : std::prev(it)->second;
  while (it != segments_.end()) {
    bool past_end = less_(end, it->first);
    if (it->second == previous) {
      it = segments_.erase(it);
    } else {
      previous = it->second;
      ++it;
    }
    if (past_end) break;
  }
}

void LockTree::Escalate(TxnId owner) {
  // A bound copied out of the map, which the grants below rearrange.
  struct KeptBound {
    std::string key;
    bool after;
    int8_t edge;
    explicit KeptBound(BoundRef b) : key(b.key), after(b.after), edge(b.edge) {}
    BoundRef ref() const { return BoundRef{key, after, edge}; }
  };
  struct Run {
    KeptBound start;
    KeptBound end;
    Mode mode;
  };
  // The runs to fill: two or more segments the owner alone holds, with only unlocked
  // segments between them; a write range if it writes any of them (its sole reads there
  // upgrade, as it may), else a read range. Every segment the owner holds ends at a bound
  // (the last segment, to +inf, is unlocked).
  std::vector<Run> runs;
  bool open = false;
  Mode run_mode = Mode::kWrite;
  BoundRef run_start;
  BoundRef run_end;
  size_t run_pieces = 0;
  auto close = [&] {
    if (open && run_pieces >= 2)
      runs.push_back(Run{KeptBound(run_start), KeptBound(run_end), run_mode});
    open = false;
  };
  for (auto it = segments_.begin(); it != segments_.end(); ++it) {
    const Holders& h = it->second;
    if (h.empty()) continue;  // an unlocked gap the open run may bridge
    std::span<const TxnId> readers = h.readers.ids();
    const bool writes = h.writer == owner;
    const bool reads_alone = h.writer == kNoTxn && readers.size() == 1 && readers[0] == owner;
    if (!writes && !reads_alone) {
      close();
      continue;
    }
    auto next = std::next(it);
    assert(next != segments_.end());
    if (!open) {
      open = true;
      run_mode = Mode::kRead;
      run_start = Ref(it->first);
      run_pieces = 0;
    }
    if (writes) run_mode = Mode::kWrite;
    run_end = Ref(next->first);
    ++run_pieces;
  }
  close();
  for (const Run& run : runs) Grant(owner, run.start.ref(), run.end.ref(), run.mode);

  // The owner's list becomes the maximal ranges of segments it holds, in whatever mode.
  OwnedRanges rebuilt;
  open = false;
  for (auto it = segments_.begin(); it != segments_.end(); ++it) {
    const Holders& h = it->second;
    const bool held = h.writer == owner || h.readers.Contains(owner);
    if (held && !open) {
      open = true;
      run_start = Ref(it->first);
    } else if (!held && open) {
      open = false;
      rebuilt.Add(run_start, Ref(it->first));
    }
  }
  assert(!open);
  rebuilt.escalate_at = std::max(escalate_at_, 2 * rebuilt.size());
  rebuilt.escalate_for_memory_at = std::max(kMinRangesToEscalate, 2 * rebuilt.size());
  OwnedRanges& ranges = owned_[owner];
  if (memory_ != nullptr) memory_->Add(rebuilt.bytes - ranges.bytes);
  if (ranges.account != nullptr) ranges.account->fetch_add(rebuilt.bytes - ranges.bytes);
  rebuilt.account = std::move(ranges.account);
  ranges = std::move(rebuilt);
  ++escalations_;
}

void LockTree::ReleaseAll(TxnId owner) {
  MutexLock lock(&mu_);
  auto owned = owned_.find(owner);
  if (owned == owned_.end()) return;
  const OwnedRanges& ranges = owned->second;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const BoundRef start = ranges.start(i);
    const BoundRef end = ranges.end(i);
    if (TryReleaseAlone(owner, start, end)) continue;
    auto it = segments_.upper_bound(start);
    if (it != segments_.begin()) --it;
    for (; it != segments_.end() && less_(it->first, end); ++it) {
      Holders& h = it->second;
      if (h.writer == owner) h.writer = kNoTxn;
      h.readers.Erase(owner);
    }
    Coalesce(start, end);
  }
  if (memory_ != nullptr) memory_->Add(-ranges.bytes);
  if (ranges.account != nullptr) ranges.account->fetch_sub(ranges.bytes);
  owned_.erase(owned);

  // Its locks are gone; a waiter with nothing left to wait for looks again. (One that still
  // waits for a request queued ahead of it, the owner's own included, stays asleep.)
  for (Waiter* w : waiters_) {
    auto holder = std::find(w->holders.begin(), w->holders.end(), owner);
    if (holder == w->holders.end()) continue;
    w->holders.erase(holder);
    if (std::find(w->queued.begin(), w->queued.end(), owner) == w->queued.end()) {
      detector_.RemoveWait(w->owner, owner);
    }
    if (w->holders.empty() && w->queued.empty()) w->wake.Signal();
  }
}

bool LockTree::TryReleaseAlone(TxnId owner, BoundRef start, BoundRef end) {
  auto first = segments_.find(start);
  if (first == segments_.end()) return false;
  auto second = std::next(first);
  if (second == segments_.end() || !Equal(Ref(second->first), end)) return false;
  if (!second->second.empty()) return false;
  if (first != segments_.begin() && !std::prev(first)->second.empty()) return false;
  const Holders& h = first->second;
  const std::span<const TxnId> readers = h.readers.ids();
  const bool alone = h.writer == owner
                         ? readers.empty()
                         : h.writer == kNoTxn && readers.size() == 1 && readers[0] == owner;
  if (!alone) return false;
  segments_.erase(first, std::next(second));
  return true;
}

bool LockTree::ReleaseNewestKey(TxnId owner, std::string_view key) {
  MutexLock lock(&mu_);
  auto owned = owned_.find(owner);
  if (owned == owned_.end() || owned->second.size() == 0) return false;
  OwnedRanges& ranges = owned->second;
  const BoundRef start{key, false, 0};
  const BoundRef end{key, true, 0};
  const size_t newest = ranges.size() - 1;
  if (!Equal(ranges.start(newest), start) || !Equal(ranges.end(newest), end)) return false;
  // Held by no one else (it was granted) and by the owner only through this range; the
  // owner's neighbouring ranges may have been merged with it, hence the splits.
  Split(end);
  Split(start);
  for (auto it = segments_.find(start); it != segments_.end() && less_(it->first, end); ++it) {
    Holders& h = it->second;
    if (h.writer == owner) h.writer = kNoTxn;
    h.readers.Erase(owner);
  }
  Coalesce(start, end);
  const int64_t freed = ranges.RemoveNewest();
  if (memory_ != nullptr) memory_->Add(-freed);
  if (ranges.account != nullptr) ranges.account->fetch_sub(freed);
  if (ranges.size() == 0) owned_.erase(owned);

  // A waiter that met the owner only on this key has one holder fewer; it looks again once
  // nothing is left to wait for. (The owner may still hold the rest of its range.)
  for (Waiter* w : waiters_) {
    auto holder = std::find(w->holders.begin(), w->holders.end(), owner);
    if (holder == w->holders.end()) continue;
    WaitList blockers;
    Scan(w->owner, w->start, w->end, w->mode, &blockers);
    if (std::find(blockers.begin(), blockers.end(), owner) != blockers.end()) continue;
    w->holders.erase(holder);
    if (std::find(w->queued.begin(), w->queued.end(), owner) == w->queued.end()) {
      detector_.RemoveWait(w->owner, owner);
    }
    if (w->holders.empty() && w->queued.empty()) w->wake.Signal();
  }
  return true;
}

bool LockTree::Holds(TxnId owner, std::string_view lo, std::string_view hi, Mode mode) const {
  if (comparator_.Compare(lo, hi) > 0) return false;
  ReaderMutexLock lock(&mu_);
  WaitList ignored;
  return Scan(owner, BoundRef{lo, false}, BoundRef{hi, true}, mode, &ignored);
}

int64_t LockTree::OwnedRanges::Add(BoundRef start, BoundRef end) {
  Range r;
  r.offset = keys_.size();
  r.start_size = static_cast<uint32_t>(start.key.size());
  r.end_size = static_cast<uint32_t>(end.key.size());
  r.start_after = start.after;
  r.end_after = end.after;
  r.start_edge = start.edge;
  r.end_edge = end.edge;
  r.shared_key = start.key == end.key;
  const int64_t added = RangeBytes(start, end);
  bytes += added;
  keys_.append(start.key);
  if (!r.shared_key) keys_.append(end.key);
  ranges_.push_back(r);
  return added;
}

int64_t LockTree::OwnedRanges::RemoveNewest() {
  const int64_t freed = RangeBytes(start(ranges_.size() - 1), end(ranges_.size() - 1));
  keys_.resize(ranges_.back().offset);
  ranges_.pop_back();
  bytes -= freed;
  return freed;
}

LockTree::BoundRef LockTree::OwnedRanges::start(size_t i) const {
  const Range& r = ranges_[i];
  return BoundRef{std::string_view(keys_).substr(r.offset, r.start_size), r.start_after,
                  r.start_edge};
}

LockTree::BoundRef LockTree::OwnedRanges::end(size_t i) const {
  const Range& r = ranges_[i];
  const uint64_t offset = r.shared_key ? r.offset : r.offset + r.start_size;
  return BoundRef{std::string_view(keys_).substr(offset, r.end_size), r.end_after, r.end_edge};
}

size_t LockTree::owner_count() const {
  ReaderMutexLock lock(&mu_);
  return owned_.size();
}

size_t LockTree::bound_count() const {
  ReaderMutexLock lock(&mu_);
  return segments_.size();
}

size_t LockTree::waiter_count() const {
  ReaderMutexLock lock(&mu_);
  return waiters_.size();
}

size_t LockTree::escalation_count() const {
  ReaderMutexLock lock(&mu_);
  return escalations_;
}

}  // namespace fern
