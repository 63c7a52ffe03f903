#include "ft/tree_inspector.h"

#include <map>
#include <optional>
#include <set>

#include "ft/basement.h"
#include "ft/leaf_frame.h"
#include "ft/out_of_line_value.h"
#include "util/compression.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// Comparator for checks: the stored name must be one the tools know.
const Comparator* KnownComparator(const std::string& name) {
  if (name == BytewiseComparator()->Name()) return BytewiseComparator();
  return nullptr;
}

// Comparator for decoding. When the file's comparator is unknown, its keys are in an order
// no other comparator can check: decoding then checks none (Walker skips its own order
// checks too), and a healthy file decodes whole.
const Comparator& DecodeComparator(const Comparator* known) {
  return known != nullptr ? *known : *UncheckedKeyOrder();
}

class Walker {
 public:
  Walker(TreeFile* file, const InspectOptions& options, TreeReport* report)
      : file_(file),
        options_(options),
        report_(report),
        cmp_(KnownComparator(report->header.comparator_name)) {}

  void Walk(BlockNum root) {
    if (cmp_ == nullptr) {
      report_->problems.push_back({-1,
                                   StrCat("comparator \"", report_->header.comparator_name,
                                          "\" is not built in: key order was not checked"),
                                   /*note=*/true});
    }
    Visit(root, std::nullopt, std::nullopt, -1, std::nullopt, 0);
    // Every allocated block should be reachable from the root.
    file_->ForEachBlock([this](BlockNum block, BlockLocation) {
      if (reached_.count(block) == 0 && options_.verify) {
        Problem(block, "allocated in the block table but not reachable from the root");
      }
    });
  }

 private:
  void Problem(BlockNum block, std::string what) {
    report_->problems.push_back({block, std::move(what)});
  }

  bool InRange(std::string_view key, const std::optional<std::string>& lower,
               const std::optional<std::string>& upper) const {
    if (cmp_ == nullptr) return true;
    if (lower && cmp_->Compare(key, *lower) < 0) return false;
    if (upper && cmp_->Compare(key, *upper) >= 0) return false;
    return true;
  }

  // Records that `block` was reached as a node (`row` empty) or as the value block of the
  // row whose (escaped) key is *row. False, with the problem reported naming both uses, when
  // something reached it before; but a node that a row's reference reached first is still
  // walked (true), the reference reported, since the child pointer is the one to believe.
  bool Reach(BlockNum block, const std::optional<std::string>& row) {
    auto [it, first_time] = reached_.emplace(block, row);
    if (first_time) return true;
    const std::optional<std::string>& before = it->second;
    if (!row && !before) {
      Problem(block, "reached twice: the tree has a cycle or a shared child");
    } else if (!row) {
      // A row's damaged reference reached this node first: the node is still walked, and
      // the reference is the problem.
      Problem(block, StrCat("the value of row \"", *before, "\" references this block, a node"));
      it->second = std::nullopt;
      return true;
    } else if (!before) {
      Problem(block, StrCat("the value of row \"", *row, "\" references this block, a node"));
    } else {
      Problem(block, StrCat("the value block of row \"", *row, "\" is also that of row \"", *before,
                            "\""));
    }
    return false;
  }

