// RowBatch: the visible rows of one basement, materialized for a cursor, with the key
// range the basement covers so the cursor knows where the next batch starts.
#ifndef FERN_FT_ROW_BATCH_H_
#define FERN_FT_ROW_BATCH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fern {

class RowBatch {
 public:
  void Clear() {
    data_.clear();
    rows_.clear();
    has_lower = has_upper = false;
    lower.clear();
    upper.clear();
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
  std::string_view key(size_t i) const {
    return std::string_view(data_).substr(rows_[i].offset, rows_[i].key_size);
  }
  std::string_view value(size_t i) const {
    return std::string_view(data_).substr(rows_[i].offset + rows_[i].key_size, rows_[i].value_size);
  }

  // The basement's key range [lower, upper); a missing bound is the end of the tree.
  bool has_lower = false;
  bool has_upper = false;
  std::string lower;
  std::string upper;

 private:
  struct Row {
    uint32_t offset;
    uint32_t key_size;
    uint32_t value_size;
  };
  std::string data_;
  std::vector<Row> rows_;
};

}  // namespace fern

#endif  // FERN_FT_ROW_BATCH_H_
