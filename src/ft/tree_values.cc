#include "ft/tree_values.h"

#include <cassert>

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
  const auto [codec, level] = codec_();
  std::string block;
  FERN_RETURN_IF_ERROR(EncodeValueBlock(codec, level, value, &block));
  const BlockNum b = file_->AllocateBlockNum();
  Status s = file_->WriteBlock(b, block);
  if (!s.ok()) {
    file_->FreeBlock(b);
    return s;
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
  file_->FreeBlock(r.block);
  freed_.fetch_add(1, std::memory_order_relaxed);
}

Status TreeValues::Read(std::string_view ref, std::string* value) const {
  ValueRef r;
  if (!ValueRef::Decode(ref, &r)) {
    return Status::Corruption(StrCat(file_->path(), ": malformed value reference"));
  }
  std::string block;
  FERN_RETURN_IF_ERROR(file_->ReadBlock(r.block, &block));
  read_.fetch_add(1, std::memory_order_relaxed);
  return DecodeValueBlock(block, r, file_->path(), value);
}

TreeValues::Counts TreeValues::counts() const {
  return {written_.load(std::memory_order_relaxed), written_bytes_.load(std::memory_order_relaxed),
          freed_.load(std::memory_order_relaxed), read_.load(std::memory_order_relaxed)};
}

}  // namespace fern
