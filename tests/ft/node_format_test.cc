// Node serialization: round trips of leaves and internal nodes, partial decoding of one
// partition, verbatim reuse of unchanged frames, and rejection of damaged headers.
#include "ft/node_format.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ft/leaf_frame.h"
#include "gtest/gtest.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/compression.h"

namespace fern {
namespace {

Message Insert(Msn msn, std::string_view key, std::string_view value) {
  Message m;
  m.type = MessageType::kInsert;
  m.msn = msn;
  m.key = key;
  m.value = value;
  return m;
}

std::string Key(int i) { return "key" + std::to_string(100000 + i); }

// A leaf of `basements` basements with `rows` rows each.
std::unique_ptr<Node> MakeLeaf(int basements, int rows) {
  auto leaf = std::make_unique<Node>(7, 0);
  const Comparator& cmp = *BytewiseComparator();
  ApplyContext ctx;
  ctx.cmp = &cmp;
  Msn msn = 0;
  for (int b = 0; b < basements; ++b) {
    LeafPartition part;
    part.rows = std::make_unique<Basement>();
    for (int r = 0; r < rows; ++r) {
      std::string key = Key(b * rows + r);
      std::string value = "value" + std::to_string(b * rows + r) + std::string(30, 'v');
      part.rows->Apply(Insert(++msn, key, value), ctx);
    }
    if (b > 0) leaf->pivots.PushBack(Key(b * rows));
    leaf->basements.push_back(std::move(part));
  }
  leaf->set_max_msn(msn);
  return leaf;
}

TreeConfig Config(Compression codec) {
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = codec;
  return config;
}

ReadOldFrame NoOldFrames() {
  return [](const PartitionExtent&, std::string*) {
    return Status::Corruption("no old frame expected");
  };
}

TEST(NodeFormatTest, LeafRoundTripsWithEveryCodec) {
  for (Compression codec : {Compression::kNone, Compression::kSnappy, Compression::kZlib,
                            Compression::kZstd, Compression::kLzma}) {
    auto leaf = MakeLeaf(4, 50);
    std::string block;
    std::vector<PartitionExtent> extents;
    ASSERT_TRUE(SerializeNode(*leaf, Config(codec), NoOldFrames(), &block, &extents, nullptr).ok());
    NodeHeader header;
    size_t needed;
    ASSERT_TRUE(ParseNodeHeader(block, block.size(), "test", &header, &needed).ok());
    ASSERT_EQ(needed, 0u);
    EXPECT_EQ(header.height, 0u);
    EXPECT_EQ(header.max_msn, leaf->max_msn());
    EXPECT_EQ(header.pivots, leaf->pivots.keys());
    ASSERT_EQ(header.extents.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      std::string_view frame =
          std::string_view(block).substr(header.extents[i].offset, header.extents[i].size);
      Compression tag;
      ASSERT_TRUE(PeekCodec(frame, &tag));
      EXPECT_EQ(tag, codec);
      std::unique_ptr<Basement> rows;
      ASSERT_TRUE(DecodeLeafPartition(frame, header.extents[i], *BytewiseComparator(), "test",
                                      &rows, nullptr)
                      .ok());
      ASSERT_EQ(rows->count(), 50u);
      for (size_t r = 0; r < rows->count(); ++r) {
        EXPECT_EQ(rows->key(r), leaf->basements[i].rows->key(r));
        EXPECT_EQ(rows->encoded_entry(r), leaf->basements[i].rows->encoded_entry(r));
      }
    }
  }
}

// Version 2 stores large basements as chunked frames (leaf_frame.h) that decode to the same
// rows; a version 1 node (one frame per partition, as small basements still are) reads, and
// an unknown version is refused.
TEST(NodeFormatTest, ChunkedLeavesRoundTripAndVersionOneStillReads) {
  auto leaf = MakeLeaf(2, 200);  // ~12 KiB basements: chunked
  std::string block;
  std::vector<PartitionExtent> extents;
  ASSERT_TRUE(
      SerializeNode(*leaf, Config(Compression::kZstd), NoOldFrames(), &block, &extents, nullptr)
          .ok());
  EXPECT_EQ(DecodeFixed16(block.data() + 8), kNodeFormatVersion);
  for (size_t i = 0; i < 2; ++i) {
    std::string_view frame = std::string_view(block).substr(extents[i].offset, extents[i].size);
    EXPECT_TRUE(IsChunkedLeafFrame(frame));
    std::unique_ptr<Basement> rows;
    ASSERT_TRUE(
        DecodeLeafPartition(frame, extents[i], *BytewiseComparator(), "test", &rows, nullptr).ok());
    ASSERT_EQ(rows->count(), 200u);
    for (size_t r = 0; r < rows->count(); ++r) {
      EXPECT_EQ(rows->encoded_entry(r), leaf->basements[i].rows->encoded_entry(r));
    }
  }

  auto small = MakeLeaf(2, 20);
  ASSERT_TRUE(
      SerializeNode(*small, Config(Compression::kZstd), NoOldFrames(), &block, &extents, nullptr)
          .ok());
  auto with_version = [&block](uint16_t version) {
    std::string copy = block;
    EncodeFixed16(copy.data() + 8, version);
    const uint32_t length = DecodeFixed32(copy.data() + 12);
    EncodeFixed32(copy.data() + length - 4,
                  Checksum32(std::string_view(copy).substr(0, length - 4)));
    return copy;
  };
  const std::string v1 = with_version(1);
  NodeHeader header;
  size_t needed;
  ASSERT_TRUE(ParseNodeHeader(v1, v1.size(), "test", &header, &needed).ok());
  std::string_view frame =
      std::string_view(v1).substr(header.extents[1].offset, header.extents[1].size);
  EXPECT_FALSE(IsChunkedLeafFrame(frame));
  std::unique_ptr<Basement> rows;
  ASSERT_TRUE(
      DecodeLeafPartition(frame, header.extents[1], *BytewiseComparator(), "test", &rows, nullptr)
          .ok());
  EXPECT_EQ(rows->count(), 20u);
  const std::string v3 = with_version(kNodeFormatVersion + 1);
  Status s = ParseNodeHeader(v3, v3.size(), "test", &header, &needed);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.ToString().find("unsupported node format version"), std::string::npos)
      << s.ToString();
}

TEST(NodeFormatTest, InternalNodeRoundTripsBuffersAndChildren) {
  Node node(3, 2);
  const Comparator& cmp = *BytewiseComparator();
  node.children = {10, 11, 12};
  node.pivots.Assign({Key(100), Key(200)});
  node.buffers.resize(3);
  Msn msn = 0;
  for (int i = 0; i < 300; ++i) {
    std::string key = Key(i);
    node.buffers[i / 100].Append(Insert(++msn, key, "x"), cmp);
  }
  Message broadcast;
  broadcast.type = MessageType::kUpdateBroadcast;
  broadcast.msn = ++msn;
  broadcast.value = "extra";
  for (MessageBuffer& buffer : node.buffers) buffer.Append(broadcast, cmp);
  node.set_max_msn(msn);

  std::string block;
  std::vector<PartitionExtent> extents;
  ASSERT_TRUE(
      SerializeNode(node, Config(Compression::kZstd), NoOldFrames(), &block, &extents, nullptr)
          .ok());
  NodeHeader header;
  size_t needed;
  ASSERT_TRUE(ParseNodeHeader(block, block.size(), "test", &header, &needed).ok());
  EXPECT_EQ(header.height, 2u);
  EXPECT_EQ(header.children, node.children);
  for (size_t i = 0; i < 3; ++i) {
    MessageBuffer buffer;
    std::string_view frame =
        std::string_view(block).substr(header.extents[i].offset, header.extents[i].size);
    ASSERT_TRUE(
        DecodeBufferPartition(frame, header.extents[i], cmp, "test", &buffer, nullptr).ok());
    EXPECT_EQ(buffer.count(), 101u);
    EXPECT_EQ(buffer.broadcast_count(), 1u);
    EXPECT_EQ(buffer.max_msn(), msn);
  }
}

TEST(NodeFormatTest, UnchangedPartitionsAreCopiedVerbatim) {
  auto leaf = MakeLeaf(3, 20);
  std::string first;
  std::vector<PartitionExtent> extents;
  ASSERT_TRUE(
      SerializeNode(*leaf, Config(Compression::kZstd), NoOldFrames(), &first, &extents, nullptr)
          .ok());
  // Partition 1 is unchanged and only on disk; the others are rewritten with another codec.
  leaf->basements[1].rows.reset();
  leaf->basements[1].on_disk = true;
  leaf->basements[1].extent = extents[1];
  int reads = 0;
  ReadOldFrame read_old = [&](const PartitionExtent& e, std::string* frame) {
    ++reads;
    *frame = first.substr(e.offset, e.size);
    return Status::OK();
  };
  std::string second;
  std::vector<PartitionExtent> second_extents;
  ASSERT_TRUE(SerializeNode(*leaf, Config(Compression::kSnappy), read_old, &second, &second_extents,
                            nullptr)
                  .ok());
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(second.substr(second_extents[1].offset, second_extents[1].size),
            first.substr(extents[1].offset, extents[1].size));
  Compression tag;
  ASSERT_TRUE(PeekCodec(std::string_view(second).substr(second_extents[0].offset), &tag));
  EXPECT_EQ(tag, Compression::kSnappy);
  ASSERT_TRUE(PeekCodec(std::string_view(second).substr(second_extents[1].offset), &tag));
  EXPECT_EQ(tag, Compression::kZstd);
}

TEST(NodeFormatTest, ShortPrefixAsksForTheWholeHeader) {
  auto leaf = MakeLeaf(8, 5);
  std::string block;
  std::vector<PartitionExtent> extents;
  ASSERT_TRUE(
      SerializeNode(*leaf, Config(Compression::kNone), NoOldFrames(), &block, &extents, nullptr)
          .ok());
  NodeHeader header;
  size_t needed;
  ASSERT_TRUE(
      ParseNodeHeader(std::string_view(block).substr(0, 40), block.size(), "test", &header, &needed)
          .ok());
  EXPECT_GT(needed, 40u);
  ASSERT_TRUE(ParseNodeHeader(std::string_view(block).substr(0, needed), block.size(), "test",
                              &header, &needed)
                  .ok());
  EXPECT_EQ(needed, 0u);
  EXPECT_EQ(header.extents.size(), 8u);
}

TEST(NodeFormatTest, DamagedHeadersAndFramesAreCorruptionNeverCrashes) {
  auto leaf = MakeLeaf(3, 30);
  std::string block;
  std::vector<PartitionExtent> extents;
  ASSERT_TRUE(
      SerializeNode(*leaf, Config(Compression::kZstd), NoOldFrames(), &block, &extents, nullptr)
          .ok());
  std::mt19937_64 rng(5);
  int detected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = block;
    size_t at = rng() % damaged.size();
    damaged[at] = static_cast<char>(damaged[at] ^ (1 + rng() % 255));
    NodeHeader header;
    size_t needed;
    Status s = ParseNodeHeader(damaged, damaged.size(), "test", &header, &needed);
    if (s.ok() && needed == 0) {
      for (size_t i = 0; i < header.extents.size(); ++i) {
        std::unique_ptr<Basement> rows;
        std::string_view frame =
            std::string_view(damaged).substr(header.extents[i].offset, header.extents[i].size);
        Status d = DecodeLeafPartition(frame, header.extents[i], *BytewiseComparator(), "test",
                                       &rows, nullptr);
        if (!d.ok()) {
          EXPECT_TRUE(d.IsCorruption()) << d.ToString();
          s = d;
        }
      }
    }
    if (!s.ok()) {
      EXPECT_TRUE(s.IsCorruption()) << s.ToString();
      ++detected;
    }
  }
  // Every byte of a node is covered by the header checksum or a partition checksum.
  EXPECT_EQ(detected, 3000);
  for (size_t cut = 0; cut < block.size(); cut += 7) {
    NodeHeader header;
    size_t needed;
    Status s =
        ParseNodeHeader(std::string_view(block).substr(0, cut), cut, "test", &header, &needed);
    EXPECT_FALSE(s.ok() && needed == 0 && cut < block.size() &&
                 header.extents.back().offset + header.extents.back().size > cut);
  }
}

}  // namespace
}  // namespace fern
