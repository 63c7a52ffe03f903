#include "db/env_impl.h"

#include <algorithm>
#include <thread>

#include "db/loader_impl.h"
#include "db/open_checks.h"
#include "db/txn_impl.h"
#include "db/write_set.h"
#include "log/log_reader.h"
#include "util/chunk_allocator.h"
#include "util/mutex.h"
#include "util/process_memory.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

constexpr char kLockFileName[] = "LOCK";
constexpr size_t kMinCacheBytes = size_t{1} << 16;
constexpr uint32_t kMinNodeBytes = 4096;
constexpr uint32_t kMaxNodeBytes = uint32_t{256} << 20;
constexpr uint32_t kMinBasementBytes = 512;
// Larger basements (tables with large basement_bytes, or grown by writes) are freed on
// eviction rather than pooled.
constexpr size_t kMaxPooledBasementBytes = size_t{256} << 10;
// BasementAdmission's window: a quarter of the default-sized basements the cache holds,
// within these bounds (a window costs ~2.5 bytes per miss remembered). With fernbench at
// 64 MiB (4,096 basements), readrandom went from 78k gets/s without admission to 100k with
// the whole count and 113-119k with a quarter, an eighth or a sixteenth alike: the reads
// come back to some basements after a few thousand others, and a long window admits them.
// Above this share of the cache, height-1 buffers crowd out the leaves that flushes load:
// fernbench at 64 MiB rewrote internal nodes over and over from 70% (overwrite wrote 1.2 GB
// against 0.67 GB at 50%).
constexpr uint32_t kMaxBufferBudgetPercent = 60;
// The share of the cache the buffers of all internal nodes may fill together, whatever
// buffer_budget_percent says (ft/buffer_budget.h, FitLimit): the same bound as the budget's,
// so that fernbench's trees (which stay under it) flush as before.
constexpr uint32_t kInternalBufferPercent = 60;
constexpr size_t kMinAdmissionWindow = 256;
constexpr size_t kMaxAdmissionWindow = size_t{1} << 20;
// Chunk memory for everything read from disk from this cache size up (while the cache is
// less than half full: FractalTree::ChunkMemoryNow), and for basements
// loaded one at a time (reads) from kMinBasementChunkMemoryCacheBytes: each size class in
// use holds up to 2 MiB not yet handed out, eviction leaves chunks partly used, and four
// spare chunks are kept faulted in. At 1 GiB chunks doubled seekrandom for about 10% more
// resident memory. At 64 MiB, with everything in chunks, fernbench's readrandom peaked at
// 134-148 MiB (the budget allows 128); with basements loaded one at a time only (and 4 KiB
// size classes for them) at 107-110 MiB, while seekrandom went from 71k to 86-87k seeks/s:
// a fresh process fills its cache with ~4,000 basements, and the faults of fresh 4 KiB pages
// cost more than reading them. Leaves loaded whole for writes stay out: in chunks they cost
// fillrandom at 64 MiB 8% and 10 MiB of RSS. At 256 MiB, everything in chunks left them
// fragmented once the cache filled (writes move what they change out of its slot): a
// reopened database overwritten there held 70 MiB of chunks for 20 MiB of blocks, and
// peaked at 344 MiB RSS; 326 MiB with basement loads only. Reads of a table of 2,000,000
// rows through a full cache of 256 MiB still peaked at 326-334 MiB with basement loads in
// chunks (over cache + 64 MiB) and at 290-294 MiB without, at no clear cost in speed (at
// 128 MiB: 191 against 162 MiB, the budget allowing 192), so basement loads use chunks only
// below kMaxBasementChunkMemoryCacheBytes.
constexpr size_t kMinChunkMemoryCacheBytes = size_t{1} << 30;
constexpr size_t kMinBasementChunkMemoryCacheBytes = size_t{64} << 20;
constexpr size_t kMaxBasementChunkMemoryCacheBytes = size_t{128} << 20;

Status ValidateTableOptions(const TableOptions& options) {
  if (options.node_bytes < kMinNodeBytes || options.node_bytes > kMaxNodeBytes) {
    return Status::InvalidArgument(StrCat("node_bytes must be between ", kMinNodeBytes, " and ",
                                          kMaxNodeBytes, ", got ", options.node_bytes));
  }
  if (options.basement_bytes < kMinBasementBytes || options.basement_bytes > options.node_bytes) {
    return Status::InvalidArgument(StrCat("basement_bytes must be between ", kMinBasementBytes,
                                          " and node_bytes, got ", options.basement_bytes));
  }
  if (static_cast<uint8_t>(options.compression) > static_cast<uint8_t>(Compression::kLzma)) {
    return Status::InvalidArgument("unknown compression");
  }
  return Status::OK();
}

}  // namespace

