#include "ft/tree_builder.h"

#include <algorithm>
#include <cassert>
#include <span>
#include <utility>

#include "ft/leaf_entry.h"
#include "ft/node_format.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// What Basement::serialized_bytes adds to its entries: the MSN and (about) the count.
constexpr size_t kBasementOverheadBytes = 8 + 4;

}  // namespace

TreeBuilder::TreeBuilder(TreeFile* file, const TreeConfig& config)
    : file_(file),
      config_(config),
      leaf_target_bytes_(std::max<size_t>(size_t{config.node_bytes} / 4 * 3, 1)),
      values_(file, [codec = config.compression, level = config.compression_level] {
        return std::pair(codec, level);
      }) {}

void TreeBuilder::Disown(BlockNum block) {
  written_.erase(std::remove(written_.begin(), written_.end(), block), written_.end());
}

TreeBuilder::~TreeBuilder() {
  if (released_) return;
  for (BlockNum block : written_) file_->FreeBlock(block);
}

std::string TreeBuilder::PivotBefore(std::string_view next) const {
  return PivotBetween(basement_->key(basement_->count() - 1), next, *config_.comparator);
}

void TreeBuilder::StartLeaf(std::string lower) {
  leaf_ = std::make_unique<Node>(/*block=*/-1, /*height=*/0);
  leaf_lower_ = std::move(lower);
  leaf_bytes_ = 0;
  leaf_->basements.emplace_back();
  leaf_->basements.back().rows = std::make_unique<Basement>();
  basement_ = leaf_->basements.back().rows.get();
  basement_bytes_ = kBasementOverheadBytes;
  leaf_bytes_ = kBasementOverheadBytes;
}

void TreeBuilder::StartBasement(std::string pivot) {
  leaf_->pivots.PushBack(std::move(pivot));
  leaf_->basements.emplace_back();
  leaf_->basements.back().rows = std::make_unique<Basement>();
  basement_ = leaf_->basements.back().rows.get();
  basement_bytes_ = kBasementOverheadBytes;
  leaf_bytes_ += kBasementOverheadBytes;
}

Status TreeBuilder::Add(std::string_view key, std::string_view value) {
  entry_.clear();
  const size_t threshold = values_.out_of_line_threshold();
  if (threshold > 0 && value.size() >= threshold) {
    FERN_RETURN_IF_ERROR(values_.Write(value, &ref_));
    ValueRef ref;
    [[maybe_unused]] const bool ok = ValueRef::Decode(ref_, &ref);
    assert(ok);
    written_.push_back(ref.block);
    ++value_blocks_written_;
    const LeafEntryView::Version version{kNoTxn, /*is_delete=*/false, ref_,
                                         /*placeholder=*/false, /*out_of_line=*/true};
    EncodeLeafEntry(key, std::span(&version, 1), {}, &entry_);
  } else {
    EncodeAutocommittedLeafEntry(key, value, &entry_);
  }
  const size_t size = entry_.size();
  std::string next_leaf_lower;
  if (leaf_ != nullptr && basement_->count() > 0) {
    if (leaf_bytes_ + size > leaf_target_bytes_) {
      next_leaf_lower = PivotBefore(key);
      FERN_RETURN_IF_ERROR(CloseLeaf());
    } else if (basement_bytes_ + size > config_.basement_bytes) {
      StartBasement(PivotBefore(key));
    }
  }
  if (leaf_ == nullptr) StartLeaf(std::move(next_leaf_lower));
  basement_->AppendEncoded(entry_);
  basement_bytes_ += size;
  leaf_bytes_ += size;
  ++rows_;
  return Status::OK();
}

Status TreeBuilder::CloseLeaf() {
  if (held_ != nullptr) FERN_RETURN_IF_ERROR(WriteLeaf(std::move(held_), std::move(held_lower_)));
  held_ = std::move(leaf_);
  held_lower_ = std::move(leaf_lower_);
  held_bytes_ = leaf_bytes_;
  basement_ = nullptr;
  return Status::OK();
}

