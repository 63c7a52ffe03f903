#include "ft/message_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "ft/key_head.h"
#include "util/big_buffer.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// From this many messages SortByKey sorts by key heads (below it, std::sort on the keys is
// as fast and allocates nothing).
constexpr size_t kMinHeadSortMessages = 256;

using MessageFn = std::function<void(const Message&)>;

// The smallest encoding: type, MSN, xid count, empty key and value.
constexpr size_t kMinEncodedMessage = 1 + 8 + 1 + 1 + 1;

// kIndexTailBound (t): how many appends the unsorted tail takes before it is merged into the
// sorted index. A keyed query scans the whole tail; a merge places each tail entry by binary
// search and moves the sorted array once, so its cost per append is ~log n comparisons plus
// 4n/t bytes of memmove and hardly depends on t above ~32. Measured on this machine (random 16-byte
// keys, 80-byte values, bytewise comparator; per append / per ForEachWithKey interleaved
// with appends):
//              n = 4,000        n = 40,000       n = 200,000
//   t = 16     0.25 / 0.24 us   0.99 / 0.94 us   1.01 / 1.01 us
//   t = 32     0.25 / 0.28 us   0.62 / 0.55 us   0.87 / 1.08 us
//   t = 64     0.24 / 0.33 us   0.46 / 0.59 us   0.77 / 1.11 us
//   t = 128    0.23 / 0.44 us   0.42 / 0.67 us   0.76 / 1.22 us
//   sqrt(n)    0.23 / 0.32 us   0.45 / 0.71 us   0.70 / 1.54 us
// (with a plain linear merge, sqrt(n) cost 1.8 us per append at n = 40,000).
static_assert(MessageBuffer::kIndexTailBound == 64);

}  // namespace

void MessageBuffer::Append(const Message& m, const Comparator& cmp) {
  assert(m.msn > max_msn_);
  assert(arena_.size() + EncodedMessageSize(m) <= std::numeric_limits<uint32_t>::max());
  uint32_t offset = static_cast<uint32_t>(arena_.size());
  if (m.value.size() >= kBigBufferBytes) {
    ReserveBuffer(&arena_, arena_.size() + EncodedMessageSize(m));
  }
  EncodeMessage(m, &arena_);
  ++count_;
  if (IsUpdate(m.type)) ++update_count_;
  max_msn_ = std::max(max_msn_, m.msn);
  if (IsBroadcast(m.type)) {
    broadcasts_.push_back(offset);
    return;
  }
  tail_.push_back(offset);
  if (tail_.size() >= kIndexTailBound) MergeTail(cmp);
}

bool MessageBuffer::CommitInPlace(std::string_view key, TxnId xid, const Comparator& cmp) {
  // Offsets grow with MSN, and every tail entry is newer than every sorted one.
  std::optional<uint32_t> newest;
  for (auto it = tail_.rbegin(); it != tail_.rend() && !newest; ++it) {
    if (cmp.Compare(KeyAt(*it), key) == 0) newest = *it;
  }
  if (!newest) {
    size_t i = SortedLowerBound(key, cmp);
    while (i < sorted_.size() && SortedKeyIs(i, key, cmp)) newest = sorted_[i++];
  }
  if (!newest) return false;
  const Message m = MessageAt(*newest);
  if ((m.type != MessageType::kInsert && m.type != MessageType::kDelete) || m.xids.size() != 1 ||
      m.xids.outermost() != xid) {
    return false;
  }
  // The xid-count byte (message.h): one xid becomes the committed_by stamp.
  arena_[*newest + 9] = static_cast<char>(kCommittedByFlag | 1);
  return true;
}

size_t MessageBuffer::memory_bytes() const {
  return chunk_memory::BlockBytes(arena_.data(), arena_.capacity() + 1) + prefix_.capacity() +
         sizeof(uint64_t) * heads_.capacity() +
         sizeof(uint32_t) * (sorted_.capacity() + tail_.capacity() + broadcasts_.capacity());
}

