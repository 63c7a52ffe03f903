#include "ft/leaf_frame.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compression.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

struct Chunk {
  uint64_t entries = 0;
  uint64_t raw_bytes = 0;
  std::string_view frame;  // empty (null data) for a chunk a partial read did not fetch
  std::string_view first_key;
  uint32_t checksum = 0;  // of `frame`, checked before decoding if the table says so
};

struct ChunkTable {
  Msn max_msn = 0;
  uint64_t entries = 0;
  absl::InlinedVector<Chunk, 8> chunks;
  // Set for a table made from a LeafChunkIndex: the whole frame's checksum was not checked
  // for this read, so each chunk's is.
  bool check_chunks = false;
};

size_t HeaderBytes(uint64_t entries) { return 8 + VarintLength(entries); }

// Writes the serialized basement header (max MSN, entries) at `at`; HeaderBytes(entries) bytes.
void WriteBasementHeader(Msn max_msn, uint64_t entries, char* at) {
  EncodeFixed64(at, max_msn);
  std::string varint;
  PutVarint64(&varint, entries);
  std::memcpy(at + 8, varint.data(), varint.size());
}

Status ParseChunkTable(std::string_view frame, size_t raw_size, ChunkTable* table) {
  Decoder in(frame);
  uint8_t tag;
  uint64_t count;
  if (!in.GetFixed8(&tag) || tag != kChunkedLeafFrameTag || !in.GetVarint64(&count) ||
      !in.GetFixed64(&table->max_msn) || !in.GetVarint64(&table->entries)) {
    return Status::Corruption("chunked leaf frame: truncated header");
  }
  // Each chunk takes at least four bytes of table.
  if (count < 2 || count > in.remaining() / 4) {
    return Status::Corruption(StrCat("chunked leaf frame: bad chunk count ", count));
  }
  table->chunks.resize(count);
  uint64_t entries = 0;
  uint64_t raw_bytes = 0;
  uint64_t frame_bytes = 0;
  for (Chunk& chunk : table->chunks) {
    uint64_t size;
    if (!in.GetVarint64(&chunk.entries) || !in.GetVarint64(&chunk.raw_bytes) ||
        !in.GetVarint64(&size) || !in.GetLengthPrefixed(&chunk.first_key) || chunk.entries == 0 ||
        chunk.raw_bytes == 0 || chunk.raw_bytes > kMaxPartitionBytes ||
        chunk.entries > chunk.raw_bytes || size == 0 || size > frame.size()) {
      return Status::Corruption("chunked leaf frame: malformed chunk table");
    }
    entries += chunk.entries;
    raw_bytes += chunk.raw_bytes;
    frame_bytes += size;
    chunk.frame = std::string_view(nullptr, size);  // placed below
  }
  if (entries != table->entries || frame_bytes != in.remaining() ||
      HeaderBytes(entries) + raw_bytes != raw_size || raw_size > kMaxPartitionBytes) {
    return Status::Corruption(StrCat("chunked leaf frame: table (", entries, " entries, ",
                                     raw_bytes, " raw bytes, ", frame_bytes,
                                     " frame bytes) disagrees with the frame"));
  }
  const char* at = in.rest().data();
  for (Chunk& chunk : table->chunks) {
    chunk.frame = std::string_view(at, chunk.frame.size());
    at += chunk.frame.size();
  }
  return Status::OK();
}

