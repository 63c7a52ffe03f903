#include "ft/pivots.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <utility>

#include "ft/key_head.h"

namespace fern {

std::string PivotBetween(std::string_view left, std::string_view right, const Comparator& cmp) {
  if (&cmp != BytewiseComparator()) return std::string(right);
  const size_t limit = std::min(left.size(), right.size());
  const size_t common = static_cast<size_t>(
      std::mismatch(left.begin(), left.begin() + static_cast<std::ptrdiff_t>(limit), right.begin())
          .first -
      left.begin());
  // right > left: either they differ at `common`, where right's byte is the larger, or left
  // is a proper prefix of right. The first common + 1 bytes of right sort above left either
  // way, and no prefix of right sorts above it.
  return std::string(right.substr(0, common + 1));
}

void Pivots::Assign(std::vector<std::string> keys) {
  keys_ = std::move(keys);
  Rebuild();
}

void Pivots::Clear() {
  keys_.clear();
  Rebuild();
}

void Pivots::PushBack(std::string key) {
  const bool keeps_prefix = !keys_.empty() && key.size() >= prefix_.size() &&
                            std::string_view(key).substr(0, prefix_.size()) == prefix_;
  keys_.push_back(std::move(key));
  if (keeps_prefix) {
    heads_.push_back(KeyHead64(keys_.back(), prefix_.size()));
  } else {
    Rebuild();
  }
}

void Pivots::Insert(size_t i, std::string key) {
  keys_.insert(keys_.begin() + static_cast<std::ptrdiff_t>(i), std::move(key));
  Rebuild();
}

void Pivots::Erase(size_t i) {
  keys_.erase(keys_.begin() + static_cast<std::ptrdiff_t>(i));
  Rebuild();
}

void Pivots::PopBack() {
  keys_.pop_back();
  Rebuild();
}

void Pivots::Truncate(size_t n) {
  keys_.resize(n);
  Rebuild();
}

std::vector<std::string> Pivots::TakeFrom(size_t i) {
  std::vector<std::string> taken(
      std::make_move_iterator(keys_.begin() + static_cast<std::ptrdiff_t>(i)),
      std::make_move_iterator(keys_.end()));
  keys_.resize(i);
  Rebuild();
  return taken;
}

void Pivots::Append(std::vector<std::string> keys) {
  for (std::string& key : keys) keys_.push_back(std::move(key));
  Rebuild();
}

void Pivots::Rebuild() {
  prefix_.clear();
  heads_.clear();
  if (keys_.empty()) return;
  // Every key is compared, not just the first and last: under another comparator the keys
  // need not be in bytewise order (the heads are then unused, but the prefix stays true).
  size_t shared = keys_[0].size();
  for (const std::string& key : keys_) {
    shared = std::min(shared, SharedPrefixLength(keys_[0], key));
  }
  prefix_.assign(keys_[0], 0, shared);
  heads_.reserve(keys_.size());
  for (const std::string& key : keys_) heads_.push_back(KeyHead64(key, shared));
}

bool Pivots::HeadRange(std::string_view key, size_t* lo, size_t* hi, size_t* at) const {
  const size_t n = keys_.size();
  // Every key starts with prefix_: a key that does not sorts before or after all of them.
  const size_t shared = std::min(key.size(), prefix_.size());
  const int c = shared == 0 ? 0 : std::memcmp(key.data(), prefix_.data(), shared);
  if (c != 0) {
    *at = c < 0 ? 0 : n;
    return false;
  }
  if (key.size() < prefix_.size()) {  // a proper prefix of every key: below all of them
    *at = 0;
    return false;
  }
  const uint64_t head = KeyHead64(key, prefix_.size());
  *lo = static_cast<size_t>(std::lower_bound(heads_.begin(), heads_.end(), head) - heads_.begin());
  *hi = static_cast<size_t>(
      std::upper_bound(heads_.begin() + static_cast<std::ptrdiff_t>(*lo), heads_.end(), head) -
      heads_.begin());
  return true;
}

size_t Pivots::Bound(std::string_view key, const Comparator& cmp, bool upper) const {
  size_t lo = 0;
  size_t hi = keys_.size();
  size_t at;
  const bool bytewise = &cmp == BytewiseComparator();
  if (bytewise && !keys_.empty() && !HeadRange(key, &lo, &hi, &at)) return at;
  // The first key in [lo, hi) above `key` (upper) or not below it.
  auto it = std::partition_point(keys_.begin() + static_cast<std::ptrdiff_t>(lo),
                                 keys_.begin() + static_cast<std::ptrdiff_t>(hi),
                                 [&cmp, bytewise, upper, key](const std::string& pivot) {
                                   const int c = bytewise ? std::string_view(pivot).compare(key)
                                                          : cmp.Compare(pivot, key);
                                   return upper ? c <= 0 : c < 0;
                                 });
  return static_cast<size_t>(it - keys_.begin());
}

size_t Pivots::MemoryBytes() const {
  size_t total = keys_.capacity() * sizeof(std::string) + heads_.capacity() * sizeof(uint64_t) +
                 prefix_.capacity();
  for (const std::string& key : keys_) total += key.capacity();
  return total;
}

}  // namespace fern
