// The data every fernbench workload uses, exactly as WORKLOADS.md defines it, so that all
// engines see the same keys, values and orders.
#ifndef FERN_BENCH_FERNBENCH_DATA_H_
#define FERN_BENCH_FERNBENCH_DATA_H_

#include <cstdint>
#include <string_view>

namespace fern::bench {

inline constexpr size_t kKeyBytes = 16;
inline constexpr size_t kValueBytes = 100;
// Bytes of user data one put hands the engine; write amplification is wchar / (n * this).
inline constexpr uint64_t kEntryBytes = kKeyBytes + kValueBytes;
// The multiplier of the random order; N must be coprime with it for the order to be a
// permutation.
inline constexpr uint64_t kPermutationMultiplier = 2654435761u;
inline constexpr uint64_t kPermutationOffset = 12345;

// Key i: the 16-byte ASCII decimal printf("%016llu", i). REQUIRES: i < 10^16.
class Key {
 public:
  explicit Key(uint64_t i) { Set(i); }
  void Set(uint64_t i);
  // Becomes key i + 1, in amortized constant time (for walking keys in order).
  void Increment();
  std::string_view view() const { return std::string_view(bytes_, kKeyBytes); }

 private:
  char bytes_[kKeyBytes];
};

// The value for `seed` (i for fills, i + N for overwrite): 50 bytes from splitmix64 seeded
// with `seed` (successive outputs, 8 bytes each little-endian, the 7th contributing its low 2
// bytes), then the same 50 bytes again.
class Value {
 public:
  explicit Value(uint64_t seed) { Set(seed); }
  void Set(uint64_t seed);
  std::string_view view() const { return std::string_view(bytes_, kValueBytes); }

 private:
  char bytes_[kValueBytes];
};

// The random order j -> (j * 2654435761 + 12345) mod n, j = 0..n-1.
class Permutation {
 public:
  // REQUIRES: IsValidN(n).
  explicit Permutation(uint64_t n) : n_(n) {}
  uint64_t operator()(uint64_t j) const {
    unsigned __int128 product = static_cast<unsigned __int128>(j) * kPermutationMultiplier;
    return static_cast<uint64_t>((product + kPermutationOffset) % n_);
  }
  uint64_t n() const { return n_; }

  // True when n > 0 and gcd(2654435761, n) = 1, i.e. the map is a bijection on 0..n-1.
  static bool IsValidN(uint64_t n);

 private:
  uint64_t n_;
};

// Splitmix64: advances `*state` and returns the next output.
uint64_t SplitMix64Next(uint64_t* state);

}  // namespace fern::bench

#endif  // FERN_BENCH_FERNBENCH_DATA_H_
