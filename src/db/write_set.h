// WriteSet: the keys a transaction (or its committed children) wrote, in the order first
// written (a committed child's set and its parent's joined larger first, by Absorb), with whether
// each is a sole write (written once, by the transaction itself: FractalTree::Resolve may then
// commit it in place). The transaction's commit or abort resolves each one.
//
// In memory the set is packed: the keys in one buffer, a 24-byte entry per key and an index
// of entry numbers hashed by (table, key), so a key is recorded once; a 16-byte key costs
// ~70 bytes. Beyond `memory_limit` bytes (DESIGN.md: a huge transaction spills to disk) the
// entries in memory are appended to the transaction's rollback file and memory starts
// over. A key written again after that is not looked for among the spilled ones: it is
// recorded again, and resolving a key twice changes nothing the second time. Once anything
// has spilled no key counts as a sole write (one written before the spill and again after
// would hold two versions, and committing one in place would strand the other).
// If writing the rollback file fails, the entries stay in memory and the set tries again
// once it has grown by half its limit: a transaction never fails for its rollback file.
//
// Rollback file, format version 1. It lives only while its transaction does (the redo log,
// not this file, is what recovery reads), so it is never fsynced; a leftover one is removed
// when the Env opens. Its checksums catch damage while it is read back.
//
//   offset  size  meaning
//   0       8     magic "FERNRBK\0"
//   8       4     format version (kRollbackFormatVersion)
//   12      4     reserved (0)
//   16      ...   blocks, back to back
//
// Block: u32 payload length P, u32 entry count, P bytes of entries (each: varint32 table
// number, varint32 key length, key), u32 Checksum32 of the block's first 8 + P bytes. A
// table number indexes the set's list of tables, kept in memory. All integers little-endian.
//
// Not thread-safe (a transaction is used by one thread at a time). Not copyable; two sets
// exchange contents with Absorb (the entries in memory live on the heap, where the index's
// hash and equality find them, so they move with the index).
#ifndef FERN_DB_WRITE_SET_H_
#define FERN_DB_WRITE_SET_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "fern/status.h"
#include "util/file.h"
#include "util/memory_budget.h"

namespace fern {

class TableImpl;

inline constexpr char kRollbackFileMagic[8] = {'F', 'E', 'R', 'N', 'R', 'B', 'K', '\0'};
inline constexpr uint32_t kRollbackFormatVersion = 1;

// "txn-<id>.rollback".
std::string RollbackFileName(uint64_t txn_id);
// Whether `name` has the form of a rollback file name.
bool IsRollbackFileName(std::string_view name);

class WriteSet {
 public:
  // About 147,000 16-byte keys (~57 bytes each in memory).
  static constexpr size_t kDefaultMemoryLimit = size_t{8} << 20;

  explicit WriteSet(size_t memory_limit = kDefaultMemoryLimit);
  ~WriteSet();  // removes the rollback file
  WriteSet(const WriteSet&) = delete;
  WriteSet& operator=(const WriteSet&) = delete;

  // Under the shared budget's pressure, a set spills once it holds this much in memory.
  static constexpr size_t kMinSharedSpillBytes = size_t{1} << 20;

  // The rollback file goes in `*dir` (which must outlive the set, or its Release), named
  // for `txn_id` (RollbackFileName), created at the first spill. Without it the set never
  // spills. Each spill adds one to `*spills` if given (the Env's counter; it must outlive
  // the set). If `shared` is given (the Env's write-set budget; it must outlive the set's
  // memory: a Release before it goes is enough),
  // the set counts its memory there and also spills, once it holds kMinSharedSpillBytes,
  // while the Env's write sets together are over that budget. REQUIRES: nothing has
  // spilled or been recorded yet.
  void SetRollbackFile(const std::string* dir, uint64_t txn_id,
                       std::atomic<uint64_t>* spills = nullptr, MemoryBudget* shared = nullptr) {
    rollback_dir_ = dir;
    txn_id_ = txn_id;
    spill_counter_ = spills;
    shared_ = shared;
  }

