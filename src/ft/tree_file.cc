#include "ft/tree_file.h"

#include <algorithm>
#include <ctime>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "util/checksum.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// `header`'s comparator name fits a header of `version`.
Status CheckHeaderFits(const std::string& path, const FileHeader& header, uint32_t version) {
  const size_t max_name = MaxComparatorNameBytes(version);
  if (header.comparator_name.size() > max_name) {
    return Status::InvalidArgument(StrCat(path, ": comparator name of ",
                                          header.comparator_name.size(), " bytes is longer than ",
                                          max_name));
  }
  return Status::OK();
}

std::string SlotImage(const FileHeader& header) {
  std::string slot = header.Serialize();
  slot.resize(kHeaderSlotBytes, '\0');
  return slot;
}

uint64_t SlotOffset(int slot) { return static_cast<uint64_t>(slot) * kHeaderSlotBytes; }

// A file uid for a new file: random and never 0 (0 means "none", as in version 1).
uint64_t NewFileUid() {
  std::random_device device;
  uint64_t uid = 0;
  while (uid == 0) uid = (uint64_t{device()} << 32) ^ device();
  return uid;
}

}  // namespace

TreeFile::TreeFile(std::unique_ptr<File> file, bool read_only, const FileHeader& header, int slot)
    : path_(file->path()),
      file_(std::move(file)),
      read_only_(read_only),
      header_(header),
      header_slot_(slot) {}

TreeFile::~TreeFile() = default;

Status TreeFile::Create(const std::string& path, const FileHeader& header,
                        std::unique_ptr<TreeFile>* out) {
  FileHeader initial = header;
  // An older version only where a caller asks for it (tests of files written before file
  // uids, or before out-of-line values).
  if (initial.format_version < kOldestTreeFileFormatVersion ||
      initial.format_version > kTreeFileFormatVersion) {
    initial.format_version = kTreeFileFormatVersion;
  }
  FERN_RETURN_IF_ERROR(CheckHeaderFits(path, initial, initial.format_version));
  if (PathExists(path)) return Status::AlreadyExists(StrCat(path, ": already exists"));
  initial.file_uid = initial.format_version >= 2 ? NewFileUid() : 0;
  initial.checkpoint_count = 0;
  initial.block_table = BlockLocation{};
  initial.block_table_checksum = 0;
  if (initial.created_unix_seconds == 0) {
    initial.created_unix_seconds = static_cast<uint64_t>(std::time(nullptr));
  }
  std::unique_ptr<File> file;
  FERN_RETURN_IF_ERROR(File::Open(path, File::Mode::kCreate, &file));
  const std::string slot = SlotImage(initial);
  Status s;
  for (int i = 0; i < kHeaderSlotCount && s.ok(); ++i) s = file->Write(SlotOffset(i), slot);
  if (s.ok()) s = file->Sync();
  if (s.ok()) s = SyncDir(ParentDir(path));
  if (!s.ok()) {
    // A half-written file would only block the next attempt with AlreadyExists.
    file.reset();
    (void)RemoveFile(path);
    return s;
  }
  out->reset(new TreeFile(std::move(file), /*read_only=*/false, initial, /*slot=*/0));
  return Status::OK();
}

Status TreeFile::ReadHeader(const File& file, FileHeader* header, int* slot,
                            std::string* unreadable) {
  unreadable->clear();
  uint64_t size = 0;
  FERN_RETURN_IF_ERROR(file.Size(&size));
  if (size < BlockTable::kReservedFileBytes) {
    return Status::Corruption(StrCat(file.path(), ": truncated: the file is ", size,
                                     " bytes, shorter than its ", BlockTable::kReservedFileBytes,
                                     "-byte header area"));
  }
  std::string area;
  FERN_RETURN_IF_ERROR(file.Read(0, BlockTable::kReservedFileBytes, &area));
  int best = -1;
  FileHeader candidates[kHeaderSlotCount];
  std::string reasons;
  for (int i = 0; i < kHeaderSlotCount; ++i) {
    const Status s = FileHeader::Parse(
        std::string_view(area).substr(SlotOffset(i), kHeaderSlotBytes), &candidates[i]);
    if (!s.ok()) {
      reasons += StrCat(reasons.empty() ? "" : "; ", "slot ", i, ": ", s.message());
      continue;
    }
    if (best < 0 || candidates[i].checkpoint_count > candidates[best].checkpoint_count) best = i;
  }
  if (best < 0) {
    return Status::Corruption(StrCat(file.path(), ": no valid file header (", reasons, ")"));
  }
  *header = candidates[best];
  *slot = best;
  *unreadable = std::move(reasons);
  return Status::OK();
}