// Decodes chunks [first, last] into *raw from `at` on. REQUIRES: raw->size() is at least `at`
// plus their raw bytes.
Status DecodeChunks(const ChunkTable& table, size_t first, size_t last, size_t at, ChunkString* raw,
                    uint64_t* decoded_bytes) {
  for (size_t k = first; k <= last; ++k) {
    const Chunk& chunk = table.chunks[k];
    if (chunk.frame.data() == nullptr) {
      return Status::Corruption(StrCat("chunked leaf frame: chunk ", k, " was not read"));
    }
    if (table.check_chunks && Checksum32(chunk.frame) != chunk.checksum) {
      return Status::Corruption(StrCat("chunked leaf frame: chunk ", k, " checksum mismatch"));
    }
    // DecompressPartitionTo asks for room for the size the frame declares: check it first.
    Decoder header(chunk.frame);
    uint8_t codec;
    uint64_t declared;
    if (!header.GetFixed8(&codec) || !header.GetVarint64(&declared) ||
        declared != chunk.raw_bytes) {
      return Status::Corruption(StrCat("chunked leaf frame: chunk ", k,
                                       " does not declare its table's ", chunk.raw_bytes,
                                       " bytes"));
    }
    char* const dst = raw->data() + at;
    Status s = DecompressPartitionTo(chunk.frame, [dst](size_t) { return dst; });
    if (!s.ok()) return s.WithContext(StrCat("chunked leaf frame: chunk ", k));
    at += chunk.raw_bytes;
    *decoded_bytes += chunk.raw_bytes;
  }
  return Status::OK();
}

// Checks that the rows of chunks [first, ...] begin with the table's first keys; `rows` holds
// chunk `first` from row 0 and as many rows after it as it holds.
Status CheckFirstKeys(const ChunkTable& table, size_t first, const Basement& rows) {
  uint64_t row = 0;
  for (size_t k = first; k < table.chunks.size() && row < rows.count(); ++k) {
    if (rows.key(row) != table.chunks[k].first_key) {
      return Status::Corruption(StrCat("chunked leaf frame: chunk ", k, " starts with key ",
                                       EscapeBytes(rows.key(row)), ", its table says ",
                                       EscapeBytes(table.chunks[k].first_key)));
    }
    row += table.chunks[k].entries;
  }
  return Status::OK();
}

std::unique_ptr<Basement> TakeBasement(std::unique_ptr<Basement>* rows) {
  std::unique_ptr<Basement> basement = std::move(*rows);
  if (basement == nullptr) basement = std::make_unique<Basement>();
  return basement;
}

}  // namespace

Status EncodeLeafFrame(const Basement& rows, Compression codec, int level, size_t chunk_bytes,
                       std::string* frame, size_t* raw_size) {
  std::string raw;
  rows.Serialize(&raw);
  *raw_size = raw.size();
  frame->clear();
  const size_t n = rows.count();
  if (raw.size() <= chunk_bytes + chunk_bytes / 2 || n < 2) {
    return CompressPartition(codec, level, raw, frame);
  }
  // Runs of whole entries of at least chunk_bytes each, except that a run leaves none smaller
  // than half a chunk behind it.
  struct Run {
    size_t first_entry;
    size_t entries;
    size_t offset;
    size_t bytes;
  };
  absl::InlinedVector<Run, 16> runs;
  size_t offset = HeaderBytes(n);
  size_t remaining = raw.size() - offset;
  Run run{0, 0, offset, 0};
  for (size_t i = 0; i < n; ++i) {
    const size_t size = rows.encoded_entry(i).size();
    run.entries++;
    run.bytes += size;
    remaining -= size;
    if (run.bytes >= chunk_bytes && remaining >= chunk_bytes / 2 && i + 1 < n) {
      runs.push_back(run);
      run = Run{i + 1, 0, run.offset + run.bytes, 0};
    }
  }
  runs.push_back(run);
  if (runs.size() < 2) return CompressPartition(codec, level, raw, frame);
  // The table's first keys are stored whole and uncompressed, and each chunk compresses on
  // its own: with long keys that costs more than a chunked read saves. Past a 32nd of the
  // raw bytes (keys of ~100 bytes at 2 KiB chunks) the basement is one frame. Measured at a
  // 16 MiB cache, ~100 MB of rows with 100-byte values, chunked against whole: 64-byte keys
  // 121k vs 67k Gets/s, 56 vs 48 MB on disk; 128-byte keys 69k vs 66k, 56 vs 45 MB;
  // 256-byte keys 62k vs 67k, 57 vs 42 MB, puts 73k vs 87k/s; and 200,000 rows of 1 KiB
  // keys 25k vs 67k Gets/s, 187 vs 80 MB, puts 6.5k vs 18k/s.
  size_t first_key_bytes = 0;
  for (const Run& r : runs) first_key_bytes += rows.key(r.first_entry).size();
  if (first_key_bytes > raw.size() / 32) return CompressPartition(codec, level, raw, frame);

  std::string frames;
  std::string table;
  PutFixed8(&table, kChunkedLeafFrameTag);
  PutVarint64(&table, runs.size());
  PutFixed64(&table, rows.max_msn());
  PutVarint64(&table, n);
  for (const Run& r : runs) {
    const size_t before = frames.size();
    std::string chunk_frame;
    FERN_RETURN_IF_ERROR(CompressPartition(
        codec, level, std::string_view(raw).substr(r.offset, r.bytes), &chunk_frame));
    frames.append(chunk_frame);
    PutVarint64(&table, r.entries);
    PutVarint64(&table, r.bytes);
    PutVarint64(&table, frames.size() - before);
    PutLengthPrefixed(&table, rows.key(r.first_entry));
  }
  frame->reserve(table.size() + frames.size());
  frame->append(table);
  frame->append(frames);
  return Status::OK();
}

