// The write path of FractalTree: injection with promotion, flushing, and the splits and
// merges that flushing triggers.
#include <algorithm>

#include "ft/buffer_budget.h"
#include "ft/tree.h"
#include "util/status_macros.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace fern {

namespace {

Message MakeMessage(MessageType type, std::string_view key, std::string_view value,
                    TxnId committed_by = kNoTxn) {
  Message m;
  m.type = type;
  m.msn = 0;
  m.key = key;
  m.value = value;
  m.committed_by = committed_by;
  return m;
}

// A basement RebalanceBasements splits: over `limit` bytes with more than one row.
bool Oversized(const Basement& rows, size_t limit) {
  return rows.serialized_bytes() > limit && rows.count() > 1;
}

// Neighbours RebalanceBasements merges: together less than half of `limit`.
bool FitTogether(const Basement& left, const Basement& right, size_t limit) {
  return left.serialized_bytes() + right.serialized_bytes() < limit / 2;
}

}  // namespace

Status FractalTree::PinRootForWrite(PinnedPair* pin) {
  return PinNode(root_.load(std::memory_order_acquire), Cachetable::Lock::kWrite, pin);
}

Status FractalTree::LogAndInject(const Message& message, Lsn* lsn, PinnedPair root) {
  // Refused before it is logged, so it leaves no trace.
  FERN_RETURN_IF_ERROR(cache_->WriteBackStatus());
  Lsn assigned = 0;
  if (write_log() != nullptr) FERN_RETURN_IF_ERROR(write_log()->LogWrite(message, &assigned));
  if (lsn != nullptr) *lsn = assigned;
  Status s = Inject(message, std::move(root));
  if (!s.ok() && write_log() != nullptr && assigned != 0) write_log()->ApplyFailed(s);
  return s;
}

Status FractalTree::WriteMessage(const Message& message, Lsn* lsn) {
  PinnedPair root;
  FERN_RETURN_IF_ERROR(PinRootForWrite(&root));
  return LogAndInject(message, lsn, std::move(root));
}

Status FractalTree::Put(std::string_view key, std::string_view value, Lsn* lsn,
                        TxnId committed_by) {
  ReaderMutexLock safe(&checkpoint_safe_);
  return WriteMessage(MakeMessage(MessageType::kInsert, key, value, committed_by), lsn);
}

Status FractalTree::InsertChecked(Message message, const ReadView& view, Lsn* lsn) {
  // The root stays write-pinned from the check to the injection, so no other write of the
  // key can come between them.
  ReaderMutexLock safe(&checkpoint_safe_);
  PinnedPair root;
  FERN_RETURN_IF_ERROR(PinRootForWrite(&root));
  {
    const Comparator& cmp = *config_.comparator;
    const std::string_view key = message.key;
    ReadPath path;
    FERN_RETURN_IF_ERROR(DescendForRead(
        [&cmp, key](const Node& node) { return node.PartitionIndex(key, cmp); }, &root, &path));
    Status s = GetOnPath(path, key, /*value=*/nullptr, view);
    if (s.ok()) return Status::AlreadyExists(StrCat("key \"", EscapeBytes(key), "\" exists"));
    if (!s.IsNotFound()) return s;
  }
  return LogAndInject(message, lsn, std::move(root));
}

Status FractalTree::Insert(std::string_view key, std::string_view value, Lsn* lsn,
                           TxnId committed_by) {
  return InsertChecked(MakeMessage(MessageType::kInsert, key, value, committed_by), ReadView(),
                       lsn);
}

Status FractalTree::InsertTxn(const XidStack& xids, const ReadView& view, std::string_view key,
                              std::string_view value, Lsn* lsn) {
  Message message = MakeMessage(MessageType::kInsert, key, value);
  message.xids = xids;
  return InsertChecked(message, view, lsn);
}

Status FractalTree::Delete(std::string_view key, Lsn* lsn, TxnId committed_by) {
  ReaderMutexLock safe(&checkpoint_safe_);
  return WriteMessage(MakeMessage(MessageType::kDelete, key, {}, committed_by), lsn);
}

Status FractalTree::Update(std::string_view key, std::string_view extra, Lsn* lsn,
                           TxnId committed_by) {
  if (config_.update_function == nullptr || !*config_.update_function) {
    return Status::InvalidArgument("Update needs Options::update_function");
  }
  ReaderMutexLock safe(&checkpoint_safe_);
  return WriteMessage(MakeMessage(MessageType::kUpdate, key, extra, committed_by), lsn);
}