  void Visit(BlockNum block, const std::optional<std::string>& lower,
             const std::optional<std::string>& upper, int expected_height,
             std::optional<Msn> parent_min_msn, int depth) {
    const std::string where = StrCat(file_->path(), ": block ", block);
    if (depth > static_cast<int>(kMaxTreeHeight)) {
      Problem(block, StrCat("deeper than ", kMaxTreeHeight, " levels: the tree has a cycle"));
      return;
    }
    if (!Reach(block, std::nullopt)) return;
    std::string bytes;
    Status s = file_->ReadBlock(block, &bytes);
    if (!s.ok()) return Problem(block, s.ToString());
    NodeHeader header;
    size_t needed;
    s = ParseNodeHeader(bytes, bytes.size(), where, &header, &needed);
    if (s.ok() && needed > 0) s = Status::Corruption(StrCat(where, ": header longer than block"));
    if (!s.ok()) return Problem(block, s.ToString());
    report_->nodes_visited++;
    if (options_.progress) options_.progress(report_->nodes_visited, report_->blocks.blocks);

    const int height = static_cast<int>(header.height);
    if (expected_height >= 0 && height != expected_height) {
      Problem(block, StrCat("height ", height, " under a parent expecting ", expected_height));
    }
    if (static_cast<size_t>(height) >= report_->nodes_per_level.size()) {
      report_->nodes_per_level.resize(height + 1);
      report_->partitions_per_level.resize(height + 1);
      report_->messages_per_level.resize(height + 1);
      report_->message_bytes_per_level.resize(height + 1);
      report_->pivot_bytes_per_level.resize(height + 1);
      report_->height = std::max(report_->height, height + 1);
    }
    report_->nodes_per_level[height]++;
    report_->partitions_per_level[height] += header.extents.size();
    for (const std::string& pivot : header.pivots) {
      report_->pivot_bytes_per_level[height] += pivot.size();
    }
    if (parent_min_msn && header.max_msn >= *parent_min_msn) {
      Problem(block, StrCat("max MSN ", header.max_msn,
                            " is not below the oldest message buffered for it above (",
                            *parent_min_msn, ")"));
    }
    for (size_t i = 0; i < header.pivots.size(); ++i) {
      if (!InRange(header.pivots[i], lower, upper) ||
          (i > 0 && cmp_ != nullptr &&
           cmp_->Compare(header.pivots[i - 1], header.pivots[i]) >= 0)) {
        Problem(block, StrCat("pivot ", i, " out of order or outside the node's key range"));
      }
    }
    const Comparator& cmp = DecodeComparator(cmp_);
    for (size_t i = 0; i < header.extents.size(); ++i) {
      const PartitionExtent& e = header.extents[i];
      std::string_view frame = std::string_view(bytes).substr(e.offset, e.size);
      Compression codec;
      size_t chunks;
      if (height == 0 ? PeekLeafFrame(frame, &codec, &chunks) : PeekCodec(frame, &codec)) {
        CodecUsage& usage = report_->codecs[codec];
        usage.partitions++;
        if (height == 0 && chunks > 1) {
          report_->chunked_basements++;
          report_->basement_chunks += chunks;
        }
        usage.raw_bytes += e.raw_size;
        usage.stored_bytes += e.size;
      }
      std::optional<std::string> part_lower = i == 0 ? lower : header.pivots[i - 1];
      std::optional<std::string> part_upper =
          i + 1 == header.extents.size() ? upper : header.pivots[i];
      if (height == 0) {
        std::unique_ptr<Basement> rows;
        s = DecodeLeafPartition(frame, e, cmp, where, &rows, nullptr);
        if (!s.ok()) {
          Problem(block, s.ToString());
          continue;
        }
        report_->rows += rows->count();
        if (rows->max_msn() > header.max_msn) {
          Problem(block, StrCat("basement ", i, " MSN ", rows->max_msn(), " above node's ",
                                header.max_msn));
        }
        if (options_.verify) {
          for (size_t r = 0; r < rows->count(); ++r) {
            if (!InRange(rows->key(r), part_lower, part_upper)) {
              Problem(block, StrCat("basement ", i, " row ", r, " key \"",
                                    EscapeBytes(rows->key(r)), "\" outside its range"));
              break;
            }
          }
        }
        for (size_t r = 0; r < rows->count(); ++r) VisitValues(block, rows->entry(r));
      } else {
        MessageBuffer buffer;
        s = DecodeBufferPartition(frame, e, cmp, where, &buffer, nullptr);
        if (!s.ok()) {
          Problem(block, s.ToString());
          continue;
        }
        report_->messages_per_level[height] += buffer.count();
        report_->message_bytes_per_level[height] += buffer.bytes();
        std::optional<Msn> min_msn;
        bool reported = false;
        buffer.ForEach([&](const Message& m) {
          if (!min_msn || m.msn < *min_msn) min_msn = m.msn;
          if (m.msn > header.max_msn && !reported) {
            Problem(block, StrCat("message MSN ", m.msn, " above node's ", header.max_msn));
            reported = true;
          }
          if (options_.verify && !IsBroadcast(m.type) && !reported &&
              !InRange(m.key, part_lower, part_upper)) {
            Problem(block, StrCat("buffer ", i, " holds key \"", EscapeBytes(m.key),
                                  "\" outside child ", i, "'s range"));
            reported = true;
          }
        });
        if (i < header.children.size()) {
          Visit(header.children[i], part_lower, part_upper, height - 1, min_msn, depth + 1);
        }
      }
    }
  }

