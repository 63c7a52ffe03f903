// How a leaf's basement is stored in its partition frame (node format version 2).
//
// A basement is stored either as one compression frame of its serialized form
// (util/compression.h; all that node format version 1 wrote, and what a basement of at most
// 1.5 x kLeafChunkBytes still gets), or as a chunked frame: its entries cut into runs of about
// kLeafChunkBytes, each compressed on its own, behind a table that says which entries each run
// holds and the key it starts with. A point read or a seek that misses the cache then
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
// of about chunk_bytes) when the serialized basement is larger than 1.5 x chunk_bytes and has at
// least two entries, one compression frame otherwise. *raw_size gets the serialized size.
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

}  // namespace fern

#endif  // FERN_FT_LEAF_FRAME_H_
