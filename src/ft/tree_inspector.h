// TreeInspector: reads a table file without the cachetable and reports its header, block
// table, tree shape and compression, and (when verifying) every problem it finds. Used by
// ftdump and ftverify; it never modifies the file.
#ifndef FERN_FT_TREE_INSPECTOR_H_
#define FERN_FT_TREE_INSPECTOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fern/options.h"
#include "fern/status.h"
#include "ft/node_format.h"
#include "ft/tree_file.h"

namespace fern {

struct CodecUsage {
  uint64_t partitions = 0;
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;
};

struct InspectProblem {
  BlockNum block = -1;  // -1: not about one block
  std::string what;
  // Worth knowing but not damage (a comparator that is not built in, so key order went
  // unchecked; a header slot a crash may leave unreadable; no root yet): the tools print
  // it and still call the file clean.
  bool note = false;
};

struct TreeReport {
  FileHeader header;
  BlockTable::Stats blocks;
  int height = 0;                         // levels; 1 = a single leaf
  std::vector<uint64_t> nodes_per_level;  // index = node height
  std::vector<uint64_t> partitions_per_level;
  std::vector<uint64_t> messages_per_level;
  std::vector<uint64_t> message_bytes_per_level;
  std::vector<uint64_t> pivot_bytes_per_level;  // key bytes of the nodes' pivots
  uint64_t rows = 0;  // leaf entries (before messages still buffered above them)
  // Basements stored as chunks (leaf_frame.h), and the chunks they hold in all.
  uint64_t chunked_basements = 0;
  uint64_t basement_chunks = 0;
  uint64_t nodes_visited = 0;
  // Values stored out of line (out_of_line_value.h): value blocks, and their value bytes.
  uint64_t out_of_line_values = 0;
  uint64_t out_of_line_bytes = 0;
  std::map<Compression, CodecUsage> codecs;
  std::vector<InspectProblem> problems;
};

struct InspectOptions {
  // Decode every partition and check keys, bounds and MSNs (ftverify); otherwise only
  // what the shape and codec figures need (ftdump still decodes partitions to count them).
  bool verify = true;
  // Called after each node with (nodes done, blocks in the table).
  std::function<void(uint64_t, uint64_t)> progress;
};

// Opens `path` read-only and walks the whole tree. Returns non-OK only when the file
// cannot be opened at all (its header or block table is unreadable); damage found while
// walking is listed in report->problems.
Status InspectTreeFile(const std::string& path, const InspectOptions& options, TreeReport* report);

// Renders one node (header, pivots, children, and each partition's messages or rows).
Status DescribeNode(const std::string& path, BlockNum block, bool json, std::string* text);

}  // namespace fern

#endif  // FERN_FT_TREE_INSPECTOR_H_
