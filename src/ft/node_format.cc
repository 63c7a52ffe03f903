#include "ft/node_format.h"

#include <cstring>

#include "ft/leaf_frame.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compression.h"
#include "util/status_macros.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace fern {

namespace {

Status VerifyFrame(std::string_view frame, const PartitionExtent& extent,
                   const std::string& where) {
  if (frame.size() != extent.size) {
    return Status::Corruption(
        StrCat(where, ": partition frame has ", frame.size(), " bytes, expected ", extent.size));
  }
  if (Checksum32(frame) != extent.checksum) {
    return Status::Corruption(
        StrCat(where, ": partition checksum mismatch at block offset ", extent.offset));
  }
  return Status::OK();
}

template <typename String>
Status Decompress(std::string_view frame, const PartitionExtent& extent, const std::string& where,
                  String* raw, TreeStats* stats) {
  FERN_RETURN_IF_ERROR(VerifyFrame(frame, extent, where));
  Status s = DecompressPartition(frame, raw);
  if (!s.ok()) return s.WithContext(StrCat(where, ": partition at offset ", extent.offset));
  if (raw->size() != extent.raw_size) {
    return Status::Corruption(StrCat(where, ": partition decompressed to ", raw->size(),
                                     " bytes, header says ", extent.raw_size));
  }
  if (stats != nullptr) stats->raw_bytes_decompressed += raw->size();
  return Status::OK();
}

}  // namespace

Status SerializeNode(const Node& node, const TreeConfig& config, const ReadOldFrame& read_old_frame,
                     std::string* block, std::vector<PartitionExtent>* extents, TreeStats* stats) {
  const size_t n = node.partition_count();
  std::vector<std::string> frames(n);
  std::vector<Status> results(n);
  std::vector<size_t> raw_sizes(n, 0);
  std::vector<size_t> to_compress;

  for (size_t i = 0; i < n; ++i) {
    if (node.is_leaf() && node.basements[i].on_disk) {
      results[i] = read_old_frame(node.basements[i].extent, &frames[i]);
      raw_sizes[i] = node.basements[i].extent.raw_size;
    } else {
      to_compress.push_back(i);
    }
  }
  auto compress_one = [&](size_t k) {
    size_t i = to_compress[k];
    if (node.is_leaf()) {
      results[i] =
          EncodeLeafFrame(*node.basements[i].rows, config.compression, config.compression_level,
                          kLeafChunkBytes, &frames[i], &raw_sizes[i]);
      return;
    }
    std::string raw;
    node.buffers[i].Serialize(&raw);
    raw_sizes[i] = raw.size();
    results[i] = CompressPartition(config.compression, config.compression_level, raw, &frames[i]);
  };
  if (config.compression_pool != nullptr && to_compress.size() > 1) {
    config.compression_pool->ParallelFor(to_compress.size(), compress_one);
  } else {
    for (size_t k = 0; k < to_compress.size(); ++k) compress_one(k);
  }
  for (const Status& s : results) FERN_RETURN_IF_ERROR(s);
  if (stats != nullptr) {
    for (size_t i : to_compress) stats->raw_bytes_compressed += raw_sizes[i];
  }

  std::string header;
  header.append(kNodeMagic, sizeof(kNodeMagic));
  PutFixed16(&header, kNodeFormatVersion);
  PutFixed16(&header, 0);
  PutFixed32(&header, 0);  // header length, patched below
  PutFixed32(&header, static_cast<uint32_t>(node.height()));
  PutFixed32(&header, static_cast<uint32_t>(n));
  PutFixed64(&header, node.max_msn());
  for (const std::string& pivot : node.pivots) PutLengthPrefixed(&header, pivot);
  if (!node.is_leaf()) {
    for (BlockNum child : node.children) PutFixed64(&header, static_cast<uint64_t>(child));
  }
  const size_t extents_at = header.size();
  header.append(16 * n, '\0');
  const size_t header_length = header.size() + 4;

  extents->assign(n, PartitionExtent{});
  uint64_t offset = header_length;
  for (size_t i = 0; i < n; ++i) {
    PartitionExtent& e = (*extents)[i];
    e.offset = static_cast<uint32_t>(offset);
    e.size = static_cast<uint32_t>(frames[i].size());
    e.raw_size = static_cast<uint32_t>(raw_sizes[i]);
    e.checksum = Checksum32(frames[i]);
    offset += frames[i].size();
    char* at = header.data() + extents_at + 16 * i;
    EncodeFixed32(at, e.offset);
    EncodeFixed32(at + 4, e.size);
    EncodeFixed32(at + 8, e.raw_size);
    EncodeFixed32(at + 12, e.checksum);
  }
  if (offset > UINT32_MAX) return Status::InvalidArgument("node too large to serialize");
  EncodeFixed32(header.data() + 12, static_cast<uint32_t>(header_length));
  PutFixed32(&header, Checksum32(header));

  block->clear();
  block->reserve(offset);
  block->append(header);
  for (const std::string& frame : frames) block->append(frame);
  return Status::OK();
}

