// Messages: the unit of every write to a fractal tree. A write is stamped with an MSN and the
// writer's transaction-id stack, buffered in internal nodes and finally applied to a leaf.
//
// Thread safety: the types here are values; distinct objects may be used from any thread.
//
// Message encoding, format version 1 (used inside message buffers on disk and in memory):
//
//   offset        size        meaning
//   0             1           type (MessageType; 1..7)
//   1             8           MSN, little-endian
//   9             1           n = number of xids (0..kMaxXidDepth), or kCommittedByFlag | 1
//                             for an autocommitted write stamped with its writer (below)
//   10            8 * n       xids, outermost first, little-endian; none is kNoTxn (with the
//                             flag: the one id is the autocommitted write's `committed_by`)
//   10 + 8n       varint32    key length k
//   ...           k           key bytes
//   ...           varint32    value length v
//   ...           v           value bytes (insert: the value; update/broadcast: the extra)
#ifndef FERN_FT_MESSAGE_H_
#define FERN_FT_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "util/chunk_allocator.h"
#include "util/coding.h"

namespace fern {

using Msn = uint64_t;  // message sequence number, from one counter per tree; 0 = none
using TxnId = uint64_t;
inline constexpr TxnId kNoTxn = 0;

enum class MessageType : uint8_t {
  kInsert = 1,           // set key's value
  kDelete = 2,           // remove key
  kUpdate = 3,           // apply the UpdateFunction with `value` as extra
  kUpdateBroadcast = 4,  // apply the UpdateFunction to every row (key is empty)
  kCommitAny = 5,        // commit the provisional versions of xids.outermost on key
  kAbortAny = 6,         // abort them
  kOptimize = 7,         // broadcast: collect old versions / promote committed provisionals
};

// True for the messages addressed to every row (kUpdateBroadcast, kOptimize).
bool IsBroadcast(MessageType type);
// True for the messages that need the UpdateFunction to apply (kUpdate, kUpdateBroadcast).
inline bool IsUpdate(MessageType type) {
  return type == MessageType::kUpdate || type == MessageType::kUpdateBroadcast;
}
bool IsValidMessageType(uint8_t raw);

// The transaction-id stack of a writer or reader, outermost first. Empty: an autocommitted
// write, committed at once. Holds at most kMaxXidDepth ids inline (no heap); copying copies
// only the ids in use.
inline constexpr size_t kMaxXidDepth = 32;

class XidStack {
 public:
  XidStack() = default;
  // REQUIRES: ids.size() <= kMaxXidDepth (extra ids are dropped).
  explicit XidStack(std::initializer_list<TxnId> ids);
  XidStack(const XidStack& other) { *this = other; }
  XidStack& operator=(const XidStack& other) {
    size_ = other.size_;
    for (size_t i = 0; i < size_; ++i) ids_[i] = other.ids_[i];
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // REQUIRES: i < size().
  TxnId operator[](size_t i) const { return ids_[i]; }
  // REQUIRES: !empty().
  TxnId outermost() const { return ids_[0]; }
  TxnId innermost() const { return ids_[size_ - 1]; }
  // REQUIRES: size() < kMaxXidDepth; a push onto a full stack is dropped (and asserts in debug
  // builds). Decoders check the depth before pushing.
  void Push(TxnId id);
  void Pop() {
    if (size_ > 0) --size_;
  }
  void Clear() { size_ = 0; }

  friend bool operator==(const XidStack& a, const XidStack& b);

 private:
  TxnId ids_[kMaxXidDepth];  // only [0, size_) is ever read
  uint8_t size_ = 0;
};

// A message as seen by readers: key and value are views into the owning buffer (valid while
// that buffer is unchanged).
struct Message {
  MessageType type = MessageType::kInsert;
  Msn msn = 0;
  XidStack xids;
  std::string_view key;
  std::string_view value;  // insert: the value; update / broadcast: the extra
  // For an autocommitted write (empty xids): the writer its committed version records.
  // kNoTxn (the common case) when no snapshot was live as it was written: every reader that
  // can meet it sees it. Otherwise an id from the transaction counter, so that the snapshots
  // live at the time do not see it (TxnManager::BeginAutocommit).
  TxnId committed_by = kNoTxn;
};

// Marks the xid-count byte of a stamped autocommitted write (Message::committed_by).
inline constexpr uint8_t kCommittedByFlag = 0x80;

// The number of 8-byte ids after the xid-count byte `count_byte` (no validation).
inline size_t EncodedXidCount(uint8_t count_byte) {
  return (count_byte & kCommittedByFlag) != 0 ? 1 : count_byte;
}

// Appends the message's encoding (table above) to *out.
void EncodeMessage(const Message& m, std::string* out);
void EncodeMessage(const Message& m, ChunkString* out);

// Decodes one message from the front of *in; m's views point into the decoder's input.
// Returns false on malformed bytes: unknown type, more than kMaxXidDepth xids, an xid equal
// to kNoTxn, or truncation. On false, *in and *m are unspecified.
bool DecodeMessage(Decoder* in, Message* m);

// The exact number of bytes EncodeMessage appends for `m`.
size_t EncodedMessageSize(const Message& m);

}  // namespace fern

#endif  // FERN_FT_MESSAGE_H_