Status Env::Open(const std::string& dir, const Options& options, std::unique_ptr<Env>* env) {
  if (env == nullptr) return Status::InvalidArgument("Env::Open: env is nullptr");
  UseReleaseMutexDiagnostics();
  return EnvImpl::OpenImpl(dir, options, env);
}

EnvImpl::EnvImpl(std::string dir, const Options& options)
    : dir_(std::move(dir)), options_(options) {}

Status EnvImpl::OpenImpl(const std::string& dir, const Options& options,
                         std::unique_ptr<Env>* env) {
  if (dir.empty()) return Status::InvalidArgument("Env directory name is empty");
  if (options.cache_bytes < kMinCacheBytes) {
    return Status::InvalidArgument(
        StrCat("cache_bytes must be at least ", kMinCacheBytes, ", got ", options.cache_bytes));
  }
  if (options.background_threads < 0) {
    return Status::InvalidArgument(StrCat(
        "background_threads must be 0 (one per core) or more, got ", options.background_threads));
  }
  if (options.buffer_budget_percent > kMaxBufferBudgetPercent) {
    return Status::InvalidArgument(StrCat("buffer_budget_percent must be at most ",
                                          kMaxBufferBudgetPercent, ", got ",
                                          options.buffer_budget_percent));
  }
  if (!PathExists(dir)) {
    if (!options.create_if_missing) {
      return Status::InvalidArgument(StrCat(dir, ": does not exist (create_if_missing is false)"));
    }
    FERN_RETURN_IF_ERROR(CreateDirIfMissing(dir));
  } else if (!IsDirectory(dir)) {
    return Status::InvalidArgument(StrCat(dir, ": not a directory"));
  }

  std::unique_ptr<EnvImpl> impl(new EnvImpl(dir, options));
  const std::string catalog_path = impl->CatalogPath();
  bool exists = PathExists(catalog_path);
  if (!exists) {
    // Refuse to take over a directory that holds something other than a Fern Env.
    std::vector<std::string> names;
    FERN_RETURN_IF_ERROR(ListDir(dir, &names));
    for (const std::string& name : names) {
      if (name != kLockFileName && name != std::string(kCatalogFileName) + ".tmp") {
        return Status::InvalidArgument(
            StrCat(dir, ": not a Fern Env (no ", kCatalogFileName, ", but holds \"", name, "\")"));
      }
    }
    if (!options.create_if_missing) {
      return Status::InvalidArgument(StrCat(dir, ": no Env here (create_if_missing is false)"));
    }
  } else if (options.error_if_exists) {
    return Status::InvalidArgument(StrCat(dir, ": Env exists (error_if_exists is true)"));
  }

  FERN_RETURN_IF_ERROR(FileLock::Acquire(dir + "/" + kLockFileName, &impl->lock_));
  if (!exists) {
    // Before anything else is created: a directory with a log file but no catalog is
    // refused above, so a crash while creating must leave the catalog or nothing.
    MutexLock lock(&impl->mu_);
    FERN_RETURN_IF_ERROR(impl->catalog_.Save(catalog_path));
  }
  int threads = options.background_threads > 0
                    ? options.background_threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  impl->pool_ = std::make_unique<ThreadPool>(threads);
  // Half the background threads flush: a flush is mostly (de)compression and message
  // copying, and writers need the other cores.
  impl->flusher_pool_ = std::make_unique<ThreadPool>(std::max(1, threads / 2));
  // A sixteenth of the cache, at most 8 MiB: enough for what one evictor run frees at the
  // wake mark (1.05x the budget), and small next to the RSS allowance over the budget.
  impl->basement_pool_ = std::make_unique<BasementPool>(
      std::min<size_t>(options.cache_bytes / 16, size_t{8} << 20), kMaxPooledBasementBytes);
  impl->admission_ = std::make_unique<BasementAdmission>(
      std::clamp<size_t>(options.cache_bytes / TableOptions().basement_bytes / 4,
                         kMinAdmissionWindow, kMaxAdmissionWindow));
  impl->buffer_budget_ =
      std::make_unique<BufferBudget>(options.cache_bytes / 100 * options.buffer_budget_percent,
                                     options.cache_bytes / 100 * kInternalBufferPercent);
  CachetableOptions cache_options;
  cache_options.budget_bytes = options.cache_bytes;
  cache_options.cleaner_period_ms = options.cleaner_period_ms;
  impl->cache_ = std::make_unique<Cachetable>(cache_options);
  {
    MutexLock lock(&impl->mu_);
    if (exists) {
      FERN_RETURN_IF_ERROR(Catalog::Load(catalog_path, &impl->catalog_));
      // Before the log writer starts a log where there is none.
      std::unique_ptr<LogReader> reader;
      FERN_RETURN_IF_ERROR(LogReader::Open(dir, &reader));
      FERN_RETURN_IF_ERROR(CheckLogPresent(dir, impl->catalog_, reader->files()));
    }
  }
  LogWriterOptions log_options;
  log_options.write_behind = true;
  FERN_RETURN_IF_ERROR(LogWriter::Open(dir, log_options, &impl->log_));
  impl->write_state_ = std::make_unique<WriteState>(impl->log_.get());
  {
    MutexLock lock(&impl->mu_);
    FERN_RETURN_IF_ERROR(impl->RemoveOrphanFiles());
    FERN_RETURN_IF_ERROR(impl->Recover());
  }
  impl->checkpoint_log_bytes_ =
      options.checkpoint_log_bytes != 0
          ? options.checkpoint_log_bytes
          : std::max<uint64_t>(uint64_t{256} << 20, uint64_t{4} * options.cache_bytes);
  if (options.checkpoint_period_ms > 0) {
    EnvImpl* raw = impl.get();
    impl->checkpointer_ = std::thread([raw] { raw->CheckpointerLoop(); });
  }
  if (options.log_flush_period_ms > 0) {
    EnvImpl* raw = impl.get();
    impl->log_flusher_ = std::thread([raw] { raw->LogFlusherLoop(); });
  }
  *env = std::move(impl);
  return Status::OK();
}

