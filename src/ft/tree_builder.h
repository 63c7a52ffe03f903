// TreeBuilder: writes a fractal tree bottom-up from rows given in increasing key order — the
// last step of the bulk loader (db/loader_impl.h).
//
// Shape of what it builds:
//  - Every row becomes an autocommitted leaf entry (one committed version by kNoTxn),
//    encoded straight into its basement (EncodeAutocommittedLeafEntry, AppendEncoded). A
//    value of kOutOfLineValueBytes or more goes to a value block of its own first, where
//    the file's format allows (out_of_line_value.h), as the tree's own writes would put it.
//  - Basements are filled to about basement_bytes and leaves to about 3/4 of node_bytes,
//    so a loaded leaf takes a quarter node of new rows before it splits. The last leaf is
//    evened out with the one before it (whole basements move), so it is not left below the
//    quarter node at which a leaf merges.
//  - Internal levels are made from the children's first keys (a pivot is the first key of
//    the partition to its right), at most `fanout` children per node, spread evenly over
//    as few nodes as that allows, so no node is below the merge threshold; buffers are
//    empty. The level with one node is the root.
//  - Every MSN is 0: the rows are older than any message the tree will receive, whatever
//    the tree's max MSN.
// Each node is serialized with SerializeNode (partitions compressed with the config's codec,
// in parallel on its pool) and written with TreeFile::WriteBlock under a new block number,
// leaf by leaf, so memory stays at about two leaves plus the first keys of the leaves.
// Nothing here touches the cachetable: the tree fetches the nodes once it is given the root.
//
// Thread-safety: one thread at a time.
#ifndef FERN_FT_TREE_BUILDER_H_
#define FERN_FT_TREE_BUILDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fern/status.h"
#include "ft/node.h"
#include "ft/tree_config.h"
#include "ft/tree_file.h"
#include "ft/tree_values.h"

namespace fern {

class TreeBuilder {
 public:
  // Blocks go to `file`, which must outlive the builder. `config` gives the comparator,
  // codec, node and basement sizes and fanout.
  TreeBuilder(TreeFile* file, const TreeConfig& config);
  // Frees every block written, unless Release was called.
  ~TreeBuilder();
  TreeBuilder(const TreeBuilder&) = delete;
  TreeBuilder& operator=(const TreeBuilder&) = delete;

  // REQUIRES: `key` sorts after every key added before (the caller rejects duplicates);
  // key and value within API.md's limits.
  Status Add(std::string_view key, std::string_view value);
  // Writes what is left of the leaves and the internal levels. *root is the new tree's root
  // block and *height its height (0: a single leaf). With no rows, the root is one empty
  // leaf. No Add afterwards.
  Status Finish(BlockNum* root, int* height);
  // The blocks now belong to a tree: the destructor leaves them alone.
  void Release() { released_ = true; }
  // Leaves `block` to someone else to free (FractalTree::InstallLoad takes the root's).
  void Disown(BlockNum block);

  uint64_t rows() const { return rows_; }
  uint64_t nodes_written() const { return written_.size() - value_blocks_written_; }
  uint64_t value_blocks_written() const { return value_blocks_written_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  struct Child {
    std::string lower;  // the pivot before it (unused for the first child of a level)
    BlockNum block;
  };

  // `lower` is the pivot between the previous leaf and this one.
  void StartLeaf(std::string lower);
  void StartBasement(std::string pivot);
  // The pivot between the row last added and `next`.
  std::string PivotBefore(std::string_view next) const;
  // The current leaf is full: writes the held one and holds the current one.
  Status CloseLeaf();
  // Moves whole basements from the end of held_ to the front of leaf_ until the two are
  // about even. REQUIRES: both exist.
  void EvenOutLastLeaves();
  Status WriteLeaf(std::unique_ptr<Node> leaf, std::string lower);
  Status WriteNode(const Node& node, BlockNum* block);

  TreeFile* const file_;
  const TreeConfig config_;
  const size_t leaf_target_bytes_;

  std::unique_ptr<Node> leaf_;    // being filled
  std::string leaf_lower_;        // the pivot before leaf_
  size_t leaf_bytes_ = 0;         // serialized bytes of leaf_'s basements
  Basement* basement_ = nullptr;  // leaf_'s last basement
  size_t basement_bytes_ = 0;
  // The previous full leaf, written only when the next one fills or at Finish, so the last
  // two can be evened out.
  std::unique_ptr<Node> held_;
  std::string held_lower_;
  size_t held_bytes_ = 0;

  std::vector<Child> leaves_;      // written leaves in key order
  std::vector<BlockNum> written_;  // nodes and value blocks
  TreeValues values_;
  uint64_t value_blocks_written_ = 0;
  std::string entry_;  // scratch for one encoded leaf entry
  std::string ref_;    // scratch for one value reference
  uint64_t rows_ = 0;
  uint64_t bytes_written_ = 0;
  bool finished_ = false;
  bool released_ = false;
};

}  // namespace fern

#endif  // FERN_FT_TREE_BUILDER_H_
