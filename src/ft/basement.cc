#include "ft/basement.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <optional>

#include "absl/container/inlined_vector.h"
#include "ft/key_head.h"
#include "util/coding.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// The update function's result, except that one over kMaxValueBytes leaves the row as it was
// (`old`, or absent: std::nullopt deletes nothing there) and is counted in `ctx`.
std::optional<std::string> CallUpdate(const ApplyContext& ctx, std::string_view key,
                                      const std::string_view* old, std::string_view extra) {
  std::optional<std::string> result = (*ctx.update)(key, old, extra);
  if (result.has_value() && result->size() > kMaxValueBytes) {
    ++ctx.update_results_too_big;
    if (old == nullptr) return std::nullopt;
    result.emplace(*old);
  }
  return result;
}

// The smallest entry: empty key, no versions.
constexpr size_t kMinEncodedEntry = 3;

// Compaction waits for at least this much arena so that a tiny basement rewritten in place
// does not copy itself every few messages.
constexpr size_t kMinCompactArena = 4096;
// The most scratch memory a basement keeps between applies.
constexpr size_t kMaxKeptScratchBytes = 1024;

// UncheckedKeyOrder(): ParseSerialized knows it by its address.
class UncheckedKeyOrderComparator final : public Comparator {
 public:
  int Compare(std::string_view a, std::string_view b) const override {
    return BytewiseComparator()->Compare(a, b);
  }
  const char* Name() const override { return "fern.UncheckedKeyOrder"; }
};

}  // namespace

const Comparator* UncheckedKeyOrder() {
  static const UncheckedKeyOrderComparator comparator;
  return &comparator;
}

std::string_view Basement::key(size_t i) const {
  Decoder in(std::string_view(arena_).substr(offsets_[i]));
  std::string_view key;
  [[maybe_unused]] bool ok = in.GetLengthPrefixed(&key);
  assert(ok);
  return key;
}

LeafEntryView Basement::entry(size_t i) const {
  LeafEntryView view;
  [[maybe_unused]] bool ok =
      LeafEntryView::Parse(std::string_view(arena_).substr(offsets_[i]), &view);
  assert(ok);
  return view;
}

size_t Basement::LowerBound(std::string_view key, const Comparator& cmp) const {
  if (&cmp == BytewiseComparator()) return IndexedLowerBound(key, cmp);
  return SearchEntries(key, cmp, 0, offsets_.size());
}

size_t Basement::IndexedLowerBound(std::string_view key, const Comparator& cmp) const {
  const size_t n = offsets_.size();
  if (n == 0) return 0;
  // Every entry's key starts with prefix_: a key that does not sorts before or after all.
  const size_t shared = std::min(key.size(), prefix_.size());
  int c = shared == 0 ? 0 : std::memcmp(key.data(), prefix_.data(), shared);
  if (c != 0) return c < 0 ? 0 : n;
  if (key.size() < prefix_.size()) return 0;  // a proper prefix of every entry's key
  // Smaller heads are smaller keys, larger heads larger keys; equal heads need the keys.
  const uint32_t head = KeyHead(key, prefix_.size());
  size_t lo =
      static_cast<size_t>(std::lower_bound(heads_.begin(), heads_.end(), head) - heads_.begin());
  if (lo == n || heads_[lo] != head || cmp.Compare(this->key(lo), key) >= 0) return lo;
  size_t hi = static_cast<size_t>(
      std::upper_bound(heads_.begin() + static_cast<ptrdiff_t>(lo), heads_.end(), head) -
      heads_.begin());
  return SearchEntries(key, cmp, lo + 1, hi);
}

