#include "ft/block_table.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "util/checksum.h"
#include "util/coding.h"
#include "util/strings.h"

namespace fern {

namespace {

constexpr char kMagic[4] = {'F', 'T', 'B', 'T'};
constexpr size_t kPrefixBytes = 16;      // magic, version, count
constexpr size_t kEntryBytes = 24;       // version 1: number, offset, size
constexpr size_t kSplitEntryBytes = 40;  // version 2: also head bytes, tail offset
constexpr size_t kChecksumBytes = 8;

Status TableCorruption(std::string_view what) {
  return Status::Corruption(StrCat("block table: ", what));
}

}  // namespace

uint64_t BlockLocation::AlignedEnd() const {
  if (!split()) return offset + BlockAllocator::AlignedSize(size);
  return std::max(offset + head_bytes,
                  tail_offset + BlockAllocator::AlignedSize(size - head_bytes));
}

uint64_t BlockLocation::AlignedBytes() const {
  if (!split()) return BlockAllocator::AlignedSize(size);
  return head_bytes + BlockAllocator::AlignedSize(size - head_bytes);
}

void BlockTable::Translation::Set(BlockNum b, BlockLocation loc) {
  if (loc.offset == 0) {
    locations.erase(b);
  } else {
    locations[b] = loc;
  }
}

BlockNum BlockTable::FreeNumbers::TakeLowest() {
  auto it = ranges_.begin();
  const auto [first, last] = *it;
  ranges_.erase(it);
  if (first < last) ranges_.emplace(first + 1, last);
  return first;
}

void BlockTable::FreeNumbers::Insert(BlockNum b) { InsertRange(b, b); }

void BlockTable::FreeNumbers::InsertRange(BlockNum first, BlockNum last) {
  // Merge with a range ending just below and one starting just above.
  auto next = ranges_.lower_bound(first);
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->second + 1 == first) {
      first = prev->first;
      ranges_.erase(prev);
    }
  }
  next = ranges_.lower_bound(first);
  if (next != ranges_.end() && next->first == last + 1) {
    last = next->second;
    ranges_.erase(next);
  }
  ranges_.emplace(first, last);
}

BlockTable::BlockTable() : allocator_(kReservedFileBytes) {}

bool BlockTable::InUseLocked(BlockNum b) const {
  auto it = number_state_.find(b);
  return it != number_state_.end() && it->second == NumberState::kInUse;
}

bool BlockTable::IsAllocated(BlockNum b) const {
  MutexLock lock(&mu_);
  return InUseLocked(b);
}

BlockNum BlockTable::AllocateBlockNum() {
  MutexLock lock(&mu_);
  const BlockNum b = free_numbers_.empty() ? next_number_++ : free_numbers_.TakeLowest();
  number_state_[b] = NumberState::kInUse;
  return b;
}

BlockLocation BlockTable::AllocateLocked(uint64_t size) {
  const BlockAllocator::Placement p = allocator_.AllocateSplittable(size);
  return BlockLocation{p.offset, size, p.head_bytes, p.tail_offset};
}

void BlockTable::FreeLocked(const BlockLocation& loc) {
  allocator_.FreeSplittable(BlockAllocator::Placement{loc.offset, loc.head_bytes, loc.tail_offset},
                            loc.size);
}

void BlockTable::ReleaseIfUnnamedLocked(BlockNum b, BlockLocation loc) {
  if (loc.offset == 0) return;
  if (current_.at(b).offset == loc.offset) return;
  if (checkpointed_.at(b).offset == loc.offset) return;
  if (checkpoint_in_progress_ && in_progress_.at(b).offset == loc.offset) return;
  FreeLocked(loc);
}

void BlockTable::FreeBlockNum(BlockNum b) {
  MutexLock lock(&mu_);
  if (!InUseLocked(b)) {
    assert(false && "BlockTable::FreeBlockNum of a number that is not allocated");
    return;
  }
  BlockLocation old = current_.at(b);
  if (old.offset != 0) {
    current_.Set(b, BlockLocation{});
    ReleaseIfUnnamedLocked(b, old);
    --written_blocks_;
  }
  const bool named =
      checkpointed_.at(b).offset != 0 ||
      (checkpoint_in_progress_ && (in_progress_.at(b).offset != 0 || clone_writes_.count(b) != 0));
  if (named) {
    number_state_[b] = NumberState::kRetired;
    retired_numbers_.push_back(b);
  } else {
    number_state_.erase(b);
    free_numbers_.Insert(b);
  }
}