void EnvImpl::CheckpointerLoop() {
  const absl::Duration period = absl::Milliseconds(options_.checkpoint_period_ms);
  // How often the log's growth is looked at between periodic checkpoints.
  const absl::Duration poll = std::min(period, absl::Milliseconds(200));
  MutexLock lock(&checkpointer_mu_);
  for (;;) {
    const absl::Time deadline = absl::Now() + period;
    while (!stopping_ && absl::Now() < deadline && !LogOutgrewCheckpoint()) {
      checkpointer_mu_.WaitWithDeadline(&checkpointer_cv_, std::min(deadline, absl::Now() + poll));
    }
    if (stopping_) return;
    checkpointer_mu_.Unlock();
    // Failures are counted and shown in fern.stats; the write error state (if any) already
    // stops writes, and the next period tries again.
    Checkpoint().ok();
    checkpointer_mu_.Lock();
  }
}

bool EnvImpl::LogOutgrewCheckpoint() const {
  return log_->stats().bytes_written - log_bytes_at_checkpoint_.load(std::memory_order_relaxed) >=
         checkpoint_log_bytes_;
}

void EnvImpl::LogFlusherLoop() {
  const absl::Duration period = absl::Milliseconds(options_.log_flush_period_ms);
  // Looking twice a period, for records older than half of it, keeps each record's time in
  // the buffer under about one period.
  const absl::Duration tick = std::max(period / 2, absl::Milliseconds(1));
  MutexLock lock(&checkpointer_mu_);
  for (;;) {
    checkpointer_mu_.WaitWithTimeout(&checkpointer_cv_, tick);
    if (stopping_) return;
    checkpointer_mu_.Unlock();
    // A failure is the log writer's state: the next write or commit reports it, and the
    // writer retries the write-out on its own schedule.
    log_->FlushIfBufferedBefore(absl::Now() - tick).ok();
    checkpointer_mu_.Lock();
  }
}

void EnvImpl::StopPeriodicThreads() {
  {
    MutexLock lock(&checkpointer_mu_);
    stopping_ = true;
    checkpointer_cv_.SignalAll();
  }
  if (checkpointer_.joinable()) checkpointer_.join();
  if (log_flusher_.joinable()) log_flusher_.join();
}

void EnvImpl::TrackTxn(TxnImpl* txn) {
  MutexLock lock(&txns_mu_);
  txns_.insert(txn);
}

void EnvImpl::UntrackTxn(TxnImpl* txn) {
  MutexLock lock(&txns_mu_);
  txns_.erase(txn);
}

void EnvImpl::TrackLoader(LoaderImpl* loader) {
  MutexLock lock(&txns_mu_);
  loaders_.insert(loader);
}

