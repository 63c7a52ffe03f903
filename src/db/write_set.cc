#include "db/write_set.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

constexpr char kRollbackPrefix[] = "txn-";
constexpr char kRollbackSuffix[] = ".rollback";
constexpr size_t kHeaderBytes = 16;
constexpr size_t kBlockHeaderBytes = 8;
constexpr size_t kBlockPayloadBytes = size_t{64} << 10;
// An entry's share of the vector and of the index (a slot and its control byte).
constexpr size_t kEntryOverhead = sizeof(size_t) * 2 + 1;

}  // namespace

std::string RollbackFileName(uint64_t txn_id) {
  return StrCat(kRollbackPrefix, txn_id, kRollbackSuffix);
}

bool IsRollbackFileName(std::string_view name) {
  const std::string_view prefix = kRollbackPrefix;
  const std::string_view suffix = kRollbackSuffix;
  return name.size() > prefix.size() + suffix.size() && name.substr(0, prefix.size()) == prefix &&
         name.substr(name.size() - suffix.size()) == suffix &&
         AllDigits(name.substr(prefix.size(), name.size() - prefix.size() - suffix.size()));
}

size_t WriteSet::Hash::operator()(const Probe& p) const { return absl::HashOf(p.table, p.key); }

WriteSet::WriteSet(size_t memory_limit)
    : memory_limit_(memory_limit),
      spill_at_(memory_limit),
      index_(0, Hash{memory_.get()}, Equal{memory_.get()}) {}

WriteSet::~WriteSet() { Release(); }

size_t WriteSet::memory_bytes() const {
  return memory_->keys.size() + memory_->entries.size() * (sizeof(Entry) + kEntryOverhead);
}

void WriteSet::Note(TableImpl* table, std::string_view key, bool own) {
  auto found = index_.find(Probe{table, key});
  if (found != index_.end()) {
    memory_->entries[*found].sole_write = false;
    return;
  }
  std::vector<Entry>& entries = memory_->entries;
  entries.push_back(Entry{table, memory_->keys.size(), static_cast<uint32_t>(key.size()),
                          /*sole_write=*/own && spilled_ == 0});
  memory_->keys.append(key);
  index_.insert(entries.size() - 1);
  const size_t bytes = memory_bytes();
  bool due = bytes >= spill_at_;
  if (shared_ != nullptr) {
    shared_->Add(static_cast<int64_t>(bytes) - static_cast<int64_t>(counted_));
    counted_ = bytes;
    due = due || (bytes >= shared_spill_at_ && shared_->over_budget());
  }
  if (rollback_dir_ != nullptr && due && !Spill()) {
    spill_at_ = bytes + memory_limit_ / 2;
    shared_spill_at_ = spill_at_;
  }
}

bool WriteSet::Spill() {
  if (!WriteBlocks().ok()) return false;
  spilled_ += memory_->entries.size();
  if (spill_counter_ != nullptr) spill_counter_->fetch_add(1, std::memory_order_relaxed);
  ClearMemory();
  spill_at_ = memory_limit_;
  shared_spill_at_ = kMinSharedSpillBytes;
  return true;
}

Status WriteSet::WriteBlocks() {
  if (file_ == nullptr) {
    rollback_path_ = StrCat(*rollback_dir_, "/", RollbackFileName(txn_id_));
    std::unique_ptr<File> file;
    FERN_RETURN_IF_ERROR(File::Open(rollback_path_, File::Mode::kCreateTruncate, &file));
    std::string header(kRollbackFileMagic, sizeof(kRollbackFileMagic));
    PutFixed32(&header, kRollbackFormatVersion);
    PutFixed32(&header, 0);
    Status written = file->Write(0, header);
    if (!written.ok()) {
      file.reset();
      RemoveFile(rollback_path_).ok();
      return written;
    }
    file_ = std::move(file);
    file_bytes_ = kHeaderBytes;
  }
  // Blocks go after the last whole write, so a failed write leaves nothing the reader sees.
  uint64_t offset = file_bytes_;
  std::string block;
  size_t i = 0;
  const std::vector<Entry>& entries = memory_->entries;
  while (i < entries.size()) {
    block.assign(kBlockHeaderBytes, '\0');
    uint32_t count = 0;
    for (; i < entries.size() && block.size() < kBlockHeaderBytes + kBlockPayloadBytes; ++i) {
      const Entry& e = entries[i];
      auto [number, added] = table_numbers_.try_emplace(e.table, tables_.size());
      if (added) tables_.push_back(e.table);
      PutVarint32(&block, number->second);
      PutLengthPrefixed(&block, std::string_view(memory_->keys).substr(e.offset, e.size));
      ++count;
    }
    EncodeFixed32(block.data(), static_cast<uint32_t>(block.size() - kBlockHeaderBytes));
    EncodeFixed32(block.data() + 4, count);
    PutFixed32(&block, Checksum32(block));
    FERN_RETURN_IF_ERROR(file_->Write(offset, block));
    offset += block.size();
  }
  file_bytes_ = offset;
  return Status::OK();
}

Status WriteSet::Corrupt(std::string_view what) const {
  return Status::Corruption(StrCat(rollback_path_, ": ", what));
}