Status BlockTable::Lookup(BlockNum b, BlockLocation* loc) const {
  MutexLock lock(&mu_);
  if (!InUseLocked(b)) return Status::Corruption(StrCat("block ", b, " is not allocated"));
  *loc = current_.at(b);
  if (loc->offset == 0) {
    return Status::Corruption(StrCat("block ", b, " is allocated but has not been written"));
  }
  return Status::OK();
}

BlockLocation BlockTable::AllocateSpace(uint64_t size) {
  MutexLock lock(&mu_);
  return AllocateLocked(size);
}

void BlockTable::ReleaseSpace(BlockLocation loc) {
  MutexLock lock(&mu_);
  FreeLocked(loc);
}

Status BlockTable::SetLocation(BlockNum b, BlockLocation loc, bool for_checkpoint) {
  MutexLock lock(&mu_);
  if (!InUseLocked(b)) return Status::InvalidArgument(StrCat("block ", b, " is not allocated"));
  const BlockLocation old = current_.at(b);
  if (for_checkpoint && checkpoint_in_progress_) {
    const BlockLocation replaced = in_progress_.at(b);
    in_progress_.Set(b, loc);
    if (old.offset == replaced.offset) {
      // No plain write of b since the begin: these bytes are also b's latest.
      if (old.offset == 0) ++written_blocks_;
      current_.Set(b, loc);
    }
    ReleaseIfUnnamedLocked(b, replaced);
    return Status::OK();
  }
  if (old.offset == 0) ++written_blocks_;
  current_.Set(b, loc);
  ReleaseIfUnnamedLocked(b, old);
  return Status::OK();
}

Status BlockTable::PrepareCloneWrite(BlockNum b, BlockLocation* source) {
  MutexLock lock(&mu_);
  if (!InUseLocked(b)) return Status::InvalidArgument(StrCat("block ", b, " is not allocated"));
  if (!checkpoint_in_progress_) {
    return Status::InvalidArgument(StrCat("clone of block ", b, " without a checkpoint"));
  }
  const BlockLocation begin = in_progress_.at(b);
  if (current_.at(b).offset != begin.offset) {
    return Status::InvalidArgument(
        StrCat("clone of block ", b, ", which was written since the checkpoint began"));
  }
  clone_writes_.insert(b);
  *source = begin;
  return Status::OK();
}

Status BlockTable::SetCloneLocation(BlockNum b, BlockLocation loc) {
  MutexLock lock(&mu_);
  if (!checkpoint_in_progress_ || clone_writes_.erase(b) == 0) {
    return Status::InvalidArgument(
        StrCat("clone write of block ", b, " that no checkpoint in progress expects"));
  }
  // b may be in use or retired (freed since the clone); either way only the checkpoint
  // takes this extent.
  const BlockLocation replaced = in_progress_.at(b);
  in_progress_.Set(b, loc);
  ReleaseIfUnnamedLocked(b, replaced);
  return Status::OK();
}

BlockLocation BlockTable::Relocate(BlockNum b, uint64_t size) {
  MutexLock lock(&mu_);
  if (!InUseLocked(b)) {
    assert(false && "BlockTable::Relocate of a number that is not allocated");
    return BlockLocation{};
  }
  BlockLocation old = current_.at(b);
  const BlockLocation loc = AllocateLocked(size);
  if (old.offset == 0) ++written_blocks_;
  current_.Set(b, loc);
  ReleaseIfUnnamedLocked(b, old);
  return loc;
}

std::vector<std::pair<BlockNum, BlockLocation>> BlockTable::TailBlocks(uint64_t* line) const {
  constexpr uint64_t kMinExcess = uint64_t{8} << 20;
  constexpr uint64_t kMinSlack = uint64_t{1} << 20;
  std::vector<std::pair<BlockNum, BlockLocation>> tail;
  MutexLock lock(&mu_);
  if (!checkpoint_in_progress_) return tail;
  // What the checkpoint needs: its blocks and the table about to be written for them.
  uint64_t need = allocator_.reserved_bytes();
  uint64_t entries = 0;
  for (const auto& [b, loc] : in_progress_.locations) {
    if (b < kFirstBlockNum) continue;
    need += loc.AlignedBytes();
    ++entries;
  }
  need += BlockAllocator::AlignedSize(kPrefixBytes + kSplitEntryBytes * entries + kChecksumBytes);
  const uint64_t end = allocator_.file_end();
  if (end <= need || end - need <= std::max(need / 2, kMinExcess)) return tail;
  *line = need + std::max(need / 8, kMinSlack);
  for (const auto& [block, loc] : in_progress_.locations) {
    if (block < kFirstBlockNum || loc.AlignedEnd() <= *line) continue;
    if (current_.at(block).offset != loc.offset || clone_writes_.count(block) != 0) continue;
    tail.emplace_back(block, loc);
  }
  std::sort(tail.begin(), tail.end(), [](const auto& x, const auto& y) {
    return x.second.AlignedEnd() > y.second.AlignedEnd();
  });
  return tail;
}

