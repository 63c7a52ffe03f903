// RowBatch: the visible rows of one key range [lower, upper) inside one basement, copied out
// of the tree for a cursor, with the range's bounds so that the cursor knows where the
// neighbouring batches start. The range may be all of the basement or a slice of it
// (FractalTree::ReadBatch says which); the batch holds every row visible in it when it was
// read, in key order.
//
// Thread safety: a RowBatch is used by one thread at a time (its cursor's).
#ifndef FERN_FT_ROW_BATCH_H_
#define FERN_FT_ROW_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fern/options.h"
#include "ft/basement.h"
#include "ft/message.h"

namespace fern {

class RowBatch {
 public:
  // A batch for a new cursor: the calling thread's spare if it has one (its buffers grown by
  // the reads of an earlier cursor), else a new one. A program that opens a cursor per seek
  // otherwise grew a fresh batch's buffers every time: at 1 GiB in memory, seeks with a new
  // cursor each ran at 155k/s against 250k/s with one cursor.
  static std::unique_ptr<RowBatch> TakeSpare();
  // Empties `batch` and keeps it as the thread's spare, unless the thread has one already or
  // the batch holds more than kMaxSpareBytes (a scan's batches grow to whole basements).
  static void KeepSpare(std::unique_ptr<RowBatch> batch);
  static constexpr size_t kMaxSpareBytes = size_t{64} << 10;

  // The memory the batch holds, its working memory included.
  size_t memory_bytes() const;

  // Empties the batch (and its bounds); keeps the memory for the next batch.
  void Clear() {
    data_.clear();
    rows_.clear();
    has_lower = has_upper = false;
    lower.clear();
    upper.clear();
    basement_bytes = 0;
  }
  void Add(std::string_view key, std::string_view value) {
    Row row{static_cast<uint32_t>(data_.size()), static_cast<uint32_t>(key.size()),
            static_cast<uint32_t>(value.size())};
    data_.append(key);
    data_.append(value);
    rows_.push_back(row);
  }
  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  // REQUIRES: i < size().
  std::string_view key(size_t i) const {
    return std::string_view(data_).substr(rows_[i].offset, rows_[i].key_size);
  }
  std::string_view value(size_t i) const {
    return std::string_view(data_).substr(rows_[i].offset + rows_[i].key_size, rows_[i].value_size);
  }

  // Binary searches under the tree's comparator: the first row with key >= k, and the first
  // row with key > k (size() if none).
  size_t LowerBound(std::string_view k, const Comparator& cmp) const {
    return Search(k, cmp, /*after_equal=*/false);
  }
  size_t UpperBound(std::string_view k, const Comparator& cmp) const {
    return Search(k, cmp, /*after_equal=*/true);
  }

  // Narrows the batch to [lower, upper) where that is narrower than its own range (a
  // missing bound leaves that side alone), dropping the rows outside.
  void ClipTo(bool has_lower_bound, std::string_view lower_bound, bool has_upper_bound,
              std::string_view upper_bound, const Comparator& cmp) {
    if (has_upper_bound && (!has_upper || cmp.Compare(upper, upper_bound) > 0)) {
      rows_.resize(LowerBound(upper_bound, cmp));
      has_upper = true;
      upper.assign(upper_bound);
    }
    if (has_lower_bound && (!has_lower || cmp.Compare(lower, lower_bound) < 0)) {
      rows_.erase(rows_.begin(),
                  rows_.begin() + static_cast<std::ptrdiff_t>(LowerBound(lower_bound, cmp)));
      has_lower = true;
      lower.assign(lower_bound);
    }
  }

  // The key range [lower, upper) the batch covers; a missing bound is the end of the tree.
  bool has_lower = false;
  bool has_upper = false;
  std::string lower;
  std::string upper;
  // Serialized size of the basement the batch was read from, for a cursor to tell how much
  // of the tree it has scanned (FractalTree::StreamingScanBytes).
  size_t basement_bytes = 0;

  // Working memory of FractalTree::ReadBatch, kept here so that a cursor's steady state
  // allocates nothing. Not part of the batch's contents.
  struct Scratch {
    std::vector<Message> keyed;       // pending keyed messages in the range
    std::vector<Message> broadcasts;  // pending broadcast messages
    std::vector<uint32_t> order;      // indexes into `keyed`, by (key, MSN)
    Basement row;                     // one row with its pending messages applied
  };
  Scratch& scratch() { return scratch_; }

 private:
  struct Row {
    uint32_t offset;
    uint32_t key_size;
    uint32_t value_size;
  };

  size_t Search(std::string_view k, const Comparator& cmp, bool after_equal) const {
    size_t lo = 0;
    size_t hi = rows_.size();
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = cmp.Compare(key(mid), k);
      if (c < 0 || (after_equal && c == 0)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  std::string data_;  // each row's key then value, back to back
  std::vector<Row> rows_;
  Scratch scratch_;
};

}  // namespace fern

#endif  // FERN_FT_ROW_BATCH_H_