Status TreeFile::Open(const std::string& path, bool read_only, std::unique_ptr<TreeFile>* out) {
  std::unique_ptr<File> file;
  FERN_RETURN_IF_ERROR(
      File::Open(path, read_only ? File::Mode::kReadOnly : File::Mode::kReadWrite, &file));
  FileHeader header;
  int slot = 0;
  std::string unreadable;
  FERN_RETURN_IF_ERROR(ReadHeader(*file, &header, &slot, &unreadable));

  std::unique_ptr<TreeFile> tree_file(new TreeFile(std::move(file), read_only, header, slot));
  tree_file->unreadable_header_slots_ = unreadable;
  const BlockLocation table = header.block_table;
  if (table.offset == 0 && table.size == 0) {
    // Never checkpointed: the table is empty.
    *out = std::move(tree_file);
    return Status::OK();
  }
  // Where another slot did not parse, the header used here may be an older checkpoint's
  // whose newer one was lost: say so, since the block table's error alone would mislead.
  const std::string where = StrCat(
      path, ": block table at offset ", table.offset, " (", table.size, " bytes, checkpoint ",
      header.checkpoint_count, unreadable.empty() ? "" : ", from header slot ",
      unreadable.empty() ? std::string()
                         : StrCat(slot, "; the other header is unreadable: ", unreadable),
      ")");
  uint64_t file_size = 0;
  FERN_RETURN_IF_ERROR(tree_file->file_->Size(&file_size));
  if (table.offset < BlockTable::kReservedFileBytes ||
      table.offset % BlockAllocator::kAlignment != 0 || table.offset > file_size ||
      table.size > file_size - table.offset) {
    return Status::Corruption(
        StrCat(where, ": lies outside the file of ", file_size, " bytes (truncated?)"));
  }
  std::string bytes;
  FERN_RETURN_IF_ERROR(tree_file->file_->Read(table.offset, table.size, &bytes));
  if (Checksum64(bytes) != header.block_table_checksum) {
    return Status::Corruption(StrCat(where, ": checksum does not match the header's"));
  }
  Status s = BlockTable::Deserialize(bytes, table, &tree_file->table_);
  if (!s.ok()) return s.WithContext(where);
  *out = std::move(tree_file);
  return Status::OK();
}

FileHeader TreeFile::header() const {
  MutexLock lock(&mu_);
  return header_;
}

int TreeFile::header_slot() const {
  MutexLock lock(&mu_);
  return header_slot_;
}

BlockNum TreeFile::AllocateBlockNum() { return table_.AllocateBlockNum(); }

void TreeFile::FreeBlock(BlockNum b) { table_.FreeBlockNum(b); }

Status TreeFile::CheckWritable() const {
  if (read_only_) return Status::NotSupported(StrCat(path_, ": opened read-only"));
  MutexLock lock(&mu_);
  return sticky_error_;
}

Status TreeFile::Poison(const Status& s) {
  MutexLock lock(&mu_);
  if (sticky_error_.ok()) {
    sticky_error_ = s.WithContext(
        StrCat(path_, ": a checkpoint failed, the file must be reopened; first error"));
  }
  return s;
}

Status TreeFile::WriteBlock(BlockNum b, std::string_view bytes) {
  return Write(b, bytes, WriteKind::kCurrent);
}

Status TreeFile::WriteBlockForCheckpoint(BlockNum b, std::string_view bytes) {
  return Write(b, bytes, WriteKind::kCheckpoint);
}

Status TreeFile::PrepareCloneWrite(BlockNum b, BlockLocation* source) {
  FERN_RETURN_IF_ERROR(CheckWritable());
  Status s = table_.PrepareCloneWrite(b, source);
  if (!s.ok()) return s.WithContext(path_);
  return Status::OK();
}

