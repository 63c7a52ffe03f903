// TreeValues: the ValueStore of one tree file. Value blocks are blocks of the file's table
// like nodes, so the file's copy on write, checkpoints and tail compaction treat them alike.
//
// Reads go through the tree's cachetable: a value block read is cached as a pair of its own
// (ValueBlock), under the same budget and clock as the nodes, so a hot big row is read from
// disk once, as it was when its value lived in a cached leaf. Value pairs are never dirty (a
// block is written whole before any entry references it) and are removed when the block is
// freed, before its number can be used again.
#ifndef FERN_FT_TREE_VALUES_H_
#define FERN_FT_TREE_VALUES_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "cachetable/cachetable.h"
#include "fern/options.h"
#include "ft/out_of_line_value.h"
#include "ft/tree_file.h"

namespace fern {

// A value block's value, cached. Fetched by the tree's FetchBlock for a block that starts
// with the value block magic.
class ValueBlock final : public CacheValue {
 public:
  explicit ValueBlock(std::string value) : value_(std::move(value)) {}
  const std::string& value() const { return value_; }
  size_t MemoryBytes() const override { return sizeof(*this) + value_.capacity(); }

 private:
  const std::string value_;
};

// Whether a cached value is a value block rather than a node.
inline bool IsValueBlockPair(const CacheValue& value) {
  return typeid(value) == typeid(ValueBlock);
}

class TreeValues final : public ValueStore {
 public:
  struct Counts {
    uint64_t written = 0;  // value blocks written, and their value bytes
    uint64_t written_bytes = 0;
    uint64_t freed = 0;  // value blocks freed
    uint64_t read = 0;   // value blocks read from disk (cache misses)
    // Writes that failed (the value then stays inline in its entry, and the next rewrite of
    // the entry tries again).
    uint64_t write_failures = 0;
  };

  // Values go out of line only in files of format version 3 or later (older readers do not
  // know the reference); `codec` gives the compression for each new value block. `file`
  // outlives this.
  TreeValues(TreeFile* file, absl::AnyInvocable<std::pair<Compression, int>() const> codec);

  // From now on reads are cached in `cache` as pairs of `file_id` (the tree's), whose owner
  // fetches value blocks with Fetch. Without it every read goes to disk.
  void AttachCache(Cachetable* cache, CacheFileId file_id) {
    cache_ = cache;
    file_id_ = file_id;
  }
  // Reads value block `b` into a new pair value (the owner's FetchBlock).
  Status Fetch(BlockNum b, std::unique_ptr<CacheValue>* value) const;

  size_t out_of_line_threshold() const override { return threshold_; }
  Status Write(std::string_view value, std::string* ref) override;
  void Free(std::string_view ref) override;
  Status Read(std::string_view ref, std::string* value) const override;
  bool IsDamaged(std::string_view ref) const override;

  Counts counts() const;

 private:
  Status ReadFromDisk(BlockNum b, std::string* value) const;

  TreeFile* const file_;
  Cachetable* cache_ = nullptr;
  CacheFileId file_id_ = 0;
  const absl::AnyInvocable<std::pair<Compression, int>() const> codec_;
  const size_t threshold_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> written_bytes_{0};
  std::atomic<uint64_t> freed_{0};
  mutable std::atomic<uint64_t> read_{0};
  std::atomic<uint64_t> write_failures_{0};
};

}  // namespace fern

#endif  // FERN_FT_TREE_VALUES_H_
