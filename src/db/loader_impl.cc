#include "db/loader_impl.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "db/env_impl.h"
#include "ft/tree_builder.h"
#include "util/file.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// Run files merged at once. Each open run holds about one block (kRunBlockBytes) in memory,
// so the width follows the run budget; 64 bounds the open files.
constexpr size_t kMaxMergeWidth = 64;

size_t MergeWidth(size_t run_bytes) {
  return std::clamp<size_t>(run_bytes / kRunBlockBytes, 2, kMaxMergeWidth);
}

}  // namespace

LoaderImpl::LoaderImpl(const std::string& dir, TableImpl* table, const TreeConfig& config,
                       size_t run_bytes)
    : dir_(dir),
      table_(table),
      tree_(table->tree()),
      config_(config),
      cmp_(*config.comparator),
      run_bytes_(run_bytes),
      merge_width_(MergeWidth(run_bytes)) {}

Status LoaderImpl::Start(const std::string& dir, TableImpl* table, size_t run_bytes,
                         std::unique_ptr<Loader>* out) {
  if (table->dropped()) {
    return Status::InvalidArgument(StrCat("table \"", table->name(), "\" was dropped"));
  }
  TreeConfig config;
  FERN_RETURN_IF_ERROR(table->tree()->BeginLoad(&config));
  auto* loader = new LoaderImpl(dir, table, config, run_bytes);
  out->reset(loader);
  table->env()->TrackLoader(loader);
  return Status::OK();
}

LoaderImpl::~LoaderImpl() {
  if (env_closed_) return;
  if (state_ == State::kAdding || state_ == State::kBuilt) {
    Fail(Status::Aborted("the loader was destroyed")).ok();
  }
  table_->env()->UntrackLoader(this);
}

void LoaderImpl::EnvClosing() {
  if (state_ == State::kAdding || state_ == State::kBuilt) {
    Fail(Status::InvalidArgument("Loader: its Env was closed; the load was abandoned")).ok();
  }
  env_closed_ = true;
  tree_.reset();
}

Status LoaderImpl::EnvClosedError() const {
  return Status::InvalidArgument("Loader: its Env was closed");
}

Status LoaderImpl::Add(std::string_view key, std::string_view value) {
  if (env_closed_) return EnvClosedError();
  if (state_ == State::kDone) return Status::InvalidArgument("Loader::Add after Finish");
  if (state_ == State::kFailed) return error_;
  if (state_ == State::kBuilt) {
    return Status::InvalidArgument(
        "Loader::Add after Finish built the table and returned Busy: call Finish again to "
        "install it, or destroy the Loader to abandon the load");
  }
  if (table_->dropped()) return Fail(table_->Dropped());
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(value));
  ++rows_;
  if (!duplicate_.ok()) return Status::OK();  // the load will fail: keep nothing more
  if (buffer_.count() > 0 && buffer_.bytes() + RunBuffer::RowBytes(key, value) > run_bytes_) {
    Status s = SpillRun();
    if (!s.ok()) return Fail(s);
  }
  buffer_.Add(key, value);
  return Status::OK();
}

Status LoaderImpl::SpillRun() {
  buffer_.Sort(cmp_);
  std::string_view twice;
  if (buffer_.FindDuplicate(cmp_, &twice)) {
    duplicate_ = DuplicateKeyError(twice);
    buffer_.Release();
    return Status::OK();
  }
  runs_.push_back({StrCat(dir_, "/", LoaderRunFileName(table_->id(), next_run_++)), 0});
  std::unique_ptr<RunWriter> writer;
  FERN_RETURN_IF_ERROR(RunWriter::Create(runs_.back().path, &writer));
  for (size_t i = 0; i < buffer_.count(); ++i) {
    FERN_RETURN_IF_ERROR(writer->Add(buffer_.key(i), buffer_.value(i)));
  }
  FERN_RETURN_IF_ERROR(writer->Finish());
  runs_.back().records = writer->records();
  runs_.back().largest_block = writer->largest_block();
  buffer_.Clear();
  return Status::OK();
}

Status LoaderImpl::OpenReaders(size_t count, std::vector<std::unique_ptr<RunReader>>* readers) {
  readers->clear();
  for (size_t i = 0; i < count; ++i) {
    readers->emplace_back();
    FERN_RETURN_IF_ERROR(RunReader::Open(runs_[i].path, runs_[i].records, &readers->back()));
  }
  return Status::OK();
}

size_t LoaderImpl::MergeCount() const {
  size_t count = 0;
  uint64_t bytes = 0;
  while (count < runs_.size() && count < merge_width_) {
    const uint64_t block = std::max<uint64_t>(runs_[count].largest_block, kRunBlockBytes);
    if (count >= 2 && bytes + block > run_bytes_) break;
    bytes += block;
    ++count;
  }
  return count;
}

