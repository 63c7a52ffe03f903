// Basements: the rows of one leaf partition, sorted by key.
//
// Leaf entries (leaf_entry.h) live back to back in one arena; a sorted array of 32-bit arena
// offsets orders them by key and is binary-searched. Rewriting an entry appends its new
// encoding and repoints the offset, leaving the old bytes as garbage; the arena is compacted
// when garbage exceeds half of it. A new key is inserted into the offset array (a basement
// holds hundreds of entries, so the vector insert is cheap). An autocommitted insert or delete
// of a key with no provisional versions is encoded straight into the arena and allocates
// nothing beyond arena growth; other messages go through a reused LeafEntryVersions.
//
// Thread safety: const methods may run concurrently with each other; every non-const method
// needs exclusive access (the owning leaf's write lock). Views returned by key() and entry()
// are valid until the next non-const call.
//
// Serialized form, format version 1:
//
//   offset   size       meaning
//   0        8          max MSN applied, little-endian
//   8        varint64   n = number of entries
//   ...      ...        n leaf entries (leaf_entry.h), keys strictly increasing
//
// The serialized form carries no length or checksum: the node format frames and checksums it.
#ifndef FERN_FT_BASEMENT_H_
#define FERN_FT_BASEMENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fern/options.h"
#include "fern/status.h"
#include "ft/leaf_entry.h"
#include "ft/live_readers.h"
#include "ft/message.h"
#include "ft/out_of_line_value.h"
#include "util/chunk_allocator.h"

namespace fern {

struct ApplyContext {
  const Comparator* cmp = nullptr;  // required
  // Applied by kUpdate and kUpdateBroadcast; update messages are ignored when it is null or
  // empty (the table layer rejects updates without a function).
  const UpdateFunction* update = nullptr;
  // Committed versions older than the newest are kept only while a live snapshot may see
  // them. REQUIRES: every transaction that is live, or live in some live snapshot, has an
  // id >= oldest_live_snapshot (PerconaFT's "oldest referenced xid"), so a version written
  // by kNoTxn or a transaction older than it is seen by every reader that sees no newer
  // version. kNoTxn: no live snapshots; only the newest committed version is kept.
  TxnId oldest_live_snapshot = kNoTxn;
  // An entry still holding more than kFullCollectionVersions committed versions after that
  // rule keeps only what the live readers need (LeafEntryVersions::KeepVisible), from a
  // picture taken from this source at the first such entry and reused for the rest of the
  // context's applies. Null: the rule above alone. A context is used by one thread at a time.
  const LiveReadersSource* live_readers_source = nullptr;
  mutable std::shared_ptr<const LiveReaders> live_readers;
  mutable bool live_readers_taken = false;
  // Out-of-line values (out_of_line_value.h). `values` reads the old value an update is
  // given; an update that meets an out-of-line value without it fails (`error`), and one
  // whose old value's block is damaged as stored (the read fails and
  // ValueStore::IsDamaged says so) is dropped, the row left as it was (below). With
  // `owns_values` the basement is the tree's own copy of its rows (a leaf's, never a copy
  // made for a read or a checkpoint clone): Apply writes new values of at least
  // values->out_of_line_threshold() bytes out of line, and frees the value blocks of versions
  // that leave their entries. A value whose write fails is kept inline.
  ValueStore* values = nullptr;
  bool owns_values = false;
  // The first failure of an apply in this context (reading an out-of-line value for an
  // update); the message was then not applied to that row, so the caller must not go on
  // as if it had been.
  mutable Status error;
  // Updates applied in this context that left their row as it was, by rule rather than by
  // failure, so that the caller may count them: the row's value block is damaged (every
  // read of the row reports it; stopping instead made one damaged block stop the tree's
  // writes and, replayed from the log, every open of the Env), or the update function
  // returned more than kMaxValueBytes.
  mutable uint64_t updates_of_damaged_rows = 0;
  mutable uint64_t update_results_too_big = 0;

  static constexpr size_t kFullCollectionVersions = 4;
};

// Stands in for a comparator the reader does not have: ftverify and ftdump on a table whose
// comparator the application registers. Deserialize, Adopt and the partition decoders
// (node_format.h) check no key order under it, since a healthy file's keys are in an order
// only that comparator knows; where an order is needed it orders bytewise (a message buffer's
// sort). A basement read under it holds its entries in stored order, for reading them in turn:
// LowerBound, Find, Apply and AdoptPrefix under it are meaningless.
const Comparator* UncheckedKeyOrder();

class Basement {
 public:
  Basement() = default;

  size_t count() const { return offsets_.size(); }  // entries
  // REQUIRES: i < count().
  std::string_view key(size_t i) const;
  LeafEntryView entry(size_t i) const;
  std::string_view encoded_entry(size_t i) const { return entry(i).encoded(); }

