// The two halves of a LockTree segment-map entry, packed: a SegmentBound (24 bytes) and the
// segment's holders, whose readers are a ReaderIds (8 bytes).
//
// Why packed: a transaction holds a row lock for every row it writes, and a row lock puts two
// entries in the segment map (the bounds just before and just after its key). With a
// 40-byte entry an absl btree node holds six instead of three (72-byte entries), and an entry
// costs ~59 bytes of memory instead of ~109 (2,000,000 random inserts): a row lock with a
// 16-byte key, its range in the owner's list included, costs ~175 bytes instead of ~265.
#ifndef FERN_TXN_LOCK_SEGMENT_H_
#define FERN_TXN_LOCK_SEGMENT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ft/message.h"

namespace fern {

// A position in a table's key space: just before `key` (after == false) or just after it;
// with edge -1 before every key, with edge 1 after every key (key empty). Keys up to
// kInlineKeyBytes are kept in place, longer ones in a heap block of their own.
class SegmentBound {
 public:
  static constexpr size_t kInlineKeyBytes = 22;

  SegmentBound(std::string_view key, bool after, int8_t edge);
  SegmentBound(const SegmentBound& other)
      : SegmentBound(other.key(), other.after(), other.edge()) {}
  SegmentBound(SegmentBound&& other) noexcept;
  SegmentBound& operator=(const SegmentBound& other);
  SegmentBound& operator=(SegmentBound&& other) noexcept;
  ~SegmentBound() { FreeHeapKey(); }

  std::string_view key() const;
  bool after() const { return (side_ & kAfterBit) != 0; }
  int8_t edge() const { return static_cast<int8_t>(side_ >> kEdgeShift) - 1; }

 private:
  static constexpr uint8_t kHeapKey = 0xff;  // size_ of a key kept on the heap
  static constexpr uint8_t kAfterBit = 1;
  static constexpr int kEdgeShift = 1;  // side_ bits 1-2 hold edge + 1

  bool on_heap() const { return size_ == kHeapKey; }
  void FreeHeapKey();

  // The key's bytes, or (on the heap) its pointer and then its 32-bit size, copied in and
  // out with memcpy: the class has byte alignment so that it takes 24 bytes, not 32.
  char bytes_[kInlineKeyBytes];
  uint8_t size_;  // the inline key's size, or kHeapKey
  uint8_t side_;  // kAfterBit, and edge + 1 above it
};
static_assert(sizeof(SegmentBound) == 24);

// The readers of one segment, ascending and without duplicates, in 8 bytes: none, a single
// id kept in place, or (two or more, or an id with the top bit set) a heap array. Reader
// ids are never kNoTxn.
class ReaderIds {
 public:
  ReaderIds() = default;
  ReaderIds(const ReaderIds& other);
  ReaderIds(ReaderIds&& other) noexcept : word_(other.word_) { other.word_ = 0; }
  ReaderIds& operator=(const ReaderIds& other);
  ReaderIds& operator=(ReaderIds&& other) noexcept;
  ~ReaderIds() { Clear(); }

  bool empty() const { return word_ == 0; }
  std::span<const TxnId> ids() const;
  bool Contains(TxnId id) const;
  // REQUIRES: id != kNoTxn. Adds `id` unless present.
  void Insert(TxnId id);
  // Removes `id` if present.
  void Erase(TxnId id);
  void Clear();

  friend bool operator==(const ReaderIds& a, const ReaderIds& b);

 private:
  static constexpr uint64_t kHeapTag = uint64_t{1} << 63;
  using HeapIds = std::vector<TxnId>;

  bool on_heap() const { return (word_ & kHeapTag) != 0; }
  HeapIds* heap() const;
  // Replaces the contents with `ids` (ascending, no kNoTxn).
  void Assign(std::span<const TxnId> ids);

  // 0: no readers; top bit clear: that one reader; top bit set: a HeapIds pointer with the
  // bit added (user-space pointers have it clear).
  uint64_t word_ = 0;
};

}  // namespace fern

#endif  // FERN_TXN_LOCK_SEGMENT_H_