  // Counts the value blocks `entry` references and marks them reached; when verifying,
  // reads each and checks it against its reference.
  void VisitValues(BlockNum leaf, const LeafEntryView& entry) {
    if (!entry.has_out_of_line()) return;
    std::set<std::string_view> seen;  // a placeholder shares its original's block
    entry.ForEachVersion([&](const LeafEntryView::Version& version, bool) {
      if (!version.out_of_line || !seen.insert(version.value).second) return;
      ValueRef ref;
      if (!ValueRef::Decode(version.value, &ref)) return;  // Parse checked it
      report_->out_of_line_values++;
      report_->out_of_line_bytes += ref.length;
      const std::string key = EscapeBytes(entry.key());
      if (report_->header.format_version < 3) {
        Problem(leaf, StrCat("row \"", key, "\" references a value block in a format version ",
                             report_->header.format_version, " file"));
      }
      if (!Reach(ref.block, key)) return;
      if (!options_.verify) return;
      std::string bytes, value;
      Status s = file_->ReadBlock(ref.block, &bytes);
      if (s.ok()) s = DecodeValueBlock(bytes, ref, file_->path(), &value);
      if (!s.ok()) Problem(ref.block, StrCat("row \"", key, "\": ", s.ToString()));
    });
  }

  TreeFile* file_;
  const InspectOptions& options_;
  TreeReport* report_;
  const Comparator* cmp_;
  // What reached each block first: std::nullopt for a node, else the row whose value it is.
  std::map<BlockNum, std::optional<std::string>> reached_;
};

}  // namespace

Status InspectTreeFile(const std::string& path, const InspectOptions& options, TreeReport* report) {
  std::unique_ptr<TreeFile> file;
  FERN_RETURN_IF_ERROR(TreeFile::Open(path, /*read_only=*/true, &file));
  *report = TreeReport();
  report->header = file->header();
  report->blocks = file->stats();
  if (!file->unreadable_header_slots().empty()) {
    // Not damage to the data: the other slot holds the header in use.
    report->problems.push_back(
        {-1,
         StrCat("header ", file->unreadable_header_slots(), " (in use: slot ", file->header_slot(),
                ", checkpoint ", report->header.checkpoint_count,
                "; a crash while a checkpoint wrote its header leaves this, and the next "
                "checkpoint rewrites that slot)"),
         /*note=*/true});
  }
  if (report->header.root < 0) {
    // Not damage: what a crash leaves of a table whose creation it cut short (OpenTable
    // creates that file anew).
    report->problems.push_back({-1, "header names no root block", /*note=*/true});
    return Status::OK();
  }
  Walker walker(file.get(), options, report);
  walker.Walk(report->header.root);
  return Status::OK();
}