BlockLocation BlockTable::AllocateSpaceBelow(uint64_t size, uint64_t line) {
  MutexLock lock(&mu_);
  const BlockAllocator::Placement p = allocator_.AllocateSplittableBelow(size, line);
  return p.offset == 0 ? BlockLocation{}
                       : BlockLocation{p.offset, size, p.head_bytes, p.tail_offset};
}

bool BlockTable::MoveBlock(BlockNum b, BlockLocation from, BlockLocation to) {
  MutexLock lock(&mu_);
  if (!checkpoint_in_progress_ || in_progress_.at(b) != from) return false;
  in_progress_.Set(b, to);
  if (current_.at(b) == from) current_.Set(b, to);
  ReleaseIfUnnamedLocked(b, from);
  return true;
}

std::string BlockTable::Serialize(const Translation& t) {
  uint64_t count = 0;
  bool any_split = false;
  for (const auto& [b, loc] : t.locations) {
    if (b < kFirstBlockNum) continue;
    ++count;
    any_split = any_split || loc.split();
  }
  const size_t entry_bytes = any_split ? kSplitEntryBytes : kEntryBytes;
  std::string out;
  out.reserve(kPrefixBytes + count * entry_bytes + kChecksumBytes);
  out.append(kMagic, sizeof(kMagic));
  PutFixed32(&out, any_split ? 2 : 1);
  PutFixed64(&out, count);
  for (const auto& [b, loc] : t.locations) {
    if (b < kFirstBlockNum) continue;
    PutFixed64(&out, static_cast<uint64_t>(b));
    PutFixed64(&out, loc.offset);
    PutFixed64(&out, loc.size);
    if (any_split) {
      PutFixed64(&out, loc.head_bytes);
      PutFixed64(&out, loc.tail_offset);
    }
  }
  PutFixed64(&out, Checksum64(out));
  return out;
}

std::string BlockTable::SerializeCurrent() const {
  MutexLock lock(&mu_);
  return Serialize(current_);
}

Status BlockTable::Deserialize(std::string_view in, BlockTable* out) {
  return Deserialize(in, BlockLocation{}, out);
}