Status FractalTree::UpdateAll(std::string_view extra, Lsn* lsn, TxnId committed_by) {
  if (config_.update_function == nullptr || !*config_.update_function) {
    return Status::InvalidArgument("UpdateAll needs Options::update_function");
  }
  ReaderMutexLock safe(&checkpoint_safe_);
  return WriteMessage(MakeMessage(MessageType::kUpdateBroadcast, {}, extra, committed_by), lsn);
}

Status FractalTree::Write(MessageType type, const XidStack& xids, std::string_view key,
                          std::string_view value, Lsn* lsn) {
  if (type == MessageType::kUpdate &&
      (config_.update_function == nullptr || !*config_.update_function)) {
    return Status::InvalidArgument("Update needs Options::update_function");
  }
  Message message = MakeMessage(type, key, value);
  message.xids = xids;
  ReaderMutexLock safe(&checkpoint_safe_);
  return WriteMessage(message, lsn);
}

Status FractalTree::Resolve(MessageType type, const XidStack& xids, std::string_view key,
                            bool sole_write) {
  Message message = MakeMessage(type, key, {});
  message.xids = xids;
  ReaderMutexLock safe(&checkpoint_safe_);
  PinnedPair root;
  FERN_RETURN_IF_ERROR(PinRootForWrite(&root));
  return Inject(message, std::move(root),
                sole_write && type == MessageType::kCommitAny && xids.size() == 1);
}

Status FractalTree::Replay(Message message, Lsn lsn) {
  if (lsn <= checkpoint_lsn_.load(std::memory_order_acquire)) return Status::OK();
  if (IsUpdate(message.type) && !CanApplyUpdates()) {
    return Status::InvalidArgument(StrCat(path(),
                                          ": the log holds an Update or UpdateAll to replay (LSN ",
                                          lsn, "); open the Env with Options::update_function"));
  }
  ReaderMutexLock safe(&checkpoint_safe_);
  PinnedPair root;
  FERN_RETURN_IF_ERROR(PinRootForWrite(&root));
  return Inject(message, std::move(root));
}

Status FractalTree::Optimize() {
  ReaderMutexLock safe(&checkpoint_safe_);
  PinnedPair root;
  FERN_RETURN_IF_ERROR(PinRootForWrite(&root));
  FERN_RETURN_IF_ERROR(Inject(MakeMessage(MessageType::kOptimize, {}, {}), std::move(root)));
  FERN_RETURN_IF_ERROR(PinRootForWrite(&root));
  FERN_RETURN_IF_ERROR(FlushAll(&root));
  return FixRoot(&root);
}

size_t FractalTree::LeafLimit() const {
  if (config_.buffer_budget == nullptr) return config_.node_bytes;
  const size_t trees = std::max<size_t>(1, config_.buffer_budget->trees());
  const size_t share = std::max(kMinLeafBytes, cache_->budget() / 4 / trees);
  return std::min<size_t>(config_.node_bytes, share);
}

bool FractalTree::NeedsSplit(const Node& node) const {
  if (node.is_leaf()) return node.basements.size() > 1 && node.leaf_bytes() > LeafLimit();
  return node.children.size() > config_.fanout;
}

bool FractalTree::NeedsMerge(const Node& node) const {
  if (node.is_leaf()) return node.leaf_bytes() < LeafLimit() / 4;
  return node.children.size() < std::max<size_t>(2, config_.fanout / 4);
}

bool FractalTree::MayNeedRestructure(const Node& child, size_t incoming) const {
  if (NeedsSplit(child) || NeedsMerge(child)) return true;
  if (child.is_leaf()) return child.leaf_bytes() + incoming > LeafLimit();
  // An internal child gains children only when its own flush splits a grandchild, which
  // needs the incoming bytes to gorge it; a split can add several pieces, hence the margin.
  return child.buffered_bytes() + incoming > GorgedAbove(child) &&
         child.children.size() + 4 > config_.fanout;
}

size_t FractalTree::GorgedAbove(const Node& node) const {
  // In a cache of a few node sizes, a node's buffers stay within a quarter of it. Without
  // that, a 1 MiB cache let the root of 2 MiB nodes buffer more than the whole cache: the
  // evictor compressed its buffers and the next read decompressed them, ~2.7 ms a Get.
  const size_t cap = std::max(kMinGorgedBytes, cache_->budget() / 4);
  size_t limit = config_.node_bytes;
  // Height-1 nodes share a budget once the cache is nearly full. While it has room, flushed
  // leaves stay cached and absorb the next flush without a write; bigger buffers would only
  // make reads search more messages.
  if (config_.buffer_budget != nullptr) {
    if (node.height() == 1 && cache_->size_bytes() >= cache_->budget() / 8 * 7) {
      limit = config_.buffer_budget->LimitFor(config_.node_bytes);
    }
    limit = std::min(limit, config_.buffer_budget->FitLimit(kMinGorgedBytes));
  }
  return std::min(limit, cap);
}

