// The small interface fernbench drives every engine through, and the registry of the
// backends this binary was built with.
//
// Threads: Put, Get, Delete and NewCursor may be called from many threads at once between
// Open and Close; an EngineCursor is used by one thread. Open and Close are called once each,
// from one thread, with no other call in flight.
#ifndef FERN_BENCH_FERNBENCH_ENGINE_H_
#define FERN_BENCH_FERNBENCH_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fern/status.h"

namespace fern::bench {

struct EngineConfig {
  size_t cache_bytes = size_t{64} << 20;
  // "default" (the engine's own choice: zstd for Fern, snappy for RocksDB) or one of
  // none, snappy, zlib, zstd, lzma. An engine without the codec fails Open with NotSupported
  // (fernbench leaves such engines out before it runs anything: see EngineInfo::codecs).
  std::string compression = "default";
  // Number of keys the workloads use; lets an engine size fixed structures (LMDB's map).
  uint64_t n = 0;
  // Client threads that call the engine at once (--threads).
  int threads = 1;
  // True for the fillsync workload: the database is opened for fsync-per-commit use.
  bool sync_commits = false;
  // Fern only: TableOptions::basement_bytes for a table it creates (0: Fern's default).
  uint32_t fern_basement_bytes = 0;
  uint32_t fern_node_bytes = 0;      // 0: Fern's default
  int32_t fern_buffer_percent = -1;  // Options::buffer_budget_percent; -1: Fern's default
};

class EngineCursor {
 public:
  virtual ~EngineCursor() = default;
  virtual void Seek(std::string_view target) = 0;  // first key >= target
  virtual void Next() = 0;                         // REQUIRES: Valid()
  virtual bool Valid() const = 0;
  virtual std::string_view key() const = 0;  // valid until the cursor moves
  virtual std::string_view value() const = 0;
  virtual Status status() const = 0;  // non-OK when iteration stopped on an error
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Opens (creating if missing) the database in `dir`, which exists.
  virtual Status Open(const std::string& dir, const EngineConfig& config) = 0;
  // Each of Put and Delete is one transaction of its own, committed with an fsync when
  // `sync` is true and without one otherwise.
  virtual Status Put(std::string_view key, std::string_view value, bool sync) = 0;
  virtual Status Delete(std::string_view key, bool sync) = 0;
  // NotFound when the key is absent.
  virtual Status Get(std::string_view key, std::string* value) = 0;
  // A cursor over a consistent view of the table as of now.
  virtual Status NewCursor(std::unique_ptr<EngineCursor>* cursor) = 0;
  // Finishes everything the engine does on an orderly shutdown; destroys all state.
  virtual Status Close() = 0;
  // The configuration actually used, for the CSV `config` column: `key=value` pairs
  // separated by ';' (never a comma). Valid after Open.
  virtual std::string Describe() const = 0;
};

struct EngineInfo {
  std::string name;  // as given to --engines
  std::string version;
  std::unique_ptr<Engine> (*factory)();
  // The --compression values the engine honours besides "default".
  std::vector<std::string> codecs;
};

// Whether `info` can run with --compression `compression`.
bool HasCodec(const EngineInfo& info, std::string_view compression);

// The backends compiled into this binary, in the default --engines order.
std::vector<EngineInfo> BuiltEngines();
// Backends this binary lacks, each with the reason, for --help.
std::vector<std::string> MissingEngines();
const EngineInfo* FindEngine(std::string_view name);

// Backend factories; each exists only when its library was found at build time.
std::unique_ptr<Engine> NewFernEngine();
std::unique_ptr<Engine> NewRocksDbEngine();
std::unique_ptr<Engine> NewLmdbEngine();
std::string FernVersion();
std::string RocksDbVersion();
std::string LmdbVersion();

}  // namespace fern::bench

#endif  // FERN_BENCH_FERNBENCH_ENGINE_H_
