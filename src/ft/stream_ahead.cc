#include "ft/stream_ahead.h"

#include <utility>

namespace fern {

namespace {

// Spare basements kept for their memory: one per queue slot and the one taken. A basement
// grown past kMaxSpareBytes (an unusually large basement) is freed instead.
constexpr size_t kMaxSpares = StreamAhead::kMaxQueued + 1;
constexpr size_t kMaxSpareBytes = size_t{256} << 10;

// How long a Take waits (spinning) for a decode in progress before it decodes the basement
// itself: about three decodes of a default-sized basement (~13 us here). The task's thread
// may have lost its core (to kernel writeback after another process, in fernbench's full
// runs): sleeping until it came back made scans twice as slow as reading alone.
constexpr absl::Duration kMaxSpin = absl::Microseconds(40);

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

StreamAhead::~StreamAhead() {
  MutexLock lock(&mu_);
  // The task shares ownership, so none runs: nothing is being decoded.
  if (memory_ != nullptr && charged_ > 0) memory_->Release(charged_);
  charged_ = 0;
}

void StreamAhead::Advance(std::string_view from) {
  MutexLock lock(&mu_);
  has_position_ = true;
  position_.assign(from);
  while (!queue_.empty() &&
         PassedLocked(queue_.front().has_upper ? &queue_.front().upper : nullptr)) {
    DropFrontLocked();
  }
}

const Basement* StreamAhead::Take(uint64_t frame_id) {
  MutexLock lock(&mu_);
  for (bool waited = false;;) {
    if (current_.held.rows != nullptr && current_.frame_id == frame_id) {
      return current_.held.rows.get();
    }
    size_t found = 0;
    while (found < queue_.size() && queue_[found].frame_id != frame_id) ++found;
    if (found < queue_.size()) {
      // The scan reads in key order, so the copies decoded before this one are behind it.
      for (size_t i = 0; i < found; ++i) DropFrontLocked();
      queued_bytes_ -= queue_.front().held.charged;
      RecycleLocked(std::move(current_.held));
      current_ = std::move(queue_.front());
      queue_.pop_front();
      refused_ = false;
      taken_.Signal();
      return current_.held.rows.get();
    }
    if (decoding_ != frame_id || waited) return nullptr;
    // The task is decoding it now: waiting a little costs less than decoding it twice. It
    // runs on another core and ends within microseconds, sooner than a sleeping thread is
    // woken, so spin; if it does not end in time, the scan decodes the basement itself (the
    // task's copy, behind the scan by then, is dropped when it arrives).
    waited = true;
    const uint64_t ended = decodes_ended_.load(std::memory_order_relaxed);
    mu_.Unlock();
    const absl::Time deadline = absl::Now() + kMaxSpin;
    for (int spin = 1; decodes_ended_.load(std::memory_order_acquire) == ended; ++spin) {
      CpuRelax();
      if (spin % 32 == 0 && absl::Now() > deadline) break;
    }
    mu_.Lock();
  }
}

bool StreamAhead::WantsTask() const {
  MutexLock lock(&mu_);
  return !task_running_ && queue_.size() < kMaxQueued / 2;
}

void StreamAhead::Restart() {
  MutexLock lock(&mu_);
  ++generation_;
  decoding_ = 0;
  has_position_ = false;
  while (!queue_.empty()) DropFrontLocked();
  RecycleLocked(std::move(current_.held));
  current_.frame_id = 0;
  taken_.Signal();  // the task stops
}

bool StreamAhead::BeginTask(uint64_t* generation) {
  MutexLock lock(&mu_);
  if (task_running_) return false;
  task_running_ = true;
  refused_ = false;
  *generation = generation_;
  return true;
}

void StreamAhead::EndTask() {
  MutexLock lock(&mu_);
  task_running_ = false;
}

bool StreamAhead::HasRoom(uint64_t generation) const {
  MutexLock lock(&mu_);
  return generation == generation_ && HasRoomLocked();
}

bool StreamAhead::AwaitRoom(uint64_t generation, absl::Duration timeout) {
  MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (generation == generation_ && !HasRoomLocked()) {
    if (mu_.WaitWithDeadline(&taken_, deadline)) break;
  }
  return generation == generation_ && HasRoomLocked();
}

bool StreamAhead::NextKey(uint64_t generation, std::string* key) const {
  MutexLock lock(&mu_);
  if (generation != generation_) return false;
  if (has_position_ && cmp_->Compare(*key, position_) < 0) key->assign(position_);
  return true;
}

bool StreamAhead::Wants(uint64_t generation, uint64_t frame_id, const std::string* upper,
                        size_t raw_bytes) {
  MutexLock lock(&mu_);
  if (generation != generation_ || !HasRoomLocked() || PassedLocked(upper)) return false;
  if (current_.held.rows != nullptr && current_.frame_id == frame_id) return false;
  for (const Copy& copy : queue_) {
    if (copy.frame_id == frame_id) return false;
  }
  // A spare's memory is charged already; a fresh basement needs about its raw size.
  if (memory_ != nullptr && spare_.empty() && !memory_->Fits(raw_bytes)) {
    refused_ = true;
    return false;
  }
  // An empty queue means the scan keeps up with the task and will want this basement
  // before the task could finish it: leave it to the scan and decode the next one, so that
  // both decode at once instead of the scan waiting. Never twice in a row.
  if (queue_.empty() && !left_to_scan_) {
    left_to_scan_ = true;
    return false;
  }
  left_to_scan_ = false;
  return true;
}

std::unique_ptr<Basement> StreamAhead::BeginDecode(uint64_t frame_id) {
  MutexLock lock(&mu_);
  decoding_ = frame_id;
  if (spare_.empty()) return std::make_unique<Basement>();
  Held held = std::move(spare_.back());
  spare_.pop_back();
  decoding_charged_ = held.charged;
  return std::move(held.rows);
}

void StreamAhead::EndDecode(uint64_t generation, uint64_t frame_id, const std::string* upper,
                            std::unique_ptr<Basement> rows) {
  MutexLock lock(&mu_);
  if (decoding_ == frame_id) decoding_ = 0;
  decodes_ended_.fetch_add(1, std::memory_order_release);
  Held held{std::move(rows), std::exchange(decoding_charged_, 0)};
  if (held.rows == nullptr) {
    ReleaseLocked(held.charged);
    return;
  }
  // The charge follows the memory the decode left the basement with.
  const size_t bytes = held.rows->memory_bytes();
  if (bytes > held.charged) {
    if (memory_ != nullptr && !memory_->TryCharge(bytes - held.charged)) {
      refused_ = true;
      ReleaseLocked(held.charged);
      return;  // the copy is freed
    }
    charged_ += bytes - held.charged;
  } else {
    ReleaseLocked(held.charged - bytes);
  }
  held.charged = bytes;
  if (generation == generation_ && !PassedLocked(upper)) {
    queued_bytes_ += held.charged;
    Copy copy;
    copy.frame_id = frame_id;
    copy.has_upper = upper != nullptr;
    if (upper != nullptr) copy.upper = *upper;
    copy.held = std::move(held);
    queue_.push_back(std::move(copy));
  } else {
    RecycleLocked(std::move(held));
  }
}

size_t StreamAhead::queued() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

size_t StreamAhead::charged() const {
  MutexLock lock(&mu_);
  return charged_;
}

bool StreamAhead::HasRoomLocked() const {
  return !refused_ && queue_.size() < kMaxQueued && queued_bytes_ < kMaxQueuedBytes;
}

bool StreamAhead::PassedLocked(const std::string* upper) const {
  return has_position_ && upper != nullptr && cmp_->Compare(*upper, position_) <= 0;
}

void StreamAhead::DropFrontLocked() {
  queued_bytes_ -= queue_.front().held.charged;
  RecycleLocked(std::move(queue_.front().held));
  queue_.pop_front();
  refused_ = false;
  taken_.Signal();
}

void StreamAhead::RecycleLocked(Held held) {
  if (held.rows == nullptr) return;
  if (spare_.size() < kMaxSpares) {
    held.rows->ClearKeepingArena();
    // A spare stays charged for what it held: its arena keeps that memory.
    if (held.rows->memory_bytes() <= kMaxSpareBytes) {
      spare_.push_back(std::move(held));
      return;
    }
  }
  ReleaseLocked(held.charged);
}

void StreamAhead::ReleaseLocked(size_t bytes) {
  if (bytes == 0) return;
  charged_ -= bytes;
  if (memory_ != nullptr) memory_->Release(bytes);
}

}  // namespace fern
