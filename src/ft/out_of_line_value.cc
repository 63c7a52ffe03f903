#include "ft/out_of_line_value.h"

#include <limits>

#include "util/checksum.h"
#include "util/coding.h"
#include "util/compression.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

constexpr std::string_view kMagic = "FVAL";
constexpr size_t kHeaderBytes = 8;

}  // namespace

void ValueRef::EncodeTo(std::string* out) const {
  PutVarint64(out, static_cast<uint64_t>(block));
  PutVarint64(out, length);
}

bool ValueRef::Decode(std::string_view in, ValueRef* out) {
  Decoder d(in);
  uint64_t block, length;
  if (!d.GetVarint64(&block) || !d.GetVarint64(&length) || !d.empty()) return false;
  if (block < static_cast<uint64_t>(BlockTable::kFirstBlockNum) ||
      block > static_cast<uint64_t>(std::numeric_limits<BlockNum>::max())) {
    return false;
  }
  if (length == 0 || length > kMaxValueBytes) return false;
  // Only the shortest encoding: references are compared as bytes (one block, one string).
  if (in.size() != VarintLength(block) + VarintLength(length)) return false;
  out->block = static_cast<BlockNum>(block);
  out->length = length;
  return true;
}

Status EncodeValueBlock(Compression codec, int level, std::string_view value, std::string* block) {
  block->assign(kMagic);
  PutFixed32(block, 0);  // the checksum, filled in below
  FERN_RETURN_IF_ERROR(CompressPartition(codec, level, value, block));
  EncodeFixed32(block->data() + kMagic.size(),
                Checksum32(std::string_view(*block).substr(kHeaderBytes)));
  return Status::OK();
}

bool IsValueBlock(std::string_view prefix) { return prefix.substr(0, kMagic.size()) == kMagic; }

Status DecodeValueBlock(std::string_view block, const ValueRef& ref, std::string_view where,
                        std::string* value) {
  FERN_RETURN_IF_ERROR(DecodeValueBlock(block, ref.block, where, value));
  return CheckValueLength(ref, *value, where);
}

Status CheckValueLength(const ValueRef& ref, std::string_view value, std::string_view where) {
  if (value.size() == ref.length) return Status::OK();
  return Status::Corruption(StrCat(where, ": value block ", ref.block, ": holds ", value.size(),
                                   " bytes, the entry says ", ref.length));
}

Status DecodeValueBlock(std::string_view block, BlockNum b, std::string_view where,
                        std::string* value) {
  auto damaged = [&](std::string_view what) {
    return Status::Corruption(StrCat(where, ": value block ", b, ": ", what));
  };
  if (block.size() < kHeaderBytes || block.substr(0, kMagic.size()) != kMagic) {
    return damaged("bad magic");
  }
  const std::string_view frame = block.substr(kHeaderBytes);
  if (Checksum32(frame) != DecodeFixed32(block.data() + kMagic.size())) {
    return damaged("checksum mismatch");
  }
  Status s = DecompressPartition(frame, value);
  if (!s.ok()) return damaged(s.ToString());
  return Status::OK();
}

}  // namespace fern