double FractalTree::GorgedBy(const Node& node, size_t* heaviest) const {
  // One pass for the total and the heaviest (this runs after every write into a node).
  *heaviest = 0;
  size_t total = 0;
  for (size_t i = 0; i < node.buffers.size(); ++i) {
    total += node.buffers[i].bytes();
    if (node.buffers[i].bytes() > node.buffers[*heaviest].bytes()) *heaviest = i;
  }
  if (node.is_frozen.load(std::memory_order_acquire)) total = node.buffered_bytes();
  const size_t limit = GorgedAbove(node);
  const double over = static_cast<double>(total) / static_cast<double>(limit);
  if (limit <= config_.node_bytes || node.buffers.empty()) return over;
  // A sequential load sends every message to one child; flushing all a budget let the node
  // hold into one leaf made that leaf several times node_bytes before it split (fillseq at a
  // 64 MiB cache peaked at 130 MiB of memory instead of 100).
  const double child_over = static_cast<double>(node.buffers[*heaviest].bytes()) /
                            static_cast<double>(config_.node_bytes);
  return std::max(over, child_over);
}

void FractalTree::CountHeight1Nodes(const Node& root) {
  if (config_.buffer_budget == nullptr) return;
  if (!tree_counted_.exchange(true, std::memory_order_relaxed)) config_.buffer_budget->AddTree(1);
  size_t count = 0;
  if (root.height() == 1) {
    count = 1;
  } else if (root.height() >= 2) {
    // Below the root's children, assume nodes three quarters full: only the order of
    // magnitude matters once the tree is that tall.
    count = root.children.size();
    for (int h = root.height(); h > 2 && count < (size_t{1} << 32); --h) {
      count *= std::max<size_t>(1, config_.fanout * 3 / 4);
    }
  }
  config_.buffer_budget->Replace(height1_counted_.exchange(count, std::memory_order_relaxed),
                                 count);
}

Status FractalTree::Inject(Message message, PinnedPair pin, bool commit_in_place) {
  message.msn = max_msn_.fetch_add(1, std::memory_order_relaxed) + 1;
  Node* node = pin.as<Node>();
  const Comparator& cmp = *config_.comparator;
  int depth = 0;
  if (node->is_leaf()) {
    FERN_RETURN_IF_ERROR(ApplyToLeaf(&pin, message));
    stats_.injected_at_depth[0]++;
  } else if (IsBroadcast(message.type)) {
    // Broadcasts are never promoted: they go into every buffer of the root.
    for (MessageBuffer& buffer : node->buffers) buffer.Append(message, cmp);
    node->set_max_msn(message.msn);
    pin.MarkDirty();
    stats_.injected_at_depth[0]++;
  } else {
    for (;;) {
      size_t i = node->PartitionIndex(message.key, cmp);
      if (node->buffers[i].empty() && depth < 2 && node->height() > 1 &&
          cache_->IsCached(file_id_, node->children[i])) {
        PinnedPair child;
        FERN_RETURN_IF_ERROR(PinNode(node->children[i], Cachetable::Lock::kWrite, &child));
        Node* c = child.as<Node>();
        // A child that needs restructuring is left for its parent's next flush to fix,
        // which can happen only if messages collect in the parent's buffer.
        if (!NeedsSplit(*c) && !NeedsMerge(*c)) {
          pin = std::move(child);  // hand over hand: the child is pinned before the parent goes
          node = c;
          ++depth;
          stats_.promotions++;
          continue;
        }
      }
      // A commit follows its write down the same path while the tree keeps its shape, so
      // the write is usually in this buffer still: committing it there saves appending,
      // flushing and applying a commit message (a quarter of a one-row transaction's cost).
      if (commit_in_place &&
          node->buffers[i].CommitInPlace(message.key, message.xids.outermost(), cmp)) {
        pin.MarkDirty();
        stats_.commits_in_place++;
        // Nothing grew: no flush is due and the root's shape is as it was.
        return Status::OK();
      }
      node->buffers[i].Append(message, cmp);
      node->set_max_msn(message.msn);
      pin.MarkDirty();
      stats_.injected_at_depth[std::min(depth, kStatsMaxDepth - 1)]++;
      break;
    }
  }
  FERN_RETURN_IF_ERROR(AfterAppend(&pin));
  // Only a write that stayed at the root can have changed the root's shape.
  if (depth == 0 && pin.pinned()) return FixRoot(&pin);
  return Status::OK();
}

