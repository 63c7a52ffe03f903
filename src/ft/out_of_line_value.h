// Out-of-line values: a big value stored in a block of its own, the leaf entry keeping a
// reference to it.
//
// Every version of a row lives in its leaf entry (leaf_entry.h), so a row kept in many
// versions for live snapshots makes an entry of all of them: each new version rewrote it
// whole, and a leaf bigger than the cache went to disk and back for every write. A version
// whose value is at least kOutOfLineValueBytes long is stored instead as a reference to a
// value block, and a new version of the row copies references, not values.
//
// Ownership. A value block belongs to the one leaf entry version that references it (and
// to placeholder copies of that version within the same entry: leaf_entry.h). The leaf
// that holds the entry in memory is the only copy a writer changes, so the block is freed
// when the last version referencing it leaves the entry there; the tree file's copy on
// write keeps the block's bytes while a checkpoint still names it. Copies of entries made
// for reading or for a checkpoint clone neither write nor free value blocks.
//
// Reference encoding (the value bytes of a version flagged out of line):
//
//   varint64   block number of the value block
//   varint64   length of the value in bytes (1..kMaxValueBytes)
//
// Value block, format version 1:
//
//   offset   size   meaning
//   0        4      magic "FVAL"
//   4        4      checksum (Checksum32) of the frame that follows
//   8        ...    the value as one compressed frame (compression.h)
#ifndef FERN_FT_OUT_OF_LINE_VALUE_H_
#define FERN_FT_OUT_OF_LINE_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fern/options.h"
#include "fern/status.h"
#include "ft/block_table.h"

namespace fern {

// Values this long or longer are stored out of line (where the tree file's format allows).
// A value this size is four default basements: kept inline, a handful of versions of one
// row would fill a leaf.
inline constexpr size_t kOutOfLineValueBytes = size_t{64} << 10;

struct ValueRef {
  BlockNum block = -1;
  uint64_t length = 0;

  void EncodeTo(std::string* out) const;
  // Parses exactly one reference as EncodeTo writes it (trailing bytes, a longer varint than
  // needed, a block number below BlockTable::kFirstBlockNum or a length outside
  // 1..kMaxValueBytes are errors); false on malformed bytes.
  static bool Decode(std::string_view in, ValueRef* out);
};

// The value block for `value` compressed with `codec` at `level`.
Status EncodeValueBlock(Compression codec, int level, std::string_view value, std::string* block);
// Whether a block starting with `prefix` (at least 4 bytes) is a value block, not a node.
bool IsValueBlock(std::string_view prefix);
// Checks value block `b` as stored, without decoding it: Corruption naming `where` and `b`
// if its magic or checksum is wrong, or its frame declares another length than `ref`'s.
// A block that passes holds the bytes it was written with.
Status VerifyValueBlock(std::string_view block, const ValueRef& ref, std::string_view where);
// Decodes value block `b`; Corruption naming `where` and `b` if the magic, checksum or frame
// is wrong.
Status DecodeValueBlock(std::string_view block, BlockNum b, std::string_view where,
                        std::string* value);
// The same for a block read for `ref`, whose length it checks too.
Status DecodeValueBlock(std::string_view block, const ValueRef& ref, std::string_view where,
                        std::string* value);
// Corruption unless a decoded `value` is as long as `ref` says.
Status CheckValueLength(const ValueRef& ref, std::string_view value, std::string_view where);

// Where the values of a tree's out-of-line versions are written, freed and read
// (FractalTree's, for its file). Thread-safe.
class ValueStore {
 public:
  virtual ~ValueStore() = default;
  // Values at least this long are written out of line (kOutOfLineValueBytes for a tree);
  // 0: none are (the file's format does not allow it).
  virtual size_t out_of_line_threshold() const = 0;
  // Writes `value` to a new value block and sets *ref to its encoded reference.
  virtual Status Write(std::string_view value, std::string* ref) = 0;
  // The version referencing `ref` is gone from its entry: frees the block.
  virtual void Free(std::string_view ref) = 0;
  // Reads the value `ref` references into *value.
  virtual Status Read(std::string_view ref, std::string* value) const = 0;
  // After Read failed: whether the block `ref` references is damaged as stored (it reads,
  // and fails VerifyValueBlock), so that its value is lost for good. False when it verifies
  // (the failure was not the block's: say, memory for decoding) or cannot be read at all.
  virtual bool IsDamaged(std::string_view ref) const = 0;
};

}  // namespace fern

#endif  // FERN_FT_OUT_OF_LINE_VALUE_H_
