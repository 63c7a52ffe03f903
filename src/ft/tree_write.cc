// The write path of FractalTree: injection with promotion, flushing, and the splits and
// merges that flushing triggers.
#include <algorithm>

#include "ft/tree.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

Message MakeMessage(MessageType type, std::string_view key, std::string_view value) {
  Message m;
  m.type = type;
  m.msn = 0;
  m.key = key;
  m.value = value;
  return m;
}

}  // namespace

Status FractalTree::LogAndInject(const Message& message, Lsn* lsn) {
  Lsn assigned = 0;
  if (log_ != nullptr) FERN_RETURN_IF_ERROR(log_->LogWrite(message, &assigned));
  if (lsn != nullptr) *lsn = assigned;
  Status s = Inject(message);
  if (!s.ok() && log_ != nullptr && assigned != 0) log_->ApplyFailed(s);
  return s;
}

Status FractalTree::Put(std::string_view key, std::string_view value, Lsn* lsn) {
  MutexLock lock(&tree_mu_);
  return LogAndInject(MakeMessage(MessageType::kInsert, key, value), lsn);
}

Status FractalTree::Insert(std::string_view key, std::string_view value, Lsn* lsn) {
  MutexLock lock(&tree_mu_);
  std::string existing;
  Status s = GetLocked(key, &existing, ReadView());
  if (s.ok()) return Status::AlreadyExists(StrCat("key \"", EscapeBytes(key), "\" exists"));
  if (!s.IsNotFound()) return s;
  return LogAndInject(MakeMessage(MessageType::kInsert, key, value), lsn);
}

Status FractalTree::InsertTxn(const XidStack& xids, const ReadView& view, std::string_view key,
                              std::string_view value, Lsn* lsn) {
  MutexLock lock(&tree_mu_);
  std::string existing;
  Status s = GetLocked(key, &existing, view);
  if (s.ok()) return Status::AlreadyExists(StrCat("key \"", EscapeBytes(key), "\" exists"));
  if (!s.IsNotFound()) return s;
  Message message = MakeMessage(MessageType::kInsert, key, value);
  message.xids = xids;
  return LogAndInject(message, lsn);
}

Status FractalTree::Delete(std::string_view key, Lsn* lsn) {
  MutexLock lock(&tree_mu_);
  return LogAndInject(MakeMessage(MessageType::kDelete, key, {}), lsn);
}

Status FractalTree::Update(std::string_view key, std::string_view extra, Lsn* lsn) {
  if (config_.update_function == nullptr || !*config_.update_function) {
    return Status::InvalidArgument("Update needs Options::update_function");
  }
  MutexLock lock(&tree_mu_);
  return LogAndInject(MakeMessage(MessageType::kUpdate, key, extra), lsn);
}

Status FractalTree::UpdateAll(std::string_view extra, Lsn* lsn) {
  if (config_.update_function == nullptr || !*config_.update_function) {
    return Status::InvalidArgument("UpdateAll needs Options::update_function");
  }
  MutexLock lock(&tree_mu_);
  return LogAndInject(MakeMessage(MessageType::kUpdateBroadcast, {}, extra), lsn);
}

Status FractalTree::Write(MessageType type, const XidStack& xids, std::string_view key,
                          std::string_view value, Lsn* lsn) {
  if (type == MessageType::kUpdate &&
      (config_.update_function == nullptr || !*config_.update_function)) {
    return Status::InvalidArgument("Update needs Options::update_function");
  }
  Message message = MakeMessage(type, key, value);
  message.xids = xids;
  MutexLock lock(&tree_mu_);
  return LogAndInject(message, lsn);
}

Status FractalTree::Resolve(MessageType type, const XidStack& xids, std::string_view key) {
  Message message = MakeMessage(type, key, {});
  message.xids = xids;
  MutexLock lock(&tree_mu_);
  return Inject(message);
}

Status FractalTree::Replay(Message message, Lsn lsn) {
  MutexLock lock(&tree_mu_);
  if (lsn <= checkpoint_lsn_) return Status::OK();
  return Inject(message);
}

Status FractalTree::Optimize() {
  MutexLock lock(&tree_mu_);
  FERN_RETURN_IF_ERROR(Inject(MakeMessage(MessageType::kOptimize, {}, {})));
  PinnedPair root;
  FERN_RETURN_IF_ERROR(PinNode(root_, Cachetable::Lock::kWrite, &root));
  FERN_RETURN_IF_ERROR(FlushAll(&root));
  root.Unpin();
  return FixRoot();
}

bool FractalTree::NeedsSplit(const Node& node) const {
  if (node.is_leaf()) return node.basements.size() > 1 && node.leaf_bytes() > config_.node_bytes;
  return node.children.size() > config_.fanout;
}

