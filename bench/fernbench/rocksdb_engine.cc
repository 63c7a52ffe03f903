// fernbench's RocksDB backend, configured as RocksDB's own tuning guide tells production
// users to: OptimizeLevelStyleCompaction (512 MiB memtable budget), IncreaseParallelism (one
// background thread per core), block-based tables with a 10 bits/key bloom filter and an LRU
// block cache of --cache_mb, the WAL on, and one codec (snappy by default) on every level.
// Writes are single-key WriteBatches (each its own atomic, durable-on-sync commit).
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/version.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>

#include "fernbench/engine.h"
#include "util/strings.h"

namespace fern::bench {

namespace {

constexpr int kBloomBitsPerKey = 10;

Status FromRocks(const rocksdb::Status& status) {
  if (status.ok()) return Status::OK();
  if (status.IsNotFound()) return Status::NotFound(status.ToString());
  if (status.IsCorruption()) return Status::Corruption(status.ToString());
  if (status.IsNotSupported()) return Status::NotSupported(status.ToString());
  if (status.IsInvalidArgument()) return Status::InvalidArgument(status.ToString());
  return Status::IOError(status.ToString());
}

Status ParseCompression(const std::string& name, rocksdb::CompressionType* type) {
  if (name == "default" || name == "snappy") {
    *type = rocksdb::kSnappyCompression;
  } else if (name == "none") {
    *type = rocksdb::kNoCompression;
  } else if (name == "zlib") {
    *type = rocksdb::kZlibCompression;
  } else if (name == "zstd") {
    *type = rocksdb::kZSTD;
  } else if (name == "lzma") {
    return Status::NotSupported("RocksDB has no lzma codec");
  } else {
    return Status::InvalidArgument(StrCat("unknown compression ", name));
  }
  return Status::OK();
}

class RocksDbCursor : public EngineCursor {
 public:
  explicit RocksDbCursor(std::unique_ptr<rocksdb::Iterator> iterator)
      : iterator_(std::move(iterator)) {}
  void Seek(std::string_view target) override {
    iterator_->Seek(rocksdb::Slice(target.data(), target.size()));
  }
  void Next() override { iterator_->Next(); }
  bool Valid() const override { return iterator_->Valid(); }
  std::string_view key() const override { return iterator_->key().ToStringView(); }
  std::string_view value() const override { return iterator_->value().ToStringView(); }
  Status status() const override { return FromRocks(iterator_->status()); }

 private:
  std::unique_ptr<rocksdb::Iterator> iterator_;
};

class RocksDbEngine : public Engine {
 public:
  ~RocksDbEngine() override {
    if (db_ != nullptr) (void)Close();
  }

  Status Open(const std::string& dir, const EngineConfig& config) override {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.IncreaseParallelism(
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    options.OptimizeLevelStyleCompaction();
    rocksdb::BlockBasedTableOptions table_options;
    table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
    table_options.block_cache = rocksdb::NewLRUCache(config.cache_bytes);
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
    Status parsed = ParseCompression(config.compression, &options.compression);
    if (!parsed.ok()) return parsed;
    // OptimizeLevelStyleCompaction leaves levels 0-1 uncompressed and picks LZ4 below; with
    // a 512 MiB level 1 that would keep a 2M-key table entirely uncompressed. One codec on
    // every level is what "snappy compression" means to a RocksDB user.
    options.compression_per_level.clear();
    compression_ = config.compression == "default" ? "snappy" : config.compression;
    cache_mb_ = config.cache_bytes >> 20;
    threads_ = options.max_background_jobs;

    rocksdb::DB* db = nullptr;
    Status opened = FromRocks(rocksdb::DB::Open(options, dir, &db));
    if (!opened.ok()) return opened;
    db_.reset(db);
    return Status::OK();
  }

  Status Put(std::string_view key, std::string_view value, bool sync) override {
    rocksdb::WriteOptions write_options;
    write_options.sync = sync;
    return FromRocks(db_->Put(write_options, ToSlice(key), ToSlice(value)));
  }

  Status Delete(std::string_view key, bool sync) override {
    rocksdb::WriteOptions write_options;
    write_options.sync = sync;
    return FromRocks(db_->Delete(write_options, ToSlice(key)));
  }

  Status Get(std::string_view key, std::string* value) override {
    return FromRocks(db_->Get(rocksdb::ReadOptions(), ToSlice(key), value));
  }

  Status NewCursor(std::unique_ptr<EngineCursor>* cursor) override {
    std::unique_ptr<rocksdb::Iterator> iterator(db_->NewIterator(rocksdb::ReadOptions()));
    *cursor = std::make_unique<RocksDbCursor>(std::move(iterator));
    return Status::OK();
  }

  Status Close() override {
    Status closed = FromRocks(db_->Close());
    db_.reset();
    return closed;
  }

  std::string Describe() const override {
    return StrCat("cache_mb=", cache_mb_, ";compression=", compression_,
                  ";bloom_bits=", kBloomBitsPerKey, ";wal=on;background_jobs=", threads_,
                  ";level_style=optimized");
  }

 private:
  static rocksdb::Slice ToSlice(std::string_view bytes) {
    return rocksdb::Slice(bytes.data(), bytes.size());
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::string compression_;
  size_t cache_mb_ = 0;
  int threads_ = 0;
};

}  // namespace

std::unique_ptr<Engine> NewRocksDbEngine() { return std::make_unique<RocksDbEngine>(); }

std::string RocksDbVersion() { return rocksdb::GetRocksVersionAsString(); }

}  // namespace fern::bench