Status TreeFile::ReadCloneSource(BlockNum b, BlockLocation source, uint64_t offset, uint64_t n,
                                 std::string* out) const {
  if (offset > source.size || n > source.size - offset) {
    return Status::Corruption(StrCat(path_, ": block ", b, " as of the checkpoint's begin: range [",
                                     offset, ", +", n, ") is outside its ", source.size, " bytes"));
  }
  return ReadExtent(b, source, offset, n, out);
}

Status TreeFile::WriteClone(BlockNum b, std::string_view bytes) {
  return Write(b, bytes, WriteKind::kClone);
}

Status TreeFile::Write(BlockNum b, std::string_view bytes, WriteKind kind) {
  FERN_RETURN_IF_ERROR(CheckWritable());
  // A clone's block may have been freed since it was cloned; SetCloneLocation checks it.
  if (kind != WriteKind::kClone && !table_.IsAllocated(b)) {
    return Status::InvalidArgument(
        StrCat(path_, ": write of block ", b, ", which is not allocated"));
  }
  if (bytes.size() > BlockTable::kMaxBlockBytes) {
    return Status::InvalidArgument(StrCat(path_, ": block ", b, " of ", bytes.size(),
                                          " bytes exceeds the limit of ",
                                          BlockTable::kMaxBlockBytes));
  }
  BlockLocation loc;
  {
    ReaderMutexLock lock(&space_mu_);
    loc = table_.AllocateSpace(bytes.size());
  }
  Status s = WriteExtents(loc, bytes);
  if (!s.ok()) {
    table_.ReleaseSpace(loc);
    return s.WithContext(StrCat("block ", b));
  }
  s = kind == WriteKind::kClone ? table_.SetCloneLocation(b, loc)
                                : table_.SetLocation(b, loc, kind == WriteKind::kCheckpoint);
  if (!s.ok()) {
    // b was freed while it was being written, or no checkpoint expects this clone.
    table_.ReleaseSpace(loc);
    return s.WithContext(path_);
  }
  return Status::OK();
}

Status TreeFile::WriteExtents(const BlockLocation& loc, std::string_view bytes) {
  if (!loc.split()) return file_->Write(loc.offset, bytes);
  FERN_RETURN_IF_ERROR(file_->Write(loc.offset, bytes.substr(0, loc.head_bytes)));
  return file_->Write(loc.tail_offset, bytes.substr(loc.head_bytes));
}

Status TreeFile::ReadExtent(BlockNum b, BlockLocation loc, uint64_t offset, uint64_t n,
                            std::string* out) const {
  // The part in the head extent, then (for a split block) the part in the tail.
  const uint64_t in_head =
      !loc.split() ? n : (offset >= loc.head_bytes ? 0 : std::min(n, loc.head_bytes - offset));
  Status s;
  if (in_head == n || in_head == 0) {
    s = file_->Read(loc.FileOffset(offset), n, out);
  } else {
    s = file_->Read(loc.offset + offset, in_head, out);
    std::string rest;
    if (s.ok()) s = file_->Read(loc.tail_offset, n - in_head, &rest);
    if (s.ok()) {
      out->append(rest);
    } else {
      out->clear();  // as File::Read leaves it after a short read
    }
  }
  if (s.IsCorruption()) {
    // File::Read reports a short read as Corruption: the file ends inside the block.
    const std::string where = loc.split()
                                  ? StrCat("at offsets ", loc.offset, " and ", loc.tail_offset)
                                  : StrCat("at offset ", loc.offset);
    return Status::Corruption(StrCat(path_, ": block ", b, " ", where, " (", loc.size,
                                     " bytes) extends beyond the end of the file", " (truncated)"));
  }
  if (!s.ok()) return s.WithContext(StrCat("block ", b));
  return Status::OK();
}

Status TreeFile::ReadBlock(BlockNum b, std::string* bytes) const {
  ReaderMutexLock gate(&read_gate_);
  BlockLocation loc;
  Status s = table_.Lookup(b, &loc);
  if (!s.ok()) return s.WithContext(path_);
  return ReadExtent(b, loc, 0, loc.size, bytes);
}

