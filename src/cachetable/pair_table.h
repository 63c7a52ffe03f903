// PairTable: the cachetable's (file, block) -> Pair map, split into kPairBuckets buckets that
// each have their own mutex, so that pins of different pairs do not serialize on one lock
// (PerconaFT's pair_list locks per bucket the same way).
//
// A bucket's mutex guards its map and its hit and miss counts; the pin hit path takes it and
// no other table mutex. Which lock guards what else, and the order they are taken in, is
// stated in cachetable_internal.h.
//
// Thread-safety: BucketOf may be called from any thread; a bucket's fields only under its
// mutex.
#ifndef FERN_CACHETABLE_PAIR_TABLE_H_
#define FERN_CACHETABLE_PAIR_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "cachetable/annotated_mutex.h"
#include "cachetable/pair.h"

namespace fern {

// A power of two. 256 buckets of one cache line each: 16 KiB per cachetable, and two hot
// pairs share a bucket with probability 1/256.
inline constexpr int kPairBucketBits = 8;
inline constexpr size_t kPairBuckets = size_t{1} << kPairBucketBits;

// One cache line each, so that threads working in different buckets do not share a line.
struct alignas(64) PairBucket {
  AnnotatedMutex mu;
  absl::flat_hash_map<PairKey, Pair*> pairs ABSL_GUARDED_BY(mu);
  uint64_t hits ABSL_GUARDED_BY(mu) = 0;
  uint64_t misses ABSL_GUARDED_BY(mu) = 0;
};

class PairTable {
 public:
  PairTable() = default;
  PairTable(const PairTable&) = delete;
  PairTable& operator=(const PairTable&) = delete;

  // The bucket is chosen by the hash's top bits: the bucket's own map uses the low bits (its
  // control bytes and probe start), which would otherwise be the same for all its keys.
  PairBucket& BucketOf(const PairKey& key) {
    const uint64_t hash = absl::Hash<PairKey>()(key);
    return buckets_[hash >> (64 - kPairBucketBits)];
  }

  PairBucket& bucket(size_t i) { return buckets_[i]; }

 private:
  std::array<PairBucket, kPairBuckets> buckets_;
};

}  // namespace fern

#endif  // FERN_CACHETABLE_PAIR_TABLE_H_
