// Per-partition compression behind one interface.
//
// A compressed partition ("frame") is self-describing, so files written with different
// codecs stay readable after TableOptions::compression changes:
//
//   offset  size     meaning
//   0       1        codec tag: 0 none, 1 snappy, 2 zlib, 3 zstd, 4 lzma (= Compression)
//   1       varint   uncompressed size in bytes
//   ...     rest     the codec's output (for `none`, the raw bytes)
#ifndef FERN_UTIL_COMPRESSION_H_
#define FERN_UTIL_COMPRESSION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "fern/options.h"
#include "fern/status.h"

namespace fern {

// Largest uncompressed partition a frame may declare; larger is Corruption (guards against
// allocating gigabytes on a damaged length).
inline constexpr uint64_t kMaxPartitionBytes = uint64_t{256} << 20;

const char* CompressionName(Compression codec);

// Appends the frame for `raw` to `*frame`. `level` 0 means the codec's default.
Status CompressPartition(Compression codec, int level, std::string_view raw, std::string* frame);

// Replaces `*raw` with the decoded contents of `frame`; `*codec` (optional) gets the tag.
// Any malformed frame (unknown tag, bad size, codec error, size mismatch) is Corruption.
Status DecompressPartition(std::string_view frame, std::string* raw, Compression* codec = nullptr);

// Reads just the codec tag of a frame; false if the frame is empty or the tag unknown.
bool PeekCodec(std::string_view frame, Compression* codec);

}  // namespace fern

#endif  // FERN_UTIL_COMPRESSION_H_
