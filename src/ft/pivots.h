// The pivot keys of a node, with a search index kept in step with them.
//
// Every read and write descends through a node's pivots (a leaf has ~130, one per
// basement). Held as std::strings of more than 15 bytes they live on the heap, so a binary
// search took a cache miss and a memcmp call per probe: `Node::PartitionIndex` and its
// memcmp were ~8% of a seek in memory. Like Basement and MessageBuffer, Pivots keeps the
// longest prefix all its keys share and, per key, the eight bytes after it as a big-endian
// integer (key_head.h), and under the bytewise comparator searches those, comparing whole
// keys only among equal heads.
//
// Mutations rebuild the index (O(n) for n pivots: they come with splits, merges and node
// loads, far rarer than searches), except PushBack of a key that keeps the prefix, which
// appends one head. Not thread-safe for writers; const methods may run concurrently (the
// owning node's pin rules apply).
#ifndef FERN_FT_PIVOTS_H_
#define FERN_FT_PIVOTS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fern/options.h"

namespace fern {

class Pivots {
 public:
  Pivots() = default;

  size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  const std::string& operator[](size_t i) const { return keys_[i]; }
  const std::string& back() const { return keys_.back(); }
  std::vector<std::string>::const_iterator begin() const { return keys_.begin(); }
  std::vector<std::string>::const_iterator end() const { return keys_.end(); }
  const std::vector<std::string>& keys() const { return keys_; }

  void Assign(std::vector<std::string> keys);
  void Clear();
  void PushBack(std::string key);
  void Insert(size_t i, std::string key);
  void Erase(size_t i);
  void PopBack();
  // Keeps the first n keys. REQUIRES: n <= size().
  void Truncate(size_t n);
  // Removes keys [i, size()) and returns them. REQUIRES: i <= size().
  std::vector<std::string> TakeFrom(size_t i);
  void Append(std::vector<std::string> keys);

  // The first index whose key compares above `key` (std::upper_bound), and the first whose
  // key does not compare below it (std::lower_bound). REQUIRES: the keys are sorted under
  // `cmp`.
  size_t UpperBound(std::string_view key, const Comparator& cmp) const {
    return Bound(key, cmp, /*upper=*/true);
  }
  size_t LowerBound(std::string_view key, const Comparator& cmp) const {
    return Bound(key, cmp, /*upper=*/false);
  }

  // Heap memory held.
  size_t MemoryBytes() const;

 private:
  size_t Bound(std::string_view key, const Comparator& cmp, bool upper) const;
  // Recomputes prefix_ and heads_ from keys_.
  void Rebuild();
  // Under the bytewise comparator: the range [*lo, *hi) of indexes whose heads equal key's
  // (all before compare below key, all after above); false when key lies outside the prefix
  // and `*at` is then the answer for both bounds.
  bool HeadRange(std::string_view key, size_t* lo, size_t* hi, size_t* at) const;

  std::vector<std::string> keys_;
  std::string prefix_;           // shared by every key
  std::vector<uint64_t> heads_;  // KeyHead64(keys_[i], prefix_.size())
};

// The pivot for a new boundary between neighbouring partitions whose keys end at `left` and
// start at `right` (left < right under cmp): a key p with left < p <= right, so that both
// partitions keep their rows. Under the bytewise comparator it is the shortest prefix of
// `right` that sorts above `left`: with long keys whose leading bytes differ, pivots stay
// a few bytes long, and so do the leaves and internal nodes a cold read has to load (1 KiB
// keys at a 16 MiB cache: each read's leaf brought ~150 KB of pivots). Other comparators
// get `right` itself: nothing is known of how they order a key's prefixes.
std::string PivotBetween(std::string_view left, std::string_view right, const Comparator& cmp);

}  // namespace fern

#endif  // FERN_FT_PIVOTS_H_
