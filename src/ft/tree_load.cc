// Bulk loading support of FractalTree: reserving an empty tree for a load and installing the
// tree a TreeBuilder wrote, atomically and durably.
#include <algorithm>

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
  ReaderMutexLock lock(&tree_mu_);
  *empty = true;
  return PinSubtreeIfEmpty(root_, Cachetable::Lock::kRead, empty, nullptr);
}

Status FractalTree::BeginLoad(TreeConfig* config) {
  MutexLock lock(&tree_mu_);
  if (loading_) {
    return Status::InvalidArgument(StrCat(path(), ": another load into this table is running"));
  }
  bool empty = true;
  FERN_RETURN_IF_ERROR(PinSubtreeIfEmpty(root_, Cachetable::Lock::kRead, &empty, nullptr));
  if (!empty) {
    return Status::InvalidArgument(
        StrCat(path(), ": a loader needs an empty table, and this one holds rows or messages"));
  }
  loading_ = true;
  *config = CurrentConfig();
  return Status::OK();
}

void FractalTree::AbandonLoad() {
  MutexLock lock(&tree_mu_);
  loading_ = false;
}

Status FractalTree::InstallLoad(BlockNum new_root) {
  // The same order as Checkpoint: the header written below holds every logged write
  // through `through` (the old tree is empty, so every logged write of this table is
  // undone or absorbed by it), and the log must be durable that far first.
  if (log_ != nullptr) log_->BlockResolutions();
  tree_mu_.Lock();
  Lsn through = checkpoint_lsn_;
  if (log_ != nullptr) {
    through = std::max(through, log_->LastLsn());
    log_->UnblockResolutions();
  }
  MutexLock lock(&tree_mu_, std::adopt_lock);
  if (!loading_) return Status::InvalidArgument(StrCat(path(), ": InstallLoad without BeginLoad"));

  // Readers and the cleaner hold tree_mu_, so nobody else holds a pin of this tree now, and
  // no checkpoint of it is in progress (none began since BeginLoad, none ran then); the old
  // nodes stay write-pinned until they leave the cache, so eviction cannot write them
  // after their blocks are freed.
  std::vector<PinnedPair> old;
  bool empty = true;
  FERN_RETURN_IF_ERROR(PinSubtreeIfEmpty(root_, Cachetable::Lock::kWrite, &empty, &old));
  if (!empty) {
    return Status::InvalidArgument(
        StrCat(path(), ": the table was written during the load and is no longer empty"));
  }
  if (log_ != nullptr && through > 0) FERN_RETURN_IF_ERROR(log_->SyncThrough(through));

  // The old tree is freed before the header write so that the committed block table names
  // only the new tree. The old tree's nodes are all pinned here, and every other node of
  // this file is a built one, so there is nothing else dirty to write first.
  for (PinnedPair& pin : old) file_->FreeBlock(pin.block());
  FileHeader header = header_template_;
  header.root = new_root;
  header.max_msn = max_msn_;
  header.checkpoint_lsn = through;
  if (log_ != nullptr) header.next_txn_hint = log_->NextTxnIdHint();
  Status committed = file_->Checkpoint(header);
  for (PinnedPair& pin : old) cache_->Remove(&pin);
  if (!committed.ok()) {
    // The old tree's blocks are gone from the current table: an empty leaf stands in for
    // it (the old tree was empty), written by the next checkpoint.
    BlockNum root = NewBlockNum();
    auto leaf = std::make_unique<Node>(root, 0);
    leaf->basements.emplace_back();
    leaf->basements.back().rows = std::make_unique<Basement>();
    PinnedPair pin;
    cache_->PinNew(file_id_, root, std::move(leaf), &pin);
    pin.Unpin();
    root_ = root;
    return committed;
  }
  root_ = new_root;
  checkpoint_lsn_ = through;
  loading_ = false;
  return Status::OK();
}

}  // namespace fern