  // Asks the CPU to start loading the first bytes of entries [begin, end) (a hint: the
  // entries of a basement are rarely in cache, and a reader about to touch a run of them
  // otherwise waits for each miss in turn). REQUIRES: begin <= end <= count().
  void Prefetch(size_t begin, size_t end) const {
    for (size_t i = begin; i < end; ++i) {
      const char* entry = arena_.data() + offsets_[i];
      __builtin_prefetch(entry);
      __builtin_prefetch(entry + 64);
    }
  }

  // The first i with key(i) >= key (count() if none). Under BytewiseComparator() this
  // searches the index of key heads (below) and reads whole keys only where heads tie.
  size_t LowerBound(std::string_view key, const Comparator& cmp) const;
  // Whether key is held; *index is its position, or where it would go.
  bool Find(std::string_view key, const Comparator& cmp, size_t* index) const;

  // Applies one message (keyed or broadcast). A message with msn <= max_msn() is ignored
  // (it was applied already: replay is idempotent); otherwise max_msn() becomes m.msn.
  //  - kInsert / kDelete with empty xids: a new committed version by kNoTxn (older ones kept
  //    only as ctx says); with xids: the provisional version at depth xids.size()
  //    (LeafEntryVersions::Write).
  //  - kUpdate: calls *ctx.update(key, what the writer sees or null, m.value); nullopt is a
  //    delete, a value an insert, as above.
  //  - kUpdateBroadcast: the same for every row the writer sees (deleted rows are skipped).
  //  - kCommitAny / kAbortAny: LeafEntryVersions::Commit / Abort.
  //  - kOptimize: collects old committed versions of every row per ctx. (Provisional
  //    versions are promoted by their commit messages.)
  // Every rewritten entry has its old versions collected per ctx; entries left empty
  // (LeafEntryView::IsEmpty) are removed. A keyed write stores the message's key bytes.
  void Apply(const Message& m, const ApplyContext& ctx);

  Msn max_msn() const { return max_msn_; }
  void set_max_msn(Msn msn) { max_msn_ = msn; }

  // Exactly what Serialize writes.
  size_t serialized_bytes() const;
  // Heap memory held: arena, offsets and scratch space.
  size_t memory_bytes() const;
  // Sum of the live entries' encoded sizes.
  size_t live_bytes() const { return arena_.size() - garbage_; }
  // False when no entry stores a value out of line (true may be stale: an entry that did
  // and is gone leaves it set until the basement is cleared or read again). Readers of many
  // rows check it before looking for big values entry by entry.
  bool may_hold_out_of_line() const { return may_hold_out_of_line_; }
  size_t garbage_bytes() const { return garbage_; }

  // Appends the serialized form (table above) to *out.
  void Serialize(std::string* out) const;
  // Replaces *out with the basement serialized in `in` (exactly: trailing bytes are an
  // error). Entries that do not parse or keys not strictly increasing under `cmp` (unless it
  // is UncheckedKeyOrder()) are Corruption, and leave *out unchanged.
  static Status Deserialize(std::string_view in, const Comparator& cmp, Basement* out);
  // The same, copying `in` whole into the arena rather than entry by entry (the header
  // bytes count as garbage). On error `in` is left as it was.
  static Status Deserialize(std::string&& in, const Comparator& cmp, Basement* out);

  // For reading into a recycled basement (BasementPool) without allocating: TakeArena hands
  // over the arena's buffer as it is (stale bytes, capacity kept; the basement is left
  // empty), for the caller to overwrite with a serialized basement; Adopt then makes that this
  // basement's contents, as Deserialize would, reusing the index's memory. On error Adopt leaves
  // the basement empty.
  ChunkString TakeArena();
  Status Adopt(ChunkString&& in, const Comparator& cmp);

  // How much of a serialized basement a read needs that looks at no entry after a point:
  // every entry up to and including the `rows_above`-th one whose key is above `key` (all
  // of them if there are fewer). With rows_above 0, every entry up to `key` (a point read:
  // the first one above may or may not be there).
  struct Prefix {
    std::string_view key;
    size_t rows_above = 1;
  };
  // As Adopt, but keeps only `prefix`'s entries, for one read (count() and the bytes are
  // those of the prefix): never for a basement that is cached or written. The entries after
  // the prefix are not parsed, so not checked either (the frame's checksum covers them).
  // Saves a transient point read about a third of its parsing.
  Status AdoptPrefix(ChunkString&& in, const Comparator& cmp, const Prefix& prefix);

  // For leaf splits: moves entries [from, count()) to the end of *dest. REQUIRES: every key
  // of dest is smaller than key(from). dest's max_msn becomes the larger of both.
  void MoveSuffixTo(size_t from, Basement* dest);
  // For leaf merges: moves all of other's entries to our end, leaving other without entries
  // (its max_msn is kept). REQUIRES: all of other's keys are greater than ours. Our max_msn
  // becomes the larger of both.
  void AppendAll(Basement* other);
  // Appends an already-encoded entry whose key is greater than every key held (bulk build).
  // REQUIRES: encoded_entry is exactly one well-formed entry.
  void AppendEncoded(std::string_view encoded_entry);