Status TreeFile::ReadBlockRange(BlockNum b, uint64_t offset, uint64_t n, std::string* out) const {
  ReaderMutexLock gate(&read_gate_);
  BlockLocation loc;
  Status s = table_.Lookup(b, &loc);
  if (!s.ok()) return s.WithContext(path_);
  if (offset > loc.size || n > loc.size - offset) {
    return Status::Corruption(StrCat(path_, ": block ", b, ": range [", offset, ", +", n,
                                     ") is outside the block's ", loc.size, " bytes"));
  }
  return ReadExtent(b, loc, offset, n, out);
}

Status TreeFile::BlockSize(BlockNum b, uint64_t* size) const {
  BlockLocation loc;
  Status s = table_.Lookup(b, &loc);
  if (!s.ok()) return s.WithContext(path_);
  *size = loc.size;
  return Status::OK();
}

Status TreeFile::BeginCheckpointLocked() {
  FERN_RETURN_IF_ERROR(CheckWritable());
  if (table_.checkpoint_in_progress()) {
    return Status::InvalidArgument(StrCat(path_, ": a checkpoint is already in progress"));
  }
  table_.BeginCheckpoint();
  return Status::OK();
}

Status TreeFile::BeginCheckpoint() {
  MutexLock checkpoint_lock(&checkpoint_mu_);
  return BeginCheckpointLocked();
}

void TreeFile::AbortCheckpoint() {
  MutexLock checkpoint_lock(&checkpoint_mu_);
  // A file poisoned by a failed sync or header write may have the abandoned checkpoint's
  // header on disk after all: what only that checkpoint named must not be reused before
  // the file is reopened (nothing is written to it until then anyway).
  if (!CheckWritable().ok()) return;
  if (table_.checkpoint_in_progress()) table_.AbortCheckpoint();
}

Status TreeFile::EndCheckpoint(const FileHeader& header, TailCompaction compaction) {
  MutexLock checkpoint_lock(&checkpoint_mu_);
  return EndCheckpointLocked(header, compaction);
}

Status TreeFile::Checkpoint(const FileHeader& header, TailCompaction compaction) {
  MutexLock checkpoint_lock(&checkpoint_mu_);
  FERN_RETURN_IF_ERROR(CheckHeaderFits(path_, header, this->header().format_version));
  FERN_RETURN_IF_ERROR(BeginCheckpointLocked());
  return EndCheckpointLocked(header, compaction);
}

Status TreeFile::EndCheckpointLocked(const FileHeader& header, TailCompaction compaction) {
  FERN_RETURN_IF_ERROR(CheckWritable());
  if (!table_.checkpoint_in_progress()) {
    return Status::InvalidArgument(StrCat(path_, ": EndCheckpoint without BeginCheckpoint"));
  }
  Status s = CheckHeaderFits(path_, header, this->header().format_version);
  if (!s.ok()) {
    table_.AbortCheckpoint();
    return s;
  }
  FileHeader next = header;
  int slot;
  {
    MutexLock lock(&mu_);
    next.format_version = header_.format_version;
    next.checkpoint_count = header_.checkpoint_count + 1;
    next.created_unix_seconds = header_.created_unix_seconds;
    next.file_uid = header_.file_uid;
    slot = static_cast<int>(next.checkpoint_count % kHeaderSlotCount);
  }

  const uint64_t line = compaction != TailCompaction::kNone ? CompactTail(compaction) : 0;
  const std::string table = table_.SerializeCheckpoint();
  BlockLocation table_location;
  {
    ReaderMutexLock lock(&space_mu_);
    table_location = table_.AllocateTableSpace(table.size(), line);
  }
  s = file_->Write(table_location.offset, table);
  if (!s.ok()) {
    // Nothing durable changed: the previous header still names the previous table.
    table_.AbortCheckpoint();
    return s.WithContext("checkpoint: writing the block table");
  }
  // One fsync makes both the blocks written since the last checkpoint and the new table
  // durable before any header names them.
  s = file_->Sync();
  if (!s.ok()) return Poison(s.WithContext("checkpoint: syncing blocks and table"));

  next.block_table = table_location;
  next.block_table_checksum = Checksum64(table);
  s = file_->Write(SlotOffset(slot), SlotImage(next));
  if (!s.ok()) return Poison(s.WithContext("checkpoint: writing the header"));
  s = file_->Sync();
  if (!s.ok()) return Poison(s.WithContext("checkpoint: syncing the header"));

  table_.CompleteCheckpoint(table_location);
  {
    MutexLock lock(&mu_);
    header_ = std::move(next);
    header_slot_ = slot;
  }
  TrimFileTail();
  if (compaction == TailCompaction::kIfSmall) return CheckpointAgainIfTailIsSmall(header);
  return Status::OK();
}

