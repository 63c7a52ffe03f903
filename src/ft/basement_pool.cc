#include "ft/basement_pool.h"

#include <utility>

namespace fern {

BasementPool::BasementPool(size_t limit_bytes, size_t max_basement_bytes)
    : limit_bytes_(limit_bytes), max_basement_bytes_(max_basement_bytes) {}

std::unique_ptr<Basement> BasementPool::Take() {
  {
    MutexLock lock(&mu_);
    if (!kept_.empty()) {
      std::unique_ptr<Basement> basement = std::move(kept_.back());
      kept_.pop_back();
      held_bytes_ -= basement->memory_bytes();
      ++reused_;
      return basement;
    }
  }
  return std::make_unique<Basement>();
}

void BasementPool::Recycle(std::unique_ptr<Basement> basement) {
  if (basement == nullptr) return;
  basement->ClearKeepingArena();  // outside the lock; keeps the memory
  const size_t bytes = basement->memory_bytes();
  if (bytes <= max_basement_bytes_) {
    MutexLock lock(&mu_);
    if (held_bytes_ + bytes <= limit_bytes_) {
      held_bytes_ += bytes;
      kept_.push_back(std::move(basement));
      return;
    }
  }
  // Freed here, outside the lock.
}

size_t BasementPool::held_bytes() const {
  MutexLock lock(&mu_);
  return held_bytes_;
}

size_t BasementPool::held_count() const {
  MutexLock lock(&mu_);
  return kept_.size();
}

uint64_t BasementPool::reused() const {
  MutexLock lock(&mu_);
  return reused_;
}

}  // namespace fern
