// A fractal-tree node in memory: an internal node (pivots, child block numbers and one
// message buffer per child) or a leaf (pivots and basements, each possibly only on disk).
//
// Key ranges: a node with n partitions has n-1 pivots; partition i holds keys k with
// pivots[i-1] <= k < pivots[i] (unbounded at the ends). A pivot need not be a stored key:
// the split that made it chose one between the two sides' keys (PivotBetween), and rows
// are deleted after.
//
// Locking: a Node is owned by the cachetable and reached only through a PinnedPair. Its
// structure (pivots, children, buffers, basement contents) changes only under a write pin.
// Under a read pin, the one permitted change is loading an absent basement from disk, which
// is serialized by `load_mu`.
#ifndef FERN_FT_NODE_H_
#define FERN_FT_NODE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cachetable/cachetable.h"
#include "fern/options.h"
#include "ft/basement.h"
#include "ft/leaf_frame.h"
#include "ft/message.h"
#include "ft/message_buffer.h"
#include "ft/pivots.h"
#include "util/mutex.h"

namespace fern {

// Where a partition's compressed frame lies inside the node's block on disk.
struct PartitionExtent {
  uint32_t offset = 0;    // from the start of the block
  uint32_t size = 0;      // frame bytes
  uint32_t raw_size = 0;  // uncompressed bytes
  uint32_t checksum = 0;  // Checksum32 of the frame
};

struct LeafPartition {
  LeafPartition() = default;
  // Movable (std::atomic is not): the moved-to partition takes the read stamp along.
  LeafPartition(LeafPartition&& other) noexcept { *this = std::move(other); }
  LeafPartition& operator=(LeafPartition&& other) noexcept {
    rows = std::move(other.rows);
    on_disk = other.on_disk;
    extent = other.extent;
    frame_id = other.frame_id;
    chunk_index = std::move(other.chunk_index);
    last_read.store(other.last_read.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }

  std::unique_ptr<Basement> rows;  // null while the basement is only on disk
  // Valid while `on_disk` is true: the partition is unchanged since the block was written
  // or read, so its frame can be read back (partial fetch) or copied verbatim on rewrite.
  bool on_disk = false;
  PartitionExtent extent;
  // Names the frame `extent` points at: a number no other frame of this process gets
  // (NewFrameId), given whenever `extent` is set. A copy decoded from the frame earlier
  // (StreamAhead) is this basement's rows exactly while the number is unchanged.
  uint64_t frame_id = 0;
  // Of a chunked frame of this partition, once a prefix read read it whole (null until
  // then): later prefix reads of that frame fetch only the chunks they need. Used only while
  // its frame_id() is `frame_id`; one left from before the partition was written is replaced
  // by the next read that builds one. Set under the node's load_mu.
  std::shared_ptr<const LeafChunkIndex> chunk_index;
  // When a reader last used `rows`, on the owning tree's clock (FractalTree's count of
  // basement fetches). Readers store it under a read pin; partial eviction drops the
  // partition with the oldest stamp first. Only a hint, hence relaxed.
  std::atomic<uint64_t> last_read{0};
};

// A number for LeafPartition::frame_id that no earlier call returned. Thread-safe.
uint64_t NewFrameId();

class Node final : public CacheValue {
 public:
  Node(BlockNum block, int height) : block_(block), height_(height) {}

  BlockNum block() const { return block_; }
  int height() const { return height_; }
  bool is_leaf() const { return height_ == 0; }
  Msn max_msn() const { return max_msn_; }
  void set_max_msn(Msn msn) { max_msn_ = msn > max_msn_ ? msn : max_msn_; }

  size_t partition_count() const { return is_leaf() ? basements.size() : children.size(); }
  // Index of the partition whose key range holds `key`.
  size_t PartitionIndex(std::string_view key, const Comparator& cmp) const;
  // The key range of partition i, narrowed from the node's own range [lower, upper)
  // (null: unbounded).
  const std::string* PartitionLower(size_t i, const std::string* node_lower) const {
    return i == 0 ? node_lower : &pivots[i - 1];
  }
  const std::string* PartitionUpper(size_t i, const std::string* node_upper) const {
    return i + 1 == partition_count() ? node_upper : &pivots[i];
  }

  // Internal nodes: total bytes held in message buffers.
  size_t buffered_bytes() const;
  size_t buffered_messages() const;
  // Leaves: serialized bytes of all rows (absent basements counted by their raw size).
  size_t leaf_bytes() const;
  // Entries in the leaf's basements. REQUIRES: a leaf with every basement loaded.
  size_t leaf_entries() const;

  // Makes this node hold `other`'s contents (height, pivots, children, buffers, basements,
  // MSN) under its own block number, leaving `other` empty. Keeps the root's block number
  // fixed while the tree grows or shrinks a level. REQUIRES: both write-pinned, and every
  // basement of `other` in memory (a frame on disk belongs to `other`'s block, so the
  // moved basements are marked as not on disk).
  void TakeContents(Node* other);
  // Turns this node into an internal node of `height` with no partitions.
  void ResetAsInternal(int height);

  size_t MemoryBytes() const override;
  // The cleaner flushes the internal node with the most buffered bytes.
  size_t CleanerPriority() const override { return is_leaf() ? 0 : buffered_bytes(); }

  Pivots pivots;
  // Internal nodes.
  std::vector<BlockNum> children;
  std::vector<MessageBuffer> buffers;
  // Leaves.
  std::vector<LeafPartition> basements;

  // Partial eviction of a clean internal node compresses its message buffers in memory:
  // `frozen` holds one frame per child (its PartitionExtent gives size, raw size and
  // checksum) while `buffers` stand empty. Set only under an exclusive lock of the pair;
  // FractalTree::Thaw decompresses them under load_mu (readers may thaw), after which
  // `is_frozen` reads false.
  struct FrozenBuffers {
    std::vector<std::string> frames;
    std::vector<PartitionExtent> extents;
  };
  std::unique_ptr<FrozenBuffers> frozen;  // guarded by load_mu under read pins
  std::atomic<bool> is_frozen{false};
  // buffered_bytes() and buffered_messages() as they were when the buffers were frozen.
  void Freeze(std::unique_ptr<FrozenBuffers> frames);
  void Thawed();

  Mutex load_mu;  // serializes loading absent basements and thawing under read pins

 private:
  BlockNum block_;
  int height_;
  std::atomic<size_t> frozen_bytes_{0};
  std::atomic<size_t> frozen_messages_{0};
  Msn max_msn_ = 0;
};

}  // namespace fern

#endif  // FERN_FT_NODE_H_
