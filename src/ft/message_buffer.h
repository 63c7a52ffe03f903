// The buffer of messages an internal node keeps for one child.
//
// A FIFO in MSN order (the tree appends messages in increasing MSN order) plus an index of
// the non-broadcast messages sorted by (key under the comparator, MSN). Broadcast messages
// (IsBroadcast) are kept in their own offset list, in MSN order, and are not in the key index.
//
// Layout: every message is encoded (EncodeMessage) into one contiguous arena in FIFO order;
// the indexes are arrays of 32-bit arena offsets, so an append costs no heap allocation beyond
// amortized arena and index growth. The key index is a sorted main array plus a small
// unsorted tail of recent appends; when the tail reaches its bound it is sorted and merged
// into the main array (kIndexTailBound; the figures that chose it are in message_buffer.cc).
// Queries binary-search the main array and scan the tail, so const methods never mutate.
//
// Thread safety: const methods may run concurrently with each other; Append, Clear, Swap,
// CopyFrom (of its target) and Deserialize need exclusive access (the owning node's write
// lock).
//
// Serialized form, format version 1 (Serialize / Deserialize):
//
//   offset   size       meaning
//   0        varint64   n = number of messages
//   ...      ...        n messages in FIFO order, each encoded as in message.h; MSNs are
//                       strictly increasing and nonzero
//
// The serialized form carries no length or checksum: the node format that embeds it frames
// and checksums it.
#ifndef FERN_FT_MESSAGE_BUFFER_H_
#define FERN_FT_MESSAGE_BUFFER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "fern/options.h"
#include "fern/status.h"
#include "ft/message.h"
#include "util/chunk_allocator.h"

namespace fern {

class MessageBuffer {
 public:
  // Appends between merges of the key index's tail into its sorted main array.
  static constexpr size_t kIndexTailBound = 64;

  MessageBuffer() = default;

  // Copies m (key and value included) into the buffer. REQUIRES: m.msn is greater than every
  // MSN held; `cmp` is the comparator of every other call on this buffer; bytes() stays
  // below 4 GiB.
  void Append(const Message& m, const Comparator& cmp);

  // A commit in place of a kCommitAny message: if the newest message for `key` here is an
  // insert or delete whose xid stack is exactly {xid}, turns it into the same write
  // autocommitted with committed_by = xid (the encodings differ in one byte) and returns
  // true; otherwise changes nothing and returns false. Applying the result is applying the
  // write and then a commit of xid, provided xid has no other write on `key` anywhere in the
  // tree (the caller's promise). Needs exclusive access, like Append.
  bool CommitInPlace(std::string_view key, TxnId xid, const Comparator& cmp);

  size_t count() const { return count_; }  // all messages
  size_t broadcast_count() const { return broadcasts_.size(); }
  // Messages that need the UpdateFunction to apply (kUpdate, kUpdateBroadcast).
  size_t update_count() const { return update_count_; }
  bool empty() const { return count_ == 0; }
  // Sum of EncodedMessageSize over the held messages (the weight the tree uses to pick the
  // heaviest buffer); also the size of Serialize's output less its count prefix.
  size_t bytes() const { return arena_.size(); }
  // Heap memory held: arena and index capacity.
  size_t memory_bytes() const;
  Msn max_msn() const { return max_msn_; }  // 0 if empty

  // Every message in MSN (FIFO) order.
  void ForEach(const std::function<void(const Message&)>& fn) const;
  template <typename Fn>
  void ForEach(Fn&& fn) const;

  // The non-broadcast messages whose key compares equal to `key`, in MSN order.
  void ForEachWithKey(std::string_view key, const Comparator& cmp,
                      const std::function<void(const Message&)>& fn) const;
  template <typename Fn>
  void ForEachWithKey(std::string_view key, const Comparator& cmp, Fn&& fn) const;

  // The newest non-broadcast message whose key compares equal to `key`, into *out (views
  // into this buffer); false if there is none. O(log n) however many the key has.
  bool NewestWithKey(std::string_view key, const Comparator& cmp, Message* out) const;

  // The non-broadcast messages with *lower <= key < *upper (a null bound is unbounded), in
  // (key, MSN) order. Broadcast messages are not included: see ForEachBroadcast.
  void ForEachInRange(const std::string_view* lower, const std::string_view* upper,
                      const Comparator& cmp, const std::function<void(const Message&)>& fn) const;
  template <typename Fn>
  void ForEachInRange(const std::string_view* lower, const std::string_view* upper,
                      const Comparator& cmp, Fn&& fn) const;

  // The broadcast messages, in MSN order.
  void ForEachBroadcast(const std::function<void(const Message&)>& fn) const;
  template <typename Fn>
  void ForEachBroadcast(Fn&& fn) const;

  // Drops every message; keeps the memory for reuse.
  void Clear();
  void Swap(MessageBuffer& other);
  // Makes this buffer hold exactly other's messages, indexes included, so that every query
  // answers as on `other`; the copy shares nothing with it. Allocates other's sizes, not
  // its spare capacity (checkpoint clones copy whole nodes of buffers).
  void CopyFrom(const MessageBuffer& other);

  // Appends the serialized form (table above) to *out.
  void Serialize(std::string* out) const;
  // Replaces *out with the buffer serialized in `in` (exactly: trailing bytes are an error),
  // rebuilding the key index with `cmp`. Malformed bytes or MSNs out of order are Corruption,
  // and leave *out unchanged.
  static Status Deserialize(std::string_view in, const Comparator& cmp, MessageBuffer* out);
  // The same, taking `in`'s buffer as the arena rather than copying every message (a
  // node read from disk then needs one buffer per partition, not two). On error `in` is
  // left as it was.
  static Status Deserialize(ChunkString&& in, const Comparator& cmp, MessageBuffer* out);