Status LoaderImpl::ReduceRuns() {
  while (runs_.size() > 1 && MergeCount() < runs_.size()) {
    const size_t count = MergeCount();
    std::vector<std::unique_ptr<RunReader>> readers;
    FERN_RETURN_IF_ERROR(OpenReaders(count, &readers));
    std::vector<RowSource*> sources;
    for (auto& reader : readers) sources.push_back(reader.get());
    Run merged{StrCat(dir_, "/", LoaderRunFileName(table_->id(), next_run_++)), 0};
    runs_.push_back(merged);  // listed before it exists, so a failure removes it too
    std::unique_ptr<RunWriter> writer;
    FERN_RETURN_IF_ERROR(RunWriter::Create(merged.path, &writer));
    FERN_RETURN_IF_ERROR(MergeSources(
        sources, cmp_,
        [&writer](std::string_view k, std::string_view v) { return writer->Add(k, v); }));
    FERN_RETURN_IF_ERROR(writer->Finish());
    runs_.back().records = writer->records();
    runs_.back().largest_block = writer->largest_block();
    readers.clear();
    for (size_t i = 0; i < count; ++i) RemoveFile(runs_[i].path).ok();
    runs_.erase(runs_.begin(), runs_.begin() + static_cast<std::ptrdiff_t>(count));
  }
  return Status::OK();
}

Status LoaderImpl::Build() {
  FERN_RETURN_IF_ERROR(duplicate_);
  buffer_.Sort(cmp_);
  std::string_view twice;
  if (buffer_.FindDuplicate(cmp_, &twice)) return DuplicateKeyError(twice);
  if (rows_ == 0) {
    tree_->AbandonLoad();  // nothing to install: the table stays as it is, empty
    return Status::OK();
  }
  FERN_RETURN_IF_ERROR(ReduceRuns());

  std::vector<std::unique_ptr<RunReader>> readers;
  FERN_RETURN_IF_ERROR(OpenReaders(runs_.size(), &readers));
  BufferSource memory(&buffer_);
  std::vector<RowSource*> sources;
  for (auto& reader : readers) sources.push_back(reader.get());
  sources.push_back(&memory);
  builder_ = std::make_unique<TreeBuilder>(tree_->file(), config_);
  TreeBuilder& builder = *builder_;
  FERN_RETURN_IF_ERROR(MergeSources(
      sources, cmp_,
      [&builder](std::string_view k, std::string_view v) { return builder.Add(k, v); }));
  readers.clear();
  buffer_.Release();
  int height;
  FERN_RETURN_IF_ERROR(builder.Finish(&built_root_, &height));
  RemoveRunFiles();  // every row is in the built tree now
  state_ = State::kBuilt;
  return Install();
}

Status LoaderImpl::Install() {
  bool handed_over = false;
  Status installed = InstallWhenUnobserved(built_root_, &handed_over);
  if (handed_over) builder_->Disown(built_root_);
  FERN_RETURN_IF_ERROR(installed);
  builder_->Release();
  builder_.reset();
  return Status::OK();
}

Status LoaderImpl::InstallWhenUnobserved(BlockNum root, bool* handed_over) {
  EnvImpl* env = table_->env();
  TxnManager* manager = env->txn_manager();
  const absl::Time deadline = absl::Now() + env->lock_timeout();
  while (true) {
    // No snapshot may be taken and no transaction begin while the ticket is held.
    const TxnManager::AutocommitTicket ticket = manager->BeginAutocommit();
    bool unobserved = ticket.stamp == kNoTxn;
    if (unobserved && ticket.lock_owner != kNoTxn) {
      unobserved = table_->locks()
                       ->AcquireRange(ticket.lock_owner, nullptr, nullptr, LockTree::Mode::kWrite,
                                      absl::ZeroDuration())
                       .ok();
    }
    if (unobserved) {
      *handed_over = true;
      Status s = tree_->InstallLoad(root);
      if (ticket.lock_owner != kNoTxn) table_->locks()->ReleaseAll(ticket.lock_owner);
      manager->EndAutocommit();
      tree_->NoteCommittedChange();
      return s;
    }
    manager->EndAutocommit();
    if (absl::Now() >= deadline) {
      return Status::Busy(StrCat(
          "Loader::Finish: a snapshot, or a lock in table \"", table_->name(),
          "\", stayed live through the lock timeout; the loaded rows would have appeared in it"));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

Status LoaderImpl::Finish() {
  if (env_closed_) return EnvClosedError();
  if (state_ == State::kDone) return Status::InvalidArgument("Loader::Finish called twice");
  if (state_ == State::kFailed) return error_;
  // Building writes the table's file and installing changes its tree: DropTable, which
  // closes both, waits for them.
  UseGate::Scope use(table_->gate());
  if (!use.entered()) return Fail(table_->Dropped());
  Status s = state_ == State::kBuilt ? Install() : Build();
  // Busy with the tree built: the install waits for the next Finish.
  if (s.IsBusy() && state_ == State::kBuilt) return s;
  if (!s.ok()) return Fail(s);
  state_ = State::kDone;
  RemoveRunFiles();
  return Status::OK();
}

Status LoaderImpl::Fail(Status s) {
  state_ = State::kFailed;
  error_ = s;
  RemoveRunFiles();
  buffer_.Release();
  builder_.reset();  // frees the built blocks while the reservation still hides them
  tree_->AbandonLoad();
  return s;
}

void LoaderImpl::RemoveRunFiles() {
  // A file left behind (removal failed) is removed when the Env next opens.
  for (const Run& run : runs_) {
    if (PathExists(run.path)) RemoveFile(run.path).ok();
  }
  runs_.clear();
}

}  // namespace fern
