// The read path of FractalTree: point reads and basement batches for cursors. Reads hold
// read pins from the root to the leaf and apply the pending ancestor messages to a private
// copy of what they read, so they never modify the tree.
#include <algorithm>
#include <optional>

#include "ft/tree.h"
#include "util/status_macros.h"

namespace fern {

namespace {

const ReadView kCommittedView{};

void SortByMsn(std::vector<Message>* messages) {
  std::sort(messages->begin(), messages->end(),
            [](const Message& a, const Message& b) { return a.msn < b.msn; });
}

// Index of the partition to descend into for a batch read.
size_t SelectPartition(const Node& node, FractalTree::Locate where, std::string_view key,
                       const Comparator& cmp) {
  switch (where) {
    case FractalTree::Locate::kFirst:
      return 0;
    case FractalTree::Locate::kLast:
      return node.partition_count() - 1;
    case FractalTree::Locate::kContaining:
      return node.PartitionIndex(key, cmp);
    case FractalTree::Locate::kBefore: {
      auto it = std::lower_bound(node.pivots.begin(), node.pivots.end(), key,
                                 [&cmp](const std::string& pivot, std::string_view k) {
                                   return cmp.Compare(pivot, k) < 0;
                                 });
      return static_cast<size_t>(it - node.pivots.begin());
    }
  }
  return 0;
}

}  // namespace

Status FractalTree::Get(std::string_view key, std::string* value, const ReadView* view) {
  ReaderMutexLock lock(&tree_mu_);
  return GetLocked(key, value, view != nullptr ? *view : kCommittedView);
}

Status FractalTree::GetLocked(std::string_view key, std::string* value, const ReadView& view) {
  const Comparator& cmp = *config_.comparator;
  std::vector<PinnedPair> path;
  std::vector<Message> pending;
  PinnedPair pin;
  FERN_RETURN_IF_ERROR(PinNode(root_, Cachetable::Lock::kRead, &pin));
  while (!pin.as<Node>()->is_leaf()) {
    Node* node = pin.as<Node>();
    size_t i = node->PartitionIndex(key, cmp);
    auto collect = [&pending](const Message& m) { pending.push_back(m); };
    node->buffers[i].ForEachWithKey(key, cmp, collect);
    node->buffers[i].ForEachBroadcast(collect);
    BlockNum child = node->children[i];
    path.push_back(std::move(pin));
    FERN_RETURN_IF_ERROR(PinNode(child, Cachetable::Lock::kRead, &pin));
  }
  Node* leaf = pin.as<Node>();
  size_t b = leaf->PartitionIndex(key, cmp);
  FERN_RETURN_IF_ERROR(LoadBasement(&pin, b));
  const Basement& rows = *leaf->basements[b].rows;
  const Msn applied = rows.max_msn();
  pending.erase(std::remove_if(pending.begin(), pending.end(),
                               [applied](const Message& m) { return m.msn <= applied; }),
                pending.end());

  size_t index;
  bool found = rows.Find(key, cmp, &index);
  std::string_view visible;
  if (pending.empty()) {
    if (found && view.Read(rows.entry(index), &visible)) {
      value->assign(visible);
      return Status::OK();
    }
    return Status::NotFound();
  }
  // Apply the pending messages, oldest first, to a one-row copy of the basement.
  Basement scratch;
  if (found) scratch.AppendEncoded(rows.entry(index).encoded());
  scratch.set_max_msn(applied);
  SortByMsn(&pending);
  ApplyContext ctx = MakeApplyContext();
  for (const Message& m : pending) scratch.Apply(m, ctx);
  if (scratch.Find(key, cmp, &index) && view.Read(scratch.entry(index), &visible)) {
    value->assign(visible);
    return Status::OK();
  }
  return Status::NotFound();
}

Status FractalTree::ReadBatch(Locate where, std::string_view key, RowBatch* batch,
                              const ReadView* view_or_null) {
  const ReadView& view = view_or_null != nullptr ? *view_or_null : kCommittedView;
  ReaderMutexLock lock(&tree_mu_);
  const Comparator& cmp = *config_.comparator;
  batch->Clear();
  std::optional<std::string> lower;
  std::optional<std::string> upper;
  std::vector<PinnedPair> path;
  std::vector<const MessageBuffer*> buffers;
  PinnedPair pin;
  FERN_RETURN_IF_ERROR(PinNode(root_, Cachetable::Lock::kRead, &pin));
  for (;;) {
    Node* node = pin.as<Node>();
    size_t i = SelectPartition(*node, where, key, cmp);
    if (i > 0) lower = node->pivots[i - 1];
    if (i + 1 < node->partition_count()) upper = node->pivots[i];
    if (node->is_leaf()) break;
    buffers.push_back(&node->buffers[i]);
    BlockNum child = node->children[i];
    path.push_back(std::move(pin));
    FERN_RETURN_IF_ERROR(PinNode(child, Cachetable::Lock::kRead, &pin));
  }
  Node* leaf = pin.as<Node>();
  size_t b = SelectPartition(*leaf, where, key, cmp);
  FERN_RETURN_IF_ERROR(LoadBasement(&pin, b));
  const Basement& rows = *leaf->basements[b].rows;
  batch->has_lower = lower.has_value();
  batch->has_upper = upper.has_value();
  if (lower) batch->lower = *lower;
  if (upper) batch->upper = *upper;

  const Msn applied = rows.max_msn();
  std::vector<Message> pending;
  std::string_view lower_view = lower ? std::string_view(*lower) : std::string_view();
  std::string_view upper_view = upper ? std::string_view(*upper) : std::string_view();
  auto collect = [&pending, applied](const Message& m) {
    if (m.msn > applied) pending.push_back(m);
  };
  for (const MessageBuffer* buffer : buffers) {
    buffer->ForEachInRange(lower ? &lower_view : nullptr, upper ? &upper_view : nullptr, cmp,
                           collect);
    buffer->ForEachBroadcast(collect);
  }

  const Basement* source = &rows;
  Basement scratch;
  if (!pending.empty()) {
    scratch = rows;
    SortByMsn(&pending);
    ApplyContext ctx = MakeApplyContext();
    for (const Message& m : pending) scratch.Apply(m, ctx);
    source = &scratch;
  }
  std::string_view visible;
  for (size_t i = 0; i < source->count(); ++i) {
    if (view.Read(source->entry(i), &visible)) {
      batch->Add(source->key(i), visible);
    }
  }
  return Status::OK();
}

}  // namespace fern
