// BufferBudget: how many bytes of messages each height-1 node may buffer before it flushes,
// shared by every tree of an Env.
//
// A flush into a leaf that is not cached reads the leaf and, when the leaf is evicted,
// writes it whole, so the bytes written to leaves per message are about the leaf's size
// over the bytes the flush carried down. With a fixed limit per node (node_bytes), a tree
// whose leaves do not fit in the cache rewrites each leaf once per ~node_bytes / fanout of
// messages, however small the tree and however much of the cache its buffers could use.
// fernbench's fillrandom at a 64 MiB cache (N = 2,000,000) wrote 453 MB of leaves for
// 232 MB of rows that way, while its 12 height-1 nodes held ~22 MB of buffers at the end
// and far less while the tree grew.
//
// With a BufferBudget (Options::buffer_budget_percent of the cache), the buffers of height-1
// nodes share that many bytes: each height-1 node may hold the budget divided by the number
// of height-1 nodes in every open tree, never less than node_bytes and never more than
// kMaxGrowth times it, and only while the cache is full (below that, flushed leaves stay
// cached and bigger buffers would buy nothing). Trees report their count (an estimate taken
// from the root, which every write passes) whenever their root may have changed shape, so
// the limit follows the trees as they grow. The price is on the read side: more buffered
// messages for seeks to merge and for the cache to hold, hence off by default (the figures
// are at Options::buffer_budget_percent).
//
// Thread-safe.
#ifndef FERN_FT_BUFFER_BUDGET_H_
#define FERN_FT_BUFFER_BUDGET_H_

#include <algorithm>
#include <atomic>
#include <cstddef>

namespace fern {

class BufferBudget {
 public:
  // A height-1 node never buffers more than this many times node_bytes: bigger nodes make
  // each eviction, checkpoint write and query of the node dearer.
  static constexpr size_t kMaxGrowth = 4;

  explicit BufferBudget(size_t bytes) : bytes_(bytes) {}
  BufferBudget(const BufferBudget&) = delete;
  BufferBudget& operator=(const BufferBudget&) = delete;

  // One tree's count of height-1 nodes changed from `before` (0 for a tree not yet
  // counted) to `after`.
  void Replace(size_t before, size_t after) {
    nodes_.fetch_add(after - before, std::memory_order_relaxed);  // wraps correctly
  }

  // The buffered bytes above which a height-1 node of a tree with `node_bytes` flushes.
  size_t LimitFor(size_t node_bytes) const {
    const size_t nodes = std::max<size_t>(1, nodes_.load(std::memory_order_relaxed));
    return std::clamp(bytes_ / nodes, node_bytes, node_bytes * kMaxGrowth);
  }

  size_t bytes() const { return bytes_; }
  size_t nodes() const { return nodes_.load(std::memory_order_relaxed); }

 private:
  const size_t bytes_;
  std::atomic<size_t> nodes_{0};
};

}  // namespace fern

#endif  // FERN_FT_BUFFER_BUDGET_H_
