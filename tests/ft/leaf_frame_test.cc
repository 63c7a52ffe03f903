// Leaf frames: basements above 1.5 chunks are stored chunked and decode to the same rows;
// prefix reads decode only the chunks they need and agree with the whole basement; damaged
// tables are Corruption, never a crash.
#include "ft/leaf_frame.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "util/coding.h"
#include "util/compression.h"

namespace fern {
namespace {

std::string Key(int i) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016d", i);
  return buf;
}

// 100 bytes: 50 pseudo-random ones twice, as in WORKLOADS.md's rows.
std::string ValueOf(int i) {
  std::string half;
  uint64_t x = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15 + 1;
  while (half.size() < 50) {
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9;
    half.push_back(static_cast<char>(x >> 56));
  }
  return half + half;
}

// Rows with keys 2 * i (so that odd keys fall between rows), i in [0, rows).
std::unique_ptr<Basement> MakeBasement(int rows, Msn max_msn = 77) {
  auto basement = std::make_unique<Basement>();
  ApplyContext ctx;
  ctx.cmp = BytewiseComparator();
  for (int i = 0; i < rows; ++i) {
    Message m;
    m.type = MessageType::kInsert;
    m.msn = static_cast<Msn>(i + 1);
    const std::string key = Key(2 * i);
    const std::string value = ValueOf(2 * i);
    m.key = key;
    m.value = value;
    basement->Apply(m, ctx);
  }
  basement->set_max_msn(max_msn);
  return basement;
}

// The tests' row counts are sized for 4 KiB chunks, whatever the default (kLeafChunkBytes).
constexpr size_t kTestChunkBytes = 4096;

std::string Encode(const Basement& rows, size_t* raw_size) {
  std::string frame;
  EXPECT_TRUE(EncodeLeafFrame(rows, Compression::kZstd, 0, kTestChunkBytes, &frame, raw_size).ok());
  return frame;
}

// Where the chunk table ends (the first chunk's frame begins), and where chunk 1's first key
// starts; parsed here independently of the code under test.
void TableLayout(const std::string& frame, size_t* table_end, size_t* second_key_at) {
  Decoder in(frame);
  uint8_t tag;
  uint64_t count, entries, max_msn;
  ASSERT_TRUE(in.GetFixed8(&tag) && in.GetVarint64(&count) && in.GetFixed64(&max_msn) &&
              in.GetVarint64(&entries));
  for (uint64_t k = 0; k < count; ++k) {
    uint64_t ignored;
    uint32_t key_length;
    ASSERT_TRUE(in.GetVarint64(&ignored) && in.GetVarint64(&ignored) && in.GetVarint64(&ignored) &&
                in.GetVarint32(&key_length));
    if (k == 1) *second_key_at = frame.size() - in.remaining();
    ASSERT_TRUE(in.Skip(key_length));
  }
  *table_end = frame.size() - in.remaining();
}

void ExpectSameRows(const Basement& expected, const Basement& actual) {
  ASSERT_EQ(expected.count(), actual.count());
  EXPECT_EQ(expected.max_msn(), actual.max_msn());
  for (size_t i = 0; i < expected.count(); ++i) {
    ASSERT_EQ(expected.encoded_entry(i), actual.encoded_entry(i)) << i;
  }
}

TEST(LeafFrameTest, LargeBasementIsChunkedAndDecodesWhole) {
  std::unique_ptr<Basement> rows = MakeBasement(130);  // ~16 KiB
  size_t raw_size;
  const std::string frame = Encode(*rows, &raw_size);
  EXPECT_EQ(raw_size, rows->serialized_bytes());
  ASSERT_TRUE(IsChunkedLeafFrame(frame));
  Compression codec;
  size_t chunks;
  ASSERT_TRUE(PeekLeafFrame(frame, &codec, &chunks));
  EXPECT_EQ(codec, Compression::kZstd);
  EXPECT_GE(chunks, 3u);
  EXPECT_LE(chunks, 5u);

  std::unique_ptr<Basement> decoded;
  uint64_t decoded_bytes = 0;
  ASSERT_TRUE(
      DecodeChunkedLeafFrame(frame, raw_size, *BytewiseComparator(), &decoded, &decoded_bytes)
          .ok());
  EXPECT_EQ(decoded_bytes, raw_size - 8 - VarintLength(rows->count()));
  ExpectSameRows(*rows, *decoded);

  // A recycled basement with other rows decodes the same.
  std::unique_ptr<Basement> recycled = MakeBasement(500);
  ASSERT_TRUE(
      DecodeChunkedLeafFrame(frame, raw_size, *BytewiseComparator(), &recycled, &decoded_bytes)
          .ok());
  ExpectSameRows(*rows, *recycled);
}

TEST(LeafFrameTest, SmallBasementIsOneFrame) {
  std::unique_ptr<Basement> rows = MakeBasement(40);  // ~5 KiB: below 1.5 chunks
  size_t raw_size;
  const std::string frame = Encode(*rows, &raw_size);
  EXPECT_FALSE(IsChunkedLeafFrame(frame));
  Compression codec;
  size_t chunks;
  ASSERT_TRUE(PeekLeafFrame(frame, &codec, &chunks));
  EXPECT_EQ(chunks, 1u);
  std::string raw;
  ASSERT_TRUE(DecompressPartition(frame, &raw).ok());
  std::string expected;
  rows->Serialize(&expected);
  EXPECT_EQ(raw, expected);

  // One huge entry is one frame however large.
  auto single = std::make_unique<Basement>();
  ApplyContext ctx;
  ctx.cmp = BytewiseComparator();
  const std::string big(40000, 'v');
  single->Apply(Message{MessageType::kInsert, 1, {}, "k", big}, ctx);
  EXPECT_FALSE(IsChunkedLeafFrame(Encode(*single, &raw_size)));
}

TEST(LeafFrameTest, BasementOfLongKeysIsOneFrame) {
  // The same ~16 KiB in rows whose keys are long: a chunk table would repeat a long key per
  // chunk, uncompressed. 64-byte keys stay chunked, 256-byte ones do not.
  for (const size_t key_bytes : {size_t{64}, size_t{256}}) {
    auto rows = std::make_unique<Basement>();
    ApplyContext ctx;
    ctx.cmp = BytewiseComparator();
    const size_t count = 16384 / (key_bytes + 100);
    for (size_t i = 0; i < count; ++i) {
      const std::string key = Key(static_cast<int>(i)) + std::string(key_bytes - 16, 'k');
      const std::string value = ValueOf(static_cast<int>(i));
      rows->Apply(Message{MessageType::kInsert, i + 1, {}, key, value}, ctx);
    }
    size_t raw_size;
    const std::string frame = Encode(*rows, &raw_size);
    EXPECT_EQ(IsChunkedLeafFrame(frame), key_bytes == 64) << key_bytes << "-byte keys";
    std::unique_ptr<Basement> decoded;
    if (IsChunkedLeafFrame(frame)) {
      uint64_t decoded_bytes = 0;
      ASSERT_TRUE(
          DecodeChunkedLeafFrame(frame, raw_size, *BytewiseComparator(), &decoded, &decoded_bytes)
              .ok());
      ExpectSameRows(*rows, *decoded);
    } else {
      std::string raw;
      ASSERT_TRUE(DecompressPartition(frame, &raw).ok());
      std::string expected;
      rows->Serialize(&expected);
      EXPECT_EQ(raw, expected);
    }
  }
}

// Every prefix read, for keys below, on, between and above the rows and any number of rows
// above the key, holds exactly the whole basement's rows from the key on, as far as the
// prefix reaches; reads low in the basement decode less than all of it.
TEST(LeafFrameTest, PrefixReadsAgreeWithTheWholeBasement) {
  const Comparator& cmp = *BytewiseComparator();
  std::unique_ptr<Basement> rows = MakeBasement(260);  // ~32 KiB, ~8 chunks
  size_t raw_size;
  const std::string frame = Encode(*rows, &raw_size);
  ASSERT_TRUE(IsChunkedLeafFrame(frame));
  std::unique_ptr<Basement> part;
  uint64_t point_read_bytes = 0;
  int point_reads = 0;
  for (int k = -1; k <= 2 * 260 + 1; ++k) {
    const std::string key = k < 0 ? std::string("") : Key(k);
    // rows_above 0 (a point read): whether the key is held, and its entry.
    {
      uint64_t decoded = 0;
      ASSERT_TRUE(DecodeChunkedLeafPrefix(frame, raw_size, cmp, {key, 0}, &part, &decoded).ok());
      size_t whole_at;
      size_t part_at;
      const bool held = rows->Find(key, cmp, &whole_at);
      ASSERT_EQ(part->Find(key, cmp, &part_at), held) << key;
      if (held) {
        EXPECT_EQ(part->encoded_entry(part_at), rows->encoded_entry(whole_at));
      }
      point_read_bytes += decoded;
      point_reads++;
    }
    for (size_t rows_above : {size_t{1}, size_t{2}, size_t{17}, size_t{60}, size_t{1000}}) {
      uint64_t decoded = 0;
      ASSERT_TRUE(
          DecodeChunkedLeafPrefix(frame, raw_size, cmp, {key, rows_above}, &part, &decoded).ok())
          << key;
      EXPECT_EQ(part->max_msn(), rows->max_msn());
      size_t whole_at = rows->LowerBound(key, cmp);
      size_t part_at = part->LowerBound(key, cmp);
      // Rows at or above the key the whole basement has, up to rows_above above it.
      const size_t equal = whole_at < rows->count() && rows->key(whole_at) == key ? 1 : 0;
      const size_t want = std::min(rows->count() - whole_at, rows_above + equal);
      ASSERT_GE(part->count() - part_at, want) << key << " " << rows_above;
      for (size_t r = 0; r < want; ++r) {
        ASSERT_EQ(part->encoded_entry(part_at + r), rows->encoded_entry(whole_at + r))
            << key << " " << rows_above << " " << r;
      }
    }
  }
  // A point read decodes one chunk of the ~8.
  EXPECT_LT(point_read_bytes / point_reads, raw_size / 6);
}

// A prefix read through the frame's LeafChunkIndex, given only the bytes of the span the
// index names, decodes exactly what the same read of the whole frame decodes, and the span
// is a part of the frame.
TEST(LeafFrameTest, IndexedPrefixReadsDecodeWhatWholeFrameReadsDo) {
  const Comparator& cmp = *BytewiseComparator();
  std::unique_ptr<Basement> rows = MakeBasement(260);  // ~8 chunks
  size_t raw_size;
  const std::string frame = Encode(*rows, &raw_size);
  ASSERT_TRUE(IsChunkedLeafFrame(frame));
  std::shared_ptr<const LeafChunkIndex> index;
  ASSERT_TRUE(LeafChunkIndex::Build(frame, raw_size, cmp, /*frame_id=*/42, &index).ok());
  EXPECT_EQ(index->frame_id(), 42u);
  EXPECT_GT(index->memory_bytes(), 0u);
  std::unique_ptr<Basement> whole;
  std::unique_ptr<Basement> part;
  uint64_t span_bytes = 0;
  int reads = 0;
  for (int k = -1; k <= 2 * 260 + 1; ++k) {
    const std::string key = k < 0 ? std::string("") : Key(k);
    for (size_t rows_above : {size_t{0}, size_t{1}, size_t{17}, size_t{60}, size_t{1000}}) {
      const Basement::Prefix prefix{key, rows_above};
      const LeafChunkIndex::Span span = index->SpanFor(prefix, cmp);
      ASSERT_LE(span.first, span.last);
      ASSERT_LT(span.begin, span.end);
      ASSERT_LE(span.end, frame.size());
      uint64_t whole_decoded = 0;
      uint64_t part_decoded = 0;
      ASSERT_TRUE(
          DecodeChunkedLeafPrefix(frame, raw_size, cmp, prefix, &whole, &whole_decoded).ok());
      ASSERT_TRUE(
          DecodeChunkedLeafPrefix(*index, span,
                                  std::string_view(frame).substr(span.begin, span.end - span.begin),
                                  cmp, prefix, &part, &part_decoded)
              .ok())
          << key << " " << rows_above;
      EXPECT_EQ(part_decoded, whole_decoded);
      ASSERT_EQ(part->count(), whole->count()) << key << " " << rows_above;
      EXPECT_EQ(part->max_msn(), whole->max_msn());
      for (size_t r = 0; r < part->count(); ++r) {
        ASSERT_EQ(part->encoded_entry(r), whole->encoded_entry(r)) << key << " " << r;
      }
      if (rows_above == 0) {
        span_bytes += span.end - span.begin;
        reads++;
      }
    }
  }
  // A point read fetches one chunk of the ~8.
  EXPECT_LT(span_bytes / reads, frame.size() / 4);
}

// Bytes of a span that differ from what the index was built from, or a span read short, are
// Corruption, never a wrong row.
TEST(LeafFrameTest, IndexedPrefixReadOfDamagedChunksIsCorruption) {
  const Comparator& cmp = *BytewiseComparator();
  std::unique_ptr<Basement> rows = MakeBasement(130);
  size_t raw_size;
  const std::string frame = Encode(*rows, &raw_size);
  std::shared_ptr<const LeafChunkIndex> index;
  ASSERT_TRUE(LeafChunkIndex::Build(frame, raw_size, cmp, 1, &index).ok());
  const std::string key = Key(100);
  const Basement::Prefix prefix{key, 17};
  const LeafChunkIndex::Span span = index->SpanFor(prefix, cmp);
  const std::string bytes = frame.substr(span.begin, span.end - span.begin);
  std::unique_ptr<Basement> out;
  uint64_t decoded = 0;
  for (size_t at = 0; at < bytes.size(); ++at) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x04);
    Status s = DecodeChunkedLeafPrefix(*index, span, bad, cmp, prefix, &out, &decoded);
    // A change in a chunk the read did not need to decode may go unnoticed; one it decoded
    // may not.
    if (!s.ok()) {
      EXPECT_TRUE(s.IsCorruption()) << at << " " << s.ToString();
    } else {
      std::unique_ptr<Basement> expected;
      ASSERT_TRUE(DecodeChunkedLeafPrefix(frame, raw_size, cmp, prefix, &expected, &decoded).ok());
      ASSERT_EQ(out->count(), expected->count()) << at;
      for (size_t r = 0; r < out->count(); ++r) {
        ASSERT_EQ(out->encoded_entry(r), expected->encoded_entry(r)) << at;
      }
    }
  }
  // The first chunk a read decodes is always checked.
  std::string bad = bytes;
  bad[bad.size() / 8] = static_cast<char>(bad[bad.size() / 8] ^ 0x04);
  EXPECT_TRUE(
      DecodeChunkedLeafPrefix(*index, span, bad, cmp, prefix, &out, &decoded).IsCorruption());
  EXPECT_TRUE(DecodeChunkedLeafPrefix(*index, span, std::string_view(bytes).substr(1), cmp, prefix,
                                      &out, &decoded)
                  .IsCorruption());
  // A span that is not the index's own is refused before any byte is looked at.
  LeafChunkIndex::Span shifted = span;
  shifted.begin += 1;
  EXPECT_TRUE(DecodeChunkedLeafPrefix(*index, shifted, std::string_view(bytes).substr(1), cmp,
                                      prefix, &out, &decoded)
                  .IsInvalidArgument());
  LeafChunkIndex::Span past = span;
  past.last = 1000;
  EXPECT_TRUE(DecodeChunkedLeafPrefix(*index, past, bytes, cmp, prefix, &out, &decoded)
                  .IsInvalidArgument());
  // An index is built only from a well-formed table.
  std::shared_ptr<const LeafChunkIndex> none;
  EXPECT_TRUE(LeafChunkIndex::Build(frame.substr(0, 20), raw_size, cmp, 1, &none).IsCorruption());
  EXPECT_EQ(none, nullptr);
}

