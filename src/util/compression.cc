#include "util/compression.h"

#include <lzma.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "util/big_buffer.h"
#include "util/coding.h"
#include "util/status_macros.h"
#include "util/strings.h"
#include "util/thread_cache.h"

namespace fern {

namespace {

// Level 1 rather than ZSTD_CLEVEL_DEFAULT (3). Measured on this machine with 400 synthetic
// 64 KiB basements (sorted 16-byte keys, 100-byte values), reusing contexts:
//   values half random letters, half repeated: level 1 ratio 3.40, 540 MB/s compress;
//                                              level 3 ratio 3.33, 290 MB/s compress;
//   values of words and numbers:               level 1 ratio 3.75, 355 MB/s compress;
//                                              level 3 ratio 3.86, 336 MB/s compress.
// Decompression ran at the same speed for both (1.5-3.3 GB/s). Level 1 compresses up to 1.9x
// faster for at most 3% in ratio, and compression sits on the eviction and checkpoint path.
constexpr int kDefaultZstdLevel = 1;

// Contexts are reused per thread: a fresh context per call (ZSTD_compress/ZSTD_decompress)
// costs an allocation and initialisation that, on 64 KiB partitions, made decompression
// 1.3-2.6x slower (1.98 vs 3.31 GB/s at level 1) and compression ~10% slower.
struct ZstdContextDeleter {
  void operator()(ZSTD_CCtx* context) const { ZSTD_freeCCtx(context); }
  void operator()(ZSTD_DCtx* context) const { ZSTD_freeDCtx(context); }
};

// A context keeps the workspace of its largest job: ~0.6 MiB after a 4 MiB node at level 1,
// 1.3 MiB at level 3, but 51 MiB at level 19. One above this size is dropped after use so
// that high levels do not pin tens of MiB in every thread that ever compressed.
constexpr size_t kMaxCachedZstdContextBytes = size_t{4} << 20;

using ZstdCompressContext = std::unique_ptr<ZSTD_CCtx, ZstdContextDeleter>;
using ZstdDecompressContext = std::unique_ptr<ZSTD_DCtx, ZstdContextDeleter>;

// The thread's context, or nullptr (the thread is exiting, or creation failed): callers
// then use the context-free calls.
ZstdCompressContext* ThreadZstdCompressContext() {
  ZstdCompressContext* context = ThreadCached<ZstdCompressContext>();
  if (context == nullptr) return nullptr;
  if (*context == nullptr) context->reset(ZSTD_createCCtx());
  return *context != nullptr ? context : nullptr;
}

ZSTD_DCtx* ThreadZstdDecompressContext() {
  ZstdDecompressContext* context = ThreadCached<ZstdDecompressContext>();
  if (context == nullptr) return nullptr;
  if (*context == nullptr) context->reset(ZSTD_createDCtx());
  return context->get();
}

// The decoder's memory ceiling: enough for the largest preset Fern writes (9, a 64 MiB
// dictionary), so a damaged header cannot make liblzma reserve more.
uint64_t LzmaDecoderMemoryLimit() {
  static const uint64_t limit = lzma_easy_decoder_memusage(9 | LZMA_PRESET_EXTREME);
  return limit;
}

bool IsKnownCodec(uint8_t tag) { return tag <= static_cast<uint8_t>(Compression::kLzma); }

// Each Compress* function writes the codec's output for `raw` at `out` (capacity `*size`,
// which is at least the codec's bound) and sets `*size` to the bytes written.

Status CompressSnappy(std::string_view raw, char* out, size_t* size) {
  snappy::RawCompress(raw.data(), raw.size(), out, size);
  return Status::OK();
}

Status CompressZlib(int level, std::string_view raw, char* out, size_t* size) {
  // zlib's own level 0 means "store"; Fern's 0 means the codec's default.
  level = level == 0 ? Z_DEFAULT_COMPRESSION : std::clamp(level, Z_BEST_SPEED, Z_BEST_COMPRESSION);
  uLongf written = *size;
  int rc = compress2(reinterpret_cast<Bytef*>(out), &written,
                     reinterpret_cast<const Bytef*>(raw.data()), raw.size(), level);
  if (rc != Z_OK) return Status::IOError(StrCat("zlib compress2 failed: error ", rc));
  *size = written;
  return Status::OK();
}

Status CompressZstd(int level, std::string_view raw, char* out, size_t* size) {
  if (level == 0) level = kDefaultZstdLevel;
  level = std::clamp(level, ZSTD_minCLevel(), ZSTD_maxCLevel());
  size_t written;
  if (ZstdCompressContext* context = ThreadZstdCompressContext(); context != nullptr) {
    written = ZSTD_compressCCtx(context->get(), out, *size, raw.data(), raw.size(), level);
    if (ZSTD_sizeof_CCtx(context->get()) > kMaxCachedZstdContextBytes) context->reset();
  } else {
    written = ZSTD_compress(out, *size, raw.data(), raw.size(), level);
  }
  if (ZSTD_isError(written)) {
    return Status::IOError(StrCat("zstd compress failed: ", ZSTD_getErrorName(written)));
  }
  *size = written;
  return Status::OK();
}

Status CompressLzma(int level, std::string_view raw, char* out, size_t* size) {
  uint32_t preset =
      level == 0 ? LZMA_PRESET_DEFAULT : static_cast<uint32_t>(std::clamp(level, 1, 9));
  size_t written = 0;
  // CRC32 costs little next to LZMA itself and catches damage the partition checksum
  // cannot (a frame damaged in memory after it was verified).
  lzma_ret rc = lzma_easy_buffer_encode(preset, LZMA_CHECK_CRC32, nullptr,
                                        reinterpret_cast<const uint8_t*>(raw.data()), raw.size(),
                                        reinterpret_cast<uint8_t*>(out), &written, *size);
  if (rc != LZMA_OK)
    return Status::IOError(StrCat("lzma encode failed: error ", static_cast<int>(rc)));
  *size = written;
  return Status::OK();
}

size_t CompressedBound(Compression codec, size_t raw_size) {
  switch (codec) {
    case Compression::kNone:
      return raw_size;
    case Compression::kSnappy:
      return snappy::MaxCompressedLength(raw_size);
    case Compression::kZlib:
      return compressBound(raw_size);
    case Compression::kZstd:
      return ZSTD_compressBound(raw_size);
    case Compression::kLzma:
      return lzma_stream_buffer_bound(raw_size);
  }
  return 0;
}

Status SizeMismatch(const char* codec, uint64_t recorded, uint64_t declared) {
  return Status::Corruption(
      StrCat(codec, ": payload holds ", recorded, " bytes, frame declares ", declared));
}

// Each Decompress* function sets `*out` to exactly `declared` bytes decoded from `payload`,
// or returns Corruption: a payload that decodes to more or fewer bytes, carries trailing
// bytes, or fails the codec's own checks. Where the codec records the uncompressed size, it
// is compared with `declared` before `*out` is allocated, so a damaged size costs nothing.

Status DecompressSnappy(std::string_view payload, uint64_t declared, OutputBuffer out) {
  size_t recorded;
  if (!snappy::GetUncompressedLength(payload.data(), payload.size(), &recorded)) {
    return Status::Corruption("snappy: unreadable length");
  }
  if (recorded != declared) return SizeMismatch("snappy", recorded, declared);
  char* const dst = out(declared);
  if (!snappy::RawUncompress(payload.data(), payload.size(), dst)) {
    return Status::Corruption("snappy: malformed payload");
  }
  return Status::OK();
}

// Deflate emits at most 258 bytes per 2 bits (a length-258 match with 1-bit codes for length
// and distance), so a zlib stream never expands its input by more than 1032x.
constexpr uint64_t kMaxDeflateRatio = 1032;

Status DecompressZlib(std::string_view payload, uint64_t declared, OutputBuffer out) {
  if (declared > kMaxDeflateRatio * (payload.size() + 1)) {
    return Status::Corruption(
        StrCat("zlib: ", payload.size(), " payload bytes cannot hold the declared ", declared));
  }
  char* const dst = out(declared);
  uLongf produced = declared;
  uLong consumed = payload.size();
  int rc = uncompress2(reinterpret_cast<Bytef*>(dst), &produced,
                       reinterpret_cast<const Bytef*>(payload.data()), &consumed);
  if (rc == Z_BUF_ERROR) {
    return Status::Corruption(
        StrCat("zlib: payload holds more than the declared ", declared, " bytes"));
  }
  if (rc != Z_OK) return Status::Corruption(StrCat("zlib: ", zError(rc)));
  if (produced != declared) return SizeMismatch("zlib", produced, declared);
  if (consumed != payload.size()) {
    return Status::Corruption(
        StrCat("zlib: ", payload.size() - consumed, " trailing bytes after the stream"));
  }
  return Status::OK();
}

Status DecompressZstd(std::string_view payload, uint64_t declared, OutputBuffer out) {
  unsigned long long recorded = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (recorded == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption("zstd: bad frame header");
  if (recorded != ZSTD_CONTENTSIZE_UNKNOWN && recorded != declared) {
    return SizeMismatch("zstd", recorded, declared);
  }
  char* const dst = out(declared);
  size_t produced;
  if (ZSTD_DCtx* context = ThreadZstdDecompressContext()) {
    produced = ZSTD_decompressDCtx(context, dst, declared, payload.data(), payload.size());
  } else {
    produced = ZSTD_decompress(dst, declared, payload.data(), payload.size());
  }
  if (ZSTD_isError(produced)) {
    return Status::Corruption(StrCat("zstd: ", ZSTD_getErrorName(produced)));
  }
  if (produced != declared) return SizeMismatch("zstd", produced, declared);
  return Status::OK();
}

// Reads the uncompressed size an .xz stream records in its index (located through the
// stream footer), without decoding any data.
Status LzmaRecordedSize(std::string_view payload, uint64_t* size) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(payload.data());
  if (payload.size() < 2 * LZMA_STREAM_HEADER_SIZE) {
    return Status::Corruption(StrCat("lzma: payload of ", payload.size(), " bytes is truncated"));
  }
  const size_t footer_start = payload.size() - LZMA_STREAM_HEADER_SIZE;
  lzma_stream_flags footer;
  if (lzma_stream_footer_decode(&footer, bytes + footer_start) != LZMA_OK) {
    return Status::Corruption("lzma: bad stream footer");
  }
  if (footer.backward_size > footer_start - LZMA_STREAM_HEADER_SIZE) {
    return Status::Corruption("lzma: stream footer points outside the payload");
  }
  size_t position = footer_start - static_cast<size_t>(footer.backward_size);
  // Fern writes one block per stream; an index needing more than 1 MiB is damage.
  uint64_t index_memory_limit = uint64_t{1} << 20;
  lzma_index* index = nullptr;
  lzma_ret rc = lzma_index_buffer_decode(&index, &index_memory_limit, nullptr, bytes, &position,
                                         footer_start);
  if (rc != LZMA_OK) return Status::Corruption("lzma: bad stream index");
  *size = lzma_index_uncompressed_size(index);
  lzma_index_end(index, nullptr);
  if (position != footer_start) return Status::Corruption("lzma: bad stream index size");
  return Status::OK();
}

Status DecompressLzma(std::string_view payload, uint64_t declared, OutputBuffer out) {
  uint64_t recorded = 0;
  FERN_RETURN_IF_ERROR(LzmaRecordedSize(payload, &recorded));
  if (recorded != declared) return SizeMismatch("lzma", recorded, declared);
  char* const dst = out(declared);
  uint64_t memory_limit = LzmaDecoderMemoryLimit();
  size_t consumed = 0;
  size_t produced = 0;
  lzma_ret rc = lzma_stream_buffer_decode(
      &memory_limit, 0, nullptr, reinterpret_cast<const uint8_t*>(payload.data()), &consumed,
      payload.size(), reinterpret_cast<uint8_t*>(dst), &produced, declared);
  switch (rc) {
    case LZMA_OK:
      break;
    case LZMA_BUF_ERROR:
      return Status::Corruption(
          StrCat("lzma: payload holds more than the declared ", declared, " bytes"));
    case LZMA_MEMLIMIT_ERROR:
      return Status::Corruption("lzma: header asks for more memory than any Fern preset");
    case LZMA_FORMAT_ERROR:
      return Status::Corruption("lzma: not an .xz stream");
    case LZMA_DATA_ERROR:
      return Status::Corruption("lzma: malformed or truncated payload");
    default:
      return Status::Corruption(StrCat("lzma: decode failed: error ", static_cast<int>(rc)));
  }
  if (produced != declared) return SizeMismatch("lzma", produced, declared);
  if (consumed != payload.size()) {
    return Status::Corruption(
        StrCat("lzma: ", payload.size() - consumed, " trailing bytes after the stream"));
  }
  return Status::OK();
}

}  // namespace

const char* CompressionName(Compression codec) {
  switch (codec) {
    case Compression::kNone:
      return "none";
    case Compression::kSnappy:
      return "snappy";
    case Compression::kZlib:
      return "zlib";
    case Compression::kZstd:
      return "zstd";
    case Compression::kLzma:
      return "lzma";
  }
  return "unknown";
}

bool ParseCompressionName(std::string_view name, Compression* codec) {
  for (uint8_t tag = 0; IsKnownCodec(tag); ++tag) {
    auto candidate = static_cast<Compression>(tag);
    if (name == CompressionName(candidate)) {
      *codec = candidate;
      return true;
    }
  }
  return false;
}

Status CompressPartition(Compression codec, int level, std::string_view raw, std::string* frame) {
  auto tag = static_cast<uint8_t>(codec);
  if (!IsKnownCodec(tag)) {
    return Status::InvalidArgument(StrCat("unknown compression codec ", int{tag}));
  }
  if (raw.size() > kMaxPartitionBytes) {
    return Status::InvalidArgument(
        StrCat("partition of ", raw.size(), " bytes exceeds the limit of ", kMaxPartitionBytes));
  }
  const size_t start = frame->size();
  PutFixed8(frame, tag);
  PutVarint64(frame, raw.size());
  if (codec == Compression::kNone) {
    ReserveBuffer(frame, frame->size() + raw.size());
    frame->append(raw);
    return Status::OK();
  }
  const size_t header_end = frame->size();
  size_t written = CompressedBound(codec, raw.size());
  ReserveBuffer(frame, header_end + written);
  frame->resize(header_end + written);
  char* out = frame->data() + header_end;
  Status s;
  switch (codec) {
    case Compression::kNone:
      break;
    case Compression::kSnappy:
      s = CompressSnappy(raw, out, &written);
      break;
    case Compression::kZlib:
      s = CompressZlib(level, raw, out, &written);
      break;
    case Compression::kZstd:
      s = CompressZstd(level, raw, out, &written);
      break;
    case Compression::kLzma:
      s = CompressLzma(level, raw, out, &written);
      break;
  }
  if (!s.ok()) {
    frame->resize(start);
    return s;
  }
  frame->resize(header_end + written);
  return Status::OK();
}

namespace {

Status DecodeFrame(std::string_view frame, OutputBuffer raw, Compression* codec) {
  Decoder decoder(frame);
  uint8_t tag;
  if (!decoder.GetFixed8(&tag)) return Status::Corruption("compressed frame is empty");
  if (!IsKnownCodec(tag)) {
    return Status::Corruption(StrCat("compressed frame has unknown codec tag ", int{tag}));
  }
  const auto frame_codec = static_cast<Compression>(tag);
  uint64_t declared;
  if (!decoder.GetVarint64(&declared)) {
    return Status::Corruption(
        StrCat(CompressionName(frame_codec), " frame: truncated uncompressed size"));
  }
  if (declared > kMaxPartitionBytes) {
    return Status::Corruption(StrCat(CompressionName(frame_codec), " frame declares ", declared,
                                     " bytes, more than the limit of ", kMaxPartitionBytes));
  }
  const std::string_view payload = decoder.rest();
  Status s;
  switch (frame_codec) {
    case Compression::kNone:
      if (payload.size() != declared) {
        s = SizeMismatch("none", payload.size(), declared);
      } else {
        std::memcpy(raw(payload.size()), payload.data(), payload.size());
      }
      break;
    case Compression::kSnappy:
      s = DecompressSnappy(payload, declared, raw);
      break;
    case Compression::kZlib:
      s = DecompressZlib(payload, declared, raw);
      break;
    case Compression::kZstd:
      s = DecompressZstd(payload, declared, raw);
      break;
    case Compression::kLzma:
      s = DecompressLzma(payload, declared, raw);
      break;
  }
  if (!s.ok()) return s;
  if (codec != nullptr) *codec = frame_codec;
  return Status::OK();
}

}  // namespace

Status DecompressPartitionTo(std::string_view frame, OutputBuffer out, Compression* codec) {
  return DecodeFrame(frame, out, codec);
}

bool PeekCodec(std::string_view frame, Compression* codec) {
  if (frame.empty() || !IsKnownCodec(static_cast<uint8_t>(frame[0]))) return false;
  *codec = static_cast<Compression>(frame[0]);
  return true;
}

}  // namespace fern
