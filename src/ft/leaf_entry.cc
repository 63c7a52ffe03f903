#include "ft/leaf_entry.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "ft/out_of_line_value.h"
#include "util/coding.h"

namespace fern {

namespace {

constexpr uint8_t kDeleteFlag = 1;
constexpr uint8_t kPlaceholderFlag = 2;
constexpr uint8_t kOutOfLineFlag = 4;

void PutVersion(const LeafEntryView::Version& v, std::string* out) {
  assert(!(v.is_delete && v.out_of_line));
  PutFixed64(out, v.writer);
  PutFixed8(out, static_cast<uint8_t>((v.is_delete ? kDeleteFlag : 0) |
                                      (v.placeholder ? kPlaceholderFlag : 0) |
                                      (v.out_of_line ? kOutOfLineFlag : 0)));
  if (!v.is_delete) PutLengthPrefixed(out, v.value);
}

size_t VersionSize(const LeafEntryView::Version& v) {
  return 8 + 1 + (v.is_delete ? 0 : VarintLength(v.value.size()) + v.value.size());
}

// Decodes one version; false on malformed bytes.
bool GetVersion(Decoder* in, LeafEntryView::Version* v) {
  uint8_t flags;
  if (!in->GetFixed64(&v->writer) || !in->GetFixed8(&flags)) return false;
  if ((flags & ~(kDeleteFlag | kPlaceholderFlag | kOutOfLineFlag)) != 0) return false;
  v->is_delete = (flags & kDeleteFlag) != 0;
  v->placeholder = (flags & kPlaceholderFlag) != 0;
  v->out_of_line = (flags & kOutOfLineFlag) != 0;
  v->value = {};
  if (v->is_delete) return !v->out_of_line;
  return in->GetLengthPrefixed(&v->value);
}

// GetVersion, and for an out-of-line version a check that the reference parses (done once,
// when an entry is parsed; the accessors after it trust the bytes).
bool GetCheckedVersion(Decoder* in, LeafEntryView::Version* v) {
  if (!GetVersion(in, v)) return false;
  ValueRef ref;
  return !v->out_of_line || ValueRef::Decode(v->value, &ref);
}

// The length of the prefix on which the provisional writers equal `xids`.
size_t MatchingDepth(const std::vector<LeafEntryView::Version>& provisional, const XidStack& xids) {
  size_t n = std::min(provisional.size(), xids.size());
  size_t k = 0;
  while (k < n && provisional[k].writer == xids[k]) ++k;
  return k;
}

// Folds every provisional level deeper than `level` into it: it takes the innermost value.
void FoldInto(size_t level, std::vector<LeafEntryView::Version>* provisional) {
  if (provisional->size() <= level + 1) return;
  const LeafEntryView::Version& innermost = provisional->back();
  (*provisional)[level].is_delete = innermost.is_delete;
  (*provisional)[level].value = innermost.value;
  (*provisional)[level].placeholder = innermost.placeholder;
  (*provisional)[level].out_of_line = innermost.out_of_line;
  provisional->resize(level + 1);
}

}  // namespace

// ---- LeafEntryView -------------------------------------------------------------------------

bool LeafEntryView::Parse(std::string_view encoded, LeafEntryView* out) {
  if (encoded.size() > std::numeric_limits<uint32_t>::max()) return false;
  Decoder in(encoded);
  LeafEntryView view;
  if (!in.GetLengthPrefixed(&view.key_) || !in.GetVarint32(&view.committed_count_) ||
      !in.GetVarint32(&view.provisional_count_)) {
    return false;
  }
  if (view.provisional_count_ > kMaxXidDepth) return false;
  // Every version takes at least 9 bytes; this bounds the loop on damaged counts.
  uint64_t versions = uint64_t{view.committed_count_} + view.provisional_count_;
  if (versions > in.remaining() / 9) return false;
  auto position = [&] { return static_cast<uint32_t>(encoded.size() - in.remaining()); };
  view.versions_offset_ = position();
  view.provisional_offset_ = view.versions_offset_;
  Version v;
  for (uint64_t i = 0; i < versions; ++i) {
    uint32_t at = position();
    if (i + 1 == view.committed_count_) view.newest_committed_offset_ = at;
    if (i == view.committed_count_) view.provisional_offset_ = at;
    if (i + 1 == versions && view.provisional_count_ > 0) view.innermost_offset_ = at;
    if (!GetCheckedVersion(&in, &v)) return false;
    view.has_out_of_line_ |= v.out_of_line;
    if (i >= view.committed_count_ && v.writer == kNoTxn) return false;
    if (i < view.committed_count_ && v.placeholder) return false;
  }
  if (view.provisional_count_ == 0) view.provisional_offset_ = position();
  view.encoded_ = encoded.substr(0, position());
  *out = view;
  return true;
}

LeafEntryView::Version LeafEntryView::VersionAt(size_t offset) const {
  size_t next;
  return VersionAt(offset, &next);
}

LeafEntryView::Version LeafEntryView::VersionAt(size_t offset, size_t* next) const {
  Decoder in(encoded_.substr(offset));
  Version v;
  [[maybe_unused]] bool ok = GetVersion(&in, &v);
  assert(ok);
  *next = encoded_.size() - in.remaining();
  return v;
}

size_t LeafEntryView::SkipVersions(size_t offset, size_t n) const {
  Decoder in(encoded_.substr(offset));
  Version v;
  for (size_t i = 0; i < n; ++i) {
    [[maybe_unused]] bool ok = GetVersion(&in, &v);
    assert(ok);
  }
  return encoded_.size() - in.remaining();
}

LeafEntryView::Version LeafEntryView::committed(size_t i) const {
  assert(i < committed_count_);
  if (i + 1 == committed_count_) return newest_committed();
  return VersionAt(SkipVersions(versions_offset_, i));
}

LeafEntryView::Version LeafEntryView::provisional(size_t i) const {
  assert(i < provisional_count_);
  return VersionAt(SkipVersions(provisional_offset_, i));
}

bool LeafEntryView::LatestCommitted(StoredValue* value) const {
  if (committed_count_ == 0) return false;
  Version v = newest_committed();
  if (v.is_delete) return false;
  *value = v.stored();
  return true;
}

bool LeafEntryView::ReadVisible(const XidStack& reader,
                                const std::function<bool(TxnId)>& is_visible,
                                StoredValue* value) const {
  if (!reader.empty() && provisional_count_ > 0 &&
      VersionAt(provisional_offset_).writer == reader.outermost()) {
    Version v = innermost_provisional();
    if (v.is_delete) return false;
    *value = v.stored();
    return true;
  }
  // The newest acceptable committed version is the last acceptable one, oldest first.
  Decoder in(encoded_.substr(versions_offset_));
  Version v;
  bool found = false;
  Version seen;
  for (size_t i = 0; i < committed_count_; ++i) {
    [[maybe_unused]] bool ok = GetVersion(&in, &v);
    assert(ok);
    if (v.writer == kNoTxn || !is_visible || is_visible(v.writer)) {
      seen = v;
      found = true;
    }
  }
  if (!found || seen.is_delete) return false;
  *value = seen.stored();
  return true;
}

bool LeafEntryView::NewestCommittedHiddenFrom(const XidStack& reader,
                                              const std::function<bool(TxnId)>& is_visible) const {
  if (!reader.empty() && provisional_count_ > 0 &&
      VersionAt(provisional_offset_).writer == reader.outermost()) {
    return false;
  }
  if (committed_count_ == 0 || !is_visible) return false;
  const TxnId writer = newest_committed().writer;
  return writer != kNoTxn && !is_visible(writer);
}

bool LeafEntryView::IsEmpty() const {
  if (committed_count_ > 1) return false;
  if (committed_count_ == 1 && !newest_committed().is_delete) return false;
  Decoder in(encoded_.substr(provisional_offset_));
  Version v;
  for (size_t i = 0; i < provisional_count_; ++i) {
    [[maybe_unused]] bool ok = GetVersion(&in, &v);
    assert(ok);
    if (!v.is_delete) return false;
  }
  return true;
}

// ---- LeafEntryVersions ---------------------------------------------------------------------

void LeafEntryVersions::Clear() {
  committed.clear();
  provisional.clear();
}

void LeafEntryVersions::Assign(const LeafEntryView& view) {
  Clear();
  view.ForEachVersion([this](const Version& v, bool is_committed) {
    (is_committed ? committed : provisional).push_back(v);
  });
}

bool LeafEntryVersions::WriterSees(const XidStack& xids, StoredValue* value) const {
  const Version* seen = nullptr;
  if (!xids.empty() && !provisional.empty() && provisional.front().writer == xids.outermost()) {
    seen = &provisional.back();
  } else if (!committed.empty()) {
    seen = &committed.back();
  }
  if (seen == nullptr || seen->is_delete) return false;
  *value = seen->stored();
  return true;
}

void LeafEntryVersions::Write(const XidStack& xids, bool is_delete, std::string_view value,
                              TxnId committed_by) {
  Write(xids, is_delete, StoredValue{value, false}, committed_by);
}

void LeafEntryVersions::Write(const XidStack& xids, bool is_delete, StoredValue stored,
                              TxnId committed_by) {
  if (is_delete) stored = {};
  const Version written{kNoTxn, is_delete, stored.bytes, /*placeholder=*/false, stored.out_of_line};
  if (xids.empty()) {
    committed.push_back(written);
    committed.back().writer = committed_by;
    return;
  }
  size_t depth = xids.size();
  size_t k = MatchingDepth(provisional, xids);
  if (k == 0) {
    provisional.clear();
  } else {
    FoldInto(k - 1, &provisional);
  }
  if (k == depth) {
    provisional.back() = written;
    provisional.back().writer = xids.innermost();
    return;
  }
  Version outer{kNoTxn, true, {}};
  if (!provisional.empty()) {
    outer = provisional.back();
  } else if (!committed.empty()) {
    outer = committed.back();
  }
  for (size_t i = k; i + 1 < depth; ++i) {
    provisional.push_back(outer);
    provisional.back().writer = xids[i];
    provisional.back().placeholder = true;
  }
  provisional.push_back(written);
  provisional.back().writer = xids.innermost();
}

void LeafEntryVersions::Commit(const XidStack& xids) {
  if (xids.empty() || provisional.empty() || provisional.front().writer != xids.outermost()) {
    return;
  }
  if (xids.size() == 1) {
    Version innermost = provisional.back();
    innermost.writer = xids.outermost();
    innermost.placeholder = false;
    committed.push_back(innermost);
    provisional.clear();
    return;
  }
  size_t k = MatchingDepth(provisional, xids);
  FoldInto(std::min(k, xids.size() - 1) - 1, &provisional);
}

void LeafEntryVersions::Abort(const XidStack& xids) {
  if (xids.empty() || provisional.empty() || provisional.front().writer != xids.outermost()) {
    return;
  }
  if (xids.size() == 1) {
    provisional.clear();
    return;
  }
  if (MatchingDepth(provisional, xids) == xids.size()) provisional.resize(xids.size() - 1);
  // Levels the aborted child's writes filled in for its ancestors are copies, not writes:
  // left behind, the family's commit would never resolve them (its own write set does not
  // name the key) or would commit them as writes of its own.
  while (!provisional.empty() && provisional.back().placeholder) provisional.pop_back();
}

void LeafEntryVersions::CollectGarbage(TxnId oldest_live_snapshot) {
  if (committed.empty()) return;
  size_t keep_from = committed.size() - 1;
  if (oldest_live_snapshot != kNoTxn) {
    while (keep_from > 0 && committed[keep_from].writer != kNoTxn &&
           committed[keep_from].writer >= oldest_live_snapshot) {
      --keep_from;
    }
  }
  committed.erase(committed.begin(), committed.begin() + static_cast<ptrdiff_t>(keep_from));
  // A delete left oldest reads as no row, like no version at all; but a lone delete some
  // snapshot cannot see is kept, or that snapshot's writer would miss the conflict
  // (NewestCommittedHiddenFrom).
  const Version& front = committed.front();
  if (front.is_delete && (committed.size() > 1 || oldest_live_snapshot == kNoTxn ||
                          front.writer == kNoTxn || front.writer < oldest_live_snapshot)) {
    committed.erase(committed.begin());
  }
}

void LeafEntryVersions::KeepVisible(const LiveReaders& readers) {
  const size_t n = committed.size();
  if (n == 0) return;
  // settled: the newest version a reader beginning now surely sees; newer ones stay.
  size_t settled = n;
  while (settled > 0 && readers.MaybeHidden(committed[settled - 1].writer)) --settled;
  if (settled == 0) return;
  --settled;
  // Every pictured snapshot sees nothing above `settled` (those writers were live then or
  // began later), so each sees the newest version at or below it that it can see.
  keep_scratch.assign(settled, false);
  for (size_t s = 0; s < readers.snapshot_count(); ++s) {
    for (size_t i = settled + 1; i-- > 0;) {
      if (readers.Sees(s, committed[i].writer)) {
        if (i < settled) keep_scratch[i] = true;
        break;
      }
    }
  }
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i >= settled || keep_scratch[i]) committed[out++] = committed[i];
  }
  committed.resize(out);
  // A reader that sees a delete and one that sees no version both see no row; a lone
  // delete stays unless every reader sees it (a conflict check needs it otherwise).
  if (!committed.front().is_delete) return;
  bool drop = committed.size() > 1;
  if (!drop) {
    const TxnId writer = committed.front().writer;
    drop = !readers.MaybeHidden(writer);
    for (size_t s = 0; drop && s < readers.snapshot_count(); ++s) drop = readers.Sees(s, writer);
  }
  if (drop) committed.erase(committed.begin());
}