 private:
  // Decodes `count` messages from `payload` (the bytes after the count; `header_bytes` is
  // the count's size, for error positions) into this empty buffer's offsets, checking MSN
  // order; the caller then sorts and indexes them. With `copy` each message is re-encoded
  // into the arena; without, the offsets are into `payload`, which is to become the arena.
  Status IndexPayload(std::string_view payload, uint64_t count, size_t header_bytes, bool copy);
  Message MessageAt(uint32_t offset) const;
  std::string_view KeyAt(uint32_t offset) const;
  // First position in sorted_ whose key is >= key. Under BytewiseComparator() it searches
  // heads_ and reads keys only where heads tie. `from`: a position known to be at or before
  // the answer (a range's upper bound searched after its lower one): the few positions after
  // it are looked at first, since a range read by a cursor batch holds only a few messages.
  size_t SortedLowerBound(std::string_view key, const Comparator& cmp, size_t from = 0) const;
  // Binary search of sorted_[lo, hi) by whole keys.
  size_t SearchSorted(std::string_view key, const Comparator& cmp, size_t lo, size_t hi) const;
  // Whether the key of sorted_[i] compares equal to `key`; unequal heads answer without
  // reading the message.
  bool SortedKeyIs(size_t i, std::string_view key, const Comparator& cmp) const;
  // Recomputes prefix_ and heads_ from sorted_.
  void RebuildIndex(const Comparator& cmp);
  // Sorts tail_ and merges it into sorted_.
  void MergeTail(const Comparator& cmp);
  // Sorts offsets by (key, offset): offsets grow in FIFO order, so this is (key, MSN) order.
  void SortByKey(std::vector<uint32_t>* offsets, const Comparator& cmp) const;

  ChunkString arena_;             // every message, encoded, in FIFO order
  std::vector<uint32_t> sorted_;  // non-broadcast offsets sorted by (key, MSN)
  // The search index of sorted_ (key_head.h): every key in sorted_ starts with prefix_, and
  // heads_[i] = KeyHead64(key of sorted_[i], prefix_.size()); rebuilt by Deserialize, kept
  // in step by MergeTail. A keyed lookup in a root buffer of 27,000 messages (fernbench,
  // 200,000 keys) otherwise misses the cache on both sorted_ and the arena at most probes.
  // Eight bytes, not four: a buffer spans a child's whole key range, so its keys share a
  // short prefix, and four bytes after it tied for 75% of fernbench's point reads.
  std::vector<uint64_t> heads_;
  std::string prefix_;
  std::vector<uint32_t> tail_;        // non-broadcast offsets not yet in sorted_, FIFO order
  std::vector<uint32_t> broadcasts_;  // broadcast offsets, FIFO order
  size_t count_ = 0;
  size_t update_count_ = 0;
  Msn max_msn_ = 0;
};

// ---- template implementations -------------------------------------------------------------

template <typename Fn>
void MessageBuffer::ForEach(Fn&& fn) const {
  Decoder in(arena_);
  Message m;
  while (!in.empty() && DecodeMessage(&in, &m)) fn(static_cast<const Message&>(m));
}

template <typename Fn>
void MessageBuffer::ForEachWithKey(std::string_view key, const Comparator& cmp, Fn&& fn) const {
  for (size_t i = SortedLowerBound(key, cmp); i < sorted_.size(); ++i) {
    if (!SortedKeyIs(i, key, cmp)) break;
    fn(static_cast<const Message&>(MessageAt(sorted_[i])));
  }
  // Every tail message is newer than every message in sorted_.
  for (uint32_t offset : tail_) {
    if (cmp.Compare(KeyAt(offset), key) == 0) fn(static_cast<const Message&>(MessageAt(offset)));
  }
}

template <typename Fn>
void MessageBuffer::ForEachInRange(const std::string_view* lower, const std::string_view* upper,
                                   const Comparator& cmp, Fn&& fn) const {
  size_t begin = lower == nullptr ? 0 : SortedLowerBound(*lower, cmp);
  size_t end = upper == nullptr ? sorted_.size() : SortedLowerBound(*upper, cmp, begin);
  // The tail's messages in range, sorted by (key, offset); the inline capacity is the tail
  // bound, so this never touches the heap.
  absl::InlinedVector<uint32_t, kIndexTailBound> tail;
  for (uint32_t offset : tail_) {
    std::string_view k = KeyAt(offset);
    if (lower != nullptr && cmp.Compare(k, *lower) < 0) continue;
    if (upper != nullptr && cmp.Compare(k, *upper) >= 0) continue;
    tail.push_back(offset);
  }
  std::sort(tail.begin(), tail.end(), [&](uint32_t a, uint32_t b) {
    int c = cmp.Compare(KeyAt(a), KeyAt(b));
    return c < 0 || (c == 0 && a < b);
  });
  size_t t = 0;
  for (size_t i = begin; i < end; ++i) {
    // On equal keys the main array's message is older (it was merged before the tail's).
    while (t < tail.size() && cmp.Compare(KeyAt(tail[t]), KeyAt(sorted_[i])) < 0) {
      fn(static_cast<const Message&>(MessageAt(tail[t++])));
    }
    fn(static_cast<const Message&>(MessageAt(sorted_[i])));
  }
  while (t < tail.size()) fn(static_cast<const Message&>(MessageAt(tail[t++])));
}

template <typename Fn>
void MessageBuffer::ForEachBroadcast(Fn&& fn) const {
  for (uint32_t offset : broadcasts_) fn(static_cast<const Message&>(MessageAt(offset)));
}

}  // namespace fern

#endif  // FERN_FT_MESSAGE_BUFFER_H_
