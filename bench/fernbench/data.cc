#include "fernbench/data.h"

#include <cstring>
#include <numeric>

namespace fern::bench {

namespace {

constexpr size_t kRandomBytes = kValueBytes / 2;  // the value is these bytes twice

}  // namespace

uint64_t SplitMix64Next(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

void Key::Set(uint64_t i) {
  for (size_t pos = kKeyBytes; pos > 0; --pos) {
    bytes_[pos - 1] = static_cast<char>('0' + i % 10);
    i /= 10;
  }
}

void Key::Increment() {
  for (size_t pos = kKeyBytes; pos > 0; --pos) {
    if (bytes_[pos - 1] != '9') {
      ++bytes_[pos - 1];
      return;
    }
    bytes_[pos - 1] = '0';
  }
}

void Value::Set(uint64_t seed) {
  uint64_t state = seed;
  size_t filled = 0;
  while (filled < kRandomBytes) {
    uint64_t word = SplitMix64Next(&state);
    for (int b = 0; b < 8 && filled < kRandomBytes; ++b) {
      bytes_[filled++] = static_cast<char>(word >> (8 * b));
    }
  }
  std::memcpy(bytes_ + kRandomBytes, bytes_, kRandomBytes);
}

bool Permutation::IsValidN(uint64_t n) { return n > 0 && std::gcd(kPermutationMultiplier, n) == 1; }

}  // namespace fern::bench
