#include "db/write_set.h"

#include "absl/hash/hash.h"

namespace fern {

size_t WriteSet::Hash::operator()(const Probe& p) const { return absl::HashOf(p.table, p.key); }

void WriteSet::Note(TableImpl* table, std::string_view key, bool own) {
  auto found = index_.find(Probe{table, key});
  if (found != index_.end()) {
    entries_[*found].sole_write = false;
    return;
  }
  entries_.push_back(
      Entry{table, keys_.size(), static_cast<uint32_t>(key.size()), /*sole_write=*/own});
  keys_.append(key);
  index_.insert(entries_.size() - 1);
}

void WriteSet::Release() {
  // Swapped out, not cleared: a million-row set holds tens of MB.
  absl::flat_hash_set<size_t, Hash, Equal>(0, Hash{this}, Equal{this}).swap(index_);
  std::vector<Entry>().swap(entries_);
  std::string().swap(keys_);
}

}  // namespace fern