Status ParseNodeHeader(std::string_view bytes, uint64_t block_size, const std::string& where,
                       NodeHeader* header, size_t* needed) {
  *needed = 0;
  if (bytes.size() < kNodeFixedHeaderBytes) {
    return Status::Corruption(StrCat(where, ": node block too short (", bytes.size(), " bytes)"));
  }
  if (std::memcmp(bytes.data(), kNodeMagic, sizeof(kNodeMagic)) != 0) {
    return Status::Corruption(StrCat(where, ": bad node magic"));
  }
  uint16_t version = DecodeFixed16(bytes.data() + 8);
  if (version < kOldestNodeFormatVersion || version > kNodeFormatVersion) {
    return Status::Corruption(StrCat(where, ": unsupported node format version ", version));
  }
  uint32_t header_length = DecodeFixed32(bytes.data() + 12);
  if (header_length < kNodeFixedHeaderBytes + 4 || header_length > block_size) {
    return Status::Corruption(StrCat(where, ": bad node header length ", header_length));
  }
  if (header_length > bytes.size()) {
    // The height is known from the fixed part; the caller decides how much to read by it.
    header->height = DecodeFixed32(bytes.data() + 16);
    *needed = header_length;
    return Status::OK();
  }
  std::string_view head = bytes.substr(0, header_length);
  if (Checksum32(head.substr(0, header_length - 4)) !=
      DecodeFixed32(head.data() + header_length - 4)) {
    return Status::Corruption(StrCat(where, ": node header checksum mismatch"));
  }
  header->header_length = header_length;
  header->height = DecodeFixed32(head.data() + 16);
  uint32_t n = DecodeFixed32(head.data() + 20);
  header->max_msn = DecodeFixed64(head.data() + 24);
  if (header->height >= kMaxTreeHeight) {
    return Status::Corruption(StrCat(where, ": node height ", header->height, " is impossible"));
  }
  // Each partition needs at least 16 header bytes, which bounds n by the header length.
  if (n == 0 || n > header_length / 16) {
    return Status::Corruption(StrCat(where, ": bad partition count ", n));
  }
  Decoder in(head.substr(kNodeFixedHeaderBytes, header_length - kNodeFixedHeaderBytes - 4));
  header->pivots.assign(n - 1, std::string());
  for (uint32_t i = 0; i + 1 < n; ++i) {
    std::string_view pivot;
    if (!in.GetLengthPrefixed(&pivot)) {
      return Status::Corruption(StrCat(where, ": truncated pivot ", i));
    }
    header->pivots[i].assign(pivot);
  }
  header->children.clear();
  if (header->height > 0) {
    header->children.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t child;
      if (!in.GetFixed64(&child) || child > INT64_MAX) {
        return Status::Corruption(StrCat(where, ": bad child block number ", i));
      }
      header->children[i] = static_cast<BlockNum>(child);
    }
  }
  header->extents.resize(n);
  uint64_t expected_offset = header_length;
  for (uint32_t i = 0; i < n; ++i) {
    PartitionExtent& e = header->extents[i];
    if (!in.GetFixed32(&e.offset) || !in.GetFixed32(&e.size) || !in.GetFixed32(&e.raw_size) ||
        !in.GetFixed32(&e.checksum)) {
      return Status::Corruption(StrCat(where, ": truncated partition table"));
    }
    if (e.offset != expected_offset || uint64_t{e.offset} + e.size > block_size) {
      return Status::Corruption(StrCat(where, ": partition ", i, " extent out of range"));
    }
    expected_offset += e.size;
  }
  if (!in.empty()) return Status::Corruption(StrCat(where, ": trailing bytes in node header"));
  return Status::OK();
}

Status DecodeLeafPartition(std::string_view frame, const PartitionExtent& extent,
                           const Comparator& cmp, const std::string& where,
                           std::unique_ptr<Basement>* rows, TreeStats* stats,
                           const Basement::Prefix* prefix) {
  if (IsChunkedLeafFrame(frame)) {
    FERN_RETURN_IF_ERROR(VerifyFrame(frame, extent, where));
    uint64_t decoded = 0;
    Status s = prefix != nullptr
                   ? DecodeChunkedLeafPrefix(frame, extent.raw_size, cmp, *prefix, rows, &decoded)
                   : DecodeChunkedLeafFrame(frame, extent.raw_size, cmp, rows, &decoded);
    if (stats != nullptr) stats->raw_bytes_decompressed += decoded;
    if (!s.ok()) return s.WithContext(StrCat(where, ": basement at offset ", extent.offset));
    return Status::OK();
  }
  std::unique_ptr<Basement> basement = std::move(*rows);
  if (basement == nullptr) basement = std::make_unique<Basement>();
  ChunkString raw = basement->TakeArena();
  // A new arena takes its whole size class, so that rows added later fit without a copy; only
  // for a size the frame declares too (a damaged extent must not allocate gigabytes).
  Compression codec;
  size_t chunks;
  uint64_t declared;
  if (raw.capacity() < extent.raw_size && PeekLeafFrame(frame, &codec, &chunks, &declared) &&
      declared == extent.raw_size && declared <= kMaxPartitionBytes) {
    raw.reserve(chunk_memory::RoundedSize(size_t{extent.raw_size} + 1) - 1);
  }
  FERN_RETURN_IF_ERROR(Decompress(frame, extent, where, &raw, stats));
  Status s = prefix != nullptr ? basement->AdoptPrefix(std::move(raw), cmp, *prefix)
                               : basement->Adopt(std::move(raw), cmp);
  if (!s.ok()) return s.WithContext(StrCat(where, ": basement at offset ", extent.offset));
  *rows = std::move(basement);
  return Status::OK();
}

Status DecodeBufferPartition(std::string_view frame, const PartitionExtent& extent,
                             const Comparator& cmp, const std::string& where, MessageBuffer* buffer,
                             TreeStats* stats) {
  ChunkString raw;
  FERN_RETURN_IF_ERROR(Decompress(frame, extent, where, &raw, stats));
  Status s = MessageBuffer::Deserialize(std::move(raw), cmp, buffer);
  if (!s.ok()) return s.WithContext(StrCat(where, ": message buffer at offset ", extent.offset));
  return Status::OK();
}

}  // namespace fern
