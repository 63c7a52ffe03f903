// fernbench's Fern backend: Fern with its defaults, plus --cache_mb and --compression.
// Every operation runs in a transaction of its own (autocommit). Options::sync_commits
// follows the workload: off for all but fillsync, where every put's commit is fsynced
// (group commit shares the fsyncs of concurrent committers).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "fern/fern.h"
#include "fernbench/engine.h"
#include "util/compression.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern::bench {

namespace {

constexpr char kTableName[] = "bench";

Status ParseCompression(const std::string& name, Compression* compression) {
  if (name == "default") {
    *compression = TableOptions().compression;
    return Status::OK();
  }
  if (!ParseCompressionName(name, compression)) {
    return Status::InvalidArgument(StrCat("unknown compression ", name));
  }
  return Status::OK();
}

class FernCursor : public EngineCursor {
 public:
  explicit FernCursor(std::unique_ptr<Cursor> cursor) : cursor_(std::move(cursor)) {}
  void Seek(std::string_view target) override { cursor_->Seek(target); }
  void Next() override { cursor_->Next(); }
  bool Valid() const override { return cursor_->Valid(); }
  std::string_view key() const override { return cursor_->key(); }
  std::string_view value() const override { return cursor_->value(); }
  Status status() const override { return cursor_->status(); }

 private:
  std::unique_ptr<Cursor> cursor_;
};

class FernEngine : public Engine {
 public:
  Status Open(const std::string& dir, const EngineConfig& config) override {
    // Debian builds Abseil without NDEBUG, which turns on absl::Mutex's deadlock detector:
    // every lock taken while another is held goes through a global lock-order graph. That
    // cost ~30% of a point read (readrandom in memory, 200,000 keys: 711 instead of 1,012
    // profile samples). Release builds of Abseil default to kIgnore; so does this benchmark.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    options_.cache_bytes = config.cache_bytes;
    options_.sync_commits = config.sync_commits;
    if (config.fern_buffer_percent >= 0) {
      options_.buffer_budget_percent = static_cast<uint32_t>(config.fern_buffer_percent);
    }
    FERN_RETURN_IF_ERROR(ParseCompression(config.compression, &table_options_.compression));
    if (config.fern_basement_bytes != 0) table_options_.basement_bytes = config.fern_basement_bytes;
    if (config.fern_node_bytes != 0) table_options_.node_bytes = config.fern_node_bytes;
    FERN_RETURN_IF_ERROR(Env::Open(dir, options_, &env_));
    return env_->OpenTable(kTableName, table_options_, &table_);
  }

  Status Put(std::string_view key, std::string_view value, bool sync) override {
    if (sync != options_.sync_commits) {
      return Status::InvalidArgument("fern engine: per-operation sync differs from the Env's");
    }
    return table_->Put(nullptr, key, value);
  }

  Status Delete(std::string_view key, bool sync) override {
    if (sync != options_.sync_commits) {
      return Status::InvalidArgument("fern engine: per-operation sync differs from the Env's");
    }
    return table_->Delete(nullptr, key);
  }

  Status Get(std::string_view key, std::string* value) override {
    return table_->Get(nullptr, key, value);
  }

  Status NewCursor(std::unique_ptr<EngineCursor>* cursor) override {
    std::unique_ptr<Cursor> fern_cursor = table_->NewCursor(nullptr);
    if (fern_cursor == nullptr) return Status::IOError("Table::NewCursor returned nullptr");
    *cursor = std::make_unique<FernCursor>(std::move(fern_cursor));
    return Status::OK();
  }

  Status Close() override {
    // FERNBENCH_FERN_STATS=1 prints fern.stats before the close, for finding where time and
    // bytes go (not part of the CSV).
    if (const char* want = std::getenv("FERNBENCH_FERN_STATS"); want != nullptr && *want == '1') {
      std::string stats;
      if (env_->GetProperty("fern.stats", &stats)) std::fprintf(stderr, "%s", stats.c_str());
    }
    table_ = nullptr;
    env_.reset();  // stops background work and takes the final checkpoint
    return Status::OK();
  }

  std::string Describe() const override {
    return StrCat("cache_mb=", options_.cache_bytes >> 20, ";absl_deadlock_detection=off",
                  ";compression=", CompressionName(table_options_.compression),
                  ";node_kb=", table_options_.node_bytes >> 10,
                  ";basement_kb=", table_options_.basement_bytes >> 10,
                  ";buffer_percent=", options_.buffer_budget_percent);
  }

 private:
  Options options_;
  TableOptions table_options_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;  // owned by env_
};

}  // namespace

std::unique_ptr<Engine> NewFernEngine() { return std::make_unique<FernEngine>(); }

std::string FernVersion() { return FERN_BENCH_FERN_VERSION; }

}  // namespace fern::bench