void MessageBuffer::ForEach(const MessageFn& fn) const { ForEach<const MessageFn&>(fn); }

void MessageBuffer::ForEachWithKey(std::string_view key, const Comparator& cmp,
                                   const MessageFn& fn) const {
  ForEachWithKey<const MessageFn&>(key, cmp, fn);
}

void MessageBuffer::ForEachInRange(const std::string_view* lower, const std::string_view* upper,
                                   const Comparator& cmp, const MessageFn& fn) const {
  ForEachInRange<const MessageFn&>(lower, upper, cmp, fn);
}

void MessageBuffer::ForEachBroadcast(const MessageFn& fn) const {
  ForEachBroadcast<const MessageFn&>(fn);
}

void MessageBuffer::Clear() {
  arena_.clear();
  sorted_.clear();
  heads_.clear();
  prefix_.clear();
  tail_.clear();
  broadcasts_.clear();
  count_ = 0;
  update_count_ = 0;
  max_msn_ = 0;
}

void MessageBuffer::Swap(MessageBuffer& other) {
  arena_.swap(other.arena_);
  sorted_.swap(other.sorted_);
  heads_.swap(other.heads_);
  prefix_.swap(other.prefix_);
  tail_.swap(other.tail_);
  broadcasts_.swap(other.broadcasts_);
  std::swap(count_, other.count_);
  std::swap(update_count_, other.update_count_);
  std::swap(max_msn_, other.max_msn_);
}

void MessageBuffer::CopyFrom(const MessageBuffer& other) {
  if (this == &other) return;
  arena_.assign(other.arena_);
  sorted_.assign(other.sorted_.begin(), other.sorted_.end());
  heads_.assign(other.heads_.begin(), other.heads_.end());
  prefix_.assign(other.prefix_);
  tail_.assign(other.tail_.begin(), other.tail_.end());
  broadcasts_.assign(other.broadcasts_.begin(), other.broadcasts_.end());
  count_ = other.count_;
  update_count_ = other.update_count_;
  max_msn_ = other.max_msn_;
}

void MessageBuffer::Serialize(std::string* out) const {
  PutVarint64(out, count_);
  out->append(arena_.data(), arena_.size());
}

namespace {

// Reads the message count at the front of a serialized buffer; `*payload` gets the bytes
// after it (the messages, encoded as in the arena).
Status ReadCount(std::string_view in, uint64_t* count, std::string_view* payload) {
  if (in.size() > std::numeric_limits<uint32_t>::max()) {
    return Status::Corruption(StrCat("message buffer: ", in.size(), " bytes exceed 4 GiB"));
  }
  Decoder decoder(in);
  if (!decoder.GetVarint64(count)) {
    return Status::Corruption("message buffer: malformed message count");
  }
  if (*count > decoder.remaining() / kMinEncodedMessage) {
    return Status::Corruption(StrCat("message buffer: count ", *count, " does not fit in ",
                                     decoder.remaining(), " bytes"));
  }
  *payload = in.substr(in.size() - decoder.remaining());
  return Status::OK();
}

}  // namespace

Status MessageBuffer::IndexPayload(std::string_view payload, uint64_t count, size_t header_bytes,
                                   bool copy) {
  Decoder decoder(payload);
  Message m;
  for (uint64_t i = 0; i < count; ++i) {
    const size_t at = payload.size() - decoder.remaining();
    if (!DecodeMessage(&decoder, &m)) {
      return Status::Corruption(StrCat("message buffer: message ", i, " of ", count,
                                       " is malformed at byte ", header_bytes + at));
    }
    if (m.msn <= max_msn_) {
      return Status::Corruption(StrCat("message buffer: message ", i, " at byte ",
                                       header_bytes + at, " has MSN ", m.msn, " after MSN ",
                                       max_msn_));
    }
    uint32_t offset = static_cast<uint32_t>(at);
    if (copy) {
      offset = static_cast<uint32_t>(arena_.size());
      EncodeMessage(m, &arena_);
    }
    ++count_;
    if (IsUpdate(m.type)) ++update_count_;
    max_msn_ = m.msn;
    (IsBroadcast(m.type) ? broadcasts_ : sorted_).push_back(offset);
  }
  if (!decoder.empty()) {
    return Status::Corruption(StrCat("message buffer: ", decoder.remaining(),
                                     " trailing bytes after ", count, " messages"));
  }
  return Status::OK();
}