  // Drops every entry and resets max_msn to 0.
  void Clear();
  // The same, but the arena keeps its bytes (all garbage now) and its size: a later
  // TakeArena then hands over a buffer that a decode of about that size overwrites without
  // zero-filling it first. For basements kept for reuse (BasementPool).
  void ClearKeepingArena();
  // Makes this basement hold exactly other's entries and max MSN (its garbage bytes too:
  // a plain copy of the arena, no re-encoding), sharing nothing with it. For checkpoint
  // clones.
  void CopyFrom(const Basement& other);

 private:
  // Per-row index arrays: in chunk memory when read from disk (see chunk_allocator.h), so
  // that a basement load touches no fresh malloc pages either.
  using IndexVector = std::vector<uint32_t, ChunkAllocator<uint32_t>>;

  void ApplyKeyed(const Message& m, const ApplyContext& ctx);
  void ApplyBroadcast(const Message& m, const ApplyContext& ctx);
  // Handles an autocommitted insert or delete of a key without provisional versions, if that
  // is what m is; returns false if m needs the general path.
  bool ApplyAutocommitted(const Message& m, const ApplyContext& ctx, size_t index, bool found,
                          const LeafEntryView& old);
  // What the writer of `xids` sees in versions_, as the old value for an update: *exists,
  // and if so *seen (an out-of-line value read into *resolved). False if an out-of-line
  // value could not be read: the update is then not applied, and ctx says why (a damaged
  // block counted, any other failure in ctx.error).
  bool UpdateInput(const XidStack& xids, const ApplyContext& ctx, bool* exists,
                   std::string* resolved, std::string_view* seen);
  // Collects versions_'s garbage as `ctx` says.
  void CollectGarbage(const ApplyContext& ctx);
  // Stores versions_ as the entry for `key` at `index` (replacing `old`, the entry there,
  // if not null), or removes it if versions_ is empty. Returns false if the entry was
  // removed. With ctx.owns_values, writes versions_'s big inline values out of line first
  // and frees the value blocks `old` referenced that versions_ no longer does.
  bool Store(size_t index, const LeafEntryView* old, std::string_view key, const ApplyContext& ctx);
  // Writes versions_'s inline values of at least the threshold out of line (their
  // references go to refs_), as Store says.
  void MoveBigValuesOutOfLine(const ApplyContext& ctx);
  // With ctx.owns_values, frees the value blocks `old` references that versions_ does not.
  void FreeDroppedValues(const LeafEntryView& old, const ApplyContext& ctx);
  void Remove(size_t index, uint32_t size);
  bool InArena(std::string_view s) const;
  // Binary search of entries [lo, hi) by whole keys.
  size_t SearchEntries(std::string_view key, const Comparator& cmp, size_t lo, size_t hi) const;
  size_t IndexedLowerBound(std::string_view key, const Comparator& cmp) const;
  // Brings the index up to date after entry `index` was inserted or rewritten.
  void IndexKeyAt(size_t index, bool inserted);
  void RebuildIndex(const Comparator& cmp);
  // Checks a serialized basement; on success returns each entry's offset from the start of
  // `in` (in *offsets, replacing what it held), where the first entry starts, and the max
  // MSN.
  // With `prefix`, stops after its last entry (no trailing-bytes check) and sets *end to
  // where that entry ends.
  // *out_of_line tells whether a checked entry stores a value out of line.
  static Status ParseSerialized(std::string_view in, const Comparator& cmp, IndexVector* offsets,
                                size_t* start, Msn* max_msn, bool* out_of_line,
                                const Prefix* prefix = nullptr, size_t* end = nullptr);
  Status AdoptParsed(ChunkString&& in, const Comparator& cmp, const Prefix* prefix);
  void MaybeCompact();
  void ReleaseLargeScratch();

  // Encoded leaf entries, including garbage. In chunk memory: a basement read from disk
  // then costs no page faults of its own (util/chunk_allocator.h).
  ChunkString arena_;
  IndexVector offsets_;  // entry offsets in key order
  // The search index (key_head.h), kept in step with offsets_ by every change: every key
  // starts with prefix_, and heads_[i] = KeyHead(key(i), prefix_.size()). LowerBound under
  // the bytewise comparator searches the heads instead of entries scattered over the arena,
  // which are rarely in cache: 210 instead of 530 ns per search in a micro-benchmark over
  // 512 basements of 390 fernbench keys each. Costs 4 bytes per entry.
  IndexVector heads_;
  std::string prefix_;
  size_t garbage_ = 0;  // arena bytes of replaced or removed entries
  Msn max_msn_ = 0;
  bool may_hold_out_of_line_ = false;
  // Reused by the general apply path.
  LeafEntryVersions versions_;
  std::string scratch_;
  std::vector<std::string> refs_;  // references versions_ views while Store encodes
};

}  // namespace fern

#endif  // FERN_FT_BASEMENT_H_