bool PeekLeafFrame(std::string_view frame, Compression* codec, size_t* chunks, uint64_t* raw_size) {
  Decoder in(frame);
  uint8_t tag;
  if (!IsChunkedLeafFrame(frame)) {
    *chunks = 1;
    uint64_t size;
    if (raw_size != nullptr && (!in.GetFixed8(&tag) || !in.GetVarint64(&size))) return false;
    if (raw_size != nullptr) *raw_size = size;
    return PeekCodec(frame, codec);
  }
  uint64_t count;
  uint64_t max_msn;
  uint64_t entries;
  if (!in.GetFixed8(&tag) || !in.GetVarint64(&count) || count < 2 || !in.GetFixed64(&max_msn) ||
      !in.GetVarint64(&entries) || count > in.remaining() / 4) {
    return false;
  }
  uint64_t total = HeaderBytes(entries);
  for (uint64_t k = 0; k < count; ++k) {
    uint64_t chunk_entries;
    uint64_t chunk_raw;
    uint64_t chunk_frame;
    std::string_view key;
    if (!in.GetVarint64(&chunk_entries) || !in.GetVarint64(&chunk_raw) ||
        !in.GetVarint64(&chunk_frame) || !in.GetLengthPrefixed(&key) ||
        chunk_raw > kMaxPartitionBytes) {
      return false;
    }
    total += chunk_raw;
  }
  *chunks = count;
  if (raw_size != nullptr) *raw_size = total;
  // The first chunk's frame follows the table.
  return PeekCodec(in.rest(), codec);
}

Status DecodeChunkedLeafFrame(std::string_view frame, size_t raw_size, const Comparator& cmp,
                              std::unique_ptr<Basement>* rows, uint64_t* decoded_bytes) {
  ChunkTable table;
  FERN_RETURN_IF_ERROR(ParseChunkTable(frame, raw_size, &table));
  std::unique_ptr<Basement> basement = TakeBasement(rows);
  ChunkString raw = basement->TakeArena();
  // A new arena takes its whole size class, so that rows added later fit without a copy. Not
  // cleared first: resizing a recycled arena zero-fills little or nothing.
  if (raw.capacity() < raw_size) raw.reserve(chunk_memory::RoundedSize(raw_size + 1) - 1);
  raw.resize(raw_size);
  WriteBasementHeader(table.max_msn, table.entries, raw.data());
  FERN_RETURN_IF_ERROR(DecodeChunks(table, 0, table.chunks.size() - 1, HeaderBytes(table.entries),
                                    &raw, decoded_bytes));
  FERN_RETURN_IF_ERROR(basement->Adopt(std::move(raw), cmp));
  FERN_RETURN_IF_ERROR(CheckFirstKeys(table, 0, *basement));
  *rows = std::move(basement);
  return Status::OK();
}