void EnvImpl::UntrackLoader(LoaderImpl* loader) {
  MutexLock lock(&txns_mu_);
  loaders_.erase(loader);
}

EnvImpl::~EnvImpl() {
  StopPeriodicThreads();
  // Cursors the user still holds let go of the trees before the Env takes them down.
  cursors_->CloseAll(Status::InvalidArgument("cursor: its Env was closed"));
  // Transactions the user still holds: roots abort (with their children), prepared ones
  // stay prepared for the next open; all of them stop using this Env.
  std::vector<TxnImpl*> open;
  {
    MutexLock lock(&txns_mu_);
    open.assign(txns_.begin(), txns_.end());
  }
  for (TxnImpl* txn : open) {
    if (txn->state()->is_root()) txn->EnvClosing();
  }
  for (TxnImpl* txn : open) txn->EnvClosing();
  // Loaders the user still holds: unfinished loads are abandoned, and every loader lets go
  // of its tree, which must not outlive the Env.
  std::vector<LoaderImpl*> loaders;
  {
    MutexLock lock(&txns_mu_);
    loaders.assign(loaders_.begin(), loaders_.end());
    loaders_.clear();
  }
  for (LoaderImpl* loader : loaders) loader->EnvClosing();
  MutexLock lock(&mu_);
  // Prepared transactions nobody claimed stay prepared for the next open.
  for (auto& txn : recovered_prepared_) static_cast<TxnImpl*>(txn.get())->Detach();
  recovered_prepared_.clear();
  // Background flushes and the cleaner would only add work and memory to the close (they
  // were seen loading leaves while the final checkpoint wrote).
  if (cache_ != nullptr) cache_->SetCleanerPeriod(0);
  for (auto& [name, table] : tables_) table->tree()->StopBackgroundWork();
  // A failed final checkpoint cannot be reported from a destructor; recovery replays the
  // log from the last good one at the next open.
  if (log_ != nullptr && recovered_) CheckpointLocked(/*closing=*/true).ok();
  // After a failed recovery the trees are dropped unwritten (their destructors do that).
  if (recovered_) {
    for (auto& [name, table] : tables_) table->tree()->Close(/*checkpoint=*/false).ok();
  }
  tables_.clear();
  dropped_.clear();
  cache_.reset();
  log_.reset();
  flusher_pool_.reset();
  pool_.reset();
  basement_pool_.reset();
  // What the Env held is free now but still resident in the allocator's heaps, where it
  // would stay until reused: a process that reopened an Env (256 MiB cache, twenty tables)
  // started the second one with ~240 MiB of it and peaked at 471 MiB RSS, against 320 MiB
  // with this.
  ReturnFreeMemoryToSystem();
}

TreeConfig EnvImpl::MakeTreeConfig(const Comparator* cmp, Compression codec, int level,
                                   const TableOptions* sizes) const {
  TreeConfig config;
  config.comparator = cmp;
  config.compression = codec;
  config.compression_level = level;
  if (sizes != nullptr) {
    config.node_bytes = sizes->node_bytes;
    config.basement_bytes = sizes->basement_bytes;
  }
  config.update_function = options_.update_function ? &options_.update_function : nullptr;
  config.compression_pool = pool_.get();
  config.flusher_pool = flusher_pool_.get();
  config.readahead_pool = pool_.get();
  config.basement_pool = basement_pool_.get();
  config.admission = admission_.get();
  config.buffer_budget = buffer_budget_.get();
  config.chunk_memory = options_.cache_bytes >= kMinChunkMemoryCacheBytes;
  config.chunk_memory_for_basement_loads =
      options_.cache_bytes >= kMinBasementChunkMemoryCacheBytes &&
      options_.cache_bytes < kMaxBasementChunkMemoryCacheBytes;
  return config;
}

std::unique_ptr<TableImpl> EnvImpl::Wrap(const std::string& name, uint64_t id,
                                         std::unique_ptr<FractalTree> tree) {
  auto log = std::make_unique<TableLog>(write_state_.get(), static_cast<TableId>(id));
  tree->SetWriteLog(log.get());
  return std::make_unique<TableImpl>(this, name, id, std::shared_ptr<FractalTree>(std::move(tree)),
                                     std::move(log), write_state_.get(), options_.sync_commits,
                                     &deadlock_detector_, &lock_memory_);
}

