// Pair contents for the cachetable stress tests: "k=<key> v=<version> " then padding whose
// length varies with the version (so a value's size changes as it is rewritten), and the
// parser that reads the version back. A test keeps the version each key must have and
// checks every value it sees against it.
#ifndef FERN_TESTS_CACHETABLE_VERSIONED_DATA_H_
#define FERN_TESTS_CACHETABLE_VERSIONED_DATA_H_

#include <charconv>
#include <cstdint>
#include <string>

#include "util/strings.h"

namespace fern {

inline std::string MakeData(int key, uint64_t version) {
  return StrCat("k=", key, " v=", version, " ", std::string(version % 7 * 5, '.'));
}

// UINT64_MAX if `data` carries no version.
inline uint64_t VersionOf(const std::string& data) {
  const size_t at = data.find(" v=");
  if (at == std::string::npos) return UINT64_MAX;
  uint64_t version = UINT64_MAX;
  std::from_chars(data.data() + at + 3, data.data() + data.size(), version);
  return version;
}

// True if `data` is `key`'s contents at `version`.
inline bool HoldsVersion(const std::string& data, int key, uint64_t version) {
  return VersionOf(data) == version && data.rfind(StrCat("k=", key, " "), 0) == 0;
}

}  // namespace fern

#endif  // FERN_TESTS_CACHETABLE_VERSIONED_DATA_H_