bool TreeFile::IsSmallTail(const std::vector<std::pair<BlockNum, BlockLocation>>& tail) {
  uint64_t bytes = 0;
  for (const auto& entry : tail) bytes += entry.second.size;
  return bytes <= kSmallCompactBytes;
}

Status TreeFile::CheckpointAgainIfTailIsSmall(const FileHeader& header) {
  // `header` describes the state just checkpointed: only that state may be checkpointed
  // under it again.
  if (!table_.UnchangedSinceCheckpoint()) return Status::OK();
  FERN_RETURN_IF_ERROR(BeginCheckpointLocked());
  uint64_t line = 0;
  const std::vector<std::pair<BlockNum, BlockLocation>> tail = table_.TailBlocks(&line);
  if (tail.empty() || !IsSmallTail(tail)) {
    table_.AbortCheckpoint();  // names nothing the completed one does not
    return Status::OK();
  }
  // kBounded: its budget is above the tail's bytes, and it takes no further round.
  return EndCheckpointLocked(header, TailCompaction::kBounded);
}

uint64_t TreeFile::CompactTail(TailCompaction compaction) {
  if (read_only_) return 0;
  uint64_t line = 0;
  const std::vector<std::pair<BlockNum, BlockLocation>> tail = table_.TailBlocks(&line);
  if (tail.empty()) return 0;
  uint64_t budget = kMaxCompactBytes;
  if (compaction == TailCompaction::kIfSmall) {
    if (!IsSmallTail(tail)) return 0;
    budget = kSmallCompactBytes;
  }
  struct Move {
    BlockNum block;
    BlockLocation from;
    BlockLocation to;
  };
  std::vector<Move> moves;
  std::string bytes;
  uint64_t copied = 0;
  // No hole below the line held a block this big: only smaller ones are worth a search.
  uint64_t unfit = std::numeric_limits<uint64_t>::max();
  for (const auto& [b, from] : tail) {
    if (copied >= budget) break;
    if (from.size >= unfit || from.size > budget - copied) continue;
    BlockLocation to;
    {
      ReaderMutexLock lock(&space_mu_);
      to = table_.AllocateSpaceBelow(from.size, line);
    }
    if (to.offset == 0) {
      unfit = from.size;
      continue;
    }
    // `from` stays allocated meanwhile: the checkpoint in progress names it, and nothing
    // writes for this checkpoint any more.
    Status s = ReadExtent(b, from, 0, from.size, &bytes);
    if (s.ok()) s = WriteExtents(to, bytes);
    if (!s.ok()) {
      table_.ReleaseSpace(to);
      break;
    }
    moves.push_back({b, from, to});
    copied += from.size;
  }
  if (moves.empty()) return line;
  uint64_t moved_bytes = 0;
  size_t moved = 0;
  {
    // No reader holds a location from before the moves once this is held.
    MutexLock gate(&read_gate_);
    for (const Move& m : moves) {
      if (table_.MoveBlock(m.block, m.from, m.to)) {
        ++moved;
        moved_bytes += m.from.size;
      } else {
        table_.ReleaseSpace(m.to);
      }
    }
  }
  blocks_compacted_.fetch_add(moved, std::memory_order_relaxed);
  bytes_compacted_.fetch_add(moved_bytes, std::memory_order_relaxed);
  return line;
}

void TreeFile::TrimFileTail() {
  MutexLock lock(&space_mu_);
  const uint64_t end = table_.file_bytes();
  uint64_t size = 0;
  if (!file_->Size(&size).ok() || size <= end) return;
  // Best effort: a failed truncate only leaves unreferenced bytes at the end of the file,
  // which the next checkpoint tries to trim again.
  (void)file_->Truncate(end);
}

}  // namespace fern
