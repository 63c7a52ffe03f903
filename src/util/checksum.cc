#include "util/checksum.h"

#include <xxhash.h>

namespace fern {

uint64_t Checksum64(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

}  // namespace fern
