// LoaderImpl: the bulk loader (API.md, Loader). Builds an empty table's tree bottom-up.
//
// Add buffers rows in a RunBuffer of at most `run_bytes` (a quarter of the Env's cache
// budget); a full buffer is sorted (std::sort) and spilled as a run file
// (`loader-<table id>-<n>.run`, db/loader_run.h) in the Env directory. Finish sorts the
// last buffer, merges run files in passes of at most `merge width` (fewer when their
// blocks, a whole row each for big rows, would not fit in the run budget) while there are
// more than one pass reads, then merges the remaining runs and the buffer (a heap over the sources)
// straight into a TreeBuilder, which writes the new tree's nodes into the table's file,
// and installs the tree (FractalTree::InstallLoad): its checkpoint is the commit point.
//
// The load is not logged row by row. From Start until Finish returns, the tree is reserved
// (FractalTree::BeginLoad): checkpoints write nothing for it, so no checkpoint names a
// built block before the commit, and recovery after a crash before the commit finds the
// table as it was (empty; run files left behind are removed when the Env opens). After the
// commit, the table's checkpoint LSN is past every record the log held for it, and the
// loaded rows are in the checkpoint.
//
// A key added twice makes Finish return AlreadyExists naming it, with nothing loaded. A
// Finish that built the tree but found a snapshot or a lock in the table through the lock
// timeout returns Busy and keeps the built tree: a later Finish tries the install again
// (Add is then refused), and destroying the Loader abandons it. Any other failure abandons
// the load: run files are removed, built blocks freed, the reservation ended; later calls
// return the error. If the table holds a row or a buffered message
// when Finish comes to install (it was written during the load), Finish fails with
// InvalidArgument and those writes stand.
//
// The Env tracks its loaders. Destroying the Env abandons an unfinished load (as
// destroying the Loader would) and detaches every loader from the table: Add and Finish
// then return InvalidArgument, and destroying the Loader touches nothing of the Env.
//
// Thread-safety: one thread at a time, and not while the Env is being destroyed.
#ifndef FERN_DB_LOADER_IMPL_H_
#define FERN_DB_LOADER_IMPL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "db/loader_run.h"
#include "db/table_impl.h"
#include "fern/loader.h"
#include "ft/tree_builder.h"
#include "ft/tree_config.h"

namespace fern {

class LoaderImpl final : public Loader {
 public:
  // Reserves `table` for a load: InvalidArgument if it holds a row or a buffered message,
  // or another loader holds it. Run files go to `dir`.
  static Status Start(const std::string& dir, TableImpl* table, size_t run_bytes,
                      std::unique_ptr<Loader>* out);
  ~LoaderImpl() override;

  Status Add(std::string_view key, std::string_view value) override;
  Status Finish() override;

  // Called by the Env's destructor: abandons an unfinished load and lets go of the tree.
  void EnvClosing();

 private:
  // kBuilt: the tree is built, its install found the table observed (Busy) and waits for
  // the next Finish.
  enum class State { kAdding, kBuilt, kDone, kFailed };
  struct Run {
    std::string path;
    uint64_t records = 0;
    uint64_t largest_block = 0;  // what reading the file holds in memory
  };

  LoaderImpl(const std::string& dir, TableImpl* table, const TreeConfig& config, size_t run_bytes);
  // Sorts the buffer and writes it as a new run file.
  Status SpillRun();
  // How many of the oldest runs one merge reads at once: at most merge_width_, and while
  // their largest blocks fit in run_bytes_ (a run of rows bigger than that holds one such
  // row in memory), but at least two.
  size_t MergeCount() const;
  // Merges the oldest runs into one until the final merge reads them all at once.
  Status ReduceRuns();
  Status OpenReaders(size_t count, std::vector<std::unique_ptr<RunReader>>* readers);
  // Merges everything into a new tree (builder_, built_root_), then installs it.
  Status Build();
  // Installs the built tree: OK (kDone), Busy (stays kBuilt) or another error.
  Status Install();
  // Installs the built tree (FractalTree::InstallLoad, which then owns `root`: sets
  // `*handed_over`) at a moment when no snapshot is live and no transaction holds a lock in
  // the table, so that no reader that saw the table empty sees the rows appear: a snapshot
  // taken before, a serializable transaction that scanned it. Waits for such a moment up to
  // the lock timeout, then Busy (nothing installed).
  Status InstallWhenUnobserved(BlockNum root, bool* handed_over);
  // Abandons the load and remembers `s` for later calls; returns it.
  Status Fail(Status s);
  Status EnvClosedError() const;
  void RemoveRunFiles();

  const std::string dir_;
  TableImpl* const table_;             // not used once env_closed_
  std::shared_ptr<FractalTree> tree_;  // null once env_closed_
  const TreeConfig config_;
  const Comparator& cmp_;
  const size_t run_bytes_;
  const size_t merge_width_;

  State state_ = State::kAdding;
  bool env_closed_ = false;
  Status error_;      // why the load failed (kFailed)
  Status duplicate_;  // the first key added twice, found while spilling
  RunBuffer buffer_;
  // The tree being built, then built (kBuilt); its destructor frees the blocks it wrote
  // unless they were handed to the table. Reset before the reservation ends, so that no
  // checkpoint can name them.
  std::unique_ptr<TreeBuilder> builder_;
  BlockNum built_root_ = 0;
  std::vector<Run> runs_;  // run files on disk, oldest first
  uint64_t next_run_ = 0;
  uint64_t rows_ = 0;
};

}  // namespace fern

#endif  // FERN_DB_LOADER_IMPL_H_