Status FractalTree::AfterAppend(PinnedPair* pin) {
  Node* node = pin->as<Node>();
  if (node->is_leaf()) return Status::OK();
  size_t heaviest;
  const double over = GorgedBy(*node, &heaviest);
  if (over <= 1) return Status::OK();
  if (config_.flusher_pool != nullptr && over <= 2) {
    ScheduleFlush(pin->block());
    return Status::OK();
  }
  return FlushWhileGorged(pin, /*may_release=*/true);
}

void FractalTree::ScheduleFlush(BlockNum block) {
  {
    MutexLock lock(&flush_mu_);
    if (closing_.load(std::memory_order_acquire)) return;
    if (!flushes_queued_.insert(block).second) return;  // already queued
    ++flushes_pending_;
  }
  config_.flusher_pool->Schedule([this, block] { BackgroundFlush(block); });
}

void FractalTree::BackgroundFlush(BlockNum block) {
  {
    MutexLock lock(&flush_mu_);
    flushes_queued_.erase(block);
  }
  if (!closing_.load(std::memory_order_acquire)) {
    ReaderMutexLock safe(&checkpoint_safe_);
    PinnedPair pin;
    // Known by number only: the node may have been merged away and its block freed, so
    // it is flushed only if still cached (never read back from disk).
    if (cache_->PinIfCached(file_id_, block, Cachetable::Lock::kWrite, &pin).ok() &&
        Thaw(&pin).ok() && !pin.as<Node>()->is_leaf()) {
      stats_.background_flushes++;
      const bool is_root = block == root_.load(std::memory_order_acquire);
      Status s = FlushWhileGorged(&pin, /*may_release=*/true);
      if (s.ok() && is_root && pin.pinned()) s = FixRoot(&pin);
      // The messages stay where they were on a failed flush (but for an update whose old
      // value stored out of line could not be read for a reason other than damage to its
      // block: that stops the tree's writes, see CheckApplied); the next write to find the node
      // gorged schedules it again, and a write over twice the limit reports the error.
      if (!s.ok()) stats_.flush_errors++;
    }
  }
  EndBackgroundTask();
}

void FractalTree::ScheduleFlushToward(std::string_view key) {
  if (config_.flusher_pool == nullptr || flush_toward_in_flight_.exchange(true)) return;
  if (!BeginBackgroundTask()) {
    flush_toward_in_flight_.store(false);
    return;
  }
  config_.flusher_pool->Schedule([this, owned = std::string(key)] {
    if (!closing_.load(std::memory_order_acquire)) {
      if (FlushToward(owned).ok()) {
        stats_.read_triggered_flushes++;
      } else {
        stats_.flush_errors++;  // the messages stay where they were
      }
    }
    flush_toward_in_flight_.store(false);
    EndBackgroundTask();
  });
}

Status FractalTree::FlushToward(std::string_view key) {
  ReaderMutexLock safe(&checkpoint_safe_);
  const Comparator& cmp = *config_.comparator;
  PinnedPair pin;
  FERN_RETURN_IF_ERROR(PinRootForWrite(&pin));
  bool at_root = true;
  while (!pin.as<Node>()->is_leaf()) {
    Node* node = pin.as<Node>();
    const size_t i = node->PartitionIndex(key, cmp);
    if (!node->buffers[i].empty()) {
      // Keeps the parent pinned and restructures the child under it.
      FERN_RETURN_IF_ERROR(FlushChild(&pin, i, /*may_release=*/false));
    } else {
      // A child emptied by earlier flushes (a queue's consumed head) is merged away, or reads
      // would go on walking its empty basements.
      PinnedPair child;
      FERN_RETURN_IF_ERROR(PinNode(node->children[i], Cachetable::Lock::kWrite, &child));
      FERN_RETURN_IF_ERROR(Restructure(&pin, i, &child));
    }
    if (at_root) {
      FERN_RETURN_IF_ERROR(FixRoot(&pin));
      if (pin.as<Node>()->is_leaf()) break;
    }
    PinnedPair next;
    const size_t j = pin.as<Node>()->PartitionIndex(key, cmp);
    FERN_RETURN_IF_ERROR(PinNode(pin.as<Node>()->children[j], Cachetable::Lock::kWrite, &next));
    pin = std::move(next);  // hand over hand
    at_root = false;
  }
  return Status::OK();
}

void FractalTree::DrainFlushes() {
  MutexLock lock(&flush_mu_);
  closing_.store(true, std::memory_order_release);
  while (flushes_pending_ > 0) flush_mu_.Wait(&flush_done_);
}

