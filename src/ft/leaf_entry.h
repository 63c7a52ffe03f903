// Leaf entries: the MVCC record of one key in a leaf.
//
// A leaf entry holds a stack of committed versions (oldest first) and a stack of provisional
// versions, one per nesting level of the writing transaction family (outermost first). Each
// version is {writer, is_delete, value}. An autocommitted write (empty xid stack) becomes a
// committed version with writer kNoTxn; a provisional version's writer is the transaction at
// that nesting level; a committed version made by a commit has the outermost transaction as
// writer.
//
// Nested transactions of one family run one at a time (a parent waits while its child is
// live), and a child's commit sends no message: its provisional level stays in the stack until
// the family's next write, commit or abort on the key folds it into its parent's level. So a
// provisional level deeper than a transaction's own belongs to a finished child that
// committed (an aborting child removes its levels with kAbortAny) and the family always sees
// the innermost provisional version.
//
// Encoding, format version 1 (leaf entries are stored back to back in basements):
//
//   offset   size       meaning
//   0        varint32   k = key length
//   ...      k          key bytes
//   ...      varint32   c = number of committed versions
//   ...      varint32   p = number of provisional versions (0..kMaxXidDepth)
//   ...      ...        c committed versions (oldest first), then p provisional versions
//                       (outermost first), each:
//              8          writer, little-endian (kNoTxn only for committed versions)
//              1          flags: bit 0 = delete; bit 1 = placeholder (provisional versions
//                         only; see Version); bit 2 = out of line (not with bit 0: the
//                         value bytes are a ValueRef, out_of_line_value.h); other bits zero
//              varint32   value length v (absent for deletes)
//              v          value bytes (absent for deletes)
//
// Bit 2 appears only in files of tree file format version 3 and later.
//
// Thread safety: LeafEntryView and LeafEntryVersions are values over borrowed bytes; const
// use from many threads is safe while the bytes are unchanged.
#ifndef FERN_FT_LEAF_ENTRY_H_
#define FERN_FT_LEAF_ENTRY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ft/live_readers.h"
#include "ft/message.h"

namespace fern {

// A version's value as the entry stores it: the value itself, or (out_of_line) the encoded
// reference to the value block holding it, which the reader resolves (ValueStore::Read).
struct StoredValue {
  std::string_view bytes;
  bool out_of_line = false;
};

// A parsed view of an encoded leaf entry; cheap to construct (one pass over the versions)
// and valid while the encoded bytes are unchanged.
class LeafEntryView {
 public:
  struct Version {
    TxnId writer = kNoTxn;
    bool is_delete = false;
    std::string_view value;  // empty for deletes
    // Provisional only: a copy of what the level outside saw, made for an outer level that
    // had not written when a nested transaction wrote below it. It stands for "no write at
    // this level": an abort that leaves it innermost drops it, so the innermost provisional
    // version is always a real write.
    bool placeholder = false;
    // `value` is an encoded ValueRef (out_of_line_value.h), not the value.
    bool out_of_line = false;

    StoredValue stored() const { return {value, out_of_line}; }
  };

  // Parses the entry at the front of `encoded` (which may continue past it: encoded_size()
  // says where the entry ends). Returns false on malformed bytes.
  static bool Parse(std::string_view encoded, LeafEntryView* out);

  std::string_view key() const { return key_; }
  size_t committed_count() const { return committed_count_; }
  size_t provisional_count() const { return provisional_count_; }
  // REQUIRES: i < committed_count(); 0 = oldest. O(i).
  Version committed(size_t i) const;
  // REQUIRES: i < provisional_count(); 0 = outermost. O(committed_count + i).
  Version provisional(size_t i) const;
  // REQUIRES: committed_count() > 0. O(1).
  Version newest_committed() const { return VersionAt(newest_committed_offset_); }
  // REQUIRES: provisional_count() > 0. O(1).
  Version innermost_provisional() const { return VersionAt(innermost_offset_); }
  // Calls visit(version, is_committed) for every version in stored order: the committed ones
  // oldest first, then the provisional ones outermost first. O(versions) in all, where a
  // loop over committed(i) would be quadratic.
  template <typename Visit>
  void ForEachVersion(Visit&& visit) const {
    size_t offset = versions_offset_;
    const size_t n = size_t{committed_count_} + provisional_count_;
    for (size_t i = 0; i < n; ++i) {
      size_t next;
      const Version v = VersionAt(offset, &next);
      visit(v, i < committed_count_);
      offset = next;
    }
  }

  // The newest committed version's value; false if there is none or it is a delete.
  bool LatestCommitted(StoredValue* value) const;

  // What a reader sees. `reader` is the reader's xid stack, outermost first (empty for a
  // reader outside any transaction). If the provisional versions belong to the reader's
  // family (same outermost transaction), the reader sees the innermost one (see the header
  // comment). Otherwise it sees the newest committed version whose writer is kNoTxn or
  // accepted by `is_visible(writer)` (an empty function accepts every writer). Returns false
  // if what it sees is absent or a delete.
  bool ReadVisible(const XidStack& reader, const std::function<bool(TxnId)>& is_visible,
                   StoredValue* value) const;

  // Whether the newest committed version was written by a transaction `is_visible` rejects
  // (one that committed after the reader's snapshot), unless the reader's family has a
  // provisional version here (its own write came later). A snapshot transaction that would
  // write such a row has a write conflict.
  bool NewestCommittedHiddenFrom(const XidStack& reader,
                                 const std::function<bool(TxnId)>& is_visible) const;