Status EnvImpl::OpenExisting(const std::string& name, const CatalogEntry& entry,
                             const Comparator* cmp, Compression codec, int level,
                             std::unique_ptr<TableImpl>* table) {
  std::unique_ptr<FractalTree> tree;
  FERN_RETURN_IF_ERROR(FractalTree::Open(
      TablePath(entry.file_name), MakeTreeConfig(cmp, codec, level, nullptr), cache_.get(), &tree));
  *table = Wrap(name, entry.id, std::move(tree));
  return Status::OK();
}

Status EnvImpl::RemoveOrphanFiles() {
  std::vector<std::string> names;
  FERN_RETURN_IF_ERROR(ListDir(dir_, &names));
  for (const std::string& name : names) {
    if (IsLoaderRunFileName(name) || IsRollbackFileName(name)) {  // left by a crash
      FERN_RETURN_IF_ERROR(RemoveFile(TablePath(name)));
      continue;
    }
    if (name.size() < 3 || name.compare(name.size() - 3, 3, ".ft") != 0) continue;
    bool known = false;
    for (const auto& [table, entry] : catalog_.tables) known = known || entry.file_name == name;
    if (!known) FERN_RETURN_IF_ERROR(RemoveFile(TablePath(name)));
  }
  return Status::OK();
}

Status EnvImpl::OpenTable(std::string_view name, const TableOptions& options, Table** table) {
  if (table == nullptr) return Status::InvalidArgument("OpenTable: table is null");
  *table = nullptr;
  if (name.empty()) return Status::InvalidArgument("table name is empty");
  if (name.size() > 1024) return Status::InvalidArgument("table name longer than 1024 bytes");
  FERN_RETURN_IF_ERROR(ValidateTableOptions(options));
  const Comparator* cmp = options.comparator ? options.comparator : BytewiseComparator();

  MutexLock lock(&mu_);
  std::string key(name);
  if (auto it = tables_.find(key); it != tables_.end()) {
    const std::string& stored = it->second->tree()->file()->header().comparator_name;
    if (stored != cmp->Name()) {
      return Status::InvalidArgument(StrCat("table \"", key, "\" uses comparator \"", stored,
                                            "\", not \"", cmp->Name(), "\""));
    }
    it->second->tree()->SetCompression(options.compression, options.compression_level);
    *table = it->second.get();
    return Status::OK();
  }

  std::unique_ptr<TableImpl> impl;
  if (auto it = catalog_.tables.find(key); it != catalog_.tables.end()) {
    FERN_RETURN_IF_ERROR(
        OpenExisting(key, it->second, cmp, options.compression, options.compression_level, &impl));
    if (auto deferred = deferred_.find(it->second.id); deferred != deferred_.end()) {
      if (Status replayed = ReplayTable(it->second.id, impl.get()); !replayed.ok()) {
        // Restored prepared transactions may hold this object already (AdoptKey): it stays,
        // closed, as long as the Env, and a later OpenTable replays into a new one.
        impl->MarkDropped();
        impl->tree()->Close(/*checkpoint=*/false).ok();
        dropped_.push_back(std::move(impl));
        return replayed;
      }
      deferred_.erase(deferred);
    }
  } else {
    FERN_RETURN_IF_ERROR(write_state_->error());
    FERN_RETURN_IF_ERROR(SyncLogBeforeCatalogChange());
    uint64_t id = catalog_.next_table_id;
    CatalogEntry entry;
    entry.id = id;
    entry.file_name = StrCat("table-", id, ".ft");
    const std::string path = TablePath(entry.file_name);
    if (PathExists(path)) FERN_RETURN_IF_ERROR(RemoveFile(path));  // left by a failed create
    std::unique_ptr<FractalTree> tree;
    FERN_RETURN_IF_ERROR(FractalTree::Create(
        path, MakeTreeConfig(cmp, options.compression, options.compression_level, &options),
        cache_.get(), &tree));
    impl = Wrap(key, id, std::move(tree));
    // The new table holds every write through the log's end (it has none). Checkpointed
    // before the catalog names it, so that every table the catalog names has a header at
    // or past the log the catalog keeps (Recover checks that); a crash before the catalog
    // is saved leaves a file the next create removes.
    Status s = impl->tree()->Checkpoint();
    entry.header_count = impl->tree()->file()->header().checkpoint_count;
    entry.file_uid = impl->tree()->file()->header().file_uid;
    Catalog updated = catalog_;
    updated.next_table_id = id + 1;
    updated.tables.emplace(key, entry);
    if (s.ok()) s = updated.Save(CatalogPath());
    if (!s.ok()) {
      impl->tree()->Close(false).ok();
      impl.reset();
      RemoveFile(path).ok();
      return s;
    }
    catalog_ = std::move(updated);
  }
  *table = impl.get();
  tables_.emplace(key, std::move(impl));
  return Status::OK();
}