Status MessageBuffer::Deserialize(std::string_view in, const Comparator& cmp, MessageBuffer* out) {
  uint64_t count;
  std::string_view payload;
  FERN_RETURN_IF_ERROR(ReadCount(in, &count, &payload));
  MessageBuffer buffer;
  buffer.arena_.reserve(payload.size());
  FERN_RETURN_IF_ERROR(buffer.IndexPayload(payload, count, in.size() - payload.size(),
                                           /*copy=*/true));
  buffer.SortByKey(&buffer.sorted_, cmp);
  buffer.RebuildIndex(cmp);
  out->Swap(buffer);
  return Status::OK();
}

Status MessageBuffer::Deserialize(ChunkString&& in, const Comparator& cmp, MessageBuffer* out) {
  uint64_t count;
  std::string_view payload;
  FERN_RETURN_IF_ERROR(ReadCount(in, &count, &payload));
  const size_t header_bytes = in.size() - payload.size();
  MessageBuffer buffer;
  FERN_RETURN_IF_ERROR(buffer.IndexPayload(payload, count, header_bytes, /*copy=*/false));
  // The payload is the arena, byte for byte: drop the count in front of it.
  in.erase(0, header_bytes);
  buffer.arena_ = std::move(in);
  buffer.SortByKey(&buffer.sorted_, cmp);
  buffer.RebuildIndex(cmp);
  out->Swap(buffer);
  return Status::OK();
}

Message MessageBuffer::MessageAt(uint32_t offset) const {
  Decoder in(std::string_view(arena_).substr(offset));
  Message m;
  [[maybe_unused]] bool ok = DecodeMessage(&in, &m);
  assert(ok);
  return m;
}

std::string_view MessageBuffer::KeyAt(uint32_t offset) const {
  size_t ids = EncodedXidCount(static_cast<uint8_t>(arena_[offset + 9]));
  Decoder in(std::string_view(arena_).substr(offset + 10 + 8 * ids));
  std::string_view key;
  [[maybe_unused]] bool ok = in.GetLengthPrefixed(&key);
  assert(ok);
  return key;
}

size_t MessageBuffer::SortedLowerBound(std::string_view key, const Comparator& cmp,
                                       size_t from) const {
  const size_t n = sorted_.size();
  from = std::min(from, n);
  if (&cmp != BytewiseComparator() || n == 0) return SearchSorted(key, cmp, from, n);
  // Every key in sorted_ starts with prefix_: a key that does not sorts before or after all.
  const size_t shared = std::min(key.size(), prefix_.size());
  int c = shared == 0 ? 0 : std::memcmp(key.data(), prefix_.data(), shared);
  if (c != 0) return c < 0 ? from : n;
  if (key.size() < prefix_.size()) return from;  // a proper prefix of every key
  const uint64_t head = KeyHead64(key, prefix_.size());
  // The first heads after `from` in order, then a binary search of the rest.
  constexpr size_t kScanned = 8;
  size_t lo = from;
  const size_t scan_end = std::min(n, from + kScanned);
  while (lo < scan_end && heads_[lo] < head) ++lo;
  if (lo == scan_end && lo < n) {
    lo = static_cast<size_t>(
        std::lower_bound(heads_.begin() + static_cast<ptrdiff_t>(lo), heads_.end(), head) -
        heads_.begin());
  }
  if (lo == n || heads_[lo] != head || cmp.Compare(KeyAt(sorted_[lo]), key) >= 0) return lo;
  size_t hi = static_cast<size_t>(
      std::upper_bound(heads_.begin() + static_cast<ptrdiff_t>(lo), heads_.end(), head) -
      heads_.begin());
  return SearchSorted(key, cmp, lo + 1, hi);
}

