// Options for opening an Env, a Table and a transaction.
#ifndef FERN_OPTIONS_H_
#define FERN_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace fern {

enum class Compression : uint8_t { kNone, kSnappy, kZlib, kZstd, kLzma };

enum class Isolation : uint8_t {
  kReadUncommitted,
  kReadCommitted,  // the default
  kSnapshot,       // repeatable read
  kSerializable
};

// The function that Table::Update and Table::UpdateAll apply, lazily, wherever the message
// lands. `old_value` is nullptr when the key is absent. Return the new value, or std::nullopt
// to delete the row. It must be deterministic: recovery replays it. A result longer than
// kMaxValueBytes is not stored: the row stays as the update found it (an update runs where
// the message lands, long after Update returned, so there is no caller to refuse it to).
// Nor is an update of a row whose stored value is damaged (it fails its checksum): the
// function is not called, and the row's reads keep reporting the damage. fern.stats counts
// both per table (update_results_too_big, updates_of_damaged_rows).
using UpdateFunction = std::function<std::optional<std::string>(
    std::string_view key, const std::string_view* old_value, std::string_view extra)>;

struct Options {  // for Env::Open
  bool create_if_missing = true;
  bool error_if_exists = false;
  size_t cache_bytes = size_t{256} << 20;  // the cachetable's memory budget, honoured
  bool sync_commits = true;                // Commit returns only after its log record is fsynced
  uint32_t checkpoint_period_ms = 60000;
  uint32_t cleaner_period_ms = 1000;
  uint32_t lock_timeout_ms = 4000;
  int background_threads = 0;      // 0: one per core
  UpdateFunction update_function;  // may be empty when Update/UpdateAll are not used
  // 0 (off) to 60. Once the cache is full, the message buffers of the nodes just above the
  // leaves may together fill this percent of cache_bytes (each up to 4x its table's
  // node_bytes, and never more than node_bytes for one child) before they flush, instead of
  // node_bytes each: a flush into an uncached leaf rewrites the whole leaf, so bigger flushes
  // write less. The price is cache the reads no longer have. fernbench, N = 2,000,000, 60
  // against 0 at a 64 MiB cache: bytes written -35% (fillrandom) and -30% (overwrite),
  // overwrite +30-45% puts/s; readrandom -8%, readseq -10%, seekrandom -4% (3 rounds on kept
  // databases). At 128 MiB, where more of the data fits: bytes written -38% and -50%, but
  // readrandom -10-15%, seekrandom -25%, readseq -30%. With the cache not full (all data in
  // memory) nothing changes. Set 0 for read-mostly data between one and a few times the
  // cache.
  uint32_t buffer_budget_percent = 60;
  // With checkpoint_period_ms set, a checkpoint also starts as soon as the log has grown by
  // this many bytes since the last one began, so that the log's files (and what a crash
  // replays) stay bounded however fast the writes come. 0: the larger of 256 MiB and 4x
  // cache_bytes (fernbench's workloads each log less than that).
  uint64_t checkpoint_log_bytes = 0;
  // An unsynced commit (sync_commits false, or TxnOptions::sync false) waits in the log's
  // memory buffer until something writes the buffer to the log file: the buffer filling (1
  // MiB of records), a synced commit, a checkpoint, or this period passing. Within about
  // this many milliseconds of its commit a record is in the file (not fsynced), so a crash
  // of the process alone (kill -9, an abort) keeps it; an OS crash or power loss may still
  // lose it. 0: no time bound. Under a steady stream of writes the buffer fills first and
  // nothing changes; the bound costs a write-out per period while commits trickle in.
  uint32_t log_flush_period_ms = 100;
};

// Orders keys. Its Name() is stored with the table: reopening with another name is
// InvalidArgument. Implementations must be thread-safe and outlive every Env using them.
class Comparator {
 public:
  virtual ~Comparator();
  virtual int Compare(std::string_view a, std::string_view b) const = 0;
  virtual const char* Name() const = 0;
};

// The default: memcmp order, shorter first on ties. Name: "fern.BytewiseComparator".
const Comparator* BytewiseComparator();

struct TableOptions {                      // for Env::OpenTable; stored in the table on create
  const Comparator* comparator = nullptr;  // nullptr: BytewiseComparator()
  Compression compression = Compression::kZstd;
  int compression_level = 0;  // 0: the codec's default
  // A leaf splits above node_bytes, and an internal node flushes a child's buffer when its
  // buffers hold more. 2 MiB, not 4: fernbench at a 64 MiB cache (N = 2,000,000) ran
  // fillrandom and overwrite 1.5-1.7x faster (the evictor, which gives memory back to the
  // kernel when RSS passes the budget plus 40 MiB, had to far less often), reads and bytes
  // written unchanged. 1 MiB gained another 20-25% there but cost a quarter of a cold scan's
  // speed in memory; 2 and 1 MiB both lose about a quarter of fillseq in memory (the tree
  // grows a level). bench/README.md has the figures.
  uint32_t node_bytes = uint32_t{2} << 20;
  // The unit a point read fetches and decompresses when it misses the cache. 16 KiB, not
  // 64: fernbench (N = 2,000,000, cache 64 MiB) spent 2.7x less CPU on readrandom and
  // seekrandom, for ~14% more on cold in-memory scans and seeks and no cost on writes
  // (bench/README.md); 8 KiB saved another third at 64 MiB but cost 25-30% in memory.
  uint32_t basement_bytes = uint32_t{16} << 10;
};

struct TxnOptions {
  Isolation isolation = Isolation::kReadCommitted;
  std::optional<bool> sync;  // overrides Options::sync_commits for this txn
};

// Limits on what one row may hold; larger is InvalidArgument.
inline constexpr size_t kMaxKeyBytes = size_t{32} << 10;
inline constexpr size_t kMaxValueBytes = size_t{32} << 20;

}  // namespace fern

#endif  // FERN_OPTIONS_H_