Status FractalTree::ApplyToLeaf(PinnedPair* pin, const Message& message) {
  if (IsUpdate(message.type) && !CanApplyUpdates()) return UnappliedUpdates();
  Node* leaf = pin->as<Node>();
  ApplyContext ctx = ApplyContextForLeaf();
  if (IsBroadcast(message.type)) {
    FERN_RETURN_IF_ERROR(LoadAllBasements(pin));
    for (LeafPartition& part : leaf->basements) {
      part.rows->Apply(message, ctx);
      part.on_disk = false;
    }
    RebalanceBasements(leaf);
  } else {
    size_t i = leaf->PartitionIndex(message.key, *config_.comparator);
    FERN_RETURN_IF_ERROR(LoadBasement(pin, i, /*loaded=*/nullptr, /*for_write=*/true));
    leaf->basements[i].rows->Apply(message, ctx);
    leaf->basements[i].on_disk = false;
    // Only basement i changed: the leaf needs rebalancing only if it outgrew the limit or
    // now fits with a neighbour, which is O(1) to check where a pass is O(basements).
    if (BasementNeedsRebalance(*leaf, i)) RebalanceBasements(leaf);
  }
  leaf->set_max_msn(message.msn);
  pin->MarkDirty();
  return CheckApplied(ctx);
}

bool FractalTree::BasementNeedsRebalance(const Node& leaf, size_t i) const {
  const size_t limit = config_.basement_bytes;
  const Basement* rows = leaf.basements[i].rows.get();
  if (rows == nullptr) return true;
  if (Oversized(*rows, limit)) return true;
  auto fits_with = [&](size_t j) {
    const Basement* other = leaf.basements[j].rows.get();
    return other != nullptr && FitTogether(*rows, *other, limit);
  };
  return (i > 0 && fits_with(i - 1)) || (i + 1 < leaf.basements.size() && fits_with(i + 1));
}

void FractalTree::RebalanceBasements(Node* leaf) {
  const size_t limit = config_.basement_bytes;
  for (size_t i = 0; i < leaf->basements.size(); ++i) {
    Basement* rows = leaf->basements[i].rows.get();
    if (rows == nullptr) continue;
    // Split an oversized basement at half its bytes.
    while (Oversized(*rows, limit)) {
      size_t half = rows->serialized_bytes() / 2;
      size_t at = 0;
      size_t acc = 0;
      while (at + 1 < rows->count() && acc < half) acc += rows->entry(at++).encoded_size();
      if (at == 0) at = 1;
      LeafPartition right;
      right.rows = std::make_unique<Basement>();
      std::string pivot = PivotBetween(rows->key(at - 1), rows->key(at), *config_.comparator);
      rows->MoveSuffixTo(at, right.rows.get());
      leaf->basements[i].on_disk = false;
      leaf->basements.insert(leaf->basements.begin() + static_cast<long>(i) + 1, std::move(right));
      leaf->pivots.Insert(i, std::move(pivot));
      stats_.basement_splits++;
      rows = leaf->basements[i].rows.get();
    }
  }
  // Merge neighbours that together fill less than half a basement.
  for (size_t i = 0; i + 1 < leaf->basements.size();) {
    LeafPartition& left = leaf->basements[i];
    LeafPartition& right = leaf->basements[i + 1];
    if (left.rows != nullptr && right.rows != nullptr &&
        FitTogether(*left.rows, *right.rows, limit)) {
      left.rows->AppendAll(right.rows.get());
      left.on_disk = false;
      leaf->basements.erase(leaf->basements.begin() + static_cast<long>(i) + 1);
      leaf->pivots.Erase(i);
      stats_.basement_merges++;
    } else {
      ++i;
    }
  }
}

Status FractalTree::FlushWhileGorged(PinnedPair* pin, bool may_release) {
  while (pin->pinned()) {
    Node* node = pin->as<Node>();
    if (node->is_leaf()) break;
    size_t heaviest;
    if (GorgedBy(*node, &heaviest) <= 1) break;
    FERN_RETURN_IF_ERROR(FlushChild(pin, heaviest, may_release));
  }
  return Status::OK();
}

Status FractalTree::FlushChild(PinnedPair* parent, size_t index, bool may_release) {
  Node* p = parent->as<Node>();
  PinnedPair child;
  FERN_RETURN_IF_ERROR(PinNode(p->children[index], Cachetable::Lock::kWrite, &child));
  Node* c = child.as<Node>();
  // A leaf child gets every basement before the messages leave the parent, so a read error
  // leaves them where they were. (An update whose old value is stored out of line reads it
  // while applying; if that read fails other than for a damaged block, which drops the
  // update, the messages are gone from the parent, and CheckApplied stops the tree's writes
  // until a reopen replays them from the log.)
  if (c->is_leaf()) {
    if (p->buffers[index].update_count() > 0 && !CanApplyUpdates()) return UnappliedUpdates();
    FERN_RETURN_IF_ERROR(LoadAllBasements(&child));
  }
  MessageBuffer moving;
  moving.Swap(p->buffers[index]);
  parent->MarkDirty();
  // The child is held, so nothing newer can reach it before these messages do: unless the
  // child may need restructuring under its parent, the parent can go now and writers
  // continue above while the child is worked on.
  const bool keep_parent = !may_release || MayNeedRestructure(*c, moving.bytes());
  if (!keep_parent) parent->Unpin();
  FERN_RETURN_IF_ERROR(ApplyBuffer(&moving, &child));
  if (!c->is_leaf()) FERN_RETURN_IF_ERROR(FlushWhileGorged(&child, !keep_parent));
  if (!keep_parent) return Status::OK();
  return Restructure(parent, index, &child);
}

