#include "cachetable/outside_memory.h"

#include <cassert>
#include <utility>

namespace fern {

OutsideMemory::OutsideMemory(size_t budget_bytes) : cap_(budget_bytes / kShareDivisor) {}

bool OutsideMemory::TryCharge(size_t bytes) {
  MutexLock lock(&mu_);
  if (bytes > cap_ - charged_) return false;
  charged_ += bytes;
  if (size_bytes_ != nullptr) {
    size_bytes_->fetch_add(bytes, std::memory_order_relaxed);
    if (grew_) grew_();
  }
  return true;
}

bool OutsideMemory::Fits(size_t bytes) const {
  MutexLock lock(&mu_);
  return bytes <= cap_ - charged_;
}

void OutsideMemory::Release(size_t bytes) {
  MutexLock lock(&mu_);
  assert(bytes <= charged_);
  charged_ -= bytes;
  if (size_bytes_ != nullptr) size_bytes_->fetch_sub(bytes, std::memory_order_relaxed);
}

size_t OutsideMemory::charged() const {
  MutexLock lock(&mu_);
  return charged_;
}

void OutsideMemory::Attach(std::atomic<size_t>* size_bytes, std::function<void()> grew) {
  MutexLock lock(&mu_);
  assert(size_bytes_ == nullptr);
  size_bytes_ = size_bytes;
  grew_ = std::move(grew);
  size_bytes_->fetch_add(charged_, std::memory_order_relaxed);
}

void OutsideMemory::Detach() {
  MutexLock lock(&mu_);
  if (size_bytes_ == nullptr) return;
  size_bytes_->fetch_sub(charged_, std::memory_order_relaxed);
  size_bytes_ = nullptr;
  grew_ = nullptr;
}

}  // namespace fern