TEST(LeafFrameTest, DamagedFramesAreCorruption) {
  const Comparator& cmp = *BytewiseComparator();
  std::unique_ptr<Basement> rows = MakeBasement(130);
  size_t raw_size;
  const std::string frame = Encode(*rows, &raw_size);
  ASSERT_TRUE(IsChunkedLeafFrame(frame));
  std::unique_ptr<Basement> out;
  uint64_t decoded = 0;
  // Every truncation, and every single-byte change of the table and the first chunk's start.
  for (size_t n = 0; n < frame.size(); ++n) {
    const std::string cut = frame.substr(0, n);
    EXPECT_FALSE(DecodeChunkedLeafFrame(cut, raw_size, cmp, &out, &decoded).ok()) << n;
    EXPECT_FALSE(DecodeChunkedLeafPrefix(cut, raw_size, cmp, {Key(100), 17}, &out, &decoded).ok())
        << n;
  }
  // Every byte of the table changed (the chunks' frames are covered by the partition
  // checksum in the node header, not here).
  size_t table_end = 0;
  size_t second_key_at = 0;
  ASSERT_NO_FATAL_FAILURE(TableLayout(frame, &table_end, &second_key_at));
  size_t changed_ok = 0;
  for (size_t at = 1; at < table_end; ++at) {
    std::string bad = frame;
    bad[at] = static_cast<char>(bad[at] ^ 0x21);
    Status whole = DecodeChunkedLeafFrame(bad, raw_size, cmp, &out, &decoded);
    if (whole.ok()) {
      // Only a change that leaves the rows intact may decode (e.g. the max MSN's bytes).
      ASSERT_EQ(out->count(), rows->count()) << at;
      for (size_t i = 0; i < rows->count(); ++i) ASSERT_EQ(out->key(i), rows->key(i)) << at;
      changed_ok++;
    } else {
      EXPECT_TRUE(whole.IsCorruption()) << at << " " << whole.ToString();
    }
    Status prefix = DecodeChunkedLeafPrefix(bad, raw_size, cmp, {Key(200), 17}, &out, &decoded);
    if (!prefix.ok()) {
      EXPECT_TRUE(prefix.IsCorruption()) << at << " " << prefix.ToString();
    }
  }
  EXPECT_LE(changed_ok, 8u);  // the eight bytes of the max MSN
  // The wrong raw size.
  EXPECT_TRUE(DecodeChunkedLeafFrame(frame, raw_size + 1, cmp, &out, &decoded).IsCorruption());
}

// A table whose first key does not match its chunk's first row is caught on decode.
TEST(LeafFrameTest, FirstKeyThatDisagreesWithItsChunkIsCorruption) {
  const Comparator& cmp = *BytewiseComparator();
  std::unique_ptr<Basement> rows = MakeBasement(130);
  size_t raw_size;
  std::string frame = Encode(*rows, &raw_size);
  size_t table_end = 0;
  size_t second_key_at = 0;
  ASSERT_NO_FATAL_FAILURE(TableLayout(frame, &table_end, &second_key_at));
  // Keys are 16 digits of an even number: make the second chunk's first key odd.
  frame[second_key_at + 15] = static_cast<char>(frame[second_key_at + 15] + 1);
  std::unique_ptr<Basement> out;
  uint64_t decoded = 0;
  EXPECT_TRUE(DecodeChunkedLeafFrame(frame, raw_size, cmp, &out, &decoded).IsCorruption());
}

}  // namespace
}  // namespace fern