Status EnvImpl::SyncLogBeforeCatalogChange() {
  const Lsn last = log_->last_lsn();
  if (last == 0) return Status::OK();
  Status s = log_->Sync(last);
  if (!s.ok()) return s.WithContext("making the log durable before changing the catalog");
  return Status::OK();
}

Status EnvImpl::DropTable(std::string_view name) {
  std::string key(name);
  // First make the log durable (see SyncLogBeforeCatalogChange; a failed sync leaves the
  // table as it was). Then refuse new calls into the table and wait for those under way (a
  // write logged and then refused by a closed tree would stop every write), without mu_:
  // they may need it. TableImpl objects live as long as the Env, so the pointer stays valid.
  TableImpl* open = nullptr;
  {
    MutexLock lock(&mu_);
    auto entry = catalog_.tables.find(key);
    if (entry == catalog_.tables.end()) {
      return Status::NotFound(StrCat("table \"", key, "\" does not exist"));
    }
    FERN_RETURN_IF_ERROR(SyncLogBeforeCatalogChange());
    if (auto it = tables_.find(key); it != tables_.end()) open = it->second.get();
    // A prepared transaction with writes here must stay able to commit. Those recovered are
    // counted in the tables they wrote as each table is replayed: one whose replay waits for
    // OpenTable (deferred_) may hold their writes uncounted.
    if (open != nullptr) FERN_RETURN_IF_ERROR(open->BeginDrop());
    if (open == nullptr && deferred_.count(entry->second.id) > 0) {
      MutexLock prepared_lock(&prepared_mu_);
      if (!restored_prepared_.empty()) {
        return Status::Busy(StrCat(
            "table \"", key, "\" has not been opened since recovery, and ",
            restored_prepared_.size(),
            " prepared transaction(s) recovered then are undecided and may hold writes in it; "
            "open the table, or commit or abort them, first"));
      }
    }
  }
  if (open != nullptr) open->MarkDropped();
  MutexLock lock(&mu_);
  auto entry = catalog_.tables.find(key);
  if (entry == catalog_.tables.end()) {
    return Status::NotFound(StrCat("table \"", key, "\" does not exist"));
  }
  const std::string path = TablePath(entry->second.file_name);
  if (auto it = tables_.find(key); it != tables_.end()) {
    FERN_RETURN_IF_ERROR(it->second->BeginDrop());  // another thread may have opened it
    it->second->MarkDropped();  // at once, unless another thread opened it meanwhile
    FERN_RETURN_IF_ERROR(it->second->tree()->Close(/*checkpoint=*/false));
    dropped_.push_back(std::move(it->second));
    tables_.erase(it);
  }
  const uint64_t id = entry->second.id;
  Catalog updated = catalog_;
  updated.tables.erase(key);
  FERN_RETURN_IF_ERROR(updated.Save(CatalogPath()));
  catalog_ = std::move(updated);
  deferred_.erase(id);  // nothing left to replay into: the log may be trimmed past it
  return RemoveFile(path);
}

Status EnvImpl::Begin(const TxnOptions& options, std::unique_ptr<Txn>* txn) {
  if (txn == nullptr) return Status::InvalidArgument("Begin: txn is null");
  if (static_cast<uint8_t>(options.isolation) > static_cast<uint8_t>(Isolation::kSerializable)) {
    return Status::InvalidArgument("unknown isolation level");
  }
  TxnStatePtr state;
  FERN_RETURN_IF_ERROR(txn_manager_->Begin(options.isolation, &state));
  *txn = std::make_unique<TxnImpl>(this, std::move(state), nullptr, options);
  return Status::OK();
}

void EnvImpl::RegisterLiveTxn(TxnId id, Lsn first_lsn) {
  MutexLock lock(&live_mu_);
  live_txns_.emplace(first_lsn, id);
}

Status EnvImpl::LogBeginTxn(const LogRecord& record, TxnId id, Lsn* lsn) {
  MutexLock lock(&live_mu_);
  FERN_RETURN_IF_ERROR(log_->Append(record, lsn));
  live_txns_.emplace(*lsn, id);
  return Status::OK();
}

void EnvImpl::UnregisterLiveTxn(TxnId id, Lsn first_lsn) {
  MutexLock lock(&live_mu_);
  live_txns_.erase({first_lsn, id});
}

