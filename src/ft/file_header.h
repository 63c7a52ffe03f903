// FileHeader: the root record of a tree file, written at every checkpoint.
//
// The file starts with two header slots of kHeaderSlotBytes each, at offsets 0 and 4096.
// Checkpoint number c writes slot c % 2, so the previous checkpoint's header survives a
// crash (or a torn write) in the middle of writing the new one; on open the valid header
// with the highest checkpoint_count wins. A slot is written whole: the serialized header,
// then zeros to 4096 bytes.
//
// Serialized header (little-endian integers; see docs/tree_file_format.md). Version 2 is
// written for every new file; version 1 (no file uid) is still read, and a version-1 file keeps
// its version when checkpointed:
//   offset  size  meaning
//   0       8     magic "FERNTREE"
//   8       4     format version (2; or 1)
//   12      4     L, total length of the serialized header including the checksum
//   16      8     checkpoint_count (0 at creation, +1 per checkpoint)
//   24      8     checkpoint_lsn: log position the checkpoint reflects
//   32      8     root block number (int64; -1: none)
//   40      8     max_msn: highest message sequence number in the tree
//   48      8     next_txn_hint (reserved for recovery)
//   56      8     created_unix_seconds
//   64      8     block table offset (0 with size 0: empty table)
//   72      8     block table size in bytes
//   80      8     Checksum64 of the serialized block table
//   88      4     node_bytes
//   92      4     basement_bytes
//   96      4     compression_level (int32)
//   100     1     compression (codec tag)
//   101     1     reserved, 0
//   102     2     n, length of the comparator name (<= MaxComparatorNameBytes(version))
//   104     8     file uid (version 2 only; F = 8 in version 2, 0 in version 1)
//   104+F   n     comparator name
//   104+F+n 8     Checksum64 of bytes [0, 104+F+n); L = 112+F+n
// The fixed prefix (magic, version, L) keeps its place in every future version, so a reader
// can always tell an unsupported version from damage.
//
// Thread-safety: a plain value type.
#ifndef FERN_FT_FILE_HEADER_H_
#define FERN_FT_FILE_HEADER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "cachetable/cachetable.h"
#include "fern/status.h"
#include "ft/block_table.h"

namespace fern {

// Version 3: leaf entries may reference value blocks (out_of_line_value.h); its header is
// version 2's.
inline constexpr uint32_t kTreeFileFormatVersion = 3;        // written for new files
inline constexpr uint32_t kOldestTreeFileFormatVersion = 1;  // still read and checkpointed
inline constexpr uint64_t kHeaderSlotBytes = 4096;
inline constexpr int kHeaderSlotCount = 2;
// The longest comparator name a header of `version` holds in one slot.
constexpr size_t MaxComparatorNameBytes(uint32_t version) {
  return kHeaderSlotBytes - (version >= 2 ? 120 : 112);
}
inline constexpr size_t kMaxComparatorNameBytes = MaxComparatorNameBytes(kTreeFileFormatVersion);
static_assert(kHeaderSlotCount * kHeaderSlotBytes == BlockTable::kReservedFileBytes);

struct FileHeader {
  uint32_t format_version = kTreeFileFormatVersion;
  uint64_t checkpoint_count = 0;
  uint64_t checkpoint_lsn = 0;
  BlockNum root = -1;  // -1: no root (legal; the tree code normally always has one)
  uint64_t max_msn = 0;
  uint64_t next_txn_hint = 0;  // reserved for recovery
  uint32_t node_bytes = 0, basement_bytes = 0;
  uint8_t compression = 0;
  int32_t compression_level = 0;
  std::string comparator_name;
  BlockLocation block_table;  // where the serialized block table lives
  uint64_t block_table_checksum = 0;
  uint64_t created_unix_seconds = 0;
  // Chosen at random when the file is created and never changed: the Env's catalog records
  // it, so a table file replaced by another table's file is told apart. 0 in version 1.
  uint64_t file_uid = 0;

  // The format above for `format_version` (1, 2 or 3; file_uid is not written in version 1), at
  // most kHeaderSlotBytes long provided comparator_name is at most
  // MaxComparatorNameBytes(format_version) (a longer name is cut there; TreeFile rejects it
  // beforehand).
  std::string Serialize() const;
  // Parses a header from the start of `bytes` (a whole slot: trailing bytes past L are
  // ignored). Corruption naming what was wrong: "truncated", "bad magic", "unsupported
  // format version N", "bad length L", "checksum mismatch".
  static Status Parse(std::string_view bytes, FileHeader* out);

  bool operator==(const FileHeader&) const = default;
};

}  // namespace fern

#endif  // FERN_FT_FILE_HEADER_H_
