#include "ft/block_allocator.h"

#include <cassert>
#include <iterator>

namespace fern {

BlockAllocator::BlockAllocator(uint64_t reserved_bytes)
    : reserved_(reserved_bytes == 0 ? 0 : AlignedSize(reserved_bytes)), file_end_(reserved_) {}

uint64_t BlockAllocator::AlignedSize(uint64_t size) {
  if (size == 0) return kAlignment;
  return (size / kAlignment + (size % kAlignment != 0 ? 1 : 0)) * kAlignment;
}

void BlockAllocator::InsertFree(uint64_t offset, uint64_t size) {
  free_by_offset_.emplace(offset, size);
  free_by_size_.emplace(size, offset);
  free_bytes_ += size;
}

void BlockAllocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_bytes_ -= it->second;
  free_by_offset_.erase(it);
}

uint64_t BlockAllocator::Allocate(uint64_t size) {
  const uint64_t aligned = AlignedSize(size);
  auto fit = free_by_size_.lower_bound({aligned, 0});
  if (fit == free_by_size_.end()) {
    const uint64_t offset = file_end_;
    file_end_ += aligned;
    return offset;
  }
  const auto [hole_size, offset] = *fit;
  EraseFree(free_by_offset_.find(offset));
  if (hole_size > aligned) InsertFree(offset + aligned, hole_size - aligned);
  return offset;
}

BlockAllocator::Placement BlockAllocator::AllocateSplittable(uint64_t size) {
  const uint64_t aligned = AlignedSize(size);
  if (free_by_size_.empty()) return Placement{Allocate(size), 0, 0};
  const auto [largest, head_offset] = *free_by_size_.rbegin();
  if (largest >= aligned || largest < kMinSplitHead) return Placement{Allocate(size), 0, 0};
  EraseFree(free_by_offset_.find(head_offset));
  return Placement{head_offset, largest, Allocate(aligned - largest)};
}

BlockAllocator::Placement BlockAllocator::AllocateSplittableBelow(uint64_t size, uint64_t limit) {
  if (const uint64_t offset = AllocateBelow(size, limit); offset != 0) return {offset, 0, 0};
  const uint64_t aligned = AlignedSize(size);
  // The largest hole wholly below the limit (none holds the whole block).
  for (auto it = free_by_size_.rbegin(); it != free_by_size_.rend(); ++it) {
    const auto [hole_size, head_offset] = *it;
    if (hole_size < kMinSplitHead) break;
    if (head_offset > limit || hole_size > limit - head_offset) continue;
    EraseFree(free_by_offset_.find(head_offset));
    const uint64_t tail_offset = AllocateBelow(aligned - hole_size, limit);
    if (tail_offset == 0) {
      Free(head_offset, hole_size);  // back as it was
      return {};
    }
    return {head_offset, hole_size, tail_offset};
  }
  return {};
}

void BlockAllocator::FreeSplittable(const Placement& placement, uint64_t size) {
  if (placement.head_bytes == 0) {
    Free(placement.offset, size);
    return;
  }
  // The tail first: when it ends the file, the head's hole may then touch the end too.
  Free(placement.tail_offset, size - placement.head_bytes);
  Free(placement.offset, placement.head_bytes);
}

uint64_t BlockAllocator::AllocateBelow(uint64_t size, uint64_t limit) {
  const uint64_t aligned = AlignedSize(size);
  for (auto fit = free_by_size_.lower_bound({aligned, 0}); fit != free_by_size_.end(); ++fit) {
    const auto [hole_size, offset] = *fit;
    if (offset > limit || aligned > limit - offset) continue;
    EraseFree(free_by_offset_.find(offset));
    if (hole_size > aligned) InsertFree(offset + aligned, hole_size - aligned);
    return offset;
  }
  return 0;
}

bool BlockAllocator::TryFree(uint64_t offset, uint64_t size) {
  const uint64_t aligned = AlignedSize(size);
  if (offset < reserved_ || offset % kAlignment != 0 || offset > file_end_ ||
      aligned > file_end_ - offset) {
    return false;
  }
  uint64_t start = offset;
  uint64_t end = offset + aligned;
  auto next = free_by_offset_.lower_bound(offset);
  if (next != free_by_offset_.end() && next->first < end) return false;
  if (next != free_by_offset_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second > offset) return false;
  }
  // The range is allocated: merge it with the holes it touches.
  if (next != free_by_offset_.end() && next->first == end) {
    end += next->second;
    auto after = std::next(next);
    EraseFree(next);
    next = after;
  }
  if (next != free_by_offset_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      EraseFree(prev);
    }
  }
  if (end == file_end_) {
    file_end_ = start;
  } else {
    InsertFree(start, end - start);
  }
  return true;
}

void BlockAllocator::Free(uint64_t offset, uint64_t size) {
  [[maybe_unused]] const bool freed = TryFree(offset, size);
  assert(freed && "BlockAllocator::Free of a range that is not allocated");
}

bool BlockAllocator::TryMarkAllocated(uint64_t offset, uint64_t size) {
  const uint64_t aligned = AlignedSize(size);
  if (offset < reserved_ || offset % kAlignment != 0 || aligned > UINT64_MAX - offset) {
    return false;
  }
  const uint64_t end = offset + aligned;
  if (offset >= file_end_) {
    // Past everything allocated so far: the gap below it becomes a hole. No hole touches
    // file_end_, so the gap needs no merging.
    if (offset > file_end_) InsertFree(file_end_, offset - file_end_);
    file_end_ = end;
    return true;
  }
  // Below file_end_: the range must lie inside one hole, which it splits.
  auto hole = free_by_offset_.upper_bound(offset);
  if (hole == free_by_offset_.begin()) return false;
  hole = std::prev(hole);
  const uint64_t hole_start = hole->first;
  const uint64_t hole_end = hole->first + hole->second;
  if (hole_end < end) return false;
  EraseFree(hole);
  if (hole_start < offset) InsertFree(hole_start, offset - hole_start);
  if (end < hole_end) InsertFree(end, hole_end - end);
  return true;
}

void BlockAllocator::MarkAllocated(uint64_t offset, uint64_t size) {
  [[maybe_unused]] const bool marked = TryMarkAllocated(offset, size);
  assert(marked && "BlockAllocator::MarkAllocated of a range that is not free");
}

}  // namespace fern
