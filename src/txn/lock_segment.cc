#include "txn/lock_segment.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace fern {

// ---- SegmentBound -------------------------------------------------------------------------

SegmentBound::SegmentBound(std::string_view key, bool after, int8_t edge)
    : side_(static_cast<uint8_t>((after ? kAfterBit : 0) | ((edge + 1) << kEdgeShift))) {
  assert(edge >= -1 && edge <= 1);
  if (key.size() <= kInlineKeyBytes) {
    size_ = static_cast<uint8_t>(key.size());
    if (!key.empty()) std::memcpy(bytes_, key.data(), key.size());
    return;
  }
  size_ = kHeapKey;
  char* copy = new char[key.size()];
  std::memcpy(copy, key.data(), key.size());
  const auto size = static_cast<uint32_t>(key.size());  // keys are at most kMaxKeyBytes
  std::memcpy(bytes_, &copy, sizeof(copy));
  std::memcpy(bytes_ + sizeof(copy), &size, sizeof(size));
}

SegmentBound::SegmentBound(SegmentBound&& other) noexcept : size_(other.size_), side_(other.side_) {
  std::memcpy(bytes_, other.bytes_, sizeof(bytes_));
  other.size_ = 0;  // the heap key, if any, is this one's now
}

SegmentBound& SegmentBound::operator=(const SegmentBound& other) {
  if (this != &other) *this = SegmentBound(other);
  return *this;
}

SegmentBound& SegmentBound::operator=(SegmentBound&& other) noexcept {
  if (this == &other) return *this;
  FreeHeapKey();
  std::memcpy(bytes_, other.bytes_, sizeof(bytes_));
  size_ = other.size_;
  side_ = other.side_;
  other.size_ = 0;
  return *this;
}

std::string_view SegmentBound::key() const {
  if (!on_heap()) return std::string_view(bytes_, size_);
  const char* data;
  uint32_t size;
  std::memcpy(&data, bytes_, sizeof(data));
  std::memcpy(&size, bytes_ + sizeof(data), sizeof(size));
  return std::string_view(data, size);
}

void SegmentBound::FreeHeapKey() {
  if (!on_heap()) return;
  char* data;
  std::memcpy(&data, bytes_, sizeof(data));
  delete[] data;
  size_ = 0;
}

// ---- ReaderIds ----------------------------------------------------------------------------

ReaderIds::ReaderIds(const ReaderIds& other) { Assign(other.ids()); }

ReaderIds& ReaderIds::operator=(const ReaderIds& other) {
  if (this != &other) Assign(other.ids());
  return *this;
}

ReaderIds& ReaderIds::operator=(ReaderIds&& other) noexcept {
  if (this == &other) return *this;
  Clear();
  word_ = other.word_;
  other.word_ = 0;
  return *this;
}

ReaderIds::HeapIds* ReaderIds::heap() const {
  return reinterpret_cast<HeapIds*>(static_cast<uintptr_t>(word_ & ~kHeapTag));
}

std::span<const TxnId> ReaderIds::ids() const {
  if (word_ == 0) return {};
  if (on_heap()) return std::span<const TxnId>(*heap());
  return std::span<const TxnId>(&word_, 1);
}

bool ReaderIds::Contains(TxnId id) const {
  const std::span<const TxnId> all = ids();
  return std::binary_search(all.begin(), all.end(), id);
}

void ReaderIds::Insert(TxnId id) {
  assert(id != kNoTxn);
  if (word_ == 0 && (id & kHeapTag) == 0) {
    word_ = id;
    return;
  }
  if (on_heap()) {
    HeapIds* all = heap();
    auto at = std::lower_bound(all->begin(), all->end(), id);
    if (at == all->end() || *at != id) all->insert(at, id);
    return;
  }
  if (word_ == id) return;
  HeapIds merged;
  if (word_ != 0) merged.push_back(word_);
  merged.insert(std::lower_bound(merged.begin(), merged.end(), id), id);
  Assign(merged);
}

void ReaderIds::Erase(TxnId id) {
  if (!on_heap()) {
    if (word_ == id) word_ = 0;
    return;
  }
  HeapIds* all = heap();
  auto at = std::lower_bound(all->begin(), all->end(), id);
  if (at == all->end() || *at != id) return;
  all->erase(at);
  if (all->size() <= 1) Assign(*all);  // back to the in-place form where it fits
}

void ReaderIds::Clear() {
  if (on_heap()) delete heap();
  word_ = 0;
}

void ReaderIds::Assign(std::span<const TxnId> ids) {
  // Build the new representation before freeing the old: `ids` may point into it.
  uint64_t word = 0;
  if (ids.size() == 1 && (ids[0] & kHeapTag) == 0) {
    word = ids[0];
  } else if (!ids.empty()) {
    auto* all = new HeapIds(ids.begin(), ids.end());
    word = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(all)) | kHeapTag;
  }
  Clear();
  word_ = word;
}

bool operator==(const ReaderIds& a, const ReaderIds& b) {
  const std::span<const TxnId> x = a.ids();
  const std::span<const TxnId> y = b.ids();
  return std::equal(x.begin(), x.end(), y.begin(), y.end());
}

}  // namespace fern
