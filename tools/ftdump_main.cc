// ftdump: prints what is inside a Fern table file.
//   ftdump FILE            header, block table, tree shape, compression per codec
//   ftdump FILE --node N   one node: pivots, children, messages or rows
//   --json                 machine-readable output
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "env_read_lock.h"
#include "ft/tree_inspector.h"
#include "tool_output.h"
#include "tool_progress.h"
#include "util/compression.h"
#include "util/strings.h"

namespace {

// To stdout when asked for (--help), to stderr after a usage error.
void Usage(std::FILE* out = stderr) {
  std::fprintf(out,
               "usage: ftdump FILE.ft [--node N] [--json]\n"
               "Prints the header (version, checkpoint LSN, node and basement sizes, comparator,\n"
               "codec), the block table (blocks, bytes used and free, fragmentation), the tree\n"
               "shape (height, nodes per level, fanout, buffered messages per level, basements\n"
               "stored in chunks) and the compression ratio per codec. --node N prints one node.\n"
               "Refuses (exit 2) while an Env has the file's directory open: check a closed Env\n"
               "or a copy.\n"
               "Exit status: 0 no damage met, 1 damage met (listed in the output;\n"
               "ftverify checks more), 2 the file cannot be opened or a usage error.\n");
}

double Ratio(uint64_t raw, uint64_t stored) {
  return stored == 0 ? 0.0 : static_cast<double>(raw) / static_cast<double>(stored);
}

// The header's file uid in hex ("none" in a version-1 file): a name to compare, not a
// number to compute with (JSON readers would round it).
std::string FileUid(const fern::FileHeader& h) {
  return h.file_uid == 0 ? "none" : fern::Hex64(h.file_uid);
}

std::string Text(const fern::TreeReport& r) {
  using fern::StrCat;
  const fern::FileHeader& h = r.header;
  std::string out;
  char buf[64];
  out += "header:\n";
  out += StrCat("  format version: ", h.format_version, "\n");
  out += StrCat("  file uid: ", FileUid(h), "\n");
  out += StrCat("  checkpoint count: ", h.checkpoint_count, "\n");
  out += StrCat("  checkpoint LSN: ", h.checkpoint_lsn, "\n");
  out += StrCat("  root block: ", h.root, "\n");
  out += StrCat("  max MSN: ", h.max_msn, "\n");
  out += StrCat("  node bytes: ", h.node_bytes, "\n");
  out += StrCat("  basement bytes: ", h.basement_bytes, "\n");
  out += StrCat("  comparator: ", h.comparator_name, "\n");
  out += StrCat("  codec for new partitions: ",
                fern::CompressionName(static_cast<fern::Compression>(h.compression)), " (level ",
                h.compression_level, ")\n");
  const auto& b = r.blocks;
  std::snprintf(buf, sizeof(buf), "%.1f%%",
                b.file_bytes == 0 ? 0.0
                                  : 100.0 * static_cast<double>(b.free_bytes) /
                                        static_cast<double>(b.file_bytes));
  out += "block table:\n";
  out += StrCat("  blocks: ", b.blocks, " (", b.split_blocks, " in two extents)\n");
  out += StrCat("  bytes used: ", b.used_bytes, "\n");
  out += StrCat("  bytes free: ", b.free_bytes, "\n");
  out += StrCat("  file bytes: ", b.file_bytes, "\n");
  out += StrCat("  fragmentation: ", buf, " of the file is free space\n");
  out += "tree:\n";
  out += StrCat("  height: ", r.height, "\n");
  out += StrCat("  rows in leaves: ", r.rows, "\n");
  out += StrCat("  values out of line: ", r.out_of_line_values, " (", r.out_of_line_bytes,
                " value bytes in their own blocks)\n");
  for (int level = r.height - 1; level >= 0; --level) {
    uint64_t nodes = r.nodes_per_level[level];
    std::snprintf(buf, sizeof(buf), "%.1f",
                  nodes == 0 ? 0.0 : static_cast<double>(r.partitions_per_level[level]) / nodes);
    out += StrCat("  level ", level, level == 0 ? " (leaves)" : "", ": ", nodes, " nodes, ",
                  level == 0 ? "basements per leaf " : "fanout ", buf);
    out += StrCat(", pivot bytes ", r.pivot_bytes_per_level[level]);
    if (level > 0) {
      out += StrCat(", buffered messages ", r.messages_per_level[level], " (",
                    r.message_bytes_per_level[level], " bytes)");
    }
    out += "\n";
  }
  if (r.height > 0) {
    std::snprintf(buf, sizeof(buf), "%.1f",
                  r.chunked_basements == 0
                      ? 0.0
                      : static_cast<double>(r.basement_chunks) / r.chunked_basements);
    out += StrCat("  basements stored in chunks: ", r.chunked_basements, " of ",
                  r.partitions_per_level[0], " (", buf, " chunks each)\n");
  }
  out += "compression:\n";
  for (const auto& [codec, usage] : r.codecs) {
    std::snprintf(buf, sizeof(buf), "%.2f", Ratio(usage.raw_bytes, usage.stored_bytes));
    out += StrCat("  ", fern::CompressionName(codec), ": ", usage.partitions, " partitions, ",
                  usage.raw_bytes, " raw bytes stored in ", usage.stored_bytes, " (ratio ", buf,
                  ")\n");
  }
  if (!r.problems.empty()) {
    out += "problems (run ftverify for a full check):\n";
    for (const auto& p : r.problems) {
      // A note about the whole file (no block), as ftverify prints it.
      out += p.block >= 0 ? StrCat("  block ", p.block, ": ", p.what, "\n")
                          : StrCat("  file: ", p.what, "\n");
    }
  }
  return out;
}

std::string Json(const fern::TreeReport& r) {
  using fern::StrCat;
  const fern::FileHeader& h = r.header;
  auto list = [](const std::vector<uint64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += StrCat(i ? "," : "", v[i]);
    return s + "]";
  };
  std::string comparator;
  for (char c : fern::EscapeBytes(h.comparator_name, 256)) {
    if (c == '"' || c == '\\') comparator.push_back('\\');
    comparator.push_back(c);
  }
  std::string out = "{";
  out += StrCat(
      "\"header\":{\"format_version\":", h.format_version, ",\"file_uid\":\"", FileUid(h), "\"",
      ",\"checkpoint_count\":", h.checkpoint_count, ",\"checkpoint_lsn\":", h.checkpoint_lsn,
      ",\"root\":", h.root, ",\"max_msn\":", h.max_msn, ",\"node_bytes\":", h.node_bytes,
      ",\"basement_bytes\":", h.basement_bytes, ",\"comparator\":\"", comparator, "\",\"codec\":\"",
      fern::CompressionName(static_cast<fern::Compression>(h.compression)),
      "\",\"compression_level\":", h.compression_level, "},");
  out +=
      StrCat("\"blocks\":{\"count\":", r.blocks.blocks, ",\"split_blocks\":", r.blocks.split_blocks,
             ",\"used_bytes\":", r.blocks.used_bytes, ",\"free_bytes\":", r.blocks.free_bytes,
             ",\"file_bytes\":", r.blocks.file_bytes, "},");
  out += StrCat("\"tree\":{\"height\":", r.height, ",\"rows\":", r.rows,
                ",\"nodes_per_level\":", list(r.nodes_per_level),
                ",\"partitions_per_level\":", list(r.partitions_per_level),
                ",\"messages_per_level\":", list(r.messages_per_level),
                ",\"message_bytes_per_level\":", list(r.message_bytes_per_level),
                ",\"pivot_bytes_per_level\":", list(r.pivot_bytes_per_level),
                ",\"chunked_basements\":", r.chunked_basements,
                ",\"basement_chunks\":", r.basement_chunks,
                ",\"out_of_line_values\":", r.out_of_line_values,
                ",\"out_of_line_bytes\":", r.out_of_line_bytes, "},");
  out += "\"codecs\":{";
  bool first = true;
  for (const auto& [codec, usage] : r.codecs) {
    out += StrCat(first ? "" : ",", "\"", fern::CompressionName(codec),
                  "\":{\"partitions\":", usage.partitions, ",\"raw_bytes\":", usage.raw_bytes,
                  ",\"stored_bytes\":", usage.stored_bytes, "}");
    first = false;
  }
  out += StrCat("},\"problems\":", r.problems.size(), "}\n");
  return out;
}

int Run(int argc, char** argv) {
  std::string path;
  bool json = false;
  long long node = -1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--node" && i + 1 < argc) {
      if (node >= 0) {
        std::fprintf(stderr, "ftdump: --node given twice\n");
        return 2;
      }
      char* end;
      errno = 0;
      node = std::strtoll(argv[++i], &end, 10);
      if (*end != '\0' || end == argv[i] || node < 0 || errno == ERANGE) {
        std::fprintf(stderr, "ftdump: --node takes a block number\n");
        return 2;
      }
    } else if (arg == "--help" || arg == "-h") {
      Usage(stdout);
      return 0;
    } else if (path.empty() && !arg.empty() && arg[0] != '-') {
      path = arg;
    } else {
      Usage();
      return 2;
    }
  }
  if (path.empty()) {
    Usage();
    return 2;
  }
  std::unique_ptr<fern::FileLock> lock;
  if (fern::Status s = fern::LockEnvForReading(fern::EnvDirOf(path), &lock); !s.ok()) {
    std::fprintf(stderr, "ftdump: %s\n", s.ToString().c_str());
    return 2;
  }
  if (node >= 0) {
    std::string text;
    fern::Status s = fern::DescribeNode(path, node, json, &text);
    if (!s.ok()) {
      std::fprintf(stderr, "ftdump: %s\n", s.ToString().c_str());
      return 1;
    }
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  fern::InspectOptions options;
  options.verify = false;
  options.progress = fern::TerminalProgress("read");
  fern::TreeReport report;
  fern::Status s = fern::InspectTreeFile(path, options, &report);
  fern::EndProgress();
  if (!s.ok()) {
    std::fprintf(stderr, "ftdump: cannot open %s: %s\n", path.c_str(), s.ToString().c_str());
    return 2;
  }
  std::fputs((json ? Json(report) : Text(report)).c_str(), stdout);
  // As in ftverify: a note (a comparator that is not built in) is not damage.
  const bool damaged = std::any_of(report.problems.begin(), report.problems.end(),
                                   [](const fern::InspectProblem& p) { return !p.note; });
  return damaged ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) { return fern::FinishOutput("ftdump", Run(argc, argv), 2); }