size_t Basement::SearchEntries(std::string_view key, const Comparator& cmp, size_t lo,
                               size_t hi) const {
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cmp.Compare(this->key(mid), key) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

bool Basement::Find(std::string_view key, const Comparator& cmp, size_t* index) const {
  *index = LowerBound(key, cmp);
  return *index < offsets_.size() && cmp.Compare(this->key(*index), key) == 0;
}

void Basement::Apply(const Message& m, const ApplyContext& ctx) {
  if (m.msn <= max_msn_) return;
  max_msn_ = m.msn;
  if (IsBroadcast(m.type)) {
    ApplyBroadcast(m, ctx);
  } else {
    ApplyKeyed(m, ctx);
  }
}

void Basement::ApplyKeyed(const Message& m, const ApplyContext& ctx) {
  size_t index;
  bool found = Find(m.key, *ctx.cmp, &index);
  LeafEntryView old;
  if (found) old = entry(index);
  switch (m.type) {
    case MessageType::kInsert:
    case MessageType::kDelete:
      if (ApplyAutocommitted(m, ctx, index, found, old)) return;
      break;
    case MessageType::kUpdate:
      if (ctx.update == nullptr || !*ctx.update) return;
      break;
    case MessageType::kCommitAny:
    case MessageType::kAbortAny:
      if (!found || old.provisional_count() == 0) return;
      break;
    default:
      return;
  }
  versions_.Clear();
  if (found) versions_.Assign(old);
  std::string_view key = m.key;
  std::optional<std::string> updated;  // must outlive Store: versions_ may view it
  switch (m.type) {
    case MessageType::kInsert:
      versions_.Write(m.xids, /*is_delete=*/false, m.value, m.committed_by);
      break;
    case MessageType::kDelete:
      versions_.Write(m.xids, /*is_delete=*/true, std::string_view(), m.committed_by);
      break;
    case MessageType::kUpdate: {
      std::string_view seen;
      std::string resolved;
      bool exists;
      if (!UpdateInput(m.xids, ctx, &exists, &resolved, &seen)) return;  // ctx.error says why
      updated = CallUpdate(ctx, m.key, exists ? &seen : nullptr, m.value);
      versions_.Write(m.xids, !updated.has_value(),
                      updated.has_value() ? std::string_view(*updated) : std::string_view(),
                      m.committed_by);
      break;
    }
    case MessageType::kCommitAny:
      versions_.Commit(m.xids);
      key = old.key();
      break;
    case MessageType::kAbortAny:
      versions_.Abort(m.xids);
      key = old.key();
      break;
    default:
      return;
  }
  CollectGarbage(ctx);
  Store(index, found ? &old : nullptr, key, ctx);
}

bool Basement::UpdateInput(const XidStack& xids, const ApplyContext& ctx, bool* exists,
                           std::string* resolved, std::string_view* seen) {
  StoredValue stored;
  *exists = versions_.WriterSees(xids, &stored);
  if (!*exists) return true;
  if (!stored.out_of_line) {
    *seen = stored.bytes;
    return true;
  }
  if (ctx.values == nullptr) {
    if (ctx.error.ok()) {
      ctx.error = Status::Corruption("an update met an out-of-line value with no store to read it");
    }
    return false;
  }
  Status s = ctx.values->Read(stored.bytes, resolved);
  if (s.IsCorruption() && ctx.values->IsDamaged(stored.bytes)) {
    // The block is damaged as stored, for good: the row stays as it is, and its reads
    // report the damage, as they would have without this update. Any other failure (an
    // I/O error, memory for decoding, a reference to a block that is not a value block)
    // may pass or is the engine's own, so it stops the caller instead.
    ++ctx.updates_of_damaged_rows;
    return false;
  }
  if (!s.ok()) {
    if (ctx.error.ok()) ctx.error = s;
    return false;
  }
  *seen = *resolved;
  return true;
}

void Basement::CollectGarbage(const ApplyContext& ctx) {
  versions_.CollectGarbage(ctx.oldest_live_snapshot);
  if (versions_.committed.size() <= ApplyContext::kFullCollectionVersions) return;
  if (ctx.live_readers_source == nullptr) return;
  if (!ctx.live_readers_taken) {
    ctx.live_readers = ctx.live_readers_source->TakeLiveReaders();
    ctx.live_readers_taken = true;
  }
  if (ctx.live_readers != nullptr) versions_.KeepVisible(*ctx.live_readers);
}

bool Basement::ApplyAutocommitted(const Message& m, const ApplyContext& ctx, size_t index,
                                  bool found, const LeafEntryView& old) {
  // A stamped write keeps older versions for the snapshots that cannot see it.
  if (!m.xids.empty() || m.committed_by != kNoTxn || (found && old.provisional_count() > 0)) {
    return false;
  }
  // A value to store out of line takes the general path (Store writes it).
  if (m.type == MessageType::kInsert && ctx.owns_values && ctx.values != nullptr) {
    const size_t threshold = ctx.values->out_of_line_threshold();
    if (threshold > 0 && m.value.size() >= threshold) return false;
  }
  // Views into our own arena would dangle when the arena grows.
  if (m.type == MessageType::kInsert && (InArena(m.key) || InArena(m.value))) return false;
  // A new committed version by kNoTxn is seen by every reader, so nothing older is kept.
  if (found) {
    versions_.Clear();
    FreeDroppedValues(old, ctx);
  }
  if (m.type == MessageType::kDelete) {
    if (found) Remove(index, static_cast<uint32_t>(old.encoded_size()));
    return true;
  }
  assert(arena_.size() <= std::numeric_limits<uint32_t>::max());
  uint32_t offset = static_cast<uint32_t>(arena_.size());
  scratch_.clear();
  EncodeAutocommittedLeafEntry(m.key, m.value, &scratch_);
  arena_.append(scratch_.data(), scratch_.size());
  ReleaseLargeScratch();
  if (found) {
    garbage_ += old.encoded_size();
    offsets_[index] = offset;
    IndexKeyAt(index, /*inserted=*/false);
    MaybeCompact();
  } else {
    offsets_.insert(offsets_.begin() + static_cast<ptrdiff_t>(index), offset);
    IndexKeyAt(index, /*inserted=*/true);
  }
  return true;
}

void Basement::ApplyBroadcast(const Message& m, const ApplyContext& ctx) {
  bool is_update = m.type == MessageType::kUpdateBroadcast;
  if (is_update && (ctx.update == nullptr || !*ctx.update)) return;
  for (size_t i = 0; i < offsets_.size();) {
    LeafEntryView old = entry(i);
    versions_.Assign(old);
    std::optional<std::string> updated;  // must outlive Store: versions_ may view it
    if (is_update) {
      std::string_view seen;
      std::string resolved;
      bool exists;
      if (!UpdateInput(m.xids, ctx, &exists, &resolved, &seen) || !exists) {
        ++i;
        continue;
      }
      updated = CallUpdate(ctx, old.key(), &seen, m.value);
      versions_.Write(m.xids, !updated.has_value(),
                      updated.has_value() ? std::string_view(*updated) : std::string_view(),
                      m.committed_by);
      CollectGarbage(ctx);
    } else {
      size_t before = versions_.committed.size();
      CollectGarbage(ctx);
      if (versions_.committed.size() == before) {
        ++i;
        continue;
      }
    }
    if (Store(i, &old, old.key(), ctx)) ++i;
  }
}

void Basement::MoveBigValuesOutOfLine(const ApplyContext& ctx) {
  refs_.clear();
  const size_t threshold = ctx.values->out_of_line_threshold();
  if (threshold == 0) return;
  // References are short strings, so growing refs_ would move their bytes: room first.
  refs_.reserve(versions_.committed.size() + versions_.provisional.size());
  for (auto* list : {&versions_.committed, &versions_.provisional}) {
    for (LeafEntryView::Version& v : *list) {
      if (v.is_delete || v.out_of_line || v.value.size() < threshold) continue;
      std::string ref;
      if (!ctx.values->Write(v.value, &ref).ok()) continue;  // kept inline
      refs_.push_back(std::move(ref));
      // Every version viewing the same bytes (a placeholder's copy) takes the same
      // reference: one block, freed when the last of them goes.
      const std::string_view inline_value = v.value;
      for (auto* others : {&versions_.committed, &versions_.provisional}) {
        for (LeafEntryView::Version& w : *others) {
          if (!w.is_delete && !w.out_of_line && w.value.data() == inline_value.data() &&
              w.value.size() == inline_value.size()) {
            w.value = refs_.back();
            w.out_of_line = true;
          }
        }
      }
    }
  }
}

void Basement::FreeDroppedValues(const LeafEntryView& old, const ApplyContext& ctx) {
  if (!ctx.owns_values || ctx.values == nullptr || !old.has_out_of_line()) return;
  auto kept = [this](std::string_view ref) {
    auto same = [ref](const LeafEntryView::Version& w) { return w.out_of_line && w.value == ref; };
    return std::any_of(versions_.committed.begin(), versions_.committed.end(), same) ||
           std::any_of(versions_.provisional.begin(), versions_.provisional.end(), same);
  };
  // Placeholder copies share a reference with another version: free each block once.
  absl::InlinedVector<std::string_view, 8> freed;
  old.ForEachVersion([&](const LeafEntryView::Version& v, bool) {
    if (!v.out_of_line || kept(v.value)) return;
    if (std::find(freed.begin(), freed.end(), v.value) != freed.end()) return;
    freed.push_back(v.value);
    ctx.values->Free(v.value);
  });
}

bool Basement::Store(size_t index, const LeafEntryView* old, std::string_view key,
                     const ApplyContext& ctx) {
  const bool found = old != nullptr;
  const auto old_size = found ? static_cast<uint32_t>(old->encoded_size()) : 0;
  if (ctx.owns_values && ctx.values != nullptr) {
    MoveBigValuesOutOfLine(ctx);
    if (found) FreeDroppedValues(*old, ctx);
  }
  if (versions_.IsEmpty()) {
    if (found) Remove(index, old_size);
    return false;
  }
  for (const auto* list : {&versions_.committed, &versions_.provisional}) {
    for (const LeafEntryView::Version& v : *list) may_hold_out_of_line_ |= v.out_of_line;
  }
  // Encode apart first: key and versions may view the arena, which may move as it grows.
  scratch_.clear();
  EncodeLeafEntry(key, versions_, &scratch_);
  assert(arena_.size() + scratch_.size() <= std::numeric_limits<uint32_t>::max());
  uint32_t offset = static_cast<uint32_t>(arena_.size());
  arena_.append(scratch_.data(), scratch_.size());
  ReleaseLargeScratch();
  if (found) {
    garbage_ += old_size;
    offsets_[index] = offset;
    IndexKeyAt(index, /*inserted=*/false);
    MaybeCompact();
  } else {
    offsets_.insert(offsets_.begin() + static_cast<ptrdiff_t>(index), offset);
    IndexKeyAt(index, /*inserted=*/true);
  }
  return true;
}

void Basement::Remove(size_t index, uint32_t size) {
  garbage_ += size;
  offsets_.erase(offsets_.begin() + static_cast<ptrdiff_t>(index));
  heads_.erase(heads_.begin() + static_cast<ptrdiff_t>(index));
  if (offsets_.empty()) prefix_.clear();
  MaybeCompact();
}

void Basement::IndexKeyAt(size_t index, bool inserted) {
  const std::string_view key = this->key(index);
  if (offsets_.size() == 1) {
    // One key: the prefix every key shares is all of it.
    prefix_.assign(key);
    heads_.assign(1, 0);
    return;
  }
  if (key.substr(0, prefix_.size()) != prefix_) {
    // Only a key outside the current range can share less: shrink the prefix, recompute.
    const size_t shared = SharedPrefixLength(prefix_, key);
    prefix_.resize(shared);
    if (inserted) heads_.insert(heads_.begin() + static_cast<ptrdiff_t>(index), 0);
    for (size_t i = 0; i < offsets_.size(); ++i) heads_[i] = KeyHead(this->key(i), shared);
    return;
  }
  const uint32_t head = KeyHead(key, prefix_.size());
  if (inserted) {
    heads_.insert(heads_.begin() + static_cast<ptrdiff_t>(index), head);
  } else {
    heads_[index] = head;
  }
}

void Basement::RebuildIndex(const Comparator& cmp) {
  heads_.clear();
  prefix_.clear();
  const size_t n = offsets_.size();
  if (n == 0) return;
  // Under the bytewise comparator the first and last keys share the least; under others
  // any two keys may, so all are compared.
  const std::string_view first = key(0);
  size_t shared = first.size();
  auto narrow = [&](std::string_view other) {
    shared = SharedPrefixLength(first.substr(0, shared), other);
  };
  if (&cmp == BytewiseComparator()) {
    narrow(key(n - 1));
  } else {
    for (size_t i = 1; i < n; ++i) narrow(key(i));
  }
  prefix_.assign(first.substr(0, shared));
  heads_.reserve(n);
  for (size_t i = 0; i < n; ++i) heads_.push_back(KeyHead(key(i), shared));
}

bool Basement::InArena(std::string_view s) const {
  if (s.empty()) return false;
  auto p = reinterpret_cast<uintptr_t>(s.data());
  auto base = reinterpret_cast<uintptr_t>(arena_.data());
  return p >= base && p < base + arena_.capacity();
}

void Basement::ReleaseLargeScratch() {
  // The scratch lives as long as the basement and counts in its memory: one large value
  // must not leave every basement it passed through holding its size.
  if (scratch_.capacity() > kMaxKeptScratchBytes) std::string().swap(scratch_);
}

void Basement::MaybeCompact() {
  if (arena_.size() < kMinCompactArena || garbage_ * 2 <= arena_.size()) return;
  ChunkString compacted;
  compacted.reserve(live_bytes() + live_bytes() / 4);
  for (size_t i = 0; i < offsets_.size(); ++i) {
    std::string_view encoded = encoded_entry(i);
    offsets_[i] = static_cast<uint32_t>(compacted.size());
    compacted.append(encoded);
  }
  arena_.swap(compacted);
  garbage_ = 0;
}

size_t Basement::serialized_bytes() const {
  return 8 + VarintLength(offsets_.size()) + live_bytes();
}

size_t Basement::memory_bytes() const {
  // What the arena's block really takes (its size class in chunk memory).
  return chunk_memory::BlockBytes(arena_.data(), arena_.capacity() + 1) +
         chunk_memory::BlockBytes(offsets_.data(), offsets_.capacity() * sizeof(uint32_t)) +
         chunk_memory::BlockBytes(heads_.data(), heads_.capacity() * sizeof(uint32_t)) +
         prefix_.capacity() + scratch_.capacity() +
         (versions_.committed.capacity() + versions_.provisional.capacity()) *
             sizeof(LeafEntryView::Version);
}

void Basement::Serialize(std::string* out) const {
  out->reserve(out->size() + serialized_bytes());
  PutFixed64(out, max_msn_);
  PutVarint64(out, offsets_.size());
  for (size_t i = 0; i < offsets_.size(); ++i) out->append(encoded_entry(i));
}

Status Basement::Deserialize(std::string_view in, const Comparator& cmp, Basement* out) {
  IndexVector offsets;
  size_t start;
  Msn max_msn;
  bool out_of_line;
  FERN_RETURN_IF_ERROR(ParseSerialized(in, cmp, &offsets, &start, &max_msn, &out_of_line));
  for (uint32_t& offset : offsets) offset -= static_cast<uint32_t>(start);
  out->Clear();
  out->may_hold_out_of_line_ = out_of_line;
  out->arena_.assign(in.substr(start));
  out->offsets_.swap(offsets);
  out->max_msn_ = max_msn;
  out->RebuildIndex(cmp);
  return Status::OK();
}

Status Basement::Deserialize(std::string&& in, const Comparator& cmp, Basement* out) {
  IndexVector offsets;
  size_t start;
  Msn max_msn;
  bool out_of_line;
  FERN_RETURN_IF_ERROR(ParseSerialized(in, cmp, &offsets, &start, &max_msn, &out_of_line));
  // The header bytes before the first entry stay in the arena as garbage (compaction drops
  // them): one copy of the whole buffer instead of one per entry.
  out->Clear();
  out->may_hold_out_of_line_ = out_of_line;
  out->arena_.assign(in.data(), in.size());
  out->offsets_.swap(offsets);
  out->garbage_ = start;
  out->max_msn_ = max_msn;
  out->RebuildIndex(cmp);
  return Status::OK();
}

ChunkString Basement::TakeArena() {
  ChunkString arena = std::move(arena_);
  Clear();
  return arena;
}

Status Basement::Adopt(ChunkString&& in, const Comparator& cmp) {
  return AdoptParsed(std::move(in), cmp, nullptr);
}

Status Basement::AdoptPrefix(ChunkString&& in, const Comparator& cmp, const Prefix& prefix) {
  return AdoptParsed(std::move(in), cmp, &prefix);
}

Status Basement::AdoptParsed(ChunkString&& in, const Comparator& cmp, const Prefix* prefix) {
  Clear();
  size_t start;
  Msn max_msn;
  size_t end = in.size();
  bool out_of_line;
  Status s = ParseSerialized(in, cmp, &offsets_, &start, &max_msn, &out_of_line, prefix, &end);
  if (!s.ok()) {
    offsets_.clear();
    return s;
  }
  may_hold_out_of_line_ = out_of_line;
  arena_ = std::move(in);
  // The header, and the entries after a prefix, are garbage: live_bytes() is the entries'.
  garbage_ = start + (arena_.size() - end);
  max_msn_ = max_msn;
  RebuildIndex(cmp);
  return Status::OK();
}

Status Basement::ParseSerialized(std::string_view in, const Comparator& cmp,
                                 IndexVector* offsets_out, size_t* start_out, Msn* max_msn_out,
                                 bool* out_of_line_out, const Prefix* prefix, size_t* end_out) {
  *out_of_line_out = false;
  if (in.size() > std::numeric_limits<uint32_t>::max()) {
    return Status::Corruption(StrCat("basement: ", in.size(), " bytes exceed 4 GiB"));
  }
  Decoder decoder(in);
  uint64_t max_msn;
  uint64_t count;
  if (!decoder.GetFixed64(&max_msn) || !decoder.GetVarint64(&count)) {
    return Status::Corruption("basement: truncated header");
  }
  if (count > decoder.remaining() / kMinEncodedEntry) {
    return Status::Corruption(StrCat("basement: entry count ", count, " does not fit in ",
                                     decoder.remaining(), " bytes"));
  }
  size_t start = in.size() - decoder.remaining();
  IndexVector& offsets = *offsets_out;
  offsets.clear();
  offsets.reserve(count);
  std::string_view previous;
  // The common comparator inline: the check runs for every entry of every basement read.
  const bool bytewise = &cmp == BytewiseComparator();
  const bool check_order = &cmp != UncheckedKeyOrder();
  size_t above = 0;  // entries with keys above prefix->key
  for (uint64_t i = 0; i < count; ++i) {
    size_t at = in.size() - decoder.remaining();
    LeafEntryView view;
    if (!LeafEntryView::Parse(decoder.rest(), &view)) {
      return Status::Corruption(
          StrCat("basement: entry ", i, " of ", count, " is malformed at byte ", at));
    }
    if (i > 0 && check_order &&
        (bytewise ? previous >= view.key() : cmp.Compare(previous, view.key()) >= 0)) {
      return Status::Corruption(StrCat("basement: entry ", i, " at byte ", at, " has key ",
                                       EscapeBytes(view.key()), " not after the previous key ",
                                       EscapeBytes(previous)));
    }
    previous = view.key();
    *out_of_line_out |= view.has_out_of_line();
    offsets.push_back(static_cast<uint32_t>(at));
    decoder.Skip(view.encoded_size());
    // Keys ascend (checked above), so after the first key above prefix->key every one is.
    if (prefix != nullptr &&
        (above > 0 ||
         (bytewise ? view.key() > prefix->key : cmp.Compare(view.key(), prefix->key) > 0)) &&
        ++above >= prefix->rows_above) {
      *start_out = start;
      *max_msn_out = max_msn;
      *end_out = in.size() - decoder.remaining();
      return Status::OK();
    }
  }
  if (!decoder.empty()) {
    return Status::Corruption(
        StrCat("basement: ", decoder.remaining(), " trailing bytes after ", count, " entries"));
  }
  *start_out = start;
  *max_msn_out = max_msn;
  return Status::OK();
}

void Basement::MoveSuffixTo(size_t from, Basement* dest) {
  assert(dest != this && from <= offsets_.size());
  for (size_t i = from; i < offsets_.size(); ++i) {
    std::string_view encoded = encoded_entry(i);
    dest->AppendEncoded(encoded);
    garbage_ += encoded.size();
  }
  offsets_.resize(from);
  heads_.resize(from);  // prefix_ is still shared by what remains
  if (from == 0) prefix_.clear();
  dest->max_msn_ = std::max(dest->max_msn_, max_msn_);
  MaybeCompact();
}

void Basement::AppendAll(Basement* other) {
  assert(other != this);
  if (offsets_.empty()) {
    arena_.swap(other->arena_);
    offsets_.swap(other->offsets_);
    heads_.swap(other->heads_);
    prefix_.swap(other->prefix_);
    garbage_ = other->garbage_;
    may_hold_out_of_line_ = other->may_hold_out_of_line_;
  } else {
    for (size_t i = 0; i < other->offsets_.size(); ++i) AppendEncoded(other->encoded_entry(i));
  }
  other->arena_.clear();
  other->offsets_.clear();
  other->heads_.clear();
  other->prefix_.clear();
  other->garbage_ = 0;
  other->may_hold_out_of_line_ = false;
  max_msn_ = std::max(max_msn_, other->max_msn_);
}

void Basement::AppendEncoded(std::string_view encoded_entry) {
  assert(arena_.size() + encoded_entry.size() <= std::numeric_limits<uint32_t>::max());
  offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  arena_.append(encoded_entry);
  const LeafEntryView appended = entry(offsets_.size() - 1);
  assert(appended.encoded_size() == encoded_entry.size());
  may_hold_out_of_line_ |= appended.has_out_of_line();
  IndexKeyAt(offsets_.size() - 1, /*inserted=*/true);
}

void Basement::CopyFrom(const Basement& other) {
  if (this == &other) return;
  arena_.assign(other.arena_);
  offsets_.assign(other.offsets_.begin(), other.offsets_.end());
  heads_.assign(other.heads_.begin(), other.heads_.end());
  prefix_.assign(other.prefix_);
  garbage_ = other.garbage_;
  max_msn_ = other.max_msn_;
  may_hold_out_of_line_ = other.may_hold_out_of_line_;
}

void Basement::ClearKeepingArena() {
  offsets_.clear();
  heads_.clear();
  prefix_.clear();
  garbage_ = arena_.size();
  max_msn_ = 0;
  may_hold_out_of_line_ = false;
}

void Basement::Clear() {
  arena_.clear();
  offsets_.clear();
  heads_.clear();
  prefix_.clear();
  garbage_ = 0;
  max_msn_ = 0;
  may_hold_out_of_line_ = false;
}

}  // namespace fern
