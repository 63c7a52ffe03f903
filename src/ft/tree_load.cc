// Bulk loading support of FractalTree: reserving an empty tree for a load and installing the
// tree a TreeBuilder wrote, atomically and durably.
#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "ft/tree.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

Status FractalTree::PinSubtreeIfEmpty(BlockNum block, Cachetable::Lock lock, bool* empty,
                                      std::vector<PinnedPair>* pins) {
  PinnedPair pin;
  FERN_RETURN_IF_ERROR(PinNode(block, lock, &pin));
  Node* node = pin.as<Node>();
  std::vector<BlockNum> children;
  if (node->is_leaf()) {
    FERN_RETURN_IF_ERROR(LoadAllBasements(&pin));
    for (const LeafPartition& part : node->basements) {
      if (part.rows->count() > 0) *empty = false;
    }
  } else if (node->buffered_messages() > 0) {
    *empty = false;
  } else {
    children = node->children;
  }
  if (pins != nullptr) pins->push_back(std::move(pin));
  for (BlockNum child : children) {
    if (!*empty) break;
    FERN_RETURN_IF_ERROR(PinSubtreeIfEmpty(child, lock, empty, pins));
  }
  return Status::OK();
}

Status FractalTree::IsEmpty(bool* empty) {
  // Exclusive: no node is freed while the walk pins children without their parent.
  MutexLock lock(&checkpoint_safe_);
  *empty = true;
  return PinSubtreeIfEmpty(root_.load(std::memory_order_acquire), Cachetable::Lock::kRead, empty,
                           nullptr);
}

Status FractalTree::BeginLoad(TreeConfig* config) {
  MutexLock lock(&checkpoint_safe_);
  if (loading_) {
    return Status::InvalidArgument(StrCat(path(), ": another load into this table is running"));
  }
  bool empty = true;
  FERN_RETURN_IF_ERROR(PinSubtreeIfEmpty(root_.load(std::memory_order_acquire),
                                         Cachetable::Lock::kRead, &empty, nullptr));
  if (!empty) {
    return Status::InvalidArgument(
        StrCat(path(), ": a loader needs an empty table, and this one holds rows or messages"));
  }
  loading_ = true;
  *config = CurrentConfig();
  return Status::OK();
}

void FractalTree::AbandonLoad() {
  MutexLock lock(&checkpoint_safe_);
  loading_ = false;
}

Status FractalTree::InstallLoad(BlockNum new_root) {
  // The same order as Checkpoint: the header written below holds every logged write
  // through `through` (the old tree is empty, so every logged write of this table is
  // undone or absorbed by it), and the log must be durable that far first.
  if (write_log() != nullptr) write_log()->BlockResolutions();
  checkpoint_safe_.Lock();
  Lsn through = checkpoint_lsn_.load(std::memory_order_acquire);
  if (write_log() != nullptr) {
    through = std::max(through, write_log()->LastLsn());
    write_log()->UnblockResolutions();
  }
  MutexLock lock(&checkpoint_safe_, std::adopt_lock);
  // The built root's block is the tree's from here on, whatever happens: the root takes its
  // contents, so the block itself is freed before the header write.
  bool root_freed = false;
  absl::Cleanup free_built_root = [&] {
    if (!root_freed) file_->FreeBlock(new_root);
  };
  if (!loading_) return Status::InvalidArgument(StrCat(path(), ": InstallLoad without BeginLoad"));

  // No write, flush or cleaner run is under way (they hold checkpoint_safe_), and no
  // checkpoint of this tree is in progress (none began since BeginLoad). Readers may be:
  // the write pins below wait for them, and the old nodes stay write-pinned until they
  // leave the cache, so eviction cannot write them after their blocks are freed.
  const BlockNum root_block = root_.load(std::memory_order_acquire);
  std::vector<PinnedPair> old;
  bool empty = true;
  FERN_RETURN_IF_ERROR(PinSubtreeIfEmpty(root_block, Cachetable::Lock::kWrite, &empty, &old));
  if (!empty) {
    return Status::InvalidArgument(
        StrCat(path(), ": the table was written during the load and is no longer empty"));
  }
  if (write_log() != nullptr && through > 0)
    FERN_RETURN_IF_ERROR(write_log()->SyncThrough(through));

  // The root keeps its block number (readers find the root by it without a lock): it takes
  // the built root's contents and is written before the header names it. The other old
  // nodes and the built root's block are freed before the header write, so the committed
  // block table names only the new tree.
  PinnedPair built;
  FERN_RETURN_IF_ERROR(PinNode(new_root, Cachetable::Lock::kWrite, &built));
  if (built.as<Node>()->is_leaf()) FERN_RETURN_IF_ERROR(LoadAllBasements(&built));
  Node* root = old.front().as<Node>();
  root->TakeContents(built.as<Node>());
  old.front().MarkDirty();
  old.front().UpdateSize();
  Status committed = SerializeAndWrite(
      root_block, root,
      [this, root_block](std::string_view bytes) { return file_->WriteBlock(root_block, bytes); });
  for (size_t i = 1; i < old.size(); ++i) file_->FreeBlock(old[i].block());
  cache_->Remove(&built);
  file_->FreeBlock(new_root);
  root_freed = true;
  if (committed.ok()) {
    FileHeader header = header_template_;
    header.root = root_block;
    header.max_msn = max_msn_.load(std::memory_order_relaxed);
    header.checkpoint_lsn = through;
    if (write_log() != nullptr) header.next_txn_hint = write_log()->NextTxnIdHint();
    committed = file_->Checkpoint(header);
  }
  for (size_t i = 1; i < old.size(); ++i) cache_->Remove(&old[i]);
  if (!committed.ok()) {
    // The caller frees the built blocks, so the root must not name them: it becomes an
    // empty leaf (the old tree was empty), written by the next checkpoint.
    root->ResetAsInternal(0);
    root->basements.emplace_back();
    root->basements.back().rows = std::make_unique<Basement>();
    old.front().UpdateSize();
    return committed;
  }
  CountHeight1Nodes(*root);
  checkpoint_lsn_.store(through, std::memory_order_release);
  loading_ = false;
  return Status::OK();
}

}  // namespace fern
