#include <algorithm>
#include <cstring>

#include "fern/options.h"

namespace fern {

Comparator::~Comparator() = default;

namespace {

class BytewiseComparatorImpl final : public Comparator {
 public:
  int Compare(std::string_view a, std::string_view b) const override {
    size_t n = std::min(a.size(), b.size());
    int r = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n);
    if (r != 0) return r;
    return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
  }
  const char* Name() const override { return "fern.BytewiseComparator"; }
};

}  // namespace

const Comparator* BytewiseComparator() {
  static const BytewiseComparatorImpl comparator;
  return &comparator;
}

}  // namespace fern