bool FractalTree::NeedsMerge(const Node& node) const {
  if (node.is_leaf()) return node.leaf_bytes() < config_.node_bytes / 4;
  return node.children.size() < std::max<size_t>(2, config_.fanout / 4);
}

Status FractalTree::Inject(Message message) {
  message.msn = ++max_msn_;
  PinnedPair pin;
  FERN_RETURN_IF_ERROR(PinNode(root_, Cachetable::Lock::kWrite, &pin));
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
    FERN_RETURN_IF_ERROR(FlushWhileGorged(&pin));
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
          pin = std::move(child);
          node = c;
          ++depth;
          stats_.promotions++;
          continue;
        }
      }
      node->buffers[i].Append(message, cmp);
      node->set_max_msn(message.msn);
      pin.MarkDirty();
      stats_.injected_at_depth[std::min(depth, kStatsMaxDepth - 1)]++;
      break;
    }
    FERN_RETURN_IF_ERROR(FlushWhileGorged(&pin));
  }
  pin.Unpin();
  return FixRoot();
}

Status FractalTree::ApplyToLeaf(PinnedPair* pin, const Message& message) {
  Node* leaf = pin->as<Node>();
  ApplyContext ctx = MakeApplyContext();
  if (IsBroadcast(message.type)) {
    FERN_RETURN_IF_ERROR(LoadAllBasements(pin));
    for (LeafPartition& part : leaf->basements) {
      part.rows->Apply(message, ctx);
      part.on_disk = false;
    }
  } else {
    size_t i = leaf->PartitionIndex(message.key, *config_.comparator);
    FERN_RETURN_IF_ERROR(LoadBasement(pin, i));
    leaf->basements[i].rows->Apply(message, ctx);
    leaf->basements[i].on_disk = false;
  }
  leaf->set_max_msn(message.msn);
  RebalanceBasements(leaf);
  pin->MarkDirty();
  return Status::OK();
}

void FractalTree::RebalanceBasements(Node* leaf) {
  const size_t limit = config_.basement_bytes;
  for (size_t i = 0; i < leaf->basements.size(); ++i) {
    Basement* rows = leaf->basements[i].rows.get();
    if (rows == nullptr) continue;
    // Split an oversized basement at half its bytes.
    while (rows->serialized_bytes() > limit && rows->count() > 1) {
      size_t half = rows->serialized_bytes() / 2;
      size_t at = 0;
      size_t acc = 0;
      while (at + 1 < rows->count() && acc < half) acc += rows->entry(at++).encoded_size();
      if (at == 0) at = 1;
      LeafPartition right;
      right.rows = std::make_unique<Basement>();
      std::string pivot(rows->key(at));
      rows->MoveSuffixTo(at, right.rows.get());
      leaf->basements[i].on_disk = false;
      leaf->basements.insert(leaf->basements.begin() + static_cast<long>(i) + 1, std::move(right));
      leaf->pivots.insert(leaf->pivots.begin() + static_cast<long>(i), std::move(pivot));
      stats_.basement_splits++;
      rows = leaf->basements[i].rows.get();
    }
  }
  // Merge neighbours that together fill less than half a basement.
  for (size_t i = 0; i + 1 < leaf->basements.size();) {
    LeafPartition& left = leaf->basements[i];
    LeafPartition& right = leaf->basements[i + 1];
    if (left.rows != nullptr && right.rows != nullptr &&
        left.rows->serialized_bytes() + right.rows->serialized_bytes() < limit / 2) {
      left.rows->AppendAll(right.rows.get());
      left.on_disk = false;
      leaf->basements.erase(leaf->basements.begin() + static_cast<long>(i) + 1);
      leaf->pivots.erase(leaf->pivots.begin() + static_cast<long>(i));
      stats_.basement_merges++;
    } else {
      ++i;
    }
  }
}

Status FractalTree::FlushWhileGorged(PinnedPair* pin) {
  Node* node = pin->as<Node>();
  while (!node->is_leaf() && node->buffered_bytes() > config_.node_bytes) {
    size_t heaviest = 0;
    for (size_t i = 1; i < node->buffers.size(); ++i) {
      if (node->buffers[i].bytes() > node->buffers[heaviest].bytes()) heaviest = i;
    }
    FERN_RETURN_IF_ERROR(FlushChild(pin, heaviest));
  }
  return Status::OK();
}

Status FractalTree::FlushChild(PinnedPair* parent, size_t index) {
  Node* p = parent->as<Node>();
  PinnedPair child;
  FERN_RETURN_IF_ERROR(PinNode(p->children[index], Cachetable::Lock::kWrite, &child));
  FERN_RETURN_IF_ERROR(MoveBufferDown(p, index, &child));
  parent->MarkDirty();
  if (!child.as<Node>()->is_leaf()) FERN_RETURN_IF_ERROR(FlushWhileGorged(&child));
  return Restructure(parent, index, &child);
}

