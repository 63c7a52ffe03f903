// The on-disk format of one node (one block of a table file), version 2.
//
// A node is a header followed by its partitions, each compressed on its own (a frame from
// util/compression.h, whose first byte names the codec), so one basement of a leaf can be
// read and decompressed without the others (partial fetch).
//
//   offset  size      meaning
//   0       8         magic "FERNNODE"
//   8       2         format version (kNodeFormatVersion)
//   10      2         flags (0)
//   12      4         header length H, including the trailing checksum
//   16      4         height (0 = leaf)
//   20      4         partition count n (>= 1)
//   24      8         max MSN the node has received
//   32      ...       n-1 pivots, each varint length + bytes, ascending
//   ...     8 * n     internal nodes only: child block numbers (fixed64)
//   ...     16 * n    per partition: frame offset from block start (fixed32), frame size
//                     (fixed32), uncompressed size (fixed32), Checksum32 of the frame
//   H-4     4         Checksum32 of bytes [0, H-4)
//   H       ...       the partition frames, in partition order
//
// An internal node's partition i is the serialized MessageBuffer for child i, compressed as one
// frame; a leaf's is basement i, stored as leaf_frame.h says (version 2: one frame or a chunked
// frame; version 1: always one frame). All integers are little-endian.
#ifndef FERN_FT_NODE_FORMAT_H_
#define FERN_FT_NODE_FORMAT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fern/status.h"
#include "ft/node.h"
#include "ft/tree_config.h"
#include "ft/tree_stats.h"

namespace fern {

inline constexpr char kNodeMagic[8] = {'F', 'E', 'R', 'N', 'N', 'O', 'D', 'E'};
// The version this build writes; it reads kOldestNodeFormatVersion through this one. Version 2
// may store a leaf partition as a chunked frame (leaf_frame.h).
inline constexpr uint16_t kNodeFormatVersion = 2;
inline constexpr uint16_t kOldestNodeFormatVersion = 1;
inline constexpr size_t kNodeFixedHeaderBytes = 32;
// How much of a leaf block a fetch reads first, hoping the header fits.
inline constexpr size_t kNodeHeaderProbeBytes = 4096;
// Height limit: a tree of this height would hold more than any disk.
inline constexpr uint32_t kMaxTreeHeight = 32;

// The decoded header of a node block.
struct NodeHeader {
  uint32_t header_length = 0;
  uint32_t height = 0;
  Msn max_msn = 0;
  std::vector<std::string> pivots;
  std::vector<BlockNum> children;  // internal nodes only
  std::vector<PartitionExtent> extents;
};

// Reads the frame of a partition that is unchanged since the node's last write.
using ReadOldFrame = std::function<Status(const PartitionExtent& extent, std::string* frame)>;

// Serializes `node` into `*block`. Partitions that changed are compressed with the
// config's codec (in parallel when the config has a pool); unchanged leaf partitions
// (`on_disk`) are copied frame for frame through `read_old_frame`. `*extents` receives
// where each partition landed.
Status SerializeNode(const Node& node, const TreeConfig& config, const ReadOldFrame& read_old_frame,
                     std::string* block, std::vector<PartitionExtent>* extents, TreeStats* stats);

// Parses a header from the first bytes of a block. If `bytes` is too short to hold the
// whole header, sets `*needed` to the header length and `header->height` (unchecked) and
// returns OK with `needed` > bytes.size(); the caller reads more and calls again. `where` names
// file and block for errors. `block_size` bounds the extents.
Status ParseNodeHeader(std::string_view bytes, uint64_t block_size, const std::string& where,
                       NodeHeader* header, size_t* needed);

// Verifies and decodes one partition frame. DecodeLeafPartition decodes into *rows when it
// holds a basement (reusing its memory), into a new one otherwise; on error *rows is null.
// With `prefix` the basement holds only that prefix of the rows (Basement::AdoptPrefix).
// Under UncheckedKeyOrder() (basement.h) no key order is checked, and no prefix is allowed.
Status DecodeLeafPartition(std::string_view frame, const PartitionExtent& extent,
                           const Comparator& cmp, const std::string& where,
                           std::unique_ptr<Basement>* rows, TreeStats* stats,
                           const Basement::Prefix* prefix = nullptr);
Status DecodeBufferPartition(std::string_view frame, const PartitionExtent& extent,
                             const Comparator& cmp, const std::string& where, MessageBuffer* buffer,
                             TreeStats* stats);

}  // namespace fern

#endif  // FERN_FT_NODE_FORMAT_H_