Status EnvImpl::Checkpoint() {
  MutexLock lock(&mu_);
  absl::Time start = absl::Now();
  Status s = CheckpointLocked();
  last_checkpoint_micros_ = absl::ToInt64Microseconds(absl::Now() - start);
  if (!s.ok()) {
    ++checkpoint_failures_;
    last_checkpoint_error_ = s;
  }
  return s;
}

Status EnvImpl::NewLoader(Table* table, std::unique_ptr<Loader>* loader) {
  if (table == nullptr || loader == nullptr) {
    return Status::InvalidArgument("NewLoader: table and loader must not be null");
  }
  auto* impl = dynamic_cast<TableImpl*>(table);
  auto check_ours = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> Status {
    bool ours = false;
    for (const auto& [name, open] : tables_) ours = ours || open.get() == impl;
    if (!ours && impl != nullptr && impl->env() == this && impl->dropped()) {
      return impl->Dropped();
    }
    if (!ours) return Status::InvalidArgument("NewLoader: the table is not open in this Env");
    return write_state_->error();
  };
  {
    MutexLock lock(&mu_);
    FERN_RETURN_IF_ERROR(check_ours());
  }
  // A table whose rows were all deleted is empty to its users, but its deletes (and old
  // versions) may still be buffered: push them down and collect them, so the load can start.
  bool empty = false;
  FERN_RETURN_IF_ERROR(impl->tree()->IsEmpty(&empty));
  if (!empty) {
    std::unique_ptr<Cursor> rows = impl->NewCursor(nullptr);
    rows->SeekToFirst();
    FERN_RETURN_IF_ERROR(rows->status());
    if (!rows->Valid()) {
      rows.reset();  // its snapshot would keep the deleted versions
      FERN_RETURN_IF_ERROR(impl->Optimize());
    }
  }
  // Under mu_, as every table checkpoint is: none is in progress while the load starts.
  MutexLock lock(&mu_);
  FERN_RETURN_IF_ERROR(check_ours());
  return LoaderImpl::Start(dir_, impl, options_.cache_bytes / 4, loader);
}

Status EnvImpl::RecoverPrepared(std::vector<std::unique_ptr<Txn>>* txns) {
  if (txns == nullptr) return Status::InvalidArgument("RecoverPrepared: txns is null");
  MutexLock lock(&mu_);
  txns->clear();
  for (auto& txn : recovered_prepared_) txns->push_back(std::move(txn));
  recovered_prepared_.clear();
  return Status::OK();
}