Status WriteSet::ReadSpilled(Visitor visit) const {
  std::string header;
  FERN_RETURN_IF_ERROR(file_->Read(0, kHeaderBytes, &header));
  if (std::string_view(header).substr(0, sizeof(kRollbackFileMagic)) !=
      std::string_view(kRollbackFileMagic, sizeof(kRollbackFileMagic))) {
    return Corrupt("not a rollback file (bad magic)");
  }
  const uint32_t version = DecodeFixed32(header.data() + 8);
  if (version != kRollbackFormatVersion) {
    return Corrupt(StrCat("unknown rollback file format version ", version));
  }
  uint64_t offset = kHeaderBytes;
  size_t seen = 0;
  std::string block;
  while (offset < file_bytes_) {
    FERN_RETURN_IF_ERROR(file_->Read(offset, kBlockHeaderBytes, &block));
    const uint32_t payload = DecodeFixed32(block.data());
    const uint32_t count = DecodeFixed32(block.data() + 4);
    if (offset + kBlockHeaderBytes + payload + 4 > file_bytes_) {
      return Corrupt(StrCat("block at offset ", offset, " runs past the written end"));
    }
    std::string rest;
    FERN_RETURN_IF_ERROR(file_->Read(offset + kBlockHeaderBytes, payload + 4, &rest));
    block += rest;
    const std::string_view checked(block.data(), kBlockHeaderBytes + payload);
    if (Checksum32(checked) != DecodeFixed32(block.data() + checked.size())) {
      return Corrupt(StrCat("checksum mismatch in the block at offset ", offset));
    }
    Decoder in(checked.substr(kBlockHeaderBytes));
    for (uint32_t n = 0; n < count; ++n) {
      uint32_t number;
      uint32_t size;
      std::string_view key;
      if (!in.GetVarint32(&number) || number >= tables_.size() || !in.GetVarint32(&size) ||
          !in.GetBytes(size, &key)) {
        return Corrupt(StrCat("bad entry in the block at offset ", offset));
      }
      FERN_RETURN_IF_ERROR(visit(tables_[number], key, /*sole_write=*/false));
    }
    seen += count;
    offset += checked.size() + 4;
  }
  if (seen != spilled_) {
    return Corrupt(StrCat("holds ", seen, " entries, ", spilled_, " were written"));
  }
  return Status::OK();
}

Status WriteSet::ForEach(Visitor visit) const {
  if (spilled_ > 0) FERN_RETURN_IF_ERROR(ReadSpilled(visit));
  for (size_t i = 0; i < memory_->entries.size(); ++i) {
    const Probe p = memory_->ProbeOf(i);
    FERN_RETURN_IF_ERROR(visit(p.table, p.key, memory_->entries[i].sole_write && !no_sole_writes_));
  }
  return Status::OK();
}

void WriteSet::ClearMemory() {
  // Swapped out, not cleared: a big set holds megabytes.
  Index(0, Hash{memory_.get()}, Equal{memory_.get()}).swap(index_);
  std::vector<Entry>().swap(memory_->entries);
  std::string().swap(memory_->keys);
  // Only when something is counted: a prepared transaction's handle may outlive its Env
  // (and the budget), after its set was released at the close.
  if (counted_ != 0) shared_->Add(-static_cast<int64_t>(counted_));
  counted_ = 0;
}

void WriteSet::Release() {
  ClearMemory();
  if (file_ != nullptr) {
    file_.reset();
    RemoveFile(rollback_path_).ok();
  }
  file_bytes_ = 0;
  spilled_ = 0;
  spill_at_ = memory_limit_;
  shared_spill_at_ = kMinSharedSpillBytes;
  tables_.clear();
  table_numbers_.clear();
  no_sole_writes_ = false;
}

Status WriteSet::Absorb(WriteSet* child) {
  if (child->size() > size()) {
    // The index's functors point at the Memory objects, which move with it.
    std::swap(memory_, child->memory_);
    index_.swap(child->index_);
    std::swap(spill_at_, child->spill_at_);
    std::swap(shared_spill_at_, child->shared_spill_at_);
    std::swap(counted_, child->counted_);
    std::swap(txn_id_, child->txn_id_);
    std::swap(rollback_path_, child->rollback_path_);
    std::swap(file_, child->file_);
    std::swap(file_bytes_, child->file_bytes_);
    std::swap(spilled_, child->spilled_);
    tables_.swap(child->tables_);
    table_numbers_.swap(child->table_numbers_);
    std::swap(no_sole_writes_, child->no_sole_writes_);
    no_sole_writes_ = true;
    // `child` now holds this set's former entries (sole writes or not, they are no longer
    // reported as such here).
    Status s = child->ForEach([this](TableImpl* table, std::string_view key, bool sole_write) {
      Note(table, key, sole_write);
      return Status::OK();
    });
    child->Release();
    return s;
  }
  Status s = child->ForEach([this](TableImpl* table, std::string_view key, bool) {
    Note(table, key, /*own=*/false);
    return Status::OK();
  });
  child->Release();
  return s;
}

}  // namespace fern
