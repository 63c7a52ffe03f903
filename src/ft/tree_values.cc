#include "ft/tree_values.h"

#include <cassert>

#include "util/big_buffer.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// The first tree file format whose leaf entries may reference value blocks.
constexpr uint32_t kOutOfLineFormatVersion = 3;

}  // namespace

TreeValues::TreeValues(TreeFile* file,
                       absl::AnyInvocable<std::pair<Compression, int>() const> codec)
    : file_(file),
      codec_(std::move(codec)),
      threshold_(file->header().format_version >= kOutOfLineFormatVersion ? kOutOfLineValueBytes
                                                                          : 0) {}

Status TreeValues::Write(std::string_view value, std::string* ref) {
  if (threshold_ == 0) return Status::NotSupported("the file's format keeps values inline");
  auto failed = [this](const Status& s) {
    write_failures_.fetch_add(1, std::memory_order_relaxed);
    return s;
  };
  // A file that refuses writes refuses them before the value is compressed for nothing.
  Status s = file_->Writable();
  if (!s.ok()) return failed(s);
  const auto [codec, level] = codec_();
  std::string block;
  s = EncodeValueBlock(codec, level, value, &block);
  if (!s.ok()) return failed(s);
  const BlockNum b = file_->AllocateBlockNum();
  s = file_->WriteBlock(b, block);
  if (!s.ok()) {
    file_->FreeBlock(b);
    return failed(s);
  }
  ref->clear();
  ValueRef{b, value.size()}.EncodeTo(ref);
  written_.fetch_add(1, std::memory_order_relaxed);
  written_bytes_.fetch_add(value.size(), std::memory_order_relaxed);
  return Status::OK();
}

void TreeValues::Free(std::string_view ref) {
  ValueRef r;
  [[maybe_unused]] bool ok = ValueRef::Decode(ref, &r);
  assert(ok);  // entries are checked when parsed
  if (!ok) return;
  if (cache_ != nullptr) {
    // No reader holds the pair (readers hold the entry's leaf, which the caller has locked
    // for writing), so this waits at most for the evictor.
    PinnedPair pin;
    if (cache_->PinIfCached(file_id_, r.block, Cachetable::Lock::kWrite, &pin).ok()) {
      cache_->Remove(&pin);
    }
  }
  file_->FreeBlock(r.block);
  freed_.fetch_add(1, std::memory_order_relaxed);
}

Status TreeValues::ReadFromDisk(BlockNum b, std::string* value) const {
  std::string block;
  FERN_RETURN_IF_ERROR(file_->ReadBlock(b, &block));
  read_.fetch_add(1, std::memory_order_relaxed);
  return DecodeValueBlock(block, b, file_->path(), value);
}

Status TreeValues::Fetch(BlockNum b, std::unique_ptr<CacheValue>* value) const {
  std::string bytes;
  FERN_RETURN_IF_ERROR(ReadFromDisk(b, &bytes));
  *value = std::make_unique<ValueBlock>(std::move(bytes));
  return Status::OK();
}

Status TreeValues::Read(std::string_view ref, std::string* value) const {
  ValueRef r;
  if (!ValueRef::Decode(ref, &r)) {
    return Status::Corruption(StrCat(file_->path(), ": malformed value reference"));
  }
  if (cache_ == nullptr) {
    FERN_RETURN_IF_ERROR(ReadFromDisk(r.block, value));
  } else {
    PinnedPair pin;
    Status s = cache_->Pin(file_id_, r.block, Cachetable::Lock::kRead, &pin);
    if (s.IsCorruption()) {
      // A block whose magic is damaged is read as a node and named as one (the cachetable
      // does not know what its reader expects): say what the block should have been.
      return s.WithContext(StrCat("reading the value block ", r.block, " a row references"));
    }
    FERN_RETURN_IF_ERROR(s);
    if (!IsValueBlockPair(*pin.value())) {
      return Status::Corruption(
          StrCat(file_->path(), ": block ", r.block, " is a node, referenced as a value"));
    }
    const std::string_view bytes = pin.as<ValueBlock>()->value();
    value->clear();  // nothing to copy when the reserve moves it
    ReserveBuffer(value, bytes.size());
    value->assign(bytes);
  }
  return CheckValueLength(r, *value, file_->path());
}

bool TreeValues::IsDamaged(std::string_view ref) const {
  ValueRef r;
  std::string block;
  if (!ValueRef::Decode(ref, &r) || !file_->ReadBlock(r.block, &block).ok()) return false;
  return !VerifyValueBlock(block, r, file_->path()).ok();
}

TreeValues::Counts TreeValues::counts() const {
  return {written_.load(std::memory_order_relaxed), written_bytes_.load(std::memory_order_relaxed),
          freed_.load(std::memory_order_relaxed), read_.load(std::memory_order_relaxed),
          write_failures_.load(std::memory_order_relaxed)};
}

}  // namespace fern
