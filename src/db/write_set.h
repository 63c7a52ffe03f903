// WriteSet: the keys a transaction (or its committed children) wrote, each once, in the
// order first written, with whether it is a sole write (written once, by the transaction
// itself: FractalTree::Resolve may then commit it in place).
//
// Kept in memory for the transaction's life, so it is packed: the keys in one buffer, a
// 24-byte entry per key and an index of entry numbers hashed by (table, key). A 16-byte
// key costs ~70 bytes, against ~130 in a std::map of (table, std::string) pairs.
//
// Not thread-safe (a transaction is used by one thread at a time). Neither copyable nor
// movable: the index's hash and equality read the entries through a pointer to the set.
#ifndef FERN_DB_WRITE_SET_H_
#define FERN_DB_WRITE_SET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace fern {

class TableImpl;

class WriteSet {
 public:
  WriteSet() : index_(0, Hash{this}, Equal{this}) {}
  WriteSet(const WriteSet&) = delete;
  WriteSet& operator=(const WriteSet&) = delete;

  // Records a write of `key` in `table`: a new key is a sole write if `own`; a key already
  // there stops being one.
  void Note(TableImpl* table, std::string_view key, bool own);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  TableImpl* table(size_t i) const { return entries_[i].table; }
  std::string_view key(size_t i) const {
    return std::string_view(keys_).substr(entries_[i].offset, entries_[i].size);
  }
  bool sole_write(size_t i) const { return entries_[i].sole_write; }

  // Empties the set and gives its memory back.
  void Release();

 private:
  struct Entry {
    TableImpl* table;
    uint64_t offset;  // of the key in keys_
    uint32_t size;    // keys are at most kMaxKeyBytes
    bool sole_write;
  };
  // A key being looked up, not yet an entry.
  struct Probe {
    TableImpl* table;
    std::string_view key;
  };
  struct Hash {
    using is_transparent = void;
    const WriteSet* set;
    size_t operator()(size_t i) const { return (*this)(set->ProbeOf(i)); }
    size_t operator()(const Probe& p) const;
  };
  struct Equal {
    using is_transparent = void;
    const WriteSet* set;
    bool operator()(size_t a, size_t b) const { return a == b; }
    bool operator()(size_t a, const Probe& b) const { return Same(set->ProbeOf(a), b); }
    bool operator()(const Probe& a, size_t b) const { return Same(a, set->ProbeOf(b)); }
    static bool Same(const Probe& a, const Probe& b) {
      return a.table == b.table && a.key == b.key;
    }
  };
  Probe ProbeOf(size_t i) const { return Probe{table(i), key(i)}; }

  std::string keys_;
  std::vector<Entry> entries_;
  absl::flat_hash_set<size_t, Hash, Equal> index_;  // entry numbers
};

}  // namespace fern

#endif  // FERN_DB_WRITE_SET_H_
