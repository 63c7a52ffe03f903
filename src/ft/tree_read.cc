// The read path of FractalTree: point reads and row batches for cursors.
//
// Reads hold read pins from the root to the leaf and never modify the tree. The messages
// pending above a basement (newer than its max MSN) are merged with its rows on the fly: a
// row without pending messages is read where it lies; a key with pending messages is
// rebuilt in a one-row scratch basement by Basement::Apply, so reads see exactly what a
// flush would produce. A cursor batch reads only the slice of the basement it returns, and
// only the messages inside that slice's key range.
#include <algorithm>
#include <cassert>
#include <span>

#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "ft/basement_admission.h"
#include "ft/tree.h"
#include "util/status_macros.h"
#include "util/thread_cache.h"
#include "util/thread_pool.h"

namespace fern {

namespace {

// The basement a transient read decodes into, kept per thread (ThreadCached) for the next
// one.
struct TransientCopy {
  std::unique_ptr<Basement> rows;
};

// Inline capacity for per-level state of one descent: trees taller than this still work
// (the vectors spill to the heap), they are just never seen in practice.
constexpr size_t kTypicalDepth = 8;

using BufferPath = absl::InlinedVector<const MessageBuffer*, kTypicalDepth>;

const ReadView kCommittedView{};

// What `view` sees in a leaf entry. A reader outside any transaction that sees every
// committed version (the common case) sees the newest committed version unless it is a
// delete: ReadVisible's answer, without its std::function call per row.
bool VisibleValue(const ReadView& view, const LeafEntryView& entry, StoredValue* value) {
  if (view.reader.empty() && !view.is_visible && !view.dirty && view.newest_hidden == nullptr) {
    return entry.LatestCommitted(value);
  }
  return view.Read(entry, value);
}

bool ByMsn(const Message& a, const Message& b) { return a.msn < b.msn; }

// Sets *value to `stored`'s value, reading it from `values` if out of line; nothing when
// `value` is null (the caller asks only whether the row is there). REQUIRES: the leaf the
// reference came from is pinned (its value block cannot be freed meanwhile).
Status ResolveValue(const ValueStore& values, const StoredValue& stored, std::string* value) {
  if (value == nullptr) return Status::OK();
  if (!stored.out_of_line) {
    value->assign(stored.bytes);
    return Status::OK();
  }
  return values.Read(stored.bytes, value);
}

// The most bytes of values stored out of line one row batch reads from their blocks (its
// first row's whatever their size): a basement of references holds hundreds of big rows.
constexpr uint64_t kMaxBatchOutOfLineBytes = uint64_t{4} << 20;

// The most bytes a reader of `entry` may read from a value block: its largest out-of-line
// version's.
uint64_t OutOfLineBytes(const LeafEntryView& entry) {
  if (!entry.has_out_of_line()) return 0;
  uint64_t most = 0;
  entry.ForEachVersion([&most](const LeafEntryView::Version& v, bool) {
    ValueRef ref;
    if (v.out_of_line && ValueRef::Decode(v.value, &ref)) most = std::max(most, ref.length);
  });
  return most;
}

// How many of rows [begin, end), counted from the front (`forward`) or the back, a batch
// takes so that what it reads from value blocks stays within kMaxBatchOutOfLineBytes; at
// least one.
size_t RowsWithinValueBudget(const Basement& rows, size_t begin, size_t end, bool forward) {
  if (!rows.may_hold_out_of_line()) return end - begin;
  uint64_t bytes = 0;
  for (size_t n = 0; n < end - begin; ++n) {
    bytes += OutOfLineBytes(rows.entry(forward ? begin + n : end - 1 - n));
    if (n > 0 && bytes > kMaxBatchOutOfLineBytes) return n;
  }
  return end - begin;
}

// Adds a row to *batch, its value read from `values` if out of line (under the same
// REQUIRES as ResolveValue).
Status AddRow(const ValueStore& values, std::string_view key, const StoredValue& stored,
              RowBatch* batch) {
  if (!stored.out_of_line) {
    batch->Add(key, stored.bytes);
    return Status::OK();
  }
  std::string value;
  FERN_RETURN_IF_ERROR(values.Read(stored.bytes, &value));
  batch->Add(key, value);
  return Status::OK();
}

// Whether `newest`, the newest message for a key, settles what `view` sees there whatever
// came before: an autocommitted (or committed in place) insert or delete becomes the newest
// committed version, which a reader outside any transaction sees when its view accepts the
// writer (an unstamped one every view accepts; a stamped one, written while snapshots were
// live, the views taken after it committed), so for it the key holds the message's value, or
// nothing. Saves rebuilding the row in a scratch basement, the common case after
// overwrites, and under a long-lived snapshot, where that row may hold a version per
// buffered overwrite.
bool SettledBy(const Message& newest, const ReadView& view) {
  return view.reader.empty() && !view.dirty && newest.xids.empty() &&
         (newest.type == MessageType::kInsert || newest.type == MessageType::kDelete) &&
         (newest.committed_by == kNoTxn || !view.is_visible ||
          view.is_visible(newest.committed_by));
}

// Counts a row a read rebuilt from buffered messages, and the committed versions it kept.
void NoteRebuiltRow(TreeStats* stats, const Basement& row) {
  stats->rows_rebuilt_for_read.fetch_add(1, std::memory_order_relaxed);
  if (row.count() != 1) return;
  const uint64_t versions = row.entry(0).committed_count();
  uint64_t largest = stats->largest_rebuilt_row_versions.load(std::memory_order_relaxed);
  while (versions > largest && !stats->largest_rebuilt_row_versions.compare_exchange_weak(
                                   largest, versions, std::memory_order_relaxed)) {
  }
}

// The most basements one WarmLeaf task loads: ~0.5 ms of decoding, under read pins that
// writers of the leaf wait behind.
constexpr size_t kWarmBasements = 32;

// How long a stream-ahead task waits for its scan to take a copy from a full queue before
// it ends (a later batch of the scan starts another).
constexpr absl::Duration kStreamAheadIdle = absl::Milliseconds(5);

// The largest transient basement (BasementForRead) a thread keeps between reads.
constexpr size_t kMaxTransientBasementBytes = size_t{256} << 10;

// A miss on a basement of k default sizes takes k units of the admission window (the Env
// sizes the window in default-sized basements).
const size_t kAdmissionUnitBytes = TableOptions().basement_bytes;

// Stamps a basement as just read, for partial eviction (LeafPartition::last_read). The
// clock is the tree's count of basement fetches: it moves only when memory is being asked
// for, so most reads find the stamp current and write nothing.
void NoteRead(const TreeStats& stats, LeafPartition* part) {
  const uint64_t now = stats.basements_fetched.load(std::memory_order_relaxed);
  if (part->last_read.load(std::memory_order_relaxed) != now) {
    part->last_read.store(now, std::memory_order_relaxed);
  }
}

// Index of the partition to descend into for a batch read.
size_t SelectPartition(const Node& node, FractalTree::Locate where, std::string_view key,
                       const Comparator& cmp) {
  switch (where) {
    case FractalTree::Locate::kFirst:
      return 0;
    case FractalTree::Locate::kLast:
      return node.partition_count() - 1;
    case FractalTree::Locate::kAtOrAfter:
    case FractalTree::Locate::kAtOrBefore:
      return node.PartitionIndex(key, cmp);
    case FractalTree::Locate::kBefore: {
      // The partition holding the keys just below `key`: the first whose upper pivot is
      // >= key.
      return node.pivots.LowerBound(key, cmp);
    }
  }
  return 0;
}

// Applies to `row` (a scratch basement holding at most the row of one key) the keyed
// messages `keyed` for that key and the broadcasts, all in MSN order, merged by MSN.
void ApplyMerged(std::span<const Message* const> keyed, std::span<const Message> broadcasts,
                 const ApplyContext& ctx, Basement* row) {
  size_t k = 0;
  size_t b = 0;
  while (k < keyed.size() || b < broadcasts.size()) {
    if (b == broadcasts.size() || (k < keyed.size() && keyed[k]->msn < broadcasts[b].msn)) {
      row->Apply(*keyed[k++], ctx);
    } else {
      row->Apply(broadcasts[b++], ctx);
    }
  }
}

}  // namespace

void FractalTree::ReadPath::Clear() {
  leaf_pin = nullptr;
  indices.clear();
  nodes.clear();
  // Unpin leaf first: any order is allowed, but this lets writers waiting below go first.
  while (!pins.empty()) pins.pop_back();
}

Status FractalTree::DescendForRead(absl::FunctionRef<size_t(const Node&)> select,
                                   PinnedPair* held_root, ReadPath* path) {
  for (int attempt = 0;; ++attempt) {
    path->Clear();
    Node* node;
    if (held_root != nullptr) {
      node = held_root->as<Node>();
    } else {
      PinnedPair root;
      FERN_RETURN_IF_ERROR(
          PinNode(root_.load(std::memory_order_acquire), Cachetable::Lock::kRead, &root));
      node = root.as<Node>();
      path->pins.push_back(std::move(root));
    }
    BlockNum busy = -1;
    for (;;) {
      const size_t i = select(*node);
      path->nodes.push_back(node);
      path->indices.push_back(i);
      if (node->is_leaf()) {
        path->leaf_pin = path->pins.empty() ? held_root : &path->pins.back();
        return Status::OK();
      }
      PinnedPair child;
      const BlockNum child_block = node->children[i];
      if (held_root != nullptr) {
        // A writer holding the root waits for the child: whoever holds it got there
        // before this writer took the root and needs nothing above it.
        FERN_RETURN_IF_ERROR(PinNode(child_block, Cachetable::Lock::kRead, &child));
      } else {
        Status s = cache_->TryPin(file_id_, child_block, Cachetable::Lock::kRead, &child);
        if (s.IsBusy()) {
          busy = child_block;
          break;
        }
        FERN_RETURN_IF_ERROR(s);
        FERN_RETURN_IF_ERROR(Thaw(&child));
      }
      node = child.as<Node>();
      path->pins.push_back(std::move(child));
    }
    // A writer holds `busy`. Let go of everything, wait until its lock is free (holding
    // nothing, so no writer waits behind this reader), and start again from the root. The
    // wait never reads the block from disk: if it left the cache meanwhile, just retry.
    path->Clear();
    stats_.read_restarts++;
    PinnedPair wait;
    static_cast<void>(cache_->PinIfCached(file_id_, busy, Cachetable::Lock::kRead, &wait));
  }
}

Status FractalTree::DescendToKey(std::string_view key, ReadPath* path) {
  const Comparator& cmp = *config_.comparator;
  return DescendForRead([&cmp, key](const Node& node) { return node.PartitionIndex(key, cmp); },
                        nullptr, path);
}

size_t FractalTree::StreamingScanBytes() const {
  return std::min(kMaxCachedScanBytes, cache_->budget() / 8);
}

bool FractalTree::BeginBackgroundTask() {
  MutexLock lock(&flush_mu_);
  if (closing_.load(std::memory_order_acquire)) return false;
  ++flushes_pending_;
  return true;
}

void FractalTree::EndBackgroundTask() {
  MutexLock lock(&flush_mu_);
  if (--flushes_pending_ == 0) flush_done_.SignalAll();
}

void FractalTree::ScheduleBackgroundRead(std::function<void()> work) {
  if (config_.readahead_pool == nullptr || readahead_in_flight_.exchange(true)) return;
  if (!BeginBackgroundTask()) {
    readahead_in_flight_.store(false);
    return;
  }
  config_.readahead_pool->Schedule([this, work = std::move(work)] {
    if (!closing_.load(std::memory_order_acquire)) work();
    readahead_in_flight_.store(false);
    EndBackgroundTask();
  });
}

void FractalTree::ReadAhead(std::string_view key) {
  ScheduleBackgroundRead([this, owned = std::string(key)] { BackgroundReadAhead(owned); });
}

void FractalTree::BackgroundReadAhead(const std::string& key) {
  ReadPath path;
  // Errors are left for the scan itself to meet and report.
  if (!DescendToKey(key, &path).ok()) {
    return;
  }
  const Node* leaf = path.nodes.back();
  const size_t first = path.indices.back();
  const size_t end = std::min(leaf->basements.size(), first + kReadaheadBasements);
  for (size_t i = first; i < end && !closing_.load(std::memory_order_relaxed); ++i) {
    if (!LoadBasement(path.leaf_pin, i).ok()) break;
    stats_.basements_read_ahead++;
  }
}

void FractalTree::StreamAheadFrom(const std::shared_ptr<StreamAhead>& ahead, std::string_view key) {
  if (config_.readahead_pool == nullptr || !ahead->WantsTask()) return;
  uint64_t generation;
  if (!ahead->BeginTask(&generation)) return;
  if (!BeginBackgroundTask()) {
    ahead->EndTask();
    return;
  }
  // The task shares `ahead`: the scan may end before it does.
  config_.readahead_pool->Schedule([this, ahead, generation, owned = std::string(key)]() mutable {
    BackgroundStreamAhead(ahead.get(), generation, std::move(owned));
    ahead->EndTask();
    EndBackgroundTask();
  });
}

std::shared_ptr<StreamAhead> FractalTree::NewStreamAhead() const {
  return std::make_shared<StreamAhead>(config_.comparator, cache_->outside_memory());
}

void FractalTree::BackgroundStreamAhead(StreamAhead* ahead, uint64_t generation, std::string key) {
  // A full queue is waited on without pins, briefly: a scan that stopped reading frees the
  // pool thread soon, and one that reads on finds the next basements already decoded.
  while (!closing_.load(std::memory_order_acquire) &&
         ahead->AwaitRoom(generation, kStreamAheadIdle) && ahead->NextKey(generation, &key)) {
    ReadPath path;
    // Errors are left for the scan itself to meet and report.
    if (!DescendToKey(key, &path).ok()) {
      return;
    }
    // The leaf's upper bound: where the next leaf starts.
    const std::string* leaf_upper = nullptr;
    for (size_t level = 0; level + 1 < path.nodes.size(); ++level) {
      leaf_upper = path.nodes[level]->PartitionUpper(path.indices[level], leaf_upper);
    }
    Node* leaf = path.nodes.back();
    const size_t first = path.indices.back();
    size_t i = first;
    for (; i < leaf->basements.size(); ++i) {
      if (closing_.load(std::memory_order_relaxed) || !ahead->HasRoom(generation)) break;
      LeafPartition& part = leaf->basements[i];
      {
        MutexLock lock(&leaf->load_mu);
        if (part.rows != nullptr) continue;  // the scan finds it cached
      }
      const std::string* upper = leaf->PartitionUpper(i, leaf_upper);
      // The extent and the frame id change only under a write pin.
      const uint64_t frame = part.frame_id;
      if (!ahead->Wants(generation, frame, upper, part.extent.raw_size)) continue;
      std::unique_ptr<Basement> rows = ahead->BeginDecode(frame);
      Status s = ReadBasement(leaf->block(), part.extent, &rows);
      if (!s.ok()) rows.reset();
      ahead->EndDecode(generation, frame, upper, std::move(rows));
      if (!s.ok()) return;
      stats_.basements_decoded_ahead++;
    }
    if (i < leaf->basements.size()) {
      // Stopped for room: go on from basement i once there is some.
      if (i > first) key = *leaf->PartitionLower(i, nullptr);
    } else if (leaf_upper == nullptr) {
      return;
    } else {
      key = *leaf_upper;
    }
  }
}

// While the cache is less than half full, a point read (a get or a seek) that had to load
// a basement has the leaf's other absent basements loaded too, on the readahead pool: the
// read found the leaf cold, its neighbours are likely cold as well, and there is room for
// them. A cold process reading at random over data that fits the cache otherwise decodes
// every basement on its own thread, one miss at a time (fernbench seekrandom, 1 GiB cache:
// loading basements was a third of it), while the second core idles. Shares ReadAhead's
// one task in flight per tree; once the cache is half full, misses load only what they
// read.
void FractalTree::WarmLeaf(std::string_view key) {
  ScheduleBackgroundRead([this, owned = std::string(key)] { BackgroundWarmLeaf(owned); });
}

void FractalTree::BackgroundWarmLeaf(const std::string& key) {
  ReadPath path;
  // Errors are left for the reads themselves to meet and report.
  if (!DescendToKey(key, &path).ok()) {
    return;
  }
  const Node* leaf = path.nodes.back();
  const size_t count = leaf->basements.size();
  const size_t start = path.indices.back();
  // Outward from the missed basement, at most kWarmBasements, while there is room.
  size_t loaded = 0;
  for (size_t step = 1; step < 2 * count && loaded < kWarmBasements; ++step) {
    if (closing_.load(std::memory_order_relaxed) || cache_->size_bytes() >= cache_->budget() / 2) {
      return;
    }
    const size_t distance = (step + 1) / 2;
    const bool after = step % 2 == 1;
    if (!after && distance > start) continue;
    const size_t i = after ? start + distance : start - distance;
    if (i >= count) continue;
    bool did;
    if (!LoadBasement(path.leaf_pin, i, &did).ok()) return;
    if (did) {
      ++loaded;
      stats_.basements_warmed++;
    }
  }
}

Status FractalTree::BasementForRead(PinnedPair* pin, size_t index, Caching caching,
                                    const Basement::Prefix* prefix, const Basement** rows,
                                    StreamAhead* ahead) {
  Node* node = pin->as<Node>();
  LeafPartition& part = node->basements[index];
  // The extent changes only under a write pin, so it can be read here without load_mu; the
  // cheap budget test comes first so that reads below the budget take no extra lock.
  const PartitionExtent extent = part.extent;
  const bool may_skip_cache = caching == Caching::kStream ||
                              (caching == Caching::kKeepIfHot && config_.admission != nullptr &&
                               cache_->size_bytes() + extent.raw_size > cache_->budget());
  if (may_skip_cache) {
    bool absent;
    std::shared_ptr<const LeafChunkIndex> chunk_index;
    {
      MutexLock lock(&node->load_mu);
      absent = part.rows == nullptr;
      if (absent && prefix != nullptr && caching == Caching::kKeepIfHot) {
        chunk_index = part.chunk_index;
      }
    }
    const bool transient =
        absent && (caching == Caching::kStream ||
                   !config_.admission->RecordMiss(
                       absl::HashOf(reinterpret_cast<uintptr_t>(this), node->block(), index),
                       std::max<size_t>(1, extent.raw_size / kAdmissionUnitBytes)));
    if (transient) {
      if (ahead != nullptr && caching == Caching::kStream) {
        // frame_id changes only under a write pin, like the extent.
        if (const Basement* decoded = ahead->Take(part.frame_id)) {
          stats_.basements_streamed++;
          stats_.basements_streamed_ahead++;
          *rows = decoded;
          return Status::OK();
        }
      }
      // The copy stays with the thread for its next transient read (its memory warm); one
      // that a large basement grew past kMaxTransientBasementBytes is freed here instead of
      // being reused.
      TransientCopy* slot = ThreadCached<TransientCopy>();
      if (slot == nullptr) {
        return Status::Aborted(
            "a transient read on a thread that is exiting (its per-thread state is gone)");
      }
      std::unique_ptr<Basement>& copy = slot->rows;
      if (copy != nullptr && copy->memory_bytes() > kMaxTransientBasementBytes) copy.reset();
      if (chunk_index != nullptr && chunk_index->frame_id() == part.frame_id) {
        FERN_RETURN_IF_ERROR(ReadChunks(node->block(), extent, *chunk_index, *prefix, &copy));
      } else if (prefix != nullptr && caching == Caching::kKeepIfHot) {
        // A point read or a seek: the frame's index is kept for the next one. (A scan,
        // kStream, decodes most of each basement and keeps none: it would only take memory.)
        // frame_id changes only under a write pin, like the extent.
        std::shared_ptr<const LeafChunkIndex> built;
        FERN_RETURN_IF_ERROR(
            ReadBasement(node->block(), extent, &copy, prefix, part.frame_id, &built));
        if (built != nullptr) KeepChunkIndex(pin, &part, std::move(built));
      } else {
        FERN_RETURN_IF_ERROR(ReadBasement(node->block(), extent, &copy, prefix));
      }
      (caching == Caching::kStream ? stats_.basements_streamed : stats_.basements_read_uncached)++;
      *rows = copy.get();
      return Status::OK();
    }
  }
  bool loaded;
  FERN_RETURN_IF_ERROR(LoadBasement(pin, index, &loaded));
  NoteRead(stats_, &part);
  *rows = part.rows.get();
  if (loaded && caching == Caching::kKeepIfHot && part.rows->count() > 0 &&
      cache_->size_bytes() < cache_->budget() / 2) {
    WarmLeaf(part.rows->key(0));
  }
  return Status::OK();
}

void FractalTree::KeepChunkIndex(PinnedPair* pin, LeafPartition* part,
                                 std::shared_ptr<const LeafChunkIndex> index) {
  Node* node = pin->as<Node>();
  const size_t bytes = index->memory_bytes();
  MutexLock lock(&node->load_mu);
  const std::shared_ptr<const LeafChunkIndex>& kept = part->chunk_index;
  if (kept != nullptr && kept->frame_id() == part->frame_id) return;  // another reader's
  if (kept == nullptr) {
    part->chunk_index = std::move(index);
    // Exactly what Node::MemoryBytes() gained; UpdateSize would walk every basement.
    pin->AddSize(bytes);
    return;
  }
  // One left from before the partition was last written (the write does not drop it: no
  // size refresh follows a write, and the node's size must keep counting what it holds).
  part->chunk_index = std::move(index);
  pin->UpdateSize();
}

Status FractalTree::Get(std::string_view key, std::string* value, const ReadView* view) {
  ReadPath path;
  FERN_RETURN_IF_ERROR(DescendToKey(key, &path));
  return GetOnPath(path, key, value, view != nullptr ? *view : kCommittedView);
}

Status FractalTree::GetOnPath(const ReadPath& path, std::string_view key, std::string* value,
                              const ReadView& view) {
  const Comparator& cmp = *config_.comparator;
  BufferPath buffers;
  for (size_t level = 0; level + 1 < path.nodes.size(); ++level) {
    buffers.push_back(&path.nodes[level]->buffers[path.indices[level]]);
  }
  // Find looks at no row above `key`.
  const Basement::Prefix prefix{key, 0};
  const Basement* basement;
  FERN_RETURN_IF_ERROR(
      BasementForRead(path.leaf_pin, path.indices.back(), Caching::kKeepIfHot, &prefix, &basement));
  const Basement& rows = *basement;
  const Msn applied = rows.max_msn();

  size_t index;
  bool found = rows.Find(key, cmp, &index);
  StoredValue visible;

  // The newest message for `key` often settles the read alone (SettledBy): a search per
  // buffer finds it without gathering the rest, which a key overwritten thousands of times
  // under a long-lived snapshot keeps buffered. Broadcasts are left to the general path.
  Message newest;
  bool any_newer = false;
  bool broadcasts = false;
  for (const MessageBuffer* buffer : buffers) {
    broadcasts |= buffer->broadcast_count() > 0;
    Message m;
    if (buffer->NewestWithKey(key, cmp, &m) && m.msn > applied &&
        (!any_newer || m.msn > newest.msn)) {
      newest = m;
      any_newer = true;
    }
  }
  if (!broadcasts && !any_newer) {
    if (found && VisibleValue(view, rows.entry(index), &visible)) {
      return ResolveValue(values_, visible, value);
    }
    return Status::NotFound();
  }
  if (!broadcasts && SettledBy(newest, view)) {
    if (newest.type == MessageType::kDelete) return Status::NotFound();
    if (value != nullptr) value->assign(newest.value);
    return Status::OK();
  }

  // The messages for `key` newer than the basement; views into the pinned buffers.
  absl::InlinedVector<Message, 4> pending;
  auto collect = [&pending, applied](const Message& m) {
    if (m.msn > applied) pending.push_back(m);
  };
  for (const MessageBuffer* buffer : buffers) {
    buffer->ForEachWithKey(key, cmp, collect);
    buffer->ForEachBroadcast(collect);
  }
  if (pending.empty()) {
    if (found && VisibleValue(view, rows.entry(index), &visible)) {
      return ResolveValue(values_, visible, value);
    }
    return Status::NotFound();
  }
  std::sort(pending.begin(), pending.end(), ByMsn);
  if (SettledBy(pending.back(), view)) {
    if (pending.back().type == MessageType::kDelete) return Status::NotFound();
    if (value != nullptr) value->assign(pending.back().value);
    return Status::OK();
  }
  // Apply the pending messages, oldest first, to a one-row copy of the basement.
  Basement scratch;
  if (found) scratch.AppendEncoded(rows.encoded_entry(index));
  scratch.set_max_msn(applied);
  // The context may take a picture of the live readers (the view's own snapshot is one of
  // them): only for a row that still holds more than kFullCollectionVersions committed
  // versions, where it keeps each message's apply from copying all of them.
  ApplyContext ctx = MakeApplyContext();
  if (!CanApplyUpdates()) {
    for (const Message& m : pending) {
      if (IsUpdate(m.type)) return UnappliedUpdates();
    }
  }
  for (const Message& m : pending) scratch.Apply(m, ctx);
  FERN_RETURN_IF_ERROR(ctx.error);
  NoteRebuiltRow(&stats_, scratch);
  if (scratch.count() == 1 && VisibleValue(view, scratch.entry(0), &visible)) {
    return ResolveValue(values_, visible, value);
  }
  return Status::NotFound();
}

Status FractalTree::ReadBatch(Locate where, std::string_view key, size_t max_rows, RowBatch* batch,
                              const ReadView* view_or_null, Caching caching, StreamAhead* ahead) {
  assert(max_rows >= 1);
  stats_.batches_read.fetch_add(1, std::memory_order_relaxed);
  const ReadView& view = view_or_null != nullptr ? *view_or_null : kCommittedView;
  const Comparator& cmp = *config_.comparator;
  batch->Clear();

  ReadPath path;
  FERN_RETURN_IF_ERROR(DescendForRead(
      [where, key, &cmp](const Node& node) { return SelectPartition(node, where, key, cmp); },
      nullptr, &path));
  // The basement's key range: pivots of the pinned nodes on the path (null: unbounded).
  const std::string* node_lower = nullptr;
  const std::string* node_upper = nullptr;
  BufferPath buffers;
  for (size_t level = 0; level < path.nodes.size(); ++level) {
    const Node* node = path.nodes[level];
    const size_t i = path.indices[level];
    node_lower = node->PartitionLower(i, node_lower);
    node_upper = node->PartitionUpper(i, node_upper);
    if (!node->is_leaf()) buffers.push_back(&node->buffers[i]);
  }
  // A forward batch from `key` looks at no row after the (max_rows + 1)-th above it: its
  // rows [begin, begin + max_rows] include at most one equal to `key`.
  const Basement::Prefix prefix{key, max_rows + 1};
  batch->basement_bytes = path.nodes.back()->basements[path.indices.back()].extent.raw_size;
  if (ahead != nullptr) {
    assert(where == Locate::kAtOrAfter);
    ahead->Advance(key);
  }
  const Basement* basement;
  FERN_RETURN_IF_ERROR(BasementForRead(path.leaf_pin, path.indices.back(), caching,
                                       where == Locate::kAtOrAfter ? &prefix : nullptr, &basement,
                                       ahead));
  const Basement& rows = *basement;
  const size_t count = rows.count();

  // The stored rows [begin, end) the batch covers, and its key range: from the request's
  // side to the first stored row left out on the other side (or the basement's bound), so
  // that the range holds exactly those stored rows plus whatever pending messages add.
  size_t begin;
  size_t end;
  std::string_view lower;
  std::string_view upper;
  bool has_lower;
  bool has_upper;
  const bool forward = where == Locate::kFirst || where == Locate::kAtOrAfter;
  if (forward) {
    begin = where == Locate::kFirst ? 0 : rows.LowerBound(key, cmp);
    end = begin + std::min(max_rows, count - begin);
    end = begin + RowsWithinValueBudget(rows, begin, end, /*forward=*/true);
    has_lower = where == Locate::kAtOrAfter || node_lower != nullptr;
    if (has_lower) lower = where == Locate::kAtOrAfter ? key : std::string_view(*node_lower);
    has_upper = end < count || node_upper != nullptr;
    if (has_upper) upper = end < count ? rows.key(end) : std::string_view(*node_upper);
  } else {
    if (where == Locate::kLast) {
      end = count;
    } else if (where == Locate::kBefore) {
      end = rows.LowerBound(key, cmp);
    } else {
      size_t at;
      end = rows.Find(key, cmp, &at) ? at + 1 : at;
    }
    begin = end - std::min(max_rows, end);
    begin = end - RowsWithinValueBudget(rows, begin, end, /*forward=*/false);
    has_lower = begin > 0 || node_lower != nullptr;
    if (has_lower) lower = begin > 0 ? rows.key(begin) : std::string_view(*node_lower);
    if (where == Locate::kBefore) {
      has_upper = true;
      upper = key;
    } else {
      has_upper = (where == Locate::kAtOrBefore && end < count) || node_upper != nullptr;
      if (has_upper) upper = end < count ? rows.key(end) : std::string_view(*node_upper);
    }
  }
  rows.Prefetch(begin, end);
  batch->has_lower = has_lower;
  batch->has_upper = has_upper;
  if (has_lower) batch->lower.assign(lower);
  if (has_upper) batch->upper.assign(upper);

  // The pending messages inside the range, newer than the basement.
  RowBatch::Scratch& scratch = batch->scratch();
  scratch.keyed.clear();
  scratch.broadcasts.clear();
  const Msn applied = rows.max_msn();
  for (const MessageBuffer* buffer : buffers) {
    buffer->ForEachInRange(has_lower ? &lower : nullptr, has_upper ? &upper : nullptr, cmp,
                           [&scratch, applied](const Message& m) {
                             if (m.msn > applied) scratch.keyed.push_back(m);
                           });
    buffer->ForEachBroadcast([&scratch, applied](const Message& m) {
      if (m.msn > applied) scratch.broadcasts.push_back(m);
    });
  }

  StoredValue visible;
  if (scratch.keyed.empty() && scratch.broadcasts.empty()) {
    for (size_t i = begin; i < end; ++i) {
      LeafEntryView entry = rows.entry(i);
      if (VisibleValue(view, entry, &visible)) {
        FERN_RETURN_IF_ERROR(AddRow(values_, entry.key(), visible, batch));
      }
    }
    return Status::OK();
  }

  // Each buffer lists its messages by (key, MSN); across levels they interleave.
  const std::vector<Message>& keyed = scratch.keyed;
  scratch.order.resize(keyed.size());
  for (size_t j = 0; j < keyed.size(); ++j) scratch.order[j] = static_cast<uint32_t>(j);
  if (buffers.size() > 1) {
    std::sort(scratch.order.begin(), scratch.order.end(), [&](uint32_t x, uint32_t y) {
      int c = cmp.Compare(keyed[x].key, keyed[y].key);
      return c < 0 || (c == 0 && keyed[x].msn < keyed[y].msn);
    });
  }
  std::sort(scratch.broadcasts.begin(), scratch.broadcasts.end(), ByMsn);
  const bool broadcasts = !scratch.broadcasts.empty();

  ApplyContext ctx = MakeApplyContext();         // as in Get: a picture only for a many-version row
  absl::InlinedVector<const Message*, 8> group;  // the keyed messages of one key, by MSN
  Basement& row = scratch.row;
  size_t i = begin;
  size_t j = 0;
  const size_t n = keyed.size();
  while (i < end || j < n) {
    // c < 0: the stored row comes first; c > 0: a key only messages name; 0: both.
    int c = i == end ? 1 : (j == n ? -1 : cmp.Compare(rows.key(i), keyed[scratch.order[j]].key));
    if (c < 0 && !broadcasts) {
      LeafEntryView entry = rows.entry(i++);
      if (VisibleValue(view, entry, &visible)) {
        FERN_RETURN_IF_ERROR(AddRow(values_, entry.key(), visible, batch));
      }
      continue;
    }
    group.clear();
    if (c >= 0) {
      const std::string_view group_key = keyed[scratch.order[j]].key;
      do {
        group.push_back(&keyed[scratch.order[j++]]);
      } while (j < n && cmp.Compare(keyed[scratch.order[j]].key, group_key) == 0);
      const Message& newest = *group.back();
      if (SettledBy(newest, view) && (!broadcasts || scratch.broadcasts.back().msn < newest.msn)) {
        if (c == 0) ++i;  // the stored row is superseded
        if (newest.type == MessageType::kInsert) batch->Add(newest.key, newest.value);
        continue;
      }
    }
    if (!CanApplyUpdates()) {
      for (const Message* m : group) {
        if (IsUpdate(m->type)) return UnappliedUpdates();
      }
      for (const Message& m : scratch.broadcasts) {
        if (IsUpdate(m.type)) return UnappliedUpdates();
      }
    }
    row.Clear();
    if (c <= 0) row.AppendEncoded(rows.encoded_entry(i++));
    row.set_max_msn(applied);
    ApplyMerged(group, scratch.broadcasts, ctx, &row);
    FERN_RETURN_IF_ERROR(ctx.error);
    NoteRebuiltRow(&stats_, row);
    if (row.count() == 1) {
      LeafEntryView entry = row.entry(0);
      if (VisibleValue(view, entry, &visible)) {
        FERN_RETURN_IF_ERROR(AddRow(values_, entry.key(), visible, batch));
      }
    }
  }
  // A full batch of stored rows that buffered deletes all hide: the reader walks on batch by
  // batch (a queue's head read with SeekToFirst: ~1 ms a seek behind 50,000 buffered
  // deletes), so the deletes are pushed down to the leaf, where they remove the rows.
  if (batch->empty() && end - begin >= kMinRowsForFlushToward) {
    size_t deletes = 0;
    for (const Message& m : keyed) deletes += m.type == MessageType::kDelete ? 1 : 0;
    if (deletes >= (end - begin) / 2) ScheduleFlushToward(rows.key(begin));
  }
  return Status::OK();
}

}  // namespace fern