bool MessageBuffer::NewestWithKey(std::string_view key, const Comparator& cmp, Message* out) const {
  // Every tail message is newer than every message in sorted_.
  for (auto it = tail_.rbegin(); it != tail_.rend(); ++it) {
    if (cmp.Compare(KeyAt(*it), key) == 0) {
      *out = MessageAt(*it);
      return true;
    }
  }
  const size_t lo = SortedLowerBound(key, cmp);
  if (lo == sorted_.size() || !SortedKeyIs(lo, key, cmp)) return false;
  // The key's run ends where keys above it begin; within it, the last is the newest.
  auto end =
      std::partition_point(sorted_.begin() + static_cast<ptrdiff_t>(lo) + 1, sorted_.end(),
                           [&](uint32_t offset) { return cmp.Compare(KeyAt(offset), key) <= 0; });
  *out = MessageAt(*(end - 1));
  return true;
}

size_t MessageBuffer::SearchSorted(std::string_view key, const Comparator& cmp, size_t lo,
                                   size_t hi) const {
  auto it = std::partition_point(
      sorted_.begin() + static_cast<ptrdiff_t>(lo), sorted_.begin() + static_cast<ptrdiff_t>(hi),
      [&](uint32_t offset) { return cmp.Compare(KeyAt(offset), key) < 0; });
  return static_cast<size_t>(it - sorted_.begin());
}

bool MessageBuffer::SortedKeyIs(size_t i, std::string_view key, const Comparator& cmp) const {
  // Equal keys are equal bytes under the bytewise comparator, so they have equal heads.
  if (&cmp == BytewiseComparator() && heads_[i] != KeyHead64(key, prefix_.size())) return false;
  return cmp.Compare(KeyAt(sorted_[i]), key) == 0;
}

void MessageBuffer::RebuildIndex(const Comparator& cmp) {
  heads_.clear();
  prefix_.clear();
  const size_t n = sorted_.size();
  if (n == 0) return;
  // Under the bytewise comparator the first and last keys share the least; under others
  // any two keys may, so all are compared.
  const std::string_view first = KeyAt(sorted_[0]);
  size_t shared = first.size();
  if (&cmp == BytewiseComparator()) {
    shared = SharedPrefixLength(first, KeyAt(sorted_[n - 1]));
  } else {
    for (size_t i = 1; i < n; ++i) {
      shared = SharedPrefixLength(first.substr(0, shared), KeyAt(sorted_[i]));
    }
  }
  prefix_.assign(first.substr(0, shared));
  heads_.reserve(sorted_.capacity());
  for (uint32_t offset : sorted_) heads_.push_back(KeyHead64(KeyAt(offset), shared));
}