Status FractalTree::MoveBufferDown(Node* parent, size_t index, PinnedPair* child_pin) {
  if (parent->buffers[index].empty()) return Status::OK();
  if (child_pin->as<Node>()->is_leaf()) {
    if (parent->buffers[index].update_count() > 0 && !CanApplyUpdates()) {
      return UnappliedUpdates();
    }
    FERN_RETURN_IF_ERROR(LoadAllBasements(child_pin));
  }
  MessageBuffer moving;
  moving.Swap(parent->buffers[index]);
  return ApplyBuffer(&moving, child_pin);
}

Status FractalTree::ApplyBuffer(MessageBuffer* moving, PinnedPair* child_pin) {
  if (moving->empty()) return Status::OK();
  Node* child = child_pin->as<Node>();
  const Comparator& cmp = *config_.comparator;
  stats_.flushes++;
  stats_.messages_flushed += moving->count();
  uint64_t largest = stats_.largest_flush_bytes.load(std::memory_order_relaxed);
  while (moving->bytes() > largest && !stats_.largest_flush_bytes.compare_exchange_weak(
                                          largest, moving->bytes(), std::memory_order_relaxed)) {
  }
  Status applied;
  bool changed = true;
  if (child->is_leaf()) {
    FERN_RETURN_IF_ERROR(LoadAllBasements(child_pin));
    ApplyContext ctx = ApplyContextForLeaf();
    // kOptimize messages alone change only the basements that had versions to collect: the
    // others stay as written, and a leaf with nothing to collect is not rewritten (Optimize
    // of a compact table rewrote every leaf, and the close left the file twice its size).
    // Its stored max MSN then stays below the one in memory, which only means a replay may
    // offer it messages it has seen: those no-ops alone (it skips nothing it has not).
    bool optimize_only = moving->count() == moving->broadcast_count();
    moving->ForEachBroadcast(
        [&](const Message& m) { optimize_only &= m.type == MessageType::kOptimize; });
    moving->ForEach([&](const Message& m) {
      if (IsBroadcast(m.type)) {
        for (LeafPartition& part : child->basements) {
          const Basement& rows = *part.rows;
          const size_t count = rows.count();
          const size_t live = rows.live_bytes();
          const size_t garbage = rows.garbage_bytes();
          part.rows->Apply(m, ctx);
          if (!optimize_only || rows.count() != count || rows.live_bytes() != live ||
              rows.garbage_bytes() != garbage) {
            part.on_disk = false;
          }
        }
      } else {
        LeafPartition& part = child->basements[child->PartitionIndex(m.key, cmp)];
        part.rows->Apply(m, ctx);
        part.on_disk = false;
      }
    });
    RebalanceBasements(child);
    applied = CheckApplied(ctx);
    if (optimize_only && applied.ok()) {
      changed = std::any_of(child->basements.begin(), child->basements.end(),
                            [](const LeafPartition& part) { return !part.on_disk; });
    }
  } else {
    moving->ForEach([&](const Message& m) {
      if (IsBroadcast(m.type)) {
        for (MessageBuffer& buffer : child->buffers) buffer.Append(m, cmp);
      } else {
        child->buffers[child->PartitionIndex(m.key, cmp)].Append(m, cmp);
      }
    });
  }
  child->set_max_msn(moving->max_msn());
  if (changed) child_pin->MarkDirty();
  child_pin->UpdateSize();
  return applied;
}

Status FractalTree::Restructure(PinnedPair* parent, size_t index, PinnedPair* child) {
  Node* p = parent->as<Node>();
  Node* c = child->as<Node>();
  if (NeedsSplit(*c)) {
    FERN_RETURN_IF_ERROR(SplitChild(p, index, child));
    parent->MarkDirty();
    return Status::OK();
  }
  if (NeedsMerge(*c) && p->children.size() > 1) {
    FERN_RETURN_IF_ERROR(MergeChild(parent, index, child));
  }
  return Status::OK();
}