Status BlockTable::Deserialize(std::string_view in, BlockLocation table_location, BlockTable* out) {
  if (in.size() < kPrefixBytes + kChecksumBytes) {
    return TableCorruption(StrCat("truncated: ", in.size(), " bytes"));
  }
  if (in.substr(0, sizeof(kMagic)) != std::string_view(kMagic, sizeof(kMagic))) {
    return TableCorruption(StrCat("bad magic \"", EscapeBytes(in.substr(0, 4)), "\""));
  }
  // The checksum first (it covers everything but itself, whatever the version), so that an
  // unknown version is reported as such only for bytes that are as written.
  const size_t body = in.size() - kChecksumBytes;
  const uint64_t stored = DecodeFixed64(in.data() + body);
  const uint64_t actual = Checksum64(in.substr(0, body));
  if (stored != actual) {
    return TableCorruption(
        StrCat("checksum mismatch (stored ", stored, ", computed ", actual, ")"));
  }
  const uint32_t version = DecodeFixed32(in.data() + 4);
  if (version < 1 || version > kBlockTableFormatVersion) {
    return TableCorruption(StrCat("unsupported format version ", version));
  }
  const size_t entry_bytes = version == 2 ? kSplitEntryBytes : kEntryBytes;
  const uint64_t count = DecodeFixed64(in.data() + 8);
  if (count > (in.size() - kPrefixBytes - kChecksumBytes) / entry_bytes ||
      kPrefixBytes + count * entry_bytes + kChecksumBytes != in.size()) {
    return TableCorruption(StrCat("length ", in.size(), " does not match ", count, " entries"));
  }

  BlockAllocator allocator(kReservedFileBytes);
  Translation table;
  Decoder decoder(in.substr(kPrefixBytes, count * entry_bytes));
  BlockNum previous = kFirstBlockNum - 1;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t raw_num = 0;
    BlockLocation loc;
    if (!decoder.GetFixed64(&raw_num) || !decoder.GetFixed64(&loc.offset) ||
        !decoder.GetFixed64(&loc.size) ||
        (version == 2 &&
         (!decoder.GetFixed64(&loc.head_bytes) || !decoder.GetFixed64(&loc.tail_offset)))) {
      return TableCorruption(StrCat("entry ", i, " is truncated"));
    }
    const auto b = static_cast<BlockNum>(raw_num);
    if (b <= previous || b >= kMaxBlockNum) {
      return TableCorruption(
          StrCat("entry ", i, ": block number ", b, " is out of range or out of order"));
    }
    if (loc.size > kMaxBlockBytes) {
      return TableCorruption(StrCat("block ", b, ": implausible size ", loc.size));
    }
    if (loc.offset < kReservedFileBytes || loc.offset % BlockAllocator::kAlignment != 0 ||
        loc.offset > kMaxFileBytes) {
      return TableCorruption(StrCat("block ", b, ": bad offset ", loc.offset));
    }
    if (loc.split()) {
      if (loc.head_bytes >= loc.size || loc.head_bytes % BlockAllocator::kAlignment != 0 ||
          loc.tail_offset < kReservedFileBytes ||
          loc.tail_offset % BlockAllocator::kAlignment != 0 || loc.tail_offset > kMaxFileBytes) {
        return TableCorruption(StrCat("block ", b, ": bad split (", loc.head_bytes, " of its ",
                                      loc.size, " bytes at ", loc.offset, ", the rest at ",
                                      loc.tail_offset, ")"));
      }
      if (!allocator.TryMarkAllocated(loc.offset, loc.head_bytes) ||
          !allocator.TryMarkAllocated(loc.tail_offset, loc.size - loc.head_bytes)) {
        return TableCorruption(StrCat("block ", b, " at [", loc.offset, ", +", loc.head_bytes,
                                      ") and [", loc.tail_offset, ", +", loc.size - loc.head_bytes,
                                      ") overlaps another block"));
      }
    } else if (loc.tail_offset != 0) {
      return TableCorruption(StrCat("block ", b, ": a tail offset without head bytes"));
    } else if (!allocator.TryMarkAllocated(loc.offset, loc.size)) {
      return TableCorruption(
          StrCat("block ", b, " at [", loc.offset, ", +", loc.size, ") overlaps another block"));
    }
    table.Set(b, loc);
    previous = b;
  }
  if (table_location.offset != 0 &&
      !allocator.TryMarkAllocated(table_location.offset, table_location.size)) {
    return TableCorruption(StrCat("the table's own extent [", table_location.offset, ", +",
                                  table_location.size, ") overlaps a block"));
  }

  MutexLock lock(&out->mu_);
  out->allocator_ = std::move(allocator);
  // The numbers the table names are in use; the gaps between them are free.
  out->number_state_.clear();
  out->free_numbers_.Clear();
  out->retired_numbers_.clear();
  BlockNum next = kFirstBlockNum;
  for (const auto& [b, loc] : table.locations) {
    if (b > next) out->free_numbers_.InsertRange(next, b - 1);
    out->number_state_[b] = NumberState::kInUse;
    next = b + 1;
  }
  out->next_number_ = next;
  out->written_blocks_ = count;
  out->current_ = table;
  out->checkpointed_ = std::move(table);
  out->checkpointed_.Set(kTableBlockNum, table_location);
  out->in_progress_ = Translation{};
  out->checkpoint_in_progress_ = false;
  return Status::OK();
}

void BlockTable::BeginCheckpointLocked() {
  assert(!checkpoint_in_progress_);
  in_progress_ = current_;
  in_progress_.Set(kTableBlockNum, BlockLocation{});
  checkpoint_in_progress_ = true;
  clone_writes_.clear();
}

void BlockTable::BeginCheckpoint() {
  MutexLock lock(&mu_);
  BeginCheckpointLocked();
}

std::string BlockTable::SerializeCheckpoint() const {
  Translation snapshot;
  {
    MutexLock lock(&mu_);
    assert(checkpoint_in_progress_);
    snapshot = in_progress_;
  }
  // Encoding is the costly part; writers need not wait for it.
  return Serialize(snapshot);
}