void MessageBuffer::SortByKey(std::vector<uint32_t>* offsets, const Comparator& cmp) const {
  auto by_key = [&](uint32_t a, uint32_t b) {
    int c = cmp.Compare(KeyAt(a), KeyAt(b));
    return c < 0 || (c == 0 && a < b);
  };
  const size_t n = offsets->size();
  if (&cmp != BytewiseComparator() || n < kMinHeadSortMessages) {
    std::sort(offsets->begin(), offsets->end(), by_key);
    return;
  }
  // Sorting offsets by key reads two messages scattered over the arena per comparison (a
  // 5 MiB node read from disk spent ~30 ms here). Instead: every key starts with the
  // prefix all of them share, so sort (head, offset) pairs held side by side, then order
  // the runs of equal heads by whole keys.
  std::string_view first = KeyAt((*offsets)[0]);
  size_t shared = first.size();
  for (size_t i = 1; i < n && shared > 0; ++i) {
    shared = SharedPrefixLength(first.substr(0, shared), KeyAt((*offsets)[i]));
  }
  std::vector<std::pair<uint64_t, uint32_t>> keyed(n);
  for (size_t i = 0; i < n; ++i) {
    keyed[i] = {KeyHead64(KeyAt((*offsets)[i]), shared), (*offsets)[i]};
  }
  std::sort(keyed.begin(), keyed.end());
  for (size_t i = 0; i < n;) {
    size_t end = i + 1;
    while (end < n && keyed[end].first == keyed[i].first) ++end;
    for (size_t j = i; j < end; ++j) (*offsets)[j] = keyed[j].second;
    if (end - i > 1) {
      std::sort(offsets->begin() + static_cast<ptrdiff_t>(i),
                offsets->begin() + static_cast<ptrdiff_t>(end), by_key);
    }
    i = end;
  }
}

void MessageBuffer::MergeTail(const Comparator& cmp) {
  SortByKey(&tail_, cmp);
  // The heads move with their offsets, unless a tail key does not share prefix_: then the
  // prefix shrinks and every head is recomputed after the merge.
  bool reindex = sorted_.empty();
  for (size_t t = 0; t < tail_.size() && !reindex; ++t) {
    std::string_view key = KeyAt(tail_[t]);
    reindex = key.substr(0, prefix_.size()) != prefix_;
  }
  // Merge from the back so that sorted_ grows in place: each tail message is placed by a
  // binary search and the run of larger sorted messages after it moves as one block, so a
  // merge costs t log n comparisons and one pass of memmove rather than n comparisons. Every
  // tail offset is larger than every offset in sorted_, so on equal keys the tail's message
  // goes after (upper bound).
  size_t i = sorted_.size();
  size_t j = tail_.size();
  sorted_.resize(i + j);
  if (!reindex) heads_.resize(i + j);
  // Heads [0, i) stay in place until they move, so while they are valid (bytewise, no
  // reindex) the place of each tail message is found among them, reading keys only where
  // heads tie.
  const bool by_heads = !reindex && &cmp == BytewiseComparator();
  while (j > 0) {
    std::string_view key = KeyAt(tail_[j - 1]);
    const uint64_t head = reindex ? 0 : KeyHead64(key, prefix_.size());
    auto first = sorted_.begin();
    size_t lo = 0;
    size_t hi = i;
    if (by_heads) {
      auto heads = heads_.begin();
      lo = static_cast<size_t>(std::lower_bound(heads, heads + static_cast<ptrdiff_t>(i), head) -
                               heads);
      hi = static_cast<size_t>(std::upper_bound(heads + static_cast<ptrdiff_t>(lo),
                                                heads + static_cast<ptrdiff_t>(i), head) -
                               heads);
    }
    auto pos =
        std::partition_point(first + static_cast<ptrdiff_t>(lo), first + static_cast<ptrdiff_t>(hi),
                             [&](uint32_t o) { return cmp.Compare(KeyAt(o), key) <= 0; });
    auto end = first + static_cast<ptrdiff_t>(i);
    std::move_backward(pos, end, end + static_cast<ptrdiff_t>(j));
    const size_t at = static_cast<size_t>(pos - first);
    if (!reindex) {
      auto heads = heads_.begin();
      std::move_backward(heads + static_cast<ptrdiff_t>(at), heads + static_cast<ptrdiff_t>(i),
                         heads + static_cast<ptrdiff_t>(i + j));
      heads_[at + j - 1] = head;
    }
    i = at;
    sorted_[i + j - 1] = tail_[j - 1];
    --j;
  }
  tail_.clear();
  if (reindex) RebuildIndex(cmp);
}

}  // namespace fern