Status FractalTree::SplitChild(Node* parent, size_t index, PinnedPair* child_pin) {
  // Splits child `index` of `parent` in halves until no piece needs a split. REQUIRES:
  // parent->buffers[index] is empty (the child was just flushed or is a new root's only
  // child), so the halves start with empty buffers.
  Node* child = child_pin->as<Node>();
  if (child->is_leaf()) FERN_RETURN_IF_ERROR(LoadAllBasements(child_pin));
  const size_t n = child->partition_count();
  size_t at;  // first partition of the right half
  if (child->is_leaf()) {
    size_t total = child->leaf_bytes();
    size_t acc = 0;
    at = 0;
    while (at + 1 < n && acc + child->basements[at].rows->serialized_bytes() <= total / 2) {
      acc += child->basements[at++].rows->serialized_bytes();
    }
    if (at == 0) at = 1;
  } else {
    at = n / 2;
  }
  BlockNum right_block = NewBlockNum();
  auto right = std::make_unique<Node>(right_block, child->height());
  right->set_max_msn(child->max_msn());
  std::string split_key = child->pivots[at - 1];
  right->pivots.Assign(child->pivots.TakeFrom(at));
  child->pivots.Truncate(at - 1);
  if (child->is_leaf()) {
    for (size_t i = at; i < n; ++i) {
      right->basements.push_back(std::move(child->basements[i]));
      right->basements.back().on_disk = false;  // its frame belongs to the old block
    }
    child->basements.resize(at);
    stats_.leaf_splits++;
  } else {
    right->children.assign(child->children.begin() + static_cast<long>(at), child->children.end());
    child->children.resize(at);
    for (size_t i = at; i < n; ++i) right->buffers.push_back(std::move(child->buffers[i]));
    child->buffers.resize(at);
    stats_.internal_splits++;
  }
  parent->children.insert(parent->children.begin() + static_cast<long>(index) + 1, right_block);
  parent->buffers.insert(parent->buffers.begin() + static_cast<long>(index) + 1, MessageBuffer());
  parent->pivots.Insert(index, std::move(split_key));
  child_pin->MarkDirty();
  child_pin->UpdateSize();

  PinnedPair right_pin;
  cache_->PinNew(file_id_, right_block, std::move(right), &right_pin);
  if (NeedsSplit(*right_pin.as<Node>())) {
    FERN_RETURN_IF_ERROR(SplitChild(parent, index + 1, &right_pin));
  }
  right_pin.Unpin();
  if (NeedsSplit(*child)) FERN_RETURN_IF_ERROR(SplitChild(parent, index, child_pin));
  return Status::OK();
}

Status FractalTree::MergeChild(PinnedPair* parent_pin, size_t index, PinnedPair* child_pin) {
  Node* parent = parent_pin->as<Node>();
  if (child_pin->as<Node>()->is_leaf()) {
    FERN_RETURN_IF_ERROR(MoveBufferDown(parent, index, child_pin));
    FERN_RETURN_IF_ERROR(LoadAllBasements(child_pin));
    if (child_pin->as<Node>()->leaf_entries() == 0) {
      DropEmptyLeaf(parent_pin, index, child_pin);
      return Status::OK();
    }
  }
  size_t sibling = index + 1 < parent->children.size() ? index + 1 : index - 1;
  PinnedPair sibling_pin;
  FERN_RETURN_IF_ERROR(PinNode(parent->children[sibling], Cachetable::Lock::kWrite, &sibling_pin));
  // Both children must start with empty parent buffers so the merged node needs one.
  FERN_RETURN_IF_ERROR(MoveBufferDown(parent, sibling, &sibling_pin));
  FERN_RETURN_IF_ERROR(MoveBufferDown(parent, index, child_pin));
  size_t left_index = std::min(index, sibling);
  PinnedPair* left_pin = left_index == index ? child_pin : &sibling_pin;
  PinnedPair* right_pin = left_index == index ? &sibling_pin : child_pin;
  Node* left = left_pin->as<Node>();
  Node* right = right_pin->as<Node>();
  if (left->is_leaf()) {
    FERN_RETURN_IF_ERROR(LoadAllBasements(left_pin));
    FERN_RETURN_IF_ERROR(LoadAllBasements(right_pin));
    // Merging nodes that would nearly fill a node again only causes a split soon after.
    if (left->leaf_bytes() + right->leaf_bytes() > LeafLimit() * 3 / 4) return Status::OK();
    left->pivots.PushBack(parent->pivots[left_index]);
    left->pivots.Append(right->pivots.TakeFrom(0));
    for (LeafPartition& part : right->basements) {
      left->basements.push_back(std::move(part));
      left->basements.back().on_disk = false;
    }
    RebalanceBasements(left);
    stats_.leaf_merges++;
  } else {
    if (left->children.size() + right->children.size() > config_.fanout) return Status::OK();
    left->pivots.PushBack(parent->pivots[left_index]);
    left->pivots.Append(right->pivots.TakeFrom(0));
    left->children.insert(left->children.end(), right->children.begin(), right->children.end());
    for (MessageBuffer& buffer : right->buffers) left->buffers.push_back(std::move(buffer));
    stats_.internal_merges++;
  }
  left->set_max_msn(right->max_msn());
  BlockNum right_block = right->block();
  parent->children.erase(parent->children.begin() + static_cast<long>(left_index) + 1);
  parent->buffers.erase(parent->buffers.begin() + static_cast<long>(left_index) + 1);
  parent->pivots.Erase(left_index);
  left_pin->MarkDirty();
  left_pin->UpdateSize();
  parent_pin->MarkDirty();
  cache_->Remove(right_pin);
  file_->FreeBlock(right_block);
  return Status::OK();
}