  // Records a write of `key` in `table`: a new key is a sole write if `own` (and nothing
  // has spilled); a key already in memory stops being one.
  void Note(TableImpl* table, std::string_view key, bool own);

  // Entries recorded, spilled ones included (a key recorded again after a spill counts
  // again).
  size_t size() const { return spilled_ + memory_->entries.size(); }
  bool empty() const { return size() == 0; }
  // Entries in the rollback file.
  size_t spilled() const { return spilled_; }
  // What the entries in memory take, about.
  size_t memory_bytes() const;

  // Calls `visit` for every entry, spilled ones first, in the order recorded, and stops at
  // the first non-OK result, which it returns. Reading the rollback file may fail: IOError,
  // or Corruption naming the file if it was damaged or cut short.
  using Visitor =
      absl::FunctionRef<Status(TableImpl* table, std::string_view key, bool sole_write)>;
  Status ForEach(Visitor visit) const;

  // Empties the set, gives its memory back and removes the rollback file.
  void Release();

  // Adds every entry of `child` (a committed child transaction's set, which must have been
  // given the same rollback directory, counter and budget) to this one, none of them a
  // sole write here, and empties `child`. The larger set is kept and the smaller added to
  // it, so a key handed up a chain of nested commits is copied O(log) times, not once per
  // level: when `child` is the larger, the two exchange contents (this set then spills to
  // the child's rollback file, and no entry of it counts as a sole write any more). Errors
  // are those of reading the smaller set's rollback file; this set then holds part of it.
  Status Absorb(WriteSet* child);

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
  // The entries in memory and their keys, back to back.
  struct Memory {
    std::string keys;
    std::vector<Entry> entries;

    Probe ProbeOf(size_t i) const {
      const Entry& e = entries[i];
      return Probe{e.table, std::string_view(keys).substr(e.offset, e.size)};
    }
  };
  struct Hash {
    using is_transparent = void;
    const Memory* memory;
    size_t operator()(size_t i) const { return (*this)(memory->ProbeOf(i)); }
    size_t operator()(const Probe& p) const;
  };
  struct Equal {
    using is_transparent = void;
    const Memory* memory;
    bool operator()(size_t a, size_t b) const { return a == b; }
    bool operator()(size_t a, const Probe& b) const { return Same(memory->ProbeOf(a), b); }
    bool operator()(const Probe& a, size_t b) const { return Same(a, memory->ProbeOf(b)); }
    static bool Same(const Probe& a, const Probe& b) {
      return a.table == b.table && a.key == b.key;
    }
  };
  using Index = absl::flat_hash_set<size_t, Hash, Equal>;

  // Appends the entries in memory to the rollback file and frees them; false (entries
  // kept) if the file could not be written.
  bool Spill();
  Status WriteBlocks();
  Status ReadSpilled(Visitor visit) const;
  Status Corrupt(std::string_view what) const;
  void ClearMemory();

  const size_t memory_limit_;
  size_t spill_at_;  // memory_bytes() that triggers the next spill
  // The same under the shared budget's pressure.
  size_t shared_spill_at_ = kMinSharedSpillBytes;
  MemoryBudget* shared_ = nullptr;
  size_t counted_ = 0;  // memory_bytes() as counted in *shared_

  std::unique_ptr<Memory> memory_ = std::make_unique<Memory>();
  Index index_;  // entry numbers
  // Set when the entries came from a child (Absorb): none is a sole write of this set's.
  bool no_sole_writes_ = false;

  const std::string* rollback_dir_ = nullptr;
  uint64_t txn_id_ = 0;
  std::string rollback_path_;  // set at the first spill
  std::atomic<uint64_t>* spill_counter_ = nullptr;
  std::unique_ptr<File> file_;
  uint64_t file_bytes_ = 0;  // the header and the blocks written whole
  size_t spilled_ = 0;
  std::vector<TableImpl*> tables_;  // by table number
  absl::flat_hash_map<TableImpl*, uint32_t> table_numbers_;
};

}  // namespace fern

#endif  // FERN_DB_WRITE_SET_H_
