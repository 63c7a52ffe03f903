// libFuzzer target for the node format (src/ft/node_format.h): arbitrary bytes are taken
// as a whole node block (ParseNodeHeader, then every partition it names, decoded as message
// buffers or basements by the node's height) and as one partition frame on its own
// (DecodeLeafPartition, whole and for a prefix read, a chunked leaf frame's chunk index and a
// prefix read through it, and DecodeBufferPartition).
//
// Checksums would stop almost every mutation at the first check, so each input is also tried
// with its checksums made to match: the header checksum recomputed, and each partition
// decoded with an extent rebuilt from its frame. That lets mutations reach the codecs and the
// basement and message-buffer decoders.
//
// Whatever the bytes, nothing may crash, read out of bounds or allocate from a damaged
// length; and whatever decodes must be usable: every accessor works, a decoded basement
// takes an insert, a delete and an optimize, and re-serializing anything decoded yields
// bytes that decode again to the same serialization.
//
// Build and run: scripts/fuzz.sh (or tests/fuzz/CMakeLists.txt with -DFERN_FUZZ=ON).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fern/options.h"
#include "ft/basement.h"
#include "ft/leaf_frame.h"
#include "ft/message_buffer.h"
#include "ft/node_format.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compression.h"

namespace fern {
namespace {

const Comparator& Cmp() { return *BytewiseComparator(); }

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void UseBuffer(const MessageBuffer& buffer) {
  size_t seen = 0;
  std::string first_key;
  std::string last_key;
  buffer.ForEach([&](const Message& m) {
    if (seen == 0) first_key.assign(m.key);
    last_key.assign(m.key);
    ++seen;
  });
  Check(seen == buffer.count());
  size_t broadcasts = 0;
  buffer.ForEachBroadcast([&](const Message&) { ++broadcasts; });
  Check(broadcasts == buffer.broadcast_count());
  size_t matches = 0;
  buffer.ForEachWithKey(first_key, Cmp(), [&](const Message& m) {
    Check(m.key == first_key);
    ++matches;
  });
  std::string_view lower = first_key;
  std::string_view upper = last_key;
  size_t in_range = 0;
  buffer.ForEachInRange(&lower, &upper, Cmp(), [&](const Message&) { ++in_range; });
  buffer.ForEachInRange(nullptr, nullptr, Cmp(), [&](const Message&) { ++in_range; });

  std::string raw;
  buffer.Serialize(&raw);
  MessageBuffer again;
  Check(MessageBuffer::Deserialize(raw, Cmp(), &again).ok());
  Check(again.count() == buffer.count() && again.max_msn() == buffer.max_msn());
  std::string raw_again;
  again.Serialize(&raw_again);
  Check(raw_again == raw);
}

void UseBasement(Basement* rows) {
  std::string raw;
  rows->Serialize(&raw);
  Check(raw.size() == rows->serialized_bytes());
  for (size_t i = 0; i < rows->count(); ++i) {
    LeafEntryView entry = rows->entry(i);
    Check(entry.key() == rows->key(i));
    for (size_t c = 0; c < entry.committed_count(); ++c) (void)entry.committed(c).value.size();
    for (size_t p = 0; p < entry.provisional_count(); ++p) (void)entry.provisional(p).value.size();
    StoredValue value;
    (void)entry.LatestCommitted(&value);
    (void)entry.ReadVisible(XidStack(), {}, &value);
    (void)entry.IsEmpty();
    size_t index;
    Check(rows->Find(rows->key(i), Cmp(), &index) && index == i);
  }

  Basement again;
  Check(Basement::Deserialize(raw, Cmp(), &again).ok());
  std::string raw_again;
  again.Serialize(&raw_again);
  Check(raw_again == raw);

  // Writes over decoded entries (MSNs above the basement's, unless it is at the limit,
  // where Apply ignores them).
  ApplyContext ctx;
  ctx.cmp = &Cmp();
  Msn msn = rows->max_msn();
  Message m;
  m.msn = msn < UINT64_MAX - 3 ? msn + 1 : msn;
  m.type = MessageType::kInsert;
  std::string first = rows->count() > 0 ? std::string(rows->key(0)) : std::string("k");
  m.key = first;
  m.value = "fuzz";
  rows->Apply(m, ctx);
  std::string middle =
      rows->count() > 0 ? std::string(rows->key(rows->count() / 2)) : std::string("k");
  m.msn = msn < UINT64_MAX - 3 ? msn + 2 : msn;
  m.type = MessageType::kDelete;
  m.key = middle;
  m.value = {};
  rows->Apply(m, ctx);
  m.msn = msn < UINT64_MAX - 3 ? msn + 3 : msn;
  m.type = MessageType::kOptimize;
  m.key = {};
  rows->Apply(m, ctx);
  raw.clear();
  rows->Serialize(&raw);
  Check(Basement::Deserialize(raw, Cmp(), &again).ok());
}

// Builds a chunk index from a chunked leaf frame, as the first verified read of a frame does,
// and reads `prefix` through it: the span it names lies inside the frame; a read of the
// span's bytes decodes what the whole frame's prefix read decodes; a span with one bit
// flipped or a byte short never yields rows the frame does not hold.
void FuzzChunkIndex(std::string_view frame, size_t raw_size, const Basement::Prefix& prefix) {
  std::shared_ptr<const LeafChunkIndex> index;
  if (!LeafChunkIndex::Build(frame, raw_size, Cmp(), /*frame_id=*/7, &index).ok()) {
    Check(index == nullptr);
    return;
  }
  Check(index != nullptr && index->memory_bytes() > 0);
  const LeafChunkIndex::Span span = index->SpanFor(prefix, Cmp());
  Check(span.first <= span.last && span.begin <= span.end && span.end <= frame.size());
  const std::string_view bytes = frame.substr(span.begin, span.end - span.begin);
  std::unique_ptr<Basement> part;
  uint64_t part_decoded = 0;
  const bool part_ok =
      DecodeChunkedLeafPrefix(*index, span, bytes, Cmp(), prefix, &part, &part_decoded).ok();
  std::unique_ptr<Basement> whole;
  uint64_t whole_decoded = 0;
  const bool whole_ok =
      DecodeChunkedLeafPrefix(frame, raw_size, Cmp(), prefix, &whole, &whole_decoded).ok();
  // Both decode the same chunks from the same table.
  Check(part_ok == whole_ok);
  if (part_ok) {
    Check(part->count() == whole->count() && part->max_msn() == whole->max_msn());
    for (size_t r = 0; r < part->count(); ++r) {
      Check(part->encoded_entry(r) == whole->encoded_entry(r));
    }
  }
  // UseBasement changes the rows, so it comes after the comparison.
  if (part_ok) UseBasement(part.get());
  if (bytes.empty()) return;
  std::string damaged(bytes);
  damaged[damaged.size() / 2] = static_cast<char>(damaged[damaged.size() / 2] ^ 0x10);
  std::unique_ptr<Basement> other;
  uint64_t decoded = 0;
  // A flip in a chunk the read did not need may go unnoticed; then the rows are the frame's.
  if (DecodeChunkedLeafPrefix(*index, span, damaged, Cmp(), prefix, &other, &decoded).ok() &&
      whole_ok) {
    Check(other->count() == whole->count());
    for (size_t r = 0; r < other->count(); ++r) {
      Check(other->encoded_entry(r) == whole->encoded_entry(r));
    }
  }
  Check(!DecodeChunkedLeafPrefix(*index, span, bytes.substr(1), Cmp(), prefix, &other, &decoded)
             .ok());
}

// Decodes one partition frame as the node's height says; with `repair`, against an extent
// rebuilt from the frame itself, so that only the frame's contents can make it fail.
void DecodeFrame(std::string_view frame, PartitionExtent extent, bool leaf, bool repair) {
  if (repair) {
    extent.size = static_cast<uint32_t>(frame.size());
    extent.checksum = Checksum32(frame);
    std::string raw;
    Compression codec;
    size_t chunks;
    uint64_t raw_size;
    if (leaf && IsChunkedLeafFrame(frame)) {
      if (PeekLeafFrame(frame, &codec, &chunks, &raw_size) && raw_size <= UINT32_MAX) {
        extent.raw_size = static_cast<uint32_t>(raw_size);
      }
    } else if (DecompressPartition(frame, &raw).ok()) {
      extent.raw_size = static_cast<uint32_t>(raw.size());
    }
  }
  TreeStats stats;
  if (leaf) {
    std::unique_ptr<Basement> rows;
    if (DecodeLeafPartition(frame, extent, Cmp(), "fuzz", &rows, &stats).ok()) {
      Check(rows != nullptr);
      UseBasement(rows.get());
    }
    // A prefix read (a transient get or seek), with a key and a row count from the bytes.
    const std::string key(frame.substr(frame.size() / 2, 16));
    const Basement::Prefix prefix{key, 1 + frame.size() % 40};
    std::unique_ptr<Basement> part;
    if (DecodeLeafPartition(frame, extent, Cmp(), "fuzz", &part, &stats, &prefix).ok()) {
      Check(part != nullptr);
      UseBasement(part.get());
    }
    if (IsChunkedLeafFrame(frame)) FuzzChunkIndex(frame, extent.raw_size, prefix);
  } else {
    MessageBuffer buffer;
    if (DecodeBufferPartition(frame, extent, Cmp(), "fuzz", &buffer, &stats).ok()) {
      UseBuffer(buffer);
    }
  }
}

void FuzzBlock(std::string_view block, bool repair) {
  NodeHeader header;
  size_t needed = 0;
  if (!ParseNodeHeader(block, block.size(), "fuzz", &header, &needed).ok()) return;
  // The whole block was given, so the header cannot need more bytes.
  Check(needed == 0);
  const size_t n = header.extents.size();
  Check(n >= 1 && header.pivots.size() == n - 1);
  Check(header.height == 0 ? header.children.empty() : header.children.size() == n);
  for (const PartitionExtent& e : header.extents) {
    Check(e.offset >= header.header_length && uint64_t{e.offset} + e.size <= block.size());
    DecodeFrame(block.substr(e.offset, e.size), e, header.height == 0, repair);
  }
}

// A copy of `block` whose header checksum matches its header, when its header length is
// plausible.
std::string WithHeaderChecksum(std::string_view block) {
  std::string copy(block);
  if (copy.size() < kNodeFixedHeaderBytes) return copy;
  uint32_t length = DecodeFixed32(copy.data() + 12);
  if (length < kNodeFixedHeaderBytes + 4 || length > copy.size()) return copy;
  EncodeFixed32(copy.data() + length - 4, Checksum32(std::string_view(copy).substr(0, length - 4)));
  return copy;
}

}  // namespace
}  // namespace fern

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fern;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  FuzzBlock(input, /*repair=*/false);
  std::string repaired = WithHeaderChecksum(input);
  FuzzBlock(repaired, /*repair=*/true);

  // The bytes as a single partition frame.
  PartitionExtent extent;
  DecodeFrame(input, extent, /*leaf=*/true, /*repair=*/true);
  DecodeFrame(input, extent, /*leaf=*/false, /*repair=*/true);
  return 0;
}