void FractalTree::DropEmptyLeaf(PinnedPair* parent_pin, size_t index, PinnedPair* child_pin) {
  Node* parent = parent_pin->as<Node>();
  // The pivot between the leaf and a neighbour goes, so the neighbour's range takes in the
  // leaf's keys. Messages for them buffered above are newer than anything in the neighbour,
  // so they apply there as they would have to the leaf.
  parent->children.erase(parent->children.begin() + static_cast<long>(index));
  parent->buffers.erase(parent->buffers.begin() + static_cast<long>(index));
  parent->pivots.Erase(index > 0 ? index - 1 : 0);
  parent_pin->MarkDirty();
  const BlockNum block = child_pin->block();
  cache_->Remove(child_pin);
  file_->FreeBlock(block);
  stats_.empty_leaves_dropped++;
}

Status FractalTree::FixRoot(PinnedPair* pin) {
  for (;;) {
    Node* root = pin->as<Node>();
    if (NeedsSplit(*root)) {
      // The root's contents move to a new node, which the root adopts as its only child
      // and splits; the root keeps its block.
      if (root->is_leaf()) FERN_RETURN_IF_ERROR(LoadAllBasements(pin));
      BlockNum left_block = NewBlockNum();
      auto left = std::make_unique<Node>(left_block, root->height());
      left->TakeContents(root);
      root->ResetAsInternal(left->height() + 1);
      root->children.push_back(left_block);
      root->buffers.emplace_back();
      PinnedPair left_pin;
      cache_->PinNew(file_id_, left_block, std::move(left), &left_pin);
      FERN_RETURN_IF_ERROR(SplitChild(root, 0, &left_pin));
      pin->MarkDirty();
      pin->UpdateSize();
      stats_.root_splits++;
      continue;
    }
    if (!root->is_leaf() && root->children.size() == 1) {
      // A root with one child adds a level for nothing: it takes its child's contents.
      PinnedPair child;
      FERN_RETURN_IF_ERROR(PinNode(root->children[0], Cachetable::Lock::kWrite, &child));
      FERN_RETURN_IF_ERROR(MoveBufferDown(root, 0, &child));
      if (child.as<Node>()->is_leaf()) FERN_RETURN_IF_ERROR(LoadAllBasements(&child));
      root->TakeContents(child.as<Node>());
      pin->MarkDirty();
      pin->UpdateSize();
      BlockNum child_block = child.block();
      cache_->Remove(&child);
      file_->FreeBlock(child_block);
      continue;
    }
    CountHeight1Nodes(*root);
    return Status::OK();
  }
}

Status FractalTree::FlushAll(PinnedPair* pin) {
  Node* node = pin->as<Node>();
  if (node->is_leaf()) return Status::OK();
  for (size_t i = 0; i < node->children.size(); ++i) {
    PinnedPair child;
    FERN_RETURN_IF_ERROR(PinNode(node->children[i], Cachetable::Lock::kWrite, &child));
    if (!node->buffers[i].empty()) {
      FERN_RETURN_IF_ERROR(MoveBufferDown(node, i, &child));
      pin->MarkDirty();
    }
    FERN_RETURN_IF_ERROR(FlushAll(&child));
  }
  // Restructure from the right so that index shifts only touch children already visited.
  for (size_t i = node->children.size(); i-- > 0;) {
    if (i >= node->children.size()) continue;
    PinnedPair child;
    FERN_RETURN_IF_ERROR(PinNode(node->children[i], Cachetable::Lock::kWrite, &child));
    FERN_RETURN_IF_ERROR(Restructure(pin, i, &child));
  }
  return Status::OK();
}

}  // namespace fern
