#include "ft/tree_stats.h"

#include "util/strings.h"

namespace fern {

std::string TreeStats::ToText(const std::string& prefix) const {
  std::string out;
  auto line = [&](const char* name, const std::atomic<uint64_t>& v) {
    out += StrCat(prefix, name, ": ", v.load(std::memory_order_relaxed), "\n");
  };
  for (int d = 0; d < kStatsMaxDepth; ++d) {
    uint64_t v = injected_at_depth[d].load(std::memory_order_relaxed);
    if (v != 0 || d == 0) out += StrCat(prefix, "messages_injected_depth", d, ": ", v, "\n");
  }
  line("promotions", promotions);
  line("commits_in_place", commits_in_place);
  line("flushes", flushes);
  line("cleaner_flushes", cleaner_flushes);
  line("kept_flushes", kept_flushes);
  line("background_flushes", background_flushes);
  line("read_triggered_flushes", read_triggered_flushes);
  line("batches_read", batches_read);
  line("rows_rebuilt_for_read", rows_rebuilt_for_read);
  line("largest_rebuilt_row_versions", largest_rebuilt_row_versions);
  line("flush_errors", flush_errors);
  line("read_restarts", read_restarts);
  line("basements_read_ahead", basements_read_ahead);
  line("basements_warmed", basements_warmed);
  line("buffers_frozen", buffers_frozen);
  line("buffers_thawed", buffers_thawed);
  line("messages_flushed", messages_flushed);
  line("largest_flush_bytes", largest_flush_bytes);
  line("leaf_splits", leaf_splits);
  line("internal_splits", internal_splits);
  line("root_splits", root_splits);
  line("leaf_merges", leaf_merges);
  line("internal_merges", internal_merges);
  line("empty_leaves_dropped", empty_leaves_dropped);
  line("updates_of_damaged_rows", updates_of_damaged_rows);
  line("update_results_too_big", update_results_too_big);
  line("basement_splits", basement_splits);
  line("basement_merges", basement_merges);
  line("basements_fetched", basements_fetched);
  line("basements_read_uncached", basements_read_uncached);
  line("chunk_index_reads", chunk_index_reads);
  line("basements_streamed", basements_streamed);
  line("basements_streamed_ahead", basements_streamed_ahead);
  line("basements_decoded_ahead", basements_decoded_ahead);
  line("nodes_read", nodes_read);
  line("internal_nodes_read", internal_nodes_read);
  line("nodes_written", nodes_written);
  line("checkpoint_clones", checkpoint_clones);
  line("checkpoint_clones_written", checkpoint_clones_written);
  line("node_bytes_written", bytes_written);
  line("leaf_bytes_written", leaf_bytes_written);
  line("raw_bytes_compressed", raw_bytes_compressed);
  line("raw_bytes_decompressed", raw_bytes_decompressed);
  return out;
}

}  // namespace fern