void TreeBuilder::EvenOutLastLeaves() {
  auto bytes_of = [](const LeafPartition& part) { return part.rows->serialized_bytes(); };
  while (held_->basements.size() > 1) {
    size_t moving = bytes_of(held_->basements.back());
    if (leaf_bytes_ + moving >= held_bytes_) break;  // moving would not even them out
    // The boundary moves one basement left: the pivot before leaf_ goes inside it, and
    // held_'s last pivot becomes the one before leaf_.
    leaf_->pivots.Insert(0, std::move(leaf_lower_));
    leaf_->basements.insert(leaf_->basements.begin(), std::move(held_->basements.back()));
    held_->basements.pop_back();
    leaf_lower_ = held_->pivots.back();
    held_->pivots.PopBack();
    leaf_bytes_ += moving;
    held_bytes_ -= moving;
  }
}

Status TreeBuilder::WriteLeaf(std::unique_ptr<Node> leaf, std::string lower) {
  BlockNum block;
  FERN_RETURN_IF_ERROR(WriteNode(*leaf, &block));
  leaves_.push_back({std::move(lower), block});
  return Status::OK();
}

Status TreeBuilder::WriteNode(const Node& node, BlockNum* block) {
  std::string bytes;
  std::vector<PartitionExtent> extents;
  // Built partitions are never on disk yet, so no old frame is ever asked for.
  ReadOldFrame no_old_frames = [](const PartitionExtent&, std::string*) {
    return Status::InvalidArgument("a built node has no old frames");
  };
  FERN_RETURN_IF_ERROR(
      SerializeNode(node, config_, no_old_frames, &bytes, &extents, /*stats=*/nullptr));
  *block = file_->AllocateBlockNum();
  written_.push_back(*block);
  FERN_RETURN_IF_ERROR(file_->WriteBlock(*block, bytes));
  bytes_written_ += bytes.size();
  return Status::OK();
}

Status TreeBuilder::Finish(BlockNum* root, int* height) {
  if (finished_) return Status::InvalidArgument("TreeBuilder::Finish called twice");
  finished_ = true;
  if (leaf_ == nullptr && held_ == nullptr) StartLeaf(std::string());  // no rows: one empty leaf
  if (leaf_ != nullptr && held_ != nullptr && leaf_bytes_ < config_.node_bytes / 4) {
    EvenOutLastLeaves();
  }
  if (held_ != nullptr) FERN_RETURN_IF_ERROR(WriteLeaf(std::move(held_), std::move(held_lower_)));
  if (leaf_ != nullptr) FERN_RETURN_IF_ERROR(WriteLeaf(std::move(leaf_), std::move(leaf_lower_)));
  basement_ = nullptr;

  const size_t fanout = std::max<size_t>(2, config_.fanout);
  std::vector<Child> level = std::move(leaves_);
  int h = 0;
  while (level.size() > 1) {
    ++h;
    const size_t n = level.size();
    const size_t nodes = (n + fanout - 1) / fanout;
    std::vector<Child> parents;
    parents.reserve(nodes);
    for (size_t g = 0; g < nodes; ++g) {
      const size_t begin = g * n / nodes;
      const size_t end = (g + 1) * n / nodes;
      Node node(/*block=*/-1, h);
      for (size_t i = begin; i < end; ++i) {
        if (i > begin) node.pivots.PushBack(level[i].lower);
        node.children.push_back(level[i].block);
      }
      node.buffers.resize(end - begin);
      BlockNum block;
      FERN_RETURN_IF_ERROR(WriteNode(node, &block));
      parents.push_back({std::move(level[begin].lower), block});
    }
    level = std::move(parents);
  }
  *root = level[0].block;
  *height = h;
  return Status::OK();
}

}  // namespace fern
