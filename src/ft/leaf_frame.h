// How a leaf's basement is stored in its partition frame (node format version 2).
//
// A basement is stored either as one compression frame of its serialized form
// (util/compression.h; all that node format version 1 wrote, and what a basement of at most
// 1.5 x kLeafChunkBytes or of long keys still gets), or as a chunked frame: its entries cut into
// runs of about kLeafChunkBytes, each compressed on its own, behind a table that says which entries
// each run holds and the key it starts with. A point read or a seek that misses the cache then
// decompresses and parses only the run its key falls in (plus the next ones a seek needs)
// instead of the whole basement; a load into the cache decompresses every run.
//
// Chunked frame:
//
//   offset  size     meaning
//   0       1        kChunkedLeafFrameTag (no codec has this tag)
//   1       varint   chunk count c (>= 2)
//   ...     8        the basement's max MSN (fixed64)
//   ...     varint   n = entries in the basement
//   ...     c times: varint entries (>= 1), varint raw bytes (>= 1), varint frame bytes (>= 1),
//                    length-prefixed first key (the key of the chunk's first entry)
//   ...     the c compression frames, back to back, nothing after them
//
// The serialized basement (basement.h) is its header (max MSN, n) followed by the decoded
// chunks in order. The table must agree with the frame: entries sum to n (no chunk holds
// more entries than bytes), raw bytes to the partition's raw size less that header, frame
// bytes to what follows the table; first keys strictly increase (checked by a prefix read)
// and each is its chunk's first entry's key (checked for every chunk a read decodes).
// The partition checksum in the node header covers the whole frame.
#ifndef FERN_FT_LEAF_FRAME_H_
#define FERN_FT_LEAF_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fern/options.h"
#include "fern/status.h"
#include "ft/basement.h"
#include "util/chunk_allocator.h"

namespace fern {

inline constexpr uint8_t kChunkedLeafFrameTag = 0x80;
// The target size of one chunk's raw bytes. 2 KiB: a 16 KiB basement (the default) has eight,
// so a point read that misses decodes an eighth of it and a seek that reads ~17 rows two or
// three chunks. Smaller chunks compress worse: each frame carries its own headers and entropy
// tables (WORKLOADS.md's rows: 4 KiB chunks take 3.6% more than 16 KiB whole, 2 KiB chunks
// another 2-5%). Against 4 KiB, on kept 64 MiB-cache databases, gets ran 13-23% and seeks
// 5-10% faster; 3 KiB chunks measured no faster than 4 KiB.
inline constexpr size_t kLeafChunkBytes = 2048;

// Replaces *frame with the frame for `rows`, compressed with `codec` at `level`: chunked (runs
// of about chunk_bytes) when the serialized basement is larger than 1.5 x chunk_bytes, has at
// least two entries and its chunks' first keys come to at most a 32nd of its bytes; one
// compression frame otherwise. *raw_size gets the serialized size.
Status EncodeLeafFrame(const Basement& rows, Compression codec, int level, size_t chunk_bytes,
                       std::string* frame, size_t* raw_size);

// Whether `frame` is chunked (else it is one compression frame).
inline bool IsChunkedLeafFrame(std::string_view frame) {
  return !frame.empty() && static_cast<uint8_t>(frame[0]) == kChunkedLeafFrameTag;
}

// The codec of a leaf frame (of its first chunk if chunked), its chunk count (1 if not
// chunked) and, if `raw_size` is not null, the size of the serialized basement it declares;
// false if the frame's header or table is malformed.
bool PeekLeafFrame(std::string_view frame, Compression* codec, size_t* chunks,
                   uint64_t* raw_size = nullptr);

// Decodes a chunked frame whole: *raw becomes the serialized basement, which must be raw_size
// bytes. Corruption if the frame or its table is malformed.
Status DecodeChunkedLeafFrame(std::string_view frame, size_t raw_size, const Comparator& cmp,
                              std::unique_ptr<Basement>* rows, uint64_t* decoded_bytes);

// Decodes what a prefix read needs (Basement::Prefix) of a chunked frame: the chunk that
// `prefix.key` falls in and as many after it as hold prefix.rows_above rows above the key
// (none for rows_above 0).
// *rows holds those rows only: no row before the key's chunk, so it is fit only for a read
// that looks at nothing below `prefix.key` (a point read, a forward batch from the key).
Status DecodeChunkedLeafPrefix(std::string_view frame, size_t raw_size, const Comparator& cmp,
                               const Basement::Prefix& prefix, std::unique_ptr<Basement>* rows,
                               uint64_t* decoded_bytes);

// What a verified read of a chunked frame tells about it, kept beside the leaf partition
// (LeafPartition::chunk_index) so that later prefix reads of the same frame fetch from disk
// only the chunks they may decode, not the whole frame: where each chunk's compression frame
// lies in the partition frame, its table entry, and a checksum of its bytes taken from the
// verified frame (the partition's checksum covers only the whole frame, so a partial read
// checks each chunk it decodes against these instead). Immutable once built; shared so
// that a reader keeps it alive while a writer replaces the partition's.
class LeafChunkIndex {
 public:
  // From a chunked frame whose partition checksum was verified. Corruption if its table is
  // malformed or its first keys are out of order.
  static Status Build(std::string_view frame, size_t raw_size, const Comparator& cmp,
                      uint64_t frame_id, std::shared_ptr<const LeafChunkIndex>* out);

  // The LeafPartition::frame_id of the frame it describes.
  uint64_t frame_id() const { return frame_id_; }
  size_t memory_bytes() const;

  // The chunks [first, last] a prefix read of `prefix` may decode, and the bytes
  // [begin, end) of the partition frame that hold them.
  struct Span {
    size_t first;
    size_t last;
    uint64_t begin;
    uint64_t end;
  };
  Span SpanFor(const Basement::Prefix& prefix, const Comparator& cmp) const;

 private:
  friend Status DecodeChunkedLeafPrefix(const LeafChunkIndex& index, const Span& span,
                                        std::string_view bytes, const Comparator& cmp,
                                        const Basement::Prefix& prefix,
                                        std::unique_ptr<Basement>* rows, uint64_t* decoded_bytes);
  struct IndexedChunk {
    uint32_t entries;
    uint32_t raw_bytes;
    uint32_t offset;  // of its compression frame in the partition frame
    uint32_t size;
    uint32_t checksum;    // Checksum32 of those bytes
    uint32_t key_offset;  // its first key, in keys_
    uint32_t key_size;
  };
  LeafChunkIndex() = default;
  std::string_view key(size_t k) const {
    return std::string_view(keys_).substr(chunks_[k].key_offset, chunks_[k].key_size);
  }

  uint64_t frame_id_ = 0;
  Msn max_msn_ = 0;
  uint64_t entries_ = 0;
  std::vector<IndexedChunk> chunks_;
  std::string keys_;
};

// DecodeChunkedLeafPrefix from `bytes`, the bytes [span.begin, span.end) of the frame `index`
// describes, where span = index.SpanFor(prefix, cmp). Each chunk is checked against its
// checksum in the index before it is decoded.
Status DecodeChunkedLeafPrefix(const LeafChunkIndex& index, const LeafChunkIndex::Span& span,
                               std::string_view bytes, const Comparator& cmp,
                               const Basement::Prefix& prefix, std::unique_ptr<Basement>* rows,
                               uint64_t* decoded_bytes);

}  // namespace fern

#endif  // FERN_FT_LEAF_FRAME_H_