namespace {

// The last chunk whose first key is at or below `key` (the first if none is); Corruption if
// the first keys are out of order.
Status FirstChunkFor(const ChunkTable& table, std::string_view key, const Comparator& cmp,
                     size_t* first) {
  *first = 0;
  for (size_t k = 1; k < table.chunks.size(); ++k) {
    if (cmp.Compare(table.chunks[k - 1].first_key, table.chunks[k].first_key) >= 0) {
      return Status::Corruption(
          StrCat("chunked leaf frame: first keys of chunks ", k - 1, " and ", k, " out of order"));
    }
    if (cmp.Compare(table.chunks[k].first_key, key) <= 0) *first = k;
  }
  return Status::OK();
}

// DecodeChunkedLeafPrefix on a parsed table: decodes the chunk `prefix.key` falls in, then
// the following ones while too few rows above the key are decoded.
Status DecodePrefix(const ChunkTable& table, const Comparator& cmp, const Basement::Prefix& prefix,
                    std::unique_ptr<Basement>* rows, uint64_t* decoded_bytes) {
  const size_t count = table.chunks.size();
  size_t first;
  FERN_RETURN_IF_ERROR(FirstChunkFor(table, prefix.key, cmp, &first));
  std::unique_ptr<Basement> basement = TakeBasement(rows);
  ChunkString raw = basement->TakeArena();
  uint64_t entries = table.chunks[first].entries;
  size_t header = HeaderBytes(entries);
  size_t body = table.chunks[first].raw_bytes;
  raw.resize(header + body);
  WriteBasementHeader(table.max_msn, entries, raw.data());
  FERN_RETURN_IF_ERROR(DecodeChunks(table, first, first, header, &raw, decoded_bytes));
  FERN_RETURN_IF_ERROR(basement->AdoptPrefix(std::move(raw), cmp, prefix));
  // Rows after the key's chunk are all above the key. If the chunk holds too few rows above
  // it, add the chunks that make up the difference and parse again.
  size_t last = first;
  if (prefix.rows_above > 0 && last + 1 < count) {
    size_t at = basement->LowerBound(prefix.key, cmp);
    if (at < basement->count() && cmp.Compare(basement->key(at), prefix.key) == 0) ++at;
    uint64_t above = basement->count() - at;
    if (above < prefix.rows_above) {
      size_t added = 0;
      while (last + 1 < count && above < prefix.rows_above) {
        ++last;
        above += table.chunks[last].entries;
        entries += table.chunks[last].entries;
        added += table.chunks[last].raw_bytes;
      }
      raw = basement->TakeArena();
      const size_t new_header = HeaderBytes(entries);
      raw.resize(new_header + body + added);
      if (new_header != header) std::memmove(raw.data() + new_header, raw.data() + header, body);
      WriteBasementHeader(table.max_msn, entries, raw.data());
      FERN_RETURN_IF_ERROR(
          DecodeChunks(table, first + 1, last, new_header + body, &raw, decoded_bytes));
      FERN_RETURN_IF_ERROR(basement->AdoptPrefix(std::move(raw), cmp, prefix));
    }
  }
  FERN_RETURN_IF_ERROR(CheckFirstKeys(table, first, *basement));
  *rows = std::move(basement);
  return Status::OK();
}

}  // namespace

Status DecodeChunkedLeafPrefix(std::string_view frame, size_t raw_size, const Comparator& cmp,
                               const Basement::Prefix& prefix, std::unique_ptr<Basement>* rows,
                               uint64_t* decoded_bytes) {
  ChunkTable table;
  FERN_RETURN_IF_ERROR(ParseChunkTable(frame, raw_size, &table));
  return DecodePrefix(table, cmp, prefix, rows, decoded_bytes);
}

