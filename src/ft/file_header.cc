#include "ft/file_header.h"

#include <utility>

#include "util/checksum.h"
#include "util/coding.h"
#include "util/strings.h"

namespace fern {

namespace {

constexpr char kMagic[8] = {'F', 'E', 'R', 'N', 'T', 'R', 'E', 'E'};
constexpr size_t kFixedBytes = 104;  // every version's fields before the file uid
constexpr size_t kChecksumBytes = 8;

// Bytes between the fixed fields and the comparator name.
size_t FileUidBytes(uint32_t version) { return version >= 2 ? 8 : 0; }

static_assert(kFixedBytes + 8 + kChecksumBytes + MaxComparatorNameBytes(2) == kHeaderSlotBytes);
static_assert(kFixedBytes + kChecksumBytes + MaxComparatorNameBytes(1) == kHeaderSlotBytes);

Status HeaderCorruption(std::string_view what) {
  return Status::Corruption(StrCat("file header: ", what));
}

}  // namespace

std::string FileHeader::Serialize() const {
  const uint32_t version =
      format_version >= kOldestTreeFileFormatVersion && format_version <= kTreeFileFormatVersion
          ? format_version
          : kTreeFileFormatVersion;
  const std::string_view name =
      std::string_view(comparator_name).substr(0, MaxComparatorNameBytes(version));
  const auto length =
      static_cast<uint32_t>(kFixedBytes + FileUidBytes(version) + name.size() + kChecksumBytes);
  std::string out;
  out.reserve(length);
  out.append(kMagic, sizeof(kMagic));
  PutFixed32(&out, version);
  PutFixed32(&out, length);
  PutFixed64(&out, checkpoint_count);
  PutFixed64(&out, checkpoint_lsn);
  PutFixed64(&out, static_cast<uint64_t>(root));
  PutFixed64(&out, max_msn);
  PutFixed64(&out, next_txn_hint);
  PutFixed64(&out, created_unix_seconds);
  PutFixed64(&out, block_table.offset);
  PutFixed64(&out, block_table.size);
  PutFixed64(&out, block_table_checksum);
  PutFixed32(&out, node_bytes);
  PutFixed32(&out, basement_bytes);
  PutFixed32(&out, static_cast<uint32_t>(compression_level));
  PutFixed8(&out, compression);
  PutFixed8(&out, 0);
  PutFixed16(&out, static_cast<uint16_t>(name.size()));
  if (version >= 2) PutFixed64(&out, file_uid);
  out.append(name);
  PutFixed64(&out, Checksum64(out));
  return out;
}

Status FileHeader::Parse(std::string_view bytes, FileHeader* out) {
  if (bytes.size() < kFixedBytes + kChecksumBytes) {
    return HeaderCorruption(StrCat("truncated: ", bytes.size(), " bytes"));
  }
  if (bytes.substr(0, sizeof(kMagic)) != std::string_view(kMagic, sizeof(kMagic))) {
    return HeaderCorruption(StrCat("bad magic \"", EscapeBytes(bytes.substr(0, 8)), "\""));
  }
  const uint32_t version = DecodeFixed32(bytes.data() + 8);
  if (version < kOldestTreeFileFormatVersion || version > kTreeFileFormatVersion) {
    return HeaderCorruption(StrCat("unsupported format version ", version));
  }
  const uint32_t length = DecodeFixed32(bytes.data() + 12);
  if (length < kFixedBytes + FileUidBytes(version) + kChecksumBytes || length > kHeaderSlotBytes) {
    return HeaderCorruption(StrCat("bad length ", length));
  }
  if (length > bytes.size()) {
    return HeaderCorruption(StrCat("truncated: ", bytes.size(), " of ", length, " bytes"));
  }
  const size_t body = length - kChecksumBytes;
  const uint64_t stored = DecodeFixed64(bytes.data() + body);
  const uint64_t actual = Checksum64(bytes.substr(0, body));
  if (stored != actual) {
    return HeaderCorruption(
        StrCat("checksum mismatch (stored ", stored, ", computed ", actual, ")"));
  }

  FileHeader h;
  h.format_version = version;
  Decoder decoder(bytes.substr(16, body - 16));
  uint64_t root = 0;
  uint32_t level = 0;
  uint8_t reserved = 0;
  uint16_t name_length = 0;
  std::string_view name;
  // The checksum matched, so a failure below means the writer itself was wrong; it is
  // still reported, never trusted.
  if (!decoder.GetFixed64(&h.checkpoint_count) || !decoder.GetFixed64(&h.checkpoint_lsn) ||
      !decoder.GetFixed64(&root) || !decoder.GetFixed64(&h.max_msn) ||
      !decoder.GetFixed64(&h.next_txn_hint) || !decoder.GetFixed64(&h.created_unix_seconds) ||
      !decoder.GetFixed64(&h.block_table.offset) || !decoder.GetFixed64(&h.block_table.size) ||
      !decoder.GetFixed64(&h.block_table_checksum) || !decoder.GetFixed32(&h.node_bytes) ||
      !decoder.GetFixed32(&h.basement_bytes) || !decoder.GetFixed32(&level) ||
      !decoder.GetFixed8(&h.compression) || !decoder.GetFixed8(&reserved) ||
      !decoder.GetFixed16(&name_length) || (version >= 2 && !decoder.GetFixed64(&h.file_uid)) ||
      !decoder.GetBytes(name_length, &name) || !decoder.empty()) {
    return HeaderCorruption(
        StrCat("bad length ", length, " for a comparator name of ", name_length, " bytes"));
  }
  h.root = static_cast<BlockNum>(root);
  h.compression_level = static_cast<int32_t>(level);
  h.comparator_name.assign(name.data(), name.size());
  *out = std::move(h);
  return Status::OK();
}

}  // namespace fern
