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

namespace {

Status BlockDamage(std::string_view where, BlockNum b, std::string_view what) {
  return Status::Corruption(StrCat(where, ": value block ", b, ": ", what));
}

// The magic and the checksum of value block `b`.
Status VerifyBlockBytes(std::string_view block, BlockNum b, std::string_view where) {
  if (block.size() < kHeaderBytes || block.substr(0, kMagic.size()) != kMagic) {
    return BlockDamage(where, b, "bad magic");
  }
  if (Checksum32(block.substr(kHeaderBytes)) != DecodeFixed32(block.data() + kMagic.size())) {
    return BlockDamage(where, b, "checksum mismatch");
  }
  return Status::OK();
}

}  // namespace

Status VerifyValueBlock(std::string_view block, const ValueRef& ref, std::string_view where) {
  FERN_RETURN_IF_ERROR(VerifyBlockBytes(block, ref.block, where));
  // The frame's header: the codec's tag, then the decoded length as a varint.
  Decoder header(block.substr(kHeaderBytes));
  uint8_t codec;
  uint64_t length;
  if (!header.GetFixed8(&codec) || !header.GetVarint64(&length)) {
    return BlockDamage(where, ref.block, "frame header cut short");
  }
  if (length != ref.length) {
    return BlockDamage(where, ref.block,
                       StrCat("declares ", length, " bytes, the entry says ", ref.length));
  }
  return Status::OK();
}

Status DecodeValueBlock(std::string_view block, BlockNum b, std::string_view where,
                        std::string* value) {
  FERN_RETURN_IF_ERROR(VerifyBlockBytes(block, b, where));
  Status s = DecompressPartition(block.substr(kHeaderBytes), value);
  if (!s.ok()) return BlockDamage(where, b, s.ToString());
  return Status::OK();
}

}  // namespace fern