bool EnvImpl::GetProperty(std::string_view name, std::string* value) {
  if (name != "fern.stats" || value == nullptr) return false;
  CachetableStats c = cache_->stats();
  std::string out;
  LogWriterStats l = log_->stats();
  out += StrCat("log.records: ", l.records, "\n");
  out += StrCat("log.bytes: ", l.bytes, "\n");
  out += StrCat("log.bytes_written: ", l.bytes_written, "\n");
  out += StrCat("log.sync_requests: ", l.sync_requests, "\n");
  out += StrCat("log.syncs: ", l.syncs, "\n");
  out += StrCat("log.write_retries: ", l.write_retries, "\n");
  out += StrCat("log.last_lsn: ", log_->last_lsn(), "\n");
  out += StrCat("log.durable_lsn: ", log_->durable_lsn(), "\n");
  out += StrCat("cache.size_bytes: ", c.size_bytes, "\n");
  out += StrCat("cache.limit_bytes: ", c.limit_bytes, "\n");
  out += StrCat("cache.outside_bytes: ", c.outside_bytes, "\n");
  out += StrCat("cache.pairs: ", c.pairs, "\n");
  out += StrCat("cache.hits: ", c.hits, "\n");
  out += StrCat("cache.misses: ", c.misses, "\n");
  out += StrCat("cache.full_evictions: ", c.full_evictions, "\n");
  out += StrCat("cache.partial_evictions: ", c.partial_evictions, "\n");
  out += StrCat("cache.written_but_kept: ", c.written_but_kept, "\n");
  out += StrCat("cache.bytes_evicted: ", c.bytes_evicted, "\n");
  out += StrCat("cache.dirty_writes: ", c.dirty_writes, "\n");
  out += StrCat("cache.write_errors: ", c.write_errors, "\n");
  out += StrCat("cache.evictor_runs: ", c.evictor_runs, "\n");
  out += StrCat("cache.trims: ", c.trims, "\n");
  out += StrCat("cache.client_waits: ", c.client_waits, "\n");
  out += StrCat("basement_pool.held_bytes: ", basement_pool_->held_bytes(), "\n");
  out += StrCat("basement_pool.reused: ", basement_pool_->reused(), "\n");
  const chunk_memory::Stats chunks = chunk_memory::GetStats();
  out += StrCat("chunk_memory.chunks: ", chunks.chunks, "\n");
  out += StrCat("chunk_memory.slot_bytes: ", chunks.slot_bytes, "\n");
  out += StrCat("chunk_memory.ready_chunks: ", chunks.ready_chunks, "\n");
  out += StrCat("chunk_memory.prepared_chunks: ", chunks.prepared_chunks, "\n");
  out += StrCat("chunk_memory.releasing_chunks: ", chunks.releasing_chunks, "\n");
  out += StrCat("chunk_memory.released_chunks: ", chunks.released_chunks, "\n");
  out += StrCat("chunk_memory.declined_blocks: ", chunks.declined_blocks, "\n");
  out += StrCat("chunk_memory.purged_bytes: ", chunks.purged_bytes, "\n");
  const TxnManager::AutocommitStats autocommits = txn_manager_->autocommit_stats();
  out += StrCat("txn.live: ", txn_manager_->live_count(), "\n");
  out += StrCat("txn.snapshots: ", txn_manager_->snapshot_count(), "\n");
  out += StrCat("txn.autocommits_stamped: ", autocommits.stamped, "\n");
  out += StrCat("txn.autocommits_row_locked: ", autocommits.row_locked, "\n");
  out += StrCat("txn.autocommits_in_own_txn: ", autocommits.in_own_txn, "\n");
  out += StrCat("txn.rollback_spills: ", rollback_spills_.load(std::memory_order_relaxed), "\n");
  out += StrCat("cleaner.runs: ", c.cleaner_runs, "\n");
  out += StrCat("cleaner.calls: ", c.cleaner_calls, "\n");
  out += StrCat("checkpoint.pairs_written: ", c.checkpoint_pairs_written, "\n");
  out += StrCat("checkpoint.clones: ", c.clones, "\n");
  MutexLock lock(&mu_);
  out += StrCat("checkpoint.taken: ", checkpoints_taken_, "\n");
  out += StrCat("checkpoint.failures: ", checkpoint_failures_, "\n");
  out += StrCat("checkpoint.last_duration_us: ", last_checkpoint_micros_, "\n");
  if (!last_checkpoint_error_.ok()) {
    out += StrCat("checkpoint.last_error: ", last_checkpoint_error_.ToString(), "\n");
  }
  out += StrCat("env.write_error: ", write_state_->error().ToString(), "\n");
  out += StrCat("locks.memory_bytes: ", lock_memory_.used(), "\n");
  out += StrCat("txn.write_set_memory_bytes: ", write_set_memory_.used(), "\n");
  out += StrCat("txn.write_set_memory_budget: ", write_set_memory_.budget(), "\n");
  for (auto& [table_name, table] : tables_) {
    // One "name: value" a line whatever the table's name: control bytes, backslashes and
    // colons in it are written as \xNN.
    std::string prefix = "table.";
    for (char c : EscapeBytes(table_name, table_name.size())) {
      prefix += c == ':' ? std::string("\\x3a") : std::string(1, c);
    }
    prefix += ".";
    out += table->tree()->stats().ToText(prefix);
    const TreeFile* file = table->tree()->file();
    const BlockTable::Stats blocks = file->stats();
    out += StrCat(prefix, "file_bytes: ", blocks.file_bytes, "\n");
    out += StrCat(prefix, "file_free_bytes: ", blocks.free_bytes, "\n");
    out += StrCat(prefix, "file_split_blocks: ", blocks.split_blocks, "\n");
    out += StrCat(prefix, "blocks_compacted: ", file->blocks_compacted(), "\n");
    out += StrCat(prefix, "bytes_compacted: ", file->bytes_compacted(), "\n");
    const TreeValues::Counts values = table->tree()->value_counts();
    out += StrCat(prefix, "value_blocks_written: ", values.written, "\n");
    out += StrCat(prefix, "value_bytes_written: ", values.written_bytes, "\n");
    out += StrCat(prefix, "value_blocks_freed: ", values.freed, "\n");
    out += StrCat(prefix, "value_blocks_read: ", values.read, "\n");
    out += StrCat(prefix, "value_block_write_failures: ", values.write_failures, "\n");
    out += StrCat(prefix, "lock_escalations: ", table->locks()->escalation_count(), "\n");
  }
  *value = std::move(out);
  return true;
}

}  // namespace fern
