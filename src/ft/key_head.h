// Key heads: a sorted run of keys that all start with one shared prefix can be searched by
// the four (or eight) key bytes that follow it, read as a big-endian integer (missing bytes
// are zero).
// Under the bytewise comparator, for two keys that share the prefix, a smaller head means a
// smaller key and a larger head a larger key; equal heads say nothing, so searches compare
// whole keys among them. Basement and MessageBuffer keep heads next to their sorted offset
// arrays, so a binary search reads 16 heads per cache line instead of one key per miss.
#ifndef FERN_FT_KEY_HEAD_H_
#define FERN_FT_KEY_HEAD_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fern {

inline uint32_t KeyHead(std::string_view key, size_t prefix_size) {
  uint32_t head = 0;
  for (size_t i = prefix_size; i < prefix_size + 4; ++i) {
    head = (head << 8) | (i < key.size() ? static_cast<uint8_t>(key[i]) : 0u);
  }
  return head;
}

// The same with eight bytes, for runs whose keys share less (a message buffer spans a whole
// child's key range, where four bytes after the shared prefix leave many ties).
inline uint64_t KeyHead64(std::string_view key, size_t prefix_size) {
  uint64_t head = 0;
  for (size_t i = prefix_size; i < prefix_size + 8; ++i) {
    head = (head << 8) | (i < key.size() ? static_cast<uint8_t>(key[i]) : 0u);
  }
  return head;
}

// The length of the longest common prefix of a and b.
inline size_t SharedPrefixLength(std::string_view a, std::string_view b) {
  size_t n = a.size() < b.size() ? a.size() : b.size();
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace fern

#endif  // FERN_FT_KEY_HEAD_H_