Status FractalTree::MoveBufferDown(Node* parent, size_t index, PinnedPair* child_pin) {
  MessageBuffer moving;
  moving.Swap(parent->buffers[index]);
  if (moving.empty()) return Status::OK();
  Node* child = child_pin->as<Node>();
  const Comparator& cmp = *config_.comparator;
  stats_.flushes++;
  stats_.messages_flushed += moving.count();
  if (child->is_leaf()) {
    FERN_RETURN_IF_ERROR(LoadAllBasements(child_pin));
    ApplyContext ctx = MakeApplyContext();
    moving.ForEach([&](const Message& m) {
      if (IsBroadcast(m.type)) {
        for (LeafPartition& part : child->basements) {
          part.rows->Apply(m, ctx);
          part.on_disk = false;
        }
      } else {
        LeafPartition& part = child->basements[child->PartitionIndex(m.key, cmp)];
        part.rows->Apply(m, ctx);
        part.on_disk = false;
      }
    });
    RebalanceBasements(child);
  } else {
    moving.ForEach([&](const Message& m) {
      if (IsBroadcast(m.type)) {
        for (MessageBuffer& buffer : child->buffers) buffer.Append(m, cmp);
      } else {
        child->buffers[child->PartitionIndex(m.key, cmp)].Append(m, cmp);
      }
    });
  }
  child->set_max_msn(moving.max_msn());
  child_pin->MarkDirty();
  child_pin->UpdateSize();
  return Status::OK();
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
  right->pivots.assign(std::make_move_iterator(child->pivots.begin() + static_cast<long>(at)),
                       std::make_move_iterator(child->pivots.end()));
  child->pivots.resize(at - 1);
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
  parent->pivots.insert(parent->pivots.begin() + static_cast<long>(index), std::move(split_key));
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
    if (left->leaf_bytes() + right->leaf_bytes() > config_.node_bytes * 3 / 4) return Status::OK();
    left->pivots.push_back(parent->pivots[left_index]);
    for (std::string& pivot : right->pivots) left->pivots.push_back(std::move(pivot));
    for (LeafPartition& part : right->basements) {
      left->basements.push_back(std::move(part));
      left->basements.back().on_disk = false;
    }
    RebalanceBasements(left);
    stats_.leaf_merges++;
  } else {
    if (left->children.size() + right->children.size() > config_.fanout) return Status::OK();
    left->pivots.push_back(parent->pivots[left_index]);
    for (std::string& pivot : right->pivots) left->pivots.push_back(std::move(pivot));
    left->children.insert(left->children.end(), right->children.begin(), right->children.end());
    for (MessageBuffer& buffer : right->buffers) left->buffers.push_back(std::move(buffer));
    stats_.internal_merges++;
  }
  left->set_max_msn(right->max_msn());
  BlockNum right_block = right->block();
  parent->children.erase(parent->children.begin() + static_cast<long>(left_index) + 1);
  parent->buffers.erase(parent->buffers.begin() + static_cast<long>(left_index) + 1);
  parent->pivots.erase(parent->pivots.begin() + static_cast<long>(left_index));
  left_pin->MarkDirty();
  left_pin->UpdateSize();
  parent_pin->MarkDirty();
  cache_->Remove(right_pin);
  file_->FreeBlock(right_block);
  return Status::OK();
}

Status FractalTree::FixRoot() {
  for (;;) {
    PinnedPair pin;
    FERN_RETURN_IF_ERROR(PinNode(root_, Cachetable::Lock::kWrite, &pin));
    Node* root = pin.as<Node>();
    if (NeedsSplit(*root)) {
      BlockNum new_root_block = NewBlockNum();
      auto new_root = std::make_unique<Node>(new_root_block, root->height() + 1);
      new_root->set_max_msn(root->max_msn());
      new_root->children.push_back(root_);
      new_root->buffers.emplace_back();
      PinnedPair new_pin;
      cache_->PinNew(file_id_, new_root_block, std::move(new_root), &new_pin);
      FERN_RETURN_IF_ERROR(SplitChild(new_pin.as<Node>(), 0, &pin));
      new_pin.UpdateSize();
      root_ = new_root_block;
      stats_.root_splits++;
      continue;
    }
    if (!root->is_leaf() && root->children.size() == 1) {
      // A root with one child adds a level for nothing: its child becomes the root.
      PinnedPair child;
      FERN_RETURN_IF_ERROR(PinNode(root->children[0], Cachetable::Lock::kWrite, &child));
      FERN_RETURN_IF_ERROR(MoveBufferDown(root, 0, &child));
      BlockNum old_root = root_;
      root_ = root->children[0];
      cache_->Remove(&pin);
      file_->FreeBlock(old_root);
      continue;
    }
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