BlockLocation BlockTable::AllocateTableSpace(uint64_t size, uint64_t below) {
  MutexLock lock(&mu_);
  if (!checkpoint_in_progress_) BeginCheckpointLocked();
  assert(in_progress_.at(kTableBlockNum).offset == 0);
  uint64_t offset = below > 0 ? allocator_.AllocateBelow(size, below) : 0;
  if (offset == 0) offset = allocator_.Allocate(size);
  BlockLocation loc{offset, size};
  in_progress_.Set(kTableBlockNum, loc);
  return loc;
}

void BlockTable::FreeDroppedExtentsLocked(const Translation& dropped, const Translation& kept) {
  for (const auto& [b, loc] : dropped.locations) {
    if (kept.at(b).offset == loc.offset || current_.at(b).offset == loc.offset) continue;
    FreeLocked(loc);
  }
}

void BlockTable::ReleaseRetiredNumbersLocked(const Translation& kept) {
  std::vector<BlockNum> still_named;
  for (BlockNum b : retired_numbers_) {
    if (kept.at(b).offset != 0) {
      still_named.push_back(b);
    } else {
      number_state_.erase(b);
      free_numbers_.Insert(b);
    }
  }
  retired_numbers_ = std::move(still_named);
}

void BlockTable::CompleteCheckpoint(BlockLocation table_location) {
  MutexLock lock(&mu_);
  if (!checkpoint_in_progress_) BeginCheckpointLocked();
  if (in_progress_.at(kTableBlockNum).offset != table_location.offset) {
    // The caller placed the table itself; hold its space from now on.
    assert(in_progress_.at(kTableBlockNum).offset == 0);
    allocator_.MarkAllocated(table_location.offset, table_location.size);
    in_progress_.Set(kTableBlockNum, table_location);
  }
  Translation old = std::move(checkpointed_);
  checkpointed_ = std::move(in_progress_);
  in_progress_ = Translation{};
  checkpoint_in_progress_ = false;
  clone_writes_.clear();
  FreeDroppedExtentsLocked(old, checkpointed_);
  ReleaseRetiredNumbersLocked(checkpointed_);
}

bool BlockTable::UnchangedSinceCheckpoint() const {
  MutexLock lock(&mu_);
  if (checkpoint_in_progress_) return false;
  // The table's own entry (kTableBlockNum) and the other reserved numbers are not blocks.
  auto first_block = [](const Translation& t) { return t.locations.lower_bound(kFirstBlockNum); };
  auto a = first_block(current_);
  auto b = first_block(checkpointed_);
  for (; a != current_.locations.end() && b != checkpointed_.locations.end(); ++a, ++b) {
    if (a->first != b->first || a->second != b->second) return false;
  }
  return a == current_.locations.end() && b == checkpointed_.locations.end();
}

void BlockTable::AbortCheckpoint() {
  MutexLock lock(&mu_);
  if (!checkpoint_in_progress_) return;
  Translation dropped = std::move(in_progress_);
  in_progress_ = Translation{};
  checkpoint_in_progress_ = false;
  clone_writes_.clear();
  FreeDroppedExtentsLocked(dropped, checkpointed_);
  ReleaseRetiredNumbersLocked(checkpointed_);
}

bool BlockTable::checkpoint_in_progress() const {
  MutexLock lock(&mu_);
  return checkpoint_in_progress_;
}

BlockLocation BlockTable::checkpointed_table_location() const {
  MutexLock lock(&mu_);
  return checkpointed_.at(kTableBlockNum);
}

BlockTable::Stats BlockTable::stats() const {
  MutexLock lock(&mu_);
  uint64_t split_blocks = 0;
  for (const auto& [b, loc] : current_.locations) split_blocks += loc.split() ? 1 : 0;
  return Stats{written_blocks_, allocator_.allocated_bytes(), allocator_.free_bytes(),
               allocator_.file_end(), split_blocks};
}

uint64_t BlockTable::file_bytes() const {
  MutexLock lock(&mu_);
  return allocator_.file_end();
}

void BlockTable::ForEachBlock(const std::function<void(BlockNum, BlockLocation)>& fn) const {
  MutexLock lock(&mu_);
  for (const auto& [b, loc] : current_.locations) {
    if (b >= kFirstBlockNum) fn(b, loc);
  }
}

}  // namespace fern
