// Per-partition compression behind one interface.
//
// A compressed partition ("frame") is self-describing, so files written with different
// codecs stay readable after TableOptions::compression changes:
//
//   offset  size     meaning
//   0       1        codec tag: 0 none, 1 snappy, 2 zlib, 3 zstd, 4 lzma (= Compression)
//   1       varint   uncompressed size in bytes
//   ...     rest     the codec's output (for `none`, the raw bytes)
//
// Frame format version 1. The payload is exactly one unit of the codec's own format: a snappy
// raw block, a zlib stream (RFC 1950), a zstd frame (with its content size), an .xz stream
// (with a CRC32 check). The frame carries no checksum of its own; the caller's partition
// checksum covers it, so a flipped payload bit that the codec cannot notice (none, snappy,
// zstd) decodes to wrong bytes of the right size, and must be caught by that checksum.
//
// All functions are thread-safe. Each thread that uses zstd keeps its contexts until it exits
// (about 0.1 MiB to decompress, 0.3-4 MiB to compress).
#ifndef FERN_UTIL_COMPRESSION_H_
#define FERN_UTIL_COMPRESSION_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/functional/function_ref.h"
#include "fern/options.h"
#include "fern/status.h"
#include "util/big_buffer.h"

namespace fern {

// Largest uncompressed partition a frame may declare; larger is Corruption (guards against
// allocating gigabytes on a damaged length).
inline constexpr uint64_t kMaxPartitionBytes = uint64_t{256} << 20;

// "none", "snappy", "zlib", "zstd", "lzma"; "unknown" for a value outside the enum.
const char* CompressionName(Compression codec);
// The inverse of CompressionName; false (and `*codec` untouched) for any other name.
bool ParseCompressionName(std::string_view name, Compression* codec);

// Appends the frame for `raw` to `*frame` (`raw` must not point into `*frame`); the tag is
// always `codec`, even when the payload comes out larger than `raw`. `level` 0 means Fern's
// default for the codec (zstd 1, zlib 6, lzma 6); other values are clamped to the codec's
// range (zstd: its negative fast levels up to 22; zlib and lzma: 1..9); snappy has no levels.
// InvalidArgument for a codec outside the enum or `raw` larger than kMaxPartitionBytes;
// IOError if the codec itself fails (out of memory), leaving `*frame` as it was.
Status CompressPartition(Compression codec, int level, std::string_view raw, std::string* frame);

// Where a decoder writes: called at most once, with the decoded size (after the frame's
// header and the codec's recorded size were checked), it returns room for that many bytes.
using OutputBuffer = absl::FunctionRef<char*(size_t)>;

// Decodes `frame` into the room `out` gives; `*codec` (optional) gets the tag. Any malformed
// frame (empty, unknown tag, bad or too large size, codec error, size mismatch, trailing
// bytes) is Corruption saying which, possibly after `out` was called; no input makes it
// read out of bounds or ask for more than kMaxPartitionBytes plus the codec's working
// memory.
Status DecompressPartitionTo(std::string_view frame, OutputBuffer out,
                             Compression* codec = nullptr);

// Replaces `*raw` (a std::string or a ChunkString) with the decoded contents of `frame`
// (which must not point into `*raw`), as DecompressPartitionTo; on error `*raw` is left
// empty. `*raw` is not cleared first: resizing a recycled buffer of about the decoded size
// then zero-fills nothing (2 us of a 16 KiB basement miss), and every byte is overwritten.
template <typename String>
Status DecompressPartition(std::string_view frame, String* raw, Compression* codec = nullptr) {
  Status s = DecompressPartitionTo(
      frame,
      [raw](size_t size) {
        if constexpr (std::is_same_v<String, std::string>) ReserveBuffer(raw, size);
        raw->resize(size);
        return raw->data();
      },
      codec);
  if (!s.ok()) raw->clear();
  return s;
}

// Reads just the codec tag of a frame; false if the frame is empty or the tag unknown.
bool PeekCodec(std::string_view frame, Compression* codec);

}  // namespace fern

#endif  // FERN_UTIL_COMPRESSION_H_
