// Counters a tree keeps about its own work (reported through "fern.stats" and asserted by
// the model test to prove splits, merges, promotions and flushes all happen).
#ifndef FERN_FT_TREE_STATS_H_
#define FERN_FT_TREE_STATS_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace fern {

inline constexpr int kStatsMaxDepth = 8;

struct TreeStats {
  // Messages appended to a buffer (or applied to a root leaf) at each depth below the root.
  std::atomic<uint64_t> injected_at_depth[kStatsMaxDepth] = {};
  std::atomic<uint64_t> promotions{0};  // messages that descended past the root
  // Commits that turned their transaction's buffered write into a committed one instead of
  // appending a commit message (MessageBuffer::CommitInPlace).
  std::atomic<uint64_t> commits_in_place{0};
  std::atomic<uint64_t> flushes{0};             // child buffers moved down
  std::atomic<uint64_t> cleaner_flushes{0};     // flushes started by the cleaner thread
  std::atomic<uint64_t> kept_flushes{0};        // flushes of nodes the evictor wrote but kept
  std::atomic<uint64_t> background_flushes{0};  // gorged nodes flushed by the flusher pool
  // Paths flushed because a read met a batch of rows all deleted by buffered messages.
  std::atomic<uint64_t> read_triggered_flushes{0};
  std::atomic<uint64_t> batches_read{0};  // ReadBatch calls (cursor steps that descended)
  // Rows a read rebuilt in a copy from buffered messages (the newest message alone did not
  // settle them), and the most committed versions such a copy kept after its last message:
  // live snapshots pin versions, and the collection keeps only those some reader needs.
  std::atomic<uint64_t> rows_rebuilt_for_read{0};
  std::atomic<uint64_t> largest_rebuilt_row_versions{0};
  std::atomic<uint64_t> flush_errors{0};   // background flushes that failed (retried later)
  std::atomic<uint64_t> read_restarts{0};  // reads that met a write-locked node and restarted
  std::atomic<uint64_t> basements_read_ahead{0};  // basements a cursor readahead visited
  // Basements loaded beside a point read's miss while the cache had room (WarmLeaf).
  std::atomic<uint64_t> basements_warmed{0};
  // Internal nodes whose buffers were compressed in memory, and decompressed again at a pin.
  std::atomic<uint64_t> buffers_frozen{0};
  std::atomic<uint64_t> buffers_thawed{0};
  std::atomic<uint64_t> messages_flushed{0};
  std::atomic<uint64_t> largest_flush_bytes{0};  // the most buffered bytes one flush moved
  std::atomic<uint64_t> leaf_splits{0};
  std::atomic<uint64_t> internal_splits{0};
  std::atomic<uint64_t> root_splits{0};
  std::atomic<uint64_t> leaf_merges{0};
  std::atomic<uint64_t> internal_merges{0};
  // Leaves emptied (a queue's consumed head) and removed without touching a neighbour.
  std::atomic<uint64_t> empty_leaves_dropped{0};
  std::atomic<uint64_t> basement_splits{0};
  std::atomic<uint64_t> basement_merges{0};
  std::atomic<uint64_t> basements_fetched{0};  // partial fetches of one basement
  // Basements a point read decoded from disk into a transient copy, not kept (the cache was
  // full and BasementAdmission said no).
  std::atomic<uint64_t> basements_read_uncached{0};
  // Of those, the ones that read from disk only the chunks they needed, through the
  // partition's kept LeafChunkIndex (counted when they start: failed ones too).
  std::atomic<uint64_t> chunk_index_reads{0};
  // Basements a long scan (Caching::kStream) decoded from disk into a transient copy.
  std::atomic<uint64_t> basements_streamed{0};
  // Of those, the ones decoded ahead on the readahead pool (StreamAhead), and the basements
  // it decoded in all (some never used: the scan stopped or a write changed them).
  std::atomic<uint64_t> basements_streamed_ahead{0};
  std::atomic<uint64_t> basements_decoded_ahead{0};
  std::atomic<uint64_t> nodes_read{0};
  // Of those, internal nodes: read whole, all buffers decoded; more than a few per thousand
  // point reads means the upper levels do not fit in the cache.
  std::atomic<uint64_t> internal_nodes_read{0};
  std::atomic<uint64_t> nodes_written{0};      // checkpoint clones included
  std::atomic<uint64_t> checkpoint_clones{0};  // nodes copied for a checkpoint by a writer
  std::atomic<uint64_t> checkpoint_clones_written{0};
  std::atomic<uint64_t> bytes_written{0};       // serialized node bytes handed to the file
  std::atomic<uint64_t> leaf_bytes_written{0};  // the part of bytes_written that was leaves
  std::atomic<uint64_t> raw_bytes_compressed{0};
  std::atomic<uint64_t> raw_bytes_decompressed{0};
  // Updates that left their row as it was (ApplyContext): its value block was damaged, or
  // the update function's result was over the value limit.
  std::atomic<uint64_t> updates_of_damaged_rows{0};
  std::atomic<uint64_t> update_results_too_big{0};

  // "name: value" lines, each name prefixed with `prefix`.
  std::string ToText(const std::string& prefix) const;
};

}  // namespace fern

#endif  // FERN_FT_TREE_STATS_H_