bool LeafEntryVersions::IsEmpty() const {
  // A lone committed delete left by the collection is one some snapshot cannot see (its
  // writer's conflict check needs it): not empty.
  if (!committed.empty()) return false;
  return std::all_of(provisional.begin(), provisional.end(),
                     [](const Version& v) { return v.is_delete; });
}

// ---- encoding ------------------------------------------------------------------------------

void EncodeLeafEntry(std::string_view key, std::span<const LeafEntryView::Version> committed,
                     std::span<const LeafEntryView::Version> provisional, std::string* out) {
  assert(provisional.size() <= kMaxXidDepth);
  PutLengthPrefixed(out, key);
  PutVarint32(out, static_cast<uint32_t>(committed.size()));
  PutVarint32(out, static_cast<uint32_t>(provisional.size()));
  for (const auto& v : committed) PutVersion(v, out);
  for (const auto& v : provisional) PutVersion(v, out);
}

size_t EncodedLeafEntrySize(std::string_view key, std::span<const LeafEntryView::Version> committed,
                            std::span<const LeafEntryView::Version> provisional) {
  size_t n = VarintLength(key.size()) + key.size() + VarintLength(committed.size()) +
             VarintLength(provisional.size());
  for (const auto& v : committed) n += VersionSize(v);
  for (const auto& v : provisional) n += VersionSize(v);
  return n;
}

void EncodeAutocommittedLeafEntry(std::string_view key, std::string_view value, std::string* out) {
  PutLengthPrefixed(out, key);
  PutFixed8(out, 1);  // varint 1: one committed version
  PutFixed8(out, 0);  // varint 0: no provisional version
  PutVersion({kNoTxn, false, value}, out);
}

}  // namespace fern
