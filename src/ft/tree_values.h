// TreeValues: the ValueStore of one tree file. Value blocks are blocks of the file's table
// like nodes, so the file's copy on write, checkpoints and tail compaction treat them alike.
#ifndef FERN_FT_TREE_VALUES_H_
#define FERN_FT_TREE_VALUES_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "fern/options.h"
#include "ft/out_of_line_value.h"
#include "ft/tree_file.h"

namespace fern {

class TreeValues final : public ValueStore {
 public:
  struct Counts {
    uint64_t written = 0;  // value blocks written, and their value bytes
    uint64_t written_bytes = 0;
    uint64_t freed = 0;  // value blocks freed
    uint64_t read = 0;   // value blocks read
  };

  // Values go out of line only in files of format version 3 or later (older readers do not
  // know the reference); `codec` gives the compression for each new value block. `file`
  // outlives this.
  TreeValues(TreeFile* file, absl::AnyInvocable<std::pair<Compression, int>() const> codec);

  size_t out_of_line_threshold() const override { return threshold_; }
  Status Write(std::string_view value, std::string* ref) override;
  void Free(std::string_view ref) override;
  Status Read(std::string_view ref, std::string* value) const override;

  Counts counts() const;

 private:
  TreeFile* const file_;
  const absl::AnyInvocable<std::pair<Compression, int>() const> codec_;
  const size_t threshold_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> written_bytes_{0};
  std::atomic<uint64_t> freed_{0};
  mutable std::atomic<uint64_t> read_{0};
};

}  // namespace fern

#endif  // FERN_FT_TREE_VALUES_H_
