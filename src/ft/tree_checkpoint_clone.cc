// FractalTree's checkpoint clones: a writer that wants a checkpoint-pending dirty node
// copies it and goes on; a checkpoint writer serializes and writes the copy.
//
// What a clone holds. Everything the node's serialized form needs that the original may
// change: pivots, child numbers, message buffers (MessageBuffer::CopyFrom) and the leaf's
// basements changed since its last write (Basement::CopyFrom). A basement unchanged since
// that write (`on_disk`, whether its rows are in memory or were partially evicted) is not
// copied: its compressed frame is read at write time from the node's block as of the
// checkpoint's begin, which TreeFile::PrepareCloneWrite pins until the clone is written.
// So no I/O happens on the writer's thread, and a leaf whose basements were read but not
// changed costs only its header. The original may meanwhile be changed, evicted (written
// elsewhere by copy on write), refetched, partially fetched from its new block or freed.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ft/node_format.h"
#include "ft/tree.h"
#include "util/checksum.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

class NodeClone final : public CacheValue {
 public:
  NodeClone(std::unique_ptr<Node> node, BlockLocation source)
      : node_(std::move(node)), source_(source) {}

  // Counted by the cachetable until the clone is written, so the budget covers it.
  size_t MemoryBytes() const override { return sizeof(*this) + node_->MemoryBytes(); }

  const Node& node() const { return *node_; }
  // The block as of the checkpoint's begin: where the `on_disk` partitions' frames are.
  BlockLocation source() const { return source_; }

 private:
  std::unique_ptr<Node> node_;
  BlockLocation source_;
};

}  // namespace

std::unique_ptr<CacheValue> FractalTree::CloneForCheckpoint(BlockNum block,
                                                            const CacheValue& value) {
  if (IsValueBlockPair(value)) return nullptr;  // never dirty, so never pending
  const Node& node = static_cast<const Node&>(value);
  // Only clean nodes are frozen (and only pending dirty ones are cloned); a frozen node is
  // written by the caller instead, which thaws it first.
  if (node.is_frozen.load(std::memory_order_acquire)) return nullptr;
  auto copy = std::make_unique<Node>(block, node.height());
  copy->set_max_msn(node.max_msn());
  copy->pivots = node.pivots;
  if (node.is_leaf()) {
    copy->basements.resize(node.basements.size());
    for (size_t i = 0; i < node.basements.size(); ++i) {
      const LeafPartition& from = node.basements[i];
      LeafPartition& to = copy->basements[i];
      if (from.on_disk) {
        to.on_disk = true;
        to.extent = from.extent;
        to.frame_id = from.frame_id;
      } else {
        // A basement not on disk is always in memory (only on_disk ones are evicted).
        if (from.rows == nullptr) return nullptr;
        to.rows = std::make_unique<Basement>();
        to.rows->CopyFrom(*from.rows);
      }
    }
  } else {
    copy->children = node.children;
    copy->buffers.resize(node.buffers.size());
    for (size_t i = 0; i < node.buffers.size(); ++i) copy->buffers[i].CopyFrom(node.buffers[i]);
  }
  // Last, so that nothing after it can decline: an announced clone is always written.
  BlockLocation source;
  if (!file_->PrepareCloneWrite(block, &source).ok()) return nullptr;
  stats_.checkpoint_clones++;
  return std::make_unique<NodeClone>(std::move(copy), source);
}

Status FractalTree::WriteCheckpointClone(BlockNum block, std::unique_ptr<CacheValue> clone) {
  const auto& node_clone = static_cast<const NodeClone&>(*clone);
  const BlockLocation source = node_clone.source();
  ReadOldFrame read_source = [this, block, source](const PartitionExtent& e, std::string* frame) {
    FERN_RETURN_IF_ERROR(file_->ReadCloneSource(block, source, e.offset, e.size, frame));
    // The frame goes into the checkpoint unread otherwise; a stale extent must not.
    if (Checksum32(*frame) != e.checksum) {
      return Status::Corruption(StrCat(Where(block), ": partition frame at offset ", e.offset,
                                       " of the block as of the checkpoint's begin (file offset ",
                                       source.offset, ") does not match its checksum"));
    }
    return Status::OK();
  };
  std::string bytes;
  std::vector<PartitionExtent> extents;
  FERN_RETURN_IF_ERROR(
      SerializeNode(node_clone.node(), CurrentConfig(), read_source, &bytes, &extents, &stats_));
  const bool is_leaf = node_clone.node().is_leaf();
  clone.reset();  // its memory is no longer needed while the block is written
  FERN_RETURN_IF_ERROR(file_->WriteClone(block, bytes));
  stats_.nodes_written++;
  stats_.checkpoint_clones_written++;
  stats_.bytes_written += bytes.size();
  if (is_leaf) stats_.leaf_bytes_written += bytes.size();
  return Status::OK();
}

}  // namespace fern