  // True when the entry can be removed because every reader sees no row and no transaction
  // can change that by committing or aborting: no committed version, or only a committed
  // delete, and every provisional version (if any) a delete.
  bool IsEmpty() const;

  // Whether some version's value is stored out of line.
  bool has_out_of_line() const { return has_out_of_line_; }

  size_t encoded_size() const { return encoded_.size(); }
  std::string_view encoded() const { return encoded_; }

 private:
  Version VersionAt(size_t offset) const;
  // The same, also setting *next to the offset of the version after it.
  Version VersionAt(size_t offset, size_t* next) const;
  size_t SkipVersions(size_t offset, size_t n) const;

  std::string_view encoded_;  // exactly this entry's bytes
  std::string_view key_;
  uint32_t committed_count_ = 0;
  uint32_t provisional_count_ = 0;
  uint32_t versions_offset_ = 0;          // the first (oldest committed) version
  uint32_t newest_committed_offset_ = 0;  // valid if committed_count_ > 0
  uint32_t provisional_offset_ = 0;       // the outermost provisional version
  uint32_t innermost_offset_ = 0;         // valid if provisional_count_ > 0
  bool has_out_of_line_ = false;
};

// The versions of one entry, decoded for modification by Basement::Apply. Values are views
// (into the old entry, the message, or an update's result) that must stay valid until the
// versions are encoded. The vectors allocate; Basement reuses one instance so that steady
// state costs no allocation.
struct LeafEntryVersions {
  using Version = LeafEntryView::Version;

  std::vector<Version> committed;    // oldest first
  std::vector<Version> provisional;  // outermost first
  std::vector<bool> keep_scratch;    // KeepVisible's, kept to reuse its allocation

  void Clear();
  // Replaces the versions with the view's.
  void Assign(const LeafEntryView& view);

  // What a writer with `xids` sees before it writes: its family's innermost provisional
  // version, else the newest committed one. False if that is absent or a delete.
  bool WriterSees(const XidStack& xids, StoredValue* value) const;

  // An insert (is_delete false) or delete by `xids`. Empty xids: pushes a committed version
  // with writer `committed_by` (an autocommitted write: kNoTxn, or its stamp; CollectGarbage
  // then drops the older ones no reader needs) and leaves provisional versions alone. Otherwise
  // sets the provisional version at depth xids.size(): levels of the family's finished children are
  // folded into their parent first, missing outer levels are filled with placeholders (copies of
  // what the level outside them sees), and provisional versions of another family are dropped (the
  // lock tree prevents that case; nothing is committed).
  void Write(const XidStack& xids, bool is_delete, std::string_view value,
             TxnId committed_by = kNoTxn);
  // The same with a value the entry may store out of line.
  void Write(const XidStack& xids, bool is_delete, StoredValue value, TxnId committed_by);

  // kCommitAny. With one xid: the family's innermost provisional version becomes the newest
  // committed version, with the outermost transaction as writer, and the provisional stack is
  // cleared. With a nested stack: the child's level (and any deeper) is folded into its
  // parent's. No effect if the provisional versions are not the family's.
  void Commit(const XidStack& xids);

  // kAbortAny. With one xid: clears the family's provisional versions. With a nested stack:
  // removes the child's level and deeper ones, if the child wrote this key, and then the
  // placeholder levels its writes had filled in outside it.
  void Abort(const XidStack& xids);

  // Drops committed versions no reader can see. `oldest_live_snapshot`: see ApplyContext.
  // kNoTxn keeps only the newest; otherwise keeps the newest version written by kNoTxn or a
  // transaction older than it, and everything newer. A delete left oldest is dropped too (a
  // reader who sees it and one who sees nothing both see no row), unless it is the only
  // version left and a live snapshot may not see it: a kSnapshot writer's conflict check
  // (NewestCommittedHiddenFrom) needs it.
  void CollectGarbage(TxnId oldest_live_snapshot);

  // Drops the committed versions no reader in `readers` needs (see live_readers.h): keeps the
  // newest version by a writer every new reader sees and all newer ones, plus the version each
  // pictured snapshot sees; a delete left oldest goes too, unless it is alone and some reader
  // may not see it. Costs O(versions) per snapshot.
  void KeepVisible(const LiveReaders& readers);

  // As LeafEntryView::IsEmpty, except that a lone committed delete is not empty: the
  // collections above keep one only while some snapshot cannot see it.
  bool IsEmpty() const;
};

// Appends the encoding (table above) of an entry to *out.
void EncodeLeafEntry(std::string_view key, std::span<const LeafEntryView::Version> committed,
                     std::span<const LeafEntryView::Version> provisional, std::string* out);
inline void EncodeLeafEntry(std::string_view key, const LeafEntryVersions& versions,
                            std::string* out) {
  EncodeLeafEntry(key, versions.committed, versions.provisional, out);
}
size_t EncodedLeafEntrySize(std::string_view key, std::span<const LeafEntryView::Version> committed,
                            std::span<const LeafEntryView::Version> provisional);

// Appends the encoding of an entry holding one committed, non-deleted version by kNoTxn: the
// result of an autocommitted insert. Allocates nothing beyond *out's growth.
void EncodeAutocommittedLeafEntry(std::string_view key, std::string_view value, std::string* out);

}  // namespace fern

#endif  // FERN_FT_LEAF_ENTRY_H_