Status DescribeNode(const std::string& path, BlockNum block, bool json, std::string* text) {
  std::unique_ptr<TreeFile> file;
  FERN_RETURN_IF_ERROR(TreeFile::Open(path, /*read_only=*/true, &file));
  const std::string where = StrCat(path, ": block ", block);
  uint64_t size;
  if (!file->BlockSize(block, &size).ok()) {
    return Status::InvalidArgument(
        StrCat(where, " is not in use (the root is block ", file->header().root, ")"));
  }
  std::string bytes;
  FERN_RETURN_IF_ERROR(file->ReadBlock(block, &bytes));
  NodeHeader header;
  size_t needed;
  FERN_RETURN_IF_ERROR(ParseNodeHeader(bytes, bytes.size(), where, &header, &needed));
  if (needed > 0) return Status::Corruption(StrCat(where, ": header longer than block"));
  const Comparator& cmp = DecodeComparator(KnownComparator(file->header().comparator_name));

  // Bytes other than printable ASCII (and backslashes) as \xNN (EscapeBytes), in quotes: a
  // JSON string escapes EscapeBytes' backslashes and quotes once more, so that it decodes
  // to the same text; the text output shows a quote as \x22 and adds nothing else.
  auto quote = [json](std::string_view s) {
    std::string out = "\"";
    for (char c : EscapeBytes(s, 256)) {
      if (c == '"') {
        out += json ? "\\\"" : "\\x22";
        continue;
      }
      if (c == '\\' && json) out.push_back('\\');
      out.push_back(c);
    }
    return out + "\"";
  };
  std::string out;
  if (json) {
    out += StrCat("{\"block\":", block, ",\"height\":", header.height,
                  ",\"max_msn\":", header.max_msn, ",\"bytes\":", bytes.size(), ",\"pivots\":[");
    for (size_t i = 0; i < header.pivots.size(); ++i) {
      out += StrCat(i ? "," : "", quote(header.pivots[i]));
    }
    out += "],\"children\":[";
    for (size_t i = 0; i < header.children.size(); ++i) {
      out += StrCat(i ? "," : "", header.children[i]);
    }
    out += "],\"partitions\":[";
  } else {
    out += StrCat("block ", block, ": ", header.height == 0 ? "leaf" : "internal node", ", height ",
                  header.height, ", max MSN ", header.max_msn, ", ", bytes.size(), " bytes, ",
                  header.extents.size(), " partitions\n");
    for (size_t i = 0; i < header.pivots.size(); ++i) {
      out += StrCat("  pivot ", i, ": ", quote(header.pivots[i]), "\n");
    }
  }
  for (size_t i = 0; i < header.extents.size(); ++i) {
    const PartitionExtent& e = header.extents[i];
    std::string_view frame = std::string_view(bytes).substr(e.offset, e.size);
    Compression codec = Compression::kNone;
    size_t chunks = 1;
    if (header.height == 0) {
      PeekLeafFrame(frame, &codec, &chunks);
    } else {
      PeekCodec(frame, &codec);
    }
    std::string items;
    size_t count = 0;
    Status s;
    if (header.height == 0) {
      std::unique_ptr<Basement> rows;
      s = DecodeLeafPartition(frame, e, cmp, where, &rows, nullptr);
      if (s.ok()) {
        count = rows->count();
        for (size_t r = 0; r < rows->count(); ++r) {
          LeafEntryView entry = rows->entry(r);
          StoredValue stored;
          const bool live = entry.LatestCommitted(&stored);
          ValueRef ref;
          const bool outside = live && stored.out_of_line && ValueRef::Decode(stored.bytes, &ref);
          if (json) {
            std::string value;
            if (outside) {
              value = StrCat(",\"value_block\":", ref.block, ",\"value_bytes\":", ref.length);
            } else if (live) {
              value = StrCat(",\"value\":", quote(stored.bytes));
            }
            items += StrCat(r ? "," : "", "{\"key\":", quote(rows->key(r)),
                            ",\"committed\":", entry.committed_count(),
                            ",\"provisional\":", entry.provisional_count(), value, "}");
          } else {
            std::string value = "<deleted>";
            if (outside) {
              value = StrCat("<", ref.length, " bytes in value block ", ref.block, ">");
            } else if (live) {
              value = quote(stored.bytes);
            }
            items +=
                StrCat("      ", quote(rows->key(r)), " = ", value, " (", entry.committed_count(),
                       " committed, ", entry.provisional_count(), " provisional)\n");
          }
        }
      }
    } else {
      MessageBuffer buffer;
      s = DecodeBufferPartition(frame, e, cmp, where, &buffer, nullptr);
      if (s.ok()) {
        count = buffer.count();
        bool first = true;
        buffer.ForEach([&](const Message& m) {
          if (json) {
            items +=
                StrCat(first ? "" : ",", "{\"msn\":", m.msn, ",\"type\":", static_cast<int>(m.type),
                       ",\"key\":", quote(m.key), ",\"value_bytes\":", m.value.size(), "}");
          } else {
            items += StrCat("      msn ", m.msn, " type ", static_cast<int>(m.type), " ",
                            quote(m.key), " (", m.value.size(), " value bytes)\n");
          }
          first = false;
        });
      }
    }
    if (json) {
      out += StrCat(i ? "," : "", "{\"codec\":\"", CompressionName(codec),
                    "\",\"stored_bytes\":", e.size, ",\"raw_bytes\":", e.raw_size,
                    header.height == 0 ? StrCat(",\"chunks\":", chunks) : std::string(),
                    s.ok() ? "" : StrCat(",\"error\":", quote(s.ToString())),
                    header.height == 0 ? ",\"rows\":[" : ",\"messages\":[", items, "]}");
    } else {
      out +=
          StrCat("  partition ", i, ": ", CompressionName(codec), ", ", e.size, " of ", e.raw_size,
                 " bytes", chunks > 1 ? StrCat(" in ", chunks, " chunks") : std::string(),
                 header.height > 0 ? StrCat(", child block ", header.children[i]) : "", ", ", count,
                 header.height == 0 ? " rows" : " messages", "\n");
      if (!s.ok()) out += StrCat("    error: ", s.ToString(), "\n");
      out += items;
    }
  }
  if (json) out += "]}\n";
  *text = std::move(out);
  return Status::OK();
}

}  // namespace fern
