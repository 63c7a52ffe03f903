#include "ft/node.h"

#include <algorithm>
#include <atomic>

namespace fern {

uint64_t NewFrameId() {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

size_t Node::PartitionIndex(std::string_view key, const Comparator& cmp) const {
  // First pivot greater than key: partition i holds [pivots[i-1], pivots[i]).
  return pivots.UpperBound(key, cmp);
}

void Node::Freeze(std::unique_ptr<FrozenBuffers> frames) {
  frozen_bytes_.store(buffered_bytes(), std::memory_order_relaxed);
  frozen_messages_.store(buffered_messages(), std::memory_order_relaxed);
  for (MessageBuffer& buffer : buffers) buffer = MessageBuffer();
  frozen = std::move(frames);
  is_frozen.store(true, std::memory_order_release);
}

void Node::Thawed() {
  frozen.reset();
  is_frozen.store(false, std::memory_order_release);
}

size_t Node::buffered_bytes() const {
  if (is_frozen.load(std::memory_order_acquire)) {
    return frozen_bytes_.load(std::memory_order_relaxed);
  }
  size_t total = 0;
  for (const MessageBuffer& buffer : buffers) total += buffer.bytes();
  return total;
}

size_t Node::buffered_messages() const {
  if (is_frozen.load(std::memory_order_acquire)) {
    return frozen_messages_.load(std::memory_order_relaxed);
  }
  size_t total = 0;
  for (const MessageBuffer& buffer : buffers) total += buffer.count();
  return total;
}

size_t Node::leaf_bytes() const {
  size_t total = 0;
  for (const LeafPartition& part : basements) {
    total += part.rows ? part.rows->serialized_bytes() : part.extent.raw_size;
  }
  return total;
}

size_t Node::leaf_entries() const {
  size_t total = 0;
  for (const LeafPartition& part : basements) total += part.rows->count();
  return total;
}

void Node::TakeContents(Node* other) {
  height_ = other->height_;
  max_msn_ = std::max(max_msn_, other->max_msn_);
  pivots = std::move(other->pivots);
  children = std::move(other->children);
  buffers = std::move(other->buffers);
  basements = std::move(other->basements);
  for (LeafPartition& part : basements) part.on_disk = false;
  other->pivots.Clear();
  other->children.clear();
  other->buffers.clear();
  other->basements.clear();
}

void Node::ResetAsInternal(int height) {
  height_ = height;
  pivots.Clear();
  children.clear();
  buffers.clear();
  basements.clear();
}

size_t Node::MemoryBytes() const {
  size_t total = sizeof(Node);
  total += pivots.MemoryBytes();
  total += children.capacity() * sizeof(BlockNum);
  for (const MessageBuffer& buffer : buffers) total += buffer.memory_bytes() + sizeof(buffer);
  if (frozen != nullptr) {
    for (const std::string& frame : frozen->frames) total += frame.capacity() + sizeof(frame);
  }
  for (const LeafPartition& part : basements) {
    total += sizeof(LeafPartition);
    if (part.rows) total += part.rows->memory_bytes();
    if (part.chunk_index) total += part.chunk_index->memory_bytes();
  }
  return total;
}

}  // namespace fern
