// Checksums for every block, partition, header and log record.
//
// XXH3 (libxxhash) is used rather than CRC32C: it runs at memory bandwidth on any x86-64
// without needing SSE4.2 dispatch, is a Debian package, and its 64-bit output makes an
// undetected corruption far less likely than a 32-bit CRC. Formats that store 32 bits keep
// the low half of the 64-bit hash.
#ifndef FERN_UTIL_CHECKSUM_H_
#define FERN_UTIL_CHECKSUM_H_

#include <cstdint>
#include <string_view>

namespace fern {

uint64_t Checksum64(std::string_view data);
inline uint32_t Checksum32(std::string_view data) {
  return static_cast<uint32_t>(Checksum64(data));
}

}  // namespace fern

#endif  // FERN_UTIL_CHECKSUM_H_