Status LeafChunkIndex::Build(std::string_view frame, size_t raw_size, const Comparator& cmp,
                             uint64_t frame_id, std::shared_ptr<const LeafChunkIndex>* out) {
  ChunkTable table;
  FERN_RETURN_IF_ERROR(ParseChunkTable(frame, raw_size, &table));
  size_t ignored;
  FERN_RETURN_IF_ERROR(FirstChunkFor(table, {}, cmp, &ignored));  // checks the key order
  auto index = std::shared_ptr<LeafChunkIndex>(new LeafChunkIndex());
  index->frame_id_ = frame_id;
  index->max_msn_ = table.max_msn;
  index->entries_ = table.entries;
  index->chunks_.reserve(table.chunks.size());
  size_t key_bytes = 0;
  for (const Chunk& chunk : table.chunks) key_bytes += chunk.first_key.size();
  index->keys_.reserve(key_bytes);
  for (const Chunk& chunk : table.chunks) {
    IndexedChunk c;
    c.entries = static_cast<uint32_t>(chunk.entries);
    c.raw_bytes = static_cast<uint32_t>(chunk.raw_bytes);
    c.offset = static_cast<uint32_t>(chunk.frame.data() - frame.data());
    c.size = static_cast<uint32_t>(chunk.frame.size());
    c.checksum = Checksum32(chunk.frame);
    c.key_offset = static_cast<uint32_t>(index->keys_.size());
    c.key_size = static_cast<uint32_t>(chunk.first_key.size());
    index->keys_.append(chunk.first_key);
    index->chunks_.push_back(c);
  }
  *out = std::move(index);
  return Status::OK();
}

size_t LeafChunkIndex::memory_bytes() const {
  // The shared_ptr's control block is a separate allocation of about 32 bytes.
  constexpr size_t kControlBlockBytes = 32;
  return sizeof(LeafChunkIndex) + kControlBlockBytes + chunks_.capacity() * sizeof(IndexedChunk) +
         keys_.capacity();
}

LeafChunkIndex::Span LeafChunkIndex::SpanFor(const Basement::Prefix& prefix,
                                             const Comparator& cmp) const {
  // The chunk the key falls in (as FirstChunkFor finds it; the order was checked at Build).
  size_t first = 0;
  for (size_t k = 1; k < chunks_.size(); ++k) {
    if (cmp.Compare(key(k), prefix.key) <= 0) first = k;
  }
  // Then enough chunks for rows_above rows even if the key is its chunk's last row: a
  // decode adds no chunk past these (DecodePrefix stops once it has rows_above rows above).
  size_t last = first;
  uint64_t above = 0;
  while (prefix.rows_above > 0 && last + 1 < chunks_.size() && above < prefix.rows_above) {
    ++last;
    above += chunks_[last].entries;
  }
  return Span{first, last, chunks_[first].offset,
              uint64_t{chunks_[last].offset} + chunks_[last].size};
}

Status DecodeChunkedLeafPrefix(const LeafChunkIndex& index, const LeafChunkIndex::Span& span,
                               std::string_view bytes, const Comparator& cmp,
                               const Basement::Prefix& prefix, std::unique_ptr<Basement>* rows,
                               uint64_t* decoded_bytes) {
  const size_t count = index.chunks_.size();
  if (span.first > span.last || span.last >= count ||
      span.begin != index.chunks_[span.first].offset ||
      span.end != uint64_t{index.chunks_[span.last].offset} + index.chunks_[span.last].size) {
    return Status::InvalidArgument(StrCat("chunked leaf frame: span of chunks ", span.first, "-",
                                          span.last, " does not match the frame's ", count,
                                          " chunks"));
  }
  if (bytes.size() != span.end - span.begin) {
    return Status::Corruption(StrCat("chunked leaf frame: read ", bytes.size(), " bytes of chunks ",
                                     span.first, "-", span.last, ", expected ",
                                     span.end - span.begin));
  }
  ChunkTable table;
  table.max_msn = index.max_msn_;
  table.entries = index.entries_;
  table.check_chunks = true;
  table.chunks.resize(count);
  for (size_t k = 0; k < count; ++k) {
    const LeafChunkIndex::IndexedChunk& c = index.chunks_[k];
    Chunk& chunk = table.chunks[k];
    chunk.entries = c.entries;
    chunk.raw_bytes = c.raw_bytes;
    chunk.first_key = index.key(k);
    chunk.checksum = c.checksum;
    if (k >= span.first && k <= span.last)
      chunk.frame = bytes.substr(c.offset - span.begin, c.size);
  }
  return DecodePrefix(table, cmp, prefix, rows, decoded_bytes);
}

}  // namespace fern
