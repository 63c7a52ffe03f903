#include "ft/tree.h"

#include <algorithm>
#include <ctime>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "ft/basement_pool.h"
#include "ft/buffer_budget.h"
#include "ft/node_format.h"
#include "util/checksum.h"
#include "util/chunk_allocator.h"
#include "util/compression.h"
#include "util/status_macros.h"
#include "util/strings.h"
#include "util/thread_cache.h"
#include "util/thread_pool.h"

namespace fern {

namespace {

// The bytes ReadBasement and ReadChunks read from disk, kept per thread (ThreadCached).
struct FrameReadBuffer {
  std::string bytes;
};

// What one PartialEvict call frees at least (when the leaf holds that much): one basement
// at the former 64 KiB default.
constexpr size_t kPartialEvictBytes = size_t{64} << 10;

// The largest frame buffer LoadBasement keeps per thread between misses.
constexpr size_t kMaxFrameBufferBytes = size_t{256} << 10;

}  // namespace

FractalTree::FractalTree(std::unique_ptr<TreeFile> file, const TreeConfig& config,
                         Cachetable* cache)
    : file_(std::move(file)),
      config_(config),
      cache_(cache),
      compression_(config.compression),
      compression_level_(config.compression_level),
      values_(file_.get(), [this] {
        return std::pair(compression_.load(std::memory_order_relaxed),
                         compression_level_.load(std::memory_order_relaxed));
      }) {}

TreeConfig FractalTree::CurrentConfig() const {
  TreeConfig config = config_;
  config.compression = compression_.load(std::memory_order_relaxed);
  config.compression_level = compression_level_.load(std::memory_order_relaxed);
  return config;
}

void FractalTree::SetCompression(Compression codec, int level) {
  MutexLock lock(&checkpoint_safe_);
  compression_.store(codec, std::memory_order_relaxed);
  compression_level_.store(level, std::memory_order_relaxed);
  header_template_.compression = static_cast<uint8_t>(codec);
  header_template_.compression_level = level;
}

Lsn FractalTree::checkpoint_lsn() { return checkpoint_lsn_.load(std::memory_order_acquire); }

FractalTree::~FractalTree() {
  DrainFlushes();
  ForgetHeight1Nodes();
  if (open_in_cache_) {
    // Close() was not called (an error path): drop the pairs without writing, so no node
    // outlives the tree that owns its callbacks.
    cache_->CloseFile(file_id_, /*write_dirty=*/false).ok();
  }
}

std::string FractalTree::Where(BlockNum block) const {
  return StrCat(file_->path(), ": block ", block);
}

Status FractalTree::Create(const std::string& path, const TreeConfig& config, Cachetable* cache,
                           std::unique_ptr<FractalTree>* tree) {
  FileHeader header;
  header.format_version = kTreeFileFormatVersion;
  header.node_bytes = config.node_bytes;
  header.basement_bytes = config.basement_bytes;
  header.compression = static_cast<uint8_t>(config.compression);
  header.compression_level = config.compression_level;
  header.comparator_name = config.comparator->Name();
  header.created_unix_seconds = static_cast<uint64_t>(std::time(nullptr));
  std::unique_ptr<TreeFile> file;
  FERN_RETURN_IF_ERROR(TreeFile::Create(path, header, &file));

  std::unique_ptr<FractalTree> t(new FractalTree(std::move(file), config, cache));
  t->header_template_ = header;
  t->file_id_ = cache->OpenFile(t.get());
  t->values_.AttachCache(cache, t->file_id_);
  t->open_in_cache_ = true;
  {
    BlockNum root = t->NewBlockNum();
    auto leaf = std::make_unique<Node>(root, 0);
    leaf->basements.emplace_back();
    leaf->basements.back().rows = std::make_unique<Basement>();
    PinnedPair pin;
    cache->PinNew(t->file_id_, root, std::move(leaf), &pin);
    pin.Unpin();
    t->root_.store(root, std::memory_order_release);
  }
  FERN_RETURN_IF_ERROR(t->Checkpoint());
  *tree = std::move(t);
  return Status::OK();
}

Status FractalTree::Open(const std::string& path, const TreeConfig& config, Cachetable* cache,
                         std::unique_ptr<FractalTree>* tree) {
  std::unique_ptr<TreeFile> file;
  FERN_RETURN_IF_ERROR(TreeFile::Open(path, /*read_only=*/false, &file));
  FileHeader header = file->header();
  if (header.comparator_name != config.comparator->Name()) {
    return Status::InvalidArgument(StrCat(path, ": table was created with comparator \"",
                                          header.comparator_name, "\", opened with \"",
                                          config.comparator->Name(), "\""));
  }
  if (header.root < 0) return Status::Corruption(StrCat(path, ": header names no root block"));
  if (header.node_bytes < 4096 || header.basement_bytes < 512 ||
      header.basement_bytes > header.node_bytes) {
    return Status::Corruption(StrCat(path, ": implausible node size ", header.node_bytes,
                                     " / basement size ", header.basement_bytes));
  }
  TreeConfig effective = config;
  effective.node_bytes = header.node_bytes;
  effective.basement_bytes = header.basement_bytes;
  std::unique_ptr<FractalTree> t(new FractalTree(std::move(file), effective, cache));
  t->header_template_ = header;
  t->header_template_.compression = static_cast<uint8_t>(config.compression);
  t->header_template_.compression_level = config.compression_level;
  t->root_.store(header.root, std::memory_order_release);
  t->max_msn_.store(header.max_msn, std::memory_order_relaxed);
  t->checkpoint_lsn_.store(header.checkpoint_lsn, std::memory_order_release);
  t->file_id_ = cache->OpenFile(t.get());
  t->values_.AttachCache(cache, t->file_id_);
  t->open_in_cache_ = true;
  // Read the root now so a damaged file is reported at open, not at the first query.
  PinnedPair pin;
  FERN_RETURN_IF_ERROR(t->PinNode(header.root, Cachetable::Lock::kRead, &pin));
  t->CountHeight1Nodes(*pin.as<Node>());
  pin.Unpin();
  *tree = std::move(t);
  return Status::OK();
}

void FractalTree::ForgetHeight1Nodes() {
  if (config_.buffer_budget == nullptr) return;
  if (tree_counted_.exchange(false, std::memory_order_relaxed)) config_.buffer_budget->AddTree(-1);
  config_.buffer_budget->Replace(height1_counted_.exchange(0, std::memory_order_relaxed), 0);
}

Status FractalTree::Close(bool checkpoint) {
  if (!open_in_cache_) return Status::OK();
  DrainFlushes();
  // A closed tree (a dropped table's stays allocated) takes no share of the budget.
  ForgetHeight1Nodes();
  if (checkpoint) FERN_RETURN_IF_ERROR(Checkpoint());
  open_in_cache_ = false;
  FERN_RETURN_IF_ERROR(cache_->CloseFile(file_id_, /*write_dirty=*/false));
  // Nothing reads or writes the file once the cache has let it go; a dropped table's tree
  // stays allocated until the Env closes, and must not keep its file (and space) open.
  file_->CloseDescriptor();
  return Status::OK();
}

Status FractalTree::Checkpoint(TailCompaction compaction, bool drop_written) {
  // A sharp checkpoint that does not stall writers: under checkpoint_safe_ (briefly, with no
  // write, flush or split half done) the dirty nodes are marked checkpoint-pending and the
  // block table's image is taken; then the pending nodes are written while writers go on (a
  // writer that wants a pending dirty node clones it for the checkpoint writers,
  // tree_checkpoint_clone.cc), and the header is written last.
  //
  // Every write of this tree in the log is applied (a write logs and applies itself under
  // checkpoint_safe_ held shared),
  // and no commit or abort is half applied while resolutions are blocked, so the
  // checkpoint holds everything through the log's last LSN. The log must be durable that
  // far before a header says so, or a crash could keep this table's later writes while
  // losing earlier writes of other tables.
  if (write_log() != nullptr) write_log()->BlockResolutions();
  checkpoint_safe_.Lock();
  Lsn through = checkpoint_lsn_.load(std::memory_order_acquire);
  if (write_log() != nullptr) {
    through = std::max(through, write_log()->LastLsn());
    write_log()->UnblockResolutions();
  }
  if (loading_) {  // see BeginLoad
    checkpoint_safe_.Unlock();
    return Status::OK();
  }
  FileHeader header = header_template_;
  header.root = root_.load(std::memory_order_acquire);
  header.max_msn = max_msn_.load(std::memory_order_relaxed);
  header.checkpoint_lsn = through;
  if (write_log() != nullptr) header.next_txn_hint = write_log()->NextTxnIdHint();
  Status s = cache_->BeginCheckpoint(file_id_, [this] { return file_->BeginCheckpoint(); });
  checkpoint_safe_.Unlock();
  FERN_RETURN_IF_ERROR(s);

  if (write_log() != nullptr && through > 0) s = write_log()->SyncThrough(through);
  // Ended whatever happened: it waits for the clone writes, which must not outlive the
  // file's checkpoint (AbortCheckpoint below), and lets the next checkpoint begin.
  const Status cache_end = cache_->EndCheckpoint(file_id_, drop_written);
  if (s.ok()) s = cache_end;
  if (s.ok()) s = file_->EndCheckpoint(header, compaction);
  if (!s.ok()) {
    file_->AbortCheckpoint();
    return s;
  }
  // Checkpoints of one tree do not overlap (the Env runs them one at a time), so this is
  // the only writer of checkpoint_lsn_ while the tree is open.
  if (through > checkpoint_lsn_.load(std::memory_order_acquire)) {
    checkpoint_lsn_.store(through, std::memory_order_release);
  }
  return Status::OK();
}

BlockNum FractalTree::NewBlockNum() { return file_->AllocateBlockNum(); }

Status FractalTree::PinNode(BlockNum block, Cachetable::Lock lock, PinnedPair* pin) {
  FERN_RETURN_IF_ERROR(cache_->Pin(file_id_, block, lock, pin));
  return Thaw(pin);
}

Status FractalTree::Thaw(PinnedPair* pin) {
  // A block known only by number (a queued flush's) may have been freed and reused for a
  // value since.
  if (IsValueBlockPair(*pin->value())) {
    return Status::InvalidArgument(StrCat(Where(pin->block()), ": holds a value, not a node"));
  }
  Node* node = pin->as<Node>();
  if (!node->is_frozen.load(std::memory_order_acquire)) return Status::OK();
  MutexLock lock(&node->load_mu);
  if (node->frozen == nullptr) return Status::OK();  // another reader thawed it
  FERN_RETURN_IF_ERROR(ThawLocked(node));
  pin->UpdateSize();
  return Status::OK();
}

Status FractalTree::ThawLocked(Node* node) {
  const Node::FrozenBuffers& frozen = *node->frozen;
  const std::string where = Where(node->block());
  const chunk_memory::Scope in_chunks(ChunkMemoryNow());
  for (size_t i = 0; i < frozen.frames.size(); ++i) {
    MessageBuffer buffer;
    FERN_RETURN_IF_ERROR(DecodeBufferPartition(frozen.frames[i], frozen.extents[i],
                                               *config_.comparator, where, &buffer, &stats_));
    node->buffers[i].Swap(buffer);
  }
  node->Thawed();
  stats_.buffers_thawed++;
  return Status::OK();
}

bool FractalTree::CanApplyUpdates() const {
  return config_.update_function != nullptr && *config_.update_function;
}

Status FractalTree::UnappliedUpdates() const {
  return Status::InvalidArgument(
      StrCat(path(),
             ": holds Update or UpdateAll messages not yet applied; open the Env with "
             "Options::update_function to apply them (they are kept, not dropped)"));
}

ApplyContext FractalTree::MakeApplyContext() const {
  ApplyContext ctx;
  ctx.cmp = config_.comparator;
  ctx.update = config_.update_function;
  ctx.oldest_live_snapshot = write_log() != nullptr ? write_log()->OldestReferencedXid() : kNoTxn;
  ctx.live_readers_source = write_log();
  ctx.values = &values_;  // for reading: owns_values is false
  return ctx;
}

ApplyContext FractalTree::ApplyContextForLeaf() const {
  ApplyContext ctx = MakeApplyContext();
  ctx.owns_values = true;
  return ctx;
}

Status FractalTree::CheckApplied(const ApplyContext& ctx) {
  if (ctx.updates_of_damaged_rows > 0) {
    stats_.updates_of_damaged_rows.fetch_add(ctx.updates_of_damaged_rows,
                                             std::memory_order_relaxed);
  }
  if (ctx.update_results_too_big > 0) {
    stats_.update_results_too_big.fetch_add(ctx.update_results_too_big, std::memory_order_relaxed);
  }
  if (ctx.error.ok()) return Status::OK();
  if (write_log() != nullptr) write_log()->ApplyFailed(ctx.error);
  return ctx.error;
}

// ---- cachetable callbacks ---------------------------------------------------

Status FractalTree::FetchBlock(BlockNum block, std::unique_ptr<CacheValue>* value) {
  const std::string where = Where(block);
  uint64_t size;
  FERN_RETURN_IF_ERROR(file_->BlockSize(block, &size));
  std::string bytes;
  FERN_RETURN_IF_ERROR(
      file_->ReadBlockRange(block, 0, std::min<uint64_t>(size, kNodeHeaderProbeBytes), &bytes));
  if (IsValueBlock(bytes)) return values_.Fetch(block, value);
  NodeHeader header;
  size_t needed;
  FERN_RETURN_IF_ERROR(ParseNodeHeader(bytes, size, where, &header, &needed));
  if (needed > 0 && header.height == 0 && needed < size) {
    // A leaf header larger than the probe (many small basements): read just the header, so
    // that the basements stay on disk until a query asks for them.
    FERN_RETURN_IF_ERROR(file_->ReadBlockRange(block, 0, needed, &bytes));
    FERN_RETURN_IF_ERROR(ParseNodeHeader(bytes, size, where, &header, &needed));
  } else if (needed > 0 || (header.height > 0 && bytes.size() < size)) {
    // Internal nodes are read whole.
    FERN_RETURN_IF_ERROR(file_->ReadBlock(block, &bytes));
    FERN_RETURN_IF_ERROR(ParseNodeHeader(bytes, size, where, &header, &needed));
  }
  auto node = std::make_unique<Node>(block, static_cast<int>(header.height));
  node->set_max_msn(header.max_msn);
  node->pivots.Assign(std::move(header.pivots));
  const size_t n = header.extents.size();
  const Comparator& cmp = *config_.comparator;
  if (header.height > 0) {
    node->children = std::move(header.children);
    node->buffers.resize(n);
    const chunk_memory::Scope in_chunks(ChunkMemoryNow());
    for (size_t i = 0; i < n; ++i) {
      const PartitionExtent& e = header.extents[i];
      FERN_RETURN_IF_ERROR(DecodeBufferPartition(std::string_view(bytes).substr(e.offset, e.size),
                                                 e, cmp, where, &node->buffers[i], &stats_));
    }
  } else {
    node->basements.resize(n);
    for (size_t i = 0; i < n; ++i) {
      LeafPartition& part = node->basements[i];
      part.on_disk = true;
      part.extent = header.extents[i];
      part.frame_id = NewFrameId();
      // When the whole block was read anyway (small leaves), decode every basement now.
      if (bytes.size() == size) {
        const chunk_memory::Scope in_chunks(ChunkMemoryNow());
        const PartitionExtent& e = part.extent;
        FERN_RETURN_IF_ERROR(DecodeLeafPartition(std::string_view(bytes).substr(e.offset, e.size),
                                                 e, cmp, where, &part.rows, &stats_));
      }
    }
  }
  stats_.nodes_read++;
  if (!node->is_leaf()) stats_.internal_nodes_read++;
  *value = std::move(node);
  return Status::OK();
}

Status FractalTree::SerializeAndWrite(BlockNum block, Node* node,
                                      const std::function<Status(std::string_view)>& write) {
  // Only clean nodes are frozen, so this is a guard: never write empty stand-in buffers.
  if (node->frozen != nullptr) FERN_RETURN_IF_ERROR(ThawLocked(node));
  std::string bytes;
  std::vector<PartitionExtent> extents;
  ReadOldFrame read_old = [this, block](const PartitionExtent& e, std::string* frame) {
    return file_->ReadBlockRange(block, e.offset, e.size, frame);
  };
  FERN_RETURN_IF_ERROR(SerializeNode(*node, CurrentConfig(), read_old, &bytes, &extents, &stats_));
  FERN_RETURN_IF_ERROR(write(bytes));
  if (node->is_leaf()) {
    for (size_t i = 0; i < node->basements.size(); ++i) {
      node->basements[i].on_disk = true;
      node->basements[i].extent = extents[i];
      node->basements[i].frame_id = NewFrameId();
    }
  }
  stats_.nodes_written++;
  stats_.bytes_written += bytes.size();
  if (node->is_leaf()) stats_.leaf_bytes_written += bytes.size();
  return Status::OK();
}

Status FractalTree::WriteBlock(BlockNum block, CacheValue* value) {
  if (IsValueBlockPair(*value)) return Status::OK();  // written before it was referenced
  return SerializeAndWrite(block, static_cast<Node*>(value), [this, block](std::string_view bytes) {
    return file_->WriteBlock(block, bytes);
  });
}

Status FractalTree::WriteBlockForCheckpoint(BlockNum block, CacheValue* value) {
  if (IsValueBlockPair(*value)) return Status::OK();
  return SerializeAndWrite(block, static_cast<Node*>(value), [this, block](std::string_view bytes) {
    return file_->WriteBlockForCheckpoint(block, bytes);
  });
}

void FractalTree::CleanerRun(BlockNum block) {
  if (FlushHeaviestIfCached(block)) stats_.cleaner_flushes++;
}

void FractalTree::WrittenButKept(BlockNum block, CacheValue* value) {
  if (IsValueBlockPair(*value)) return;
  // Leaves shrink only by eviction; an internal node's buffers can go down a level.
  if (static_cast<Node*>(value)->is_leaf()) return;
  ScheduleFlushToShare(block);
}

void FractalTree::ScheduleFlushToShare(BlockNum block) {
  if (config_.flusher_pool == nullptr || kept_flush_in_flight_.exchange(true)) return;
  if (!BeginBackgroundTask()) {
    kept_flush_in_flight_.store(false);
    return;
  }
  config_.flusher_pool->Schedule([this, block] {
    // Down to the node's share in memory, not just by one buffer: twenty roots that grew in
    // step and were flushed a buffer at a time came back to the evictor 6,300 times in one
    // commit.
    bool over = true;
    for (size_t flushes = 0; over && flushes < config_.fanout; ++flushes) {
      if (!FlushHeaviestIfCached(block, &over)) break;
      stats_.kept_flushes++;
    }
    kept_flush_in_flight_.store(false);
    EndBackgroundTask();
  });
}

bool FractalTree::FlushHeaviestIfCached(BlockNum block, bool* still_over) {
  ReaderMutexLock safe(&checkpoint_safe_);
  if (closing_.load(std::memory_order_acquire)) return false;
  PinnedPair pin;
  // The block may have been evicted, or merged away and freed, since it was chosen: it is
  // worked on only if still cached.
  if (!cache_->PinIfCached(file_id_, block, Cachetable::Lock::kWrite, &pin).ok()) return false;
  if (!Thaw(&pin).ok()) return false;
  Node* node = pin.as<Node>();
  if (node->is_leaf() || node->buffered_bytes() == 0) return false;
  size_t heaviest = 0;
  for (size_t i = 1; i < node->buffers.size(); ++i) {
    if (node->buffers[i].bytes() > node->buffers[heaviest].bytes()) heaviest = i;
  }
  if (still_over != nullptr) {
    size_t memory = 0;
    for (size_t i = 0; i < node->buffers.size(); ++i) {
      if (i != heaviest) memory += node->buffers[i].memory_bytes();
    }
    *still_over = memory > GorgedAbove(*node);
  }
  // A failure here (an unreadable child) leaves the messages in place and is reported
  // again by the query or write that meets it; a background flush has no caller to tell.
  const bool is_root = block == root_.load(std::memory_order_acquire);
  if (FlushChild(&pin, heaviest, /*may_release=*/true).ok() && is_root && pin.pinned()) {
    FixRoot(&pin).ok();
  }
  return true;
}

bool FractalTree::FreezeBuffers(Node* node) {
  // Worth it only for buffers of some size; the root and other hot nodes never get here
  // (their clock counts stay high).
  if (node->is_frozen.load(std::memory_order_relaxed) || node->buffered_bytes() < kMinFreezeBytes) {
    return false;
  }
  const TreeConfig config = CurrentConfig();
  auto frozen = std::make_unique<Node::FrozenBuffers>();
  size_t frame_bytes = 0;
  for (const MessageBuffer& buffer : node->buffers) {
    std::string raw;
    buffer.Serialize(&raw);
    std::string frame;
    if (!CompressPartition(config.compression, config.compression_level, raw, &frame).ok()) {
      return false;
    }
    PartitionExtent extent;
    extent.size = static_cast<uint32_t>(frame.size());
    extent.raw_size = static_cast<uint32_t>(raw.size());
    extent.checksum = Checksum32(frame);
    frame_bytes += frame.size();
    stats_.raw_bytes_compressed += raw.size();
    frozen->frames.push_back(std::move(frame));
    frozen->extents.push_back(extent);
  }
  // Keep the buffers as they are unless compression saves at least a quarter.
  if (frame_bytes > node->buffered_bytes() * 3 / 4) return false;
  node->Freeze(std::move(frozen));
  stats_.buffers_frozen++;
  return true;
}

bool FractalTree::PartialEvict(BlockNum block, CacheValue* value, int clock_count,
                               size_t* freed_bytes) {
  if (IsValueBlockPair(*value)) return false;  // one value: evicted whole
  // Drops the least recently read clean basements, coldest first, until about
  // kPartialEvictBytes are freed or half of the loaded ones are gone: the sweep calls again, leaf
  // after leaf, while the cache is over budget, which approximates LRU over all basements. Dropping
  // every clean basement of a leaf at once also dropped the ones reads had just fetched:
  // fernbench's readrandom at 16 MiB (200,000 keys) fetched 34,000 basements for 100,000 gets that
  // way, 22,900 one basement per call. A byte quota rather than one basement keeps the number of
  // calls (each scans the leaf's basements) independent of the basement size: with 16 KiB
  // basements, one per call spent 20% of readrandom at 64 MiB in this scan and the accounting after
  // it.
  Node* node = static_cast<Node*>(value);
  if (!node->is_leaf()) {
    // Buffers beyond the node's share of this cache (a tree written with a bigger cache, or
    // before the cache filled) would otherwise stay, and nodes that do not fit would be
    // frozen and thawed again on every read that passes: a table written at 256 MiB and
    // read at 64 MiB spent most of its time compressing and decompressing buffers (21k
    // gets/s instead of ~150k). Flushed down, they fit.
    if (node->buffered_bytes() > GorgedAbove(*node)) ScheduleFlushToShare(block);
    return clock_count <= kFreezeClockCount && FreezeBuffers(node);
  }
  absl::InlinedVector<std::pair<uint64_t, LeafPartition*>, 64> candidates;
  for (LeafPartition& part : node->basements) {
    if (part.rows == nullptr || !part.on_disk) continue;
    candidates.emplace_back(part.last_read.load(std::memory_order_relaxed), &part);
  }
  if (candidates.empty()) return false;
  std::sort(candidates.begin(), candidates.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // At most half of what is loaded (but at least one), so that the basements read last
  // stay while colder ones go.
  const size_t limit = std::max<size_t>(1, candidates.size() / 2);
  size_t freed = 0;
  for (size_t i = 0; i < limit && freed < kPartialEvictBytes; ++i) {
    LeafPartition* part = candidates[i].second;
    freed += part->rows->memory_bytes();
    if (config_.basement_pool != nullptr) {
      config_.basement_pool->Recycle(std::move(part->rows));
    } else {
      part->rows.reset();
    }
  }
  *freed_bytes = freed;
  return true;
}

// ---- partial fetch -----------------------------------------------------------

// Under a read pin other readers may be loading other basements of the same node, so
// every look at `rows` (MemoryBytes, through UpdateSize, looks at all of them) happens under
// load_mu.

Status FractalTree::ReadBasement(BlockNum block, const PartitionExtent& extent,
                                 std::unique_ptr<Basement>* rows, const Basement::Prefix* prefix,
                                 uint64_t frame_id, std::shared_ptr<const LeafChunkIndex>* built) {
  // The compressed frame lives only until it is decoded: a buffer per thread spares a miss
  // an allocation and the zero-fill of a fresh one (malloc and free were ~13% of
  // readrandom at 64 MiB cache). One that grew past kMaxFrameBufferBytes is given back.
  std::string exiting_thread_frame;
  FrameReadBuffer* cached = ThreadCached<FrameReadBuffer>();
  std::string& frame = cached != nullptr ? cached->bytes : exiting_thread_frame;
  const Comparator& cmp = *config_.comparator;
  Status s = file_->ReadBlockRange(block, extent.offset, extent.size, &frame);
  if (s.ok()) s = DecodeLeafPartition(frame, extent, cmp, Where(block), rows, &stats_, prefix);
  // The decode verified the frame's checksum.
  if (s.ok() && built != nullptr && IsChunkedLeafFrame(frame)) {
    s = LeafChunkIndex::Build(frame, extent.raw_size, cmp, frame_id, built);
    if (!s.ok()) s = s.WithContext(StrCat(Where(block), ": basement at offset ", extent.offset));
  }
  if (frame.capacity() > kMaxFrameBufferBytes) std::string().swap(frame);
  return s;
}

Status FractalTree::ReadChunks(BlockNum block, const PartitionExtent& extent,
                               const LeafChunkIndex& index, const Basement::Prefix& prefix,
                               std::unique_ptr<Basement>* rows) {
  stats_.chunk_index_reads++;
  const Comparator& cmp = *config_.comparator;
  const LeafChunkIndex::Span span = index.SpanFor(prefix, cmp);
  std::string exiting_thread_chunks;
  FrameReadBuffer* cached = ThreadCached<FrameReadBuffer>();
  std::string& chunks = cached != nullptr ? cached->bytes : exiting_thread_chunks;
  Status s =
      file_->ReadBlockRange(block, extent.offset + span.begin, span.end - span.begin, &chunks);
  uint64_t decoded = 0;
  if (s.ok()) s = DecodeChunkedLeafPrefix(index, span, chunks, cmp, prefix, rows, &decoded);
  stats_.raw_bytes_decompressed += decoded;
  if (chunks.capacity() > kMaxFrameBufferBytes) std::string().swap(chunks);  // as ReadBasement
  if (!s.ok()) return s.WithContext(StrCat(Where(block), ": basement at offset ", extent.offset));
  return Status::OK();
}

Status FractalTree::LoadBasement(PinnedPair* pin, size_t index, bool* loaded, bool for_write) {
  if (loaded != nullptr) *loaded = false;
  Node* node = pin->as<Node>();
  LeafPartition& part = node->basements[index];
  PartitionExtent extent;
  {
    MutexLock lock(&node->load_mu);
    if (part.rows != nullptr) return Status::OK();
    extent = part.extent;  // changes only under a write pin
  }
  // Read and decode without load_mu, so that readers (a cursor and its readahead) load
  // different basements of one leaf at once; if two load the same one, the first installs
  // it and the other's copy is dropped.
  std::unique_ptr<Basement> rows;
  if (config_.basement_pool != nullptr) rows = config_.basement_pool->Take();
  {
    const chunk_memory::Scope in_chunks(ChunkMemoryNow() ||
                                        (config_.chunk_memory_for_basement_loads && !for_write));
    FERN_RETURN_IF_ERROR(ReadBasement(node->block(), extent, &rows));
  }
  size_t added = 0;
  {
    MutexLock lock(&node->load_mu);
    if (part.rows == nullptr) {
      added = rows->memory_bytes();
      part.rows = std::move(rows);
    }
  }
  if (rows != nullptr) {  // another reader installed it first
    if (config_.basement_pool != nullptr) config_.basement_pool->Recycle(std::move(rows));
    return Status::OK();
  }
  stats_.basements_fetched++;
  if (loaded != nullptr) *loaded = true;
  // Exactly what Node::MemoryBytes() gained; UpdateSize would walk every basement.
  pin->AddSize(added);
  return Status::OK();
}

Status FractalTree::LoadAllBasements(PinnedPair* pin) {
  Node* node = pin->as<Node>();
  size_t absent = 0;
  size_t last_absent = 0;
  {
    MutexLock lock(&node->load_mu);
    for (size_t i = 0; i < node->basements.size(); ++i) {
      if (node->basements[i].rows == nullptr) {
        ++absent;
        last_absent = i;
      }
    }
  }
  if (absent == 0) return Status::OK();
  if (absent == 1) return LoadBasement(pin, last_absent, /*loaded=*/nullptr, /*for_write=*/true);
  // Several basements are missing: one read of the whole block beats one read each.
  {
    MutexLock lock(&node->load_mu);
    std::string bytes;
    FERN_RETURN_IF_ERROR(file_->ReadBlock(node->block(), &bytes));
    for (LeafPartition& part : node->basements) {
      if (part.rows != nullptr) continue;
      const PartitionExtent& e = part.extent;
      if (uint64_t{e.offset} + e.size > bytes.size()) {
        return Status::Corruption(StrCat(Where(node->block()), ": partition beyond block end"));
      }
      const chunk_memory::Scope in_chunks(ChunkMemoryNow());
      FERN_RETURN_IF_ERROR(DecodeLeafPartition(std::string_view(bytes).substr(e.offset, e.size), e,
                                               *config_.comparator, Where(node->block()),
                                               &part.rows, &stats_));
      stats_.basements_fetched++;
    }
    pin->UpdateSize();
  }
  return Status::OK();
}

// ---- shape ---------------------------------------------------------------------

Status FractalTree::Shape(TreeShape* shape) {
  // Exclusive: no node is freed while the walk goes from node to node without its parent.
  MutexLock lock(&checkpoint_safe_);
  *shape = TreeShape();
  return ShapeOf(root_.load(std::memory_order_acquire), shape);
}

Status FractalTree::ShapeOf(BlockNum block, TreeShape* shape) {
  PinnedPair pin;
  FERN_RETURN_IF_ERROR(PinNode(block, Cachetable::Lock::kRead, &pin));
  Node* node = pin.as<Node>();
  size_t h = static_cast<size_t>(node->height());
  if (shape->nodes_per_level.size() <= h) {
    shape->height = node->height() + 1 > shape->height ? node->height() + 1 : shape->height;
    shape->nodes_per_level.resize(h + 1);
    shape->messages_per_level.resize(h + 1);
    shape->partitions_per_level.resize(h + 1);
    shape->pivot_bytes_per_level.resize(h + 1);
  }
  shape->nodes_per_level[h]++;
  shape->partitions_per_level[h] += node->partition_count();
  for (const std::string& pivot : node->pivots) shape->pivot_bytes_per_level[h] += pivot.size();
  if (node->is_leaf()) {
    FERN_RETURN_IF_ERROR(LoadAllBasements(&pin));
    uint64_t rows = 0;
    for (const LeafPartition& part : node->basements) rows += part.rows->count();
    shape->rows += rows;
    shape->rows_per_leaf.push_back(rows);
    return Status::OK();
  }
  shape->messages_per_level[h] += node->buffered_messages();
  std::vector<BlockNum> children = node->children;
  pin.Unpin();
  for (BlockNum child : children) FERN_RETURN_IF_ERROR(ShapeOf(child, shape));
  return Status::OK();
}

}  // namespace fern
