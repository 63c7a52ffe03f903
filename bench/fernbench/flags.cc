#include "fernbench/flags.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <string_view>

#include "fernbench/data.h"
#include "fernbench/engine.h"
#include "fernbench/workloads.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern::bench {

namespace {

constexpr uint64_t kMaxN = 9999999999999999;  // keys are 16 decimal digits
constexpr int kMaxThreads = 1024;
constexpr std::string_view kCompressions[] = {"default", "none", "snappy", "zlib", "zstd", "lzma"};

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> items;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    if (!item.empty()) items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

Status ParseUnsigned(std::string_view flag, std::string_view text, uint64_t* value) {
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, *value);
  if (text.empty() || error != std::errc() || ptr != end) {
    return Status::InvalidArgument(
        StrCat("--", flag, " wants a non-negative integer, not '", text, "'"));
  }
  return Status::OK();
}

Status ParseBool(std::string_view flag, std::string_view text, bool* value) {
  if (text == "true" || text == "1" || text == "yes") {
    *value = true;
  } else if (text == "false" || text == "0" || text == "no") {
    *value = false;
  } else {
    return Status::InvalidArgument(StrCat("--", flag, " wants true or false, not '", text, "'"));
  }
  return Status::OK();
}

Status SetFlag(std::string_view name, std::string_view value, Flags* flags) {
  if (name == "engines") {
    flags->engines = SplitList(value);
  } else if (name == "n") {
    FERN_RETURN_IF_ERROR(ParseUnsigned(name, value, &flags->n));
  } else if (name == "cache_mb") {
    FERN_RETURN_IF_ERROR(ParseUnsigned(name, value, &flags->cache_mb));
  } else if (name == "compression") {
    flags->compression = std::string(value);
  } else if (name == "threads") {
    uint64_t threads = 0;
    FERN_RETURN_IF_ERROR(ParseUnsigned(name, value, &threads));
    if (threads < 1 || threads > kMaxThreads) {
      return Status::InvalidArgument(StrCat("--threads must be 1..", kMaxThreads));
    }
    flags->threads = static_cast<int>(threads);
  } else if (name == "workloads") {
    flags->workloads = value == "all" ? std::vector<std::string>() : SplitList(value);
  } else if (name == "dir") {
    flags->dir = std::string(value);
  } else if (name == "baseline") {
    flags->baseline = std::string(value);
  } else if (name == "keep") {
    FERN_RETURN_IF_ERROR(ParseBool(name, value, &flags->keep));
  } else if (name == "fern_basement_kb") {
    FERN_RETURN_IF_ERROR(ParseUnsigned(name, value, &flags->fern_basement_kb));
    if (flags->fern_basement_kb > 4096) {
      return Status::InvalidArgument("--fern_basement_kb must be at most 4096");
    }
  } else if (name == "fern_node_kb") {
    FERN_RETURN_IF_ERROR(ParseUnsigned(name, value, &flags->fern_node_kb));
    if (flags->fern_node_kb > 1024 * 1024) {
      return Status::InvalidArgument("--fern_node_kb must be at most 1048576");
    }
  } else if (name == "fern_buffer_percent") {
    // Fern's Env::Open checks the range; this only keeps the value within uint32_t.
    uint64_t percent;
    FERN_RETURN_IF_ERROR(ParseUnsigned(name, value, &percent));
    if (percent > 100) return Status::InvalidArgument("--fern_buffer_percent must be at most 100");
    flags->fern_buffer_percent = static_cast<int64_t>(percent);
  } else if (name == "reuse") {
    FERN_RETURN_IF_ERROR(ParseBool(name, value, &flags->reuse));
  } else {
    return Status::InvalidArgument(StrCat("unknown flag --", name, " (see --help)"));
  }
  return Status::OK();
}

bool Contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

Status FillDefaultsAndValidate(Flags* flags) {
  const bool engines_named = !flags->engines.empty();
  if (flags->engines.empty()) {
    for (const EngineInfo& info : BuiltEngines()) flags->engines.push_back(info.name);
    if (flags->engines.empty()) return Status::InvalidArgument("no backend was built");
  }
  for (const std::string& engine : flags->engines) {
    if (FindEngine(engine) == nullptr) {
      return Status::InvalidArgument(
          StrCat("--engines: ", engine, " is not built into this binary (see --help)"));
    }
    if (std::count(flags->engines.begin(), flags->engines.end(), engine) > 1) {
      return Status::InvalidArgument(StrCat("--engines names ", engine, " twice"));
    }
  }
  if (flags->n == 0 || flags->n > kMaxN || !Permutation::IsValidN(flags->n)) {
    return Status::InvalidArgument(
        StrCat("--n ", flags->n, " is unusable: it must be 1..", kMaxN,
               " with gcd(2654435761, n) = 1 so that the random order is a permutation"));
  }
  if (flags->cache_mb == 0) return Status::InvalidArgument("--cache_mb must be positive");
  if (std::find(std::begin(kCompressions), std::end(kCompressions), flags->compression) ==
      std::end(kCompressions)) {
    return Status::InvalidArgument(StrCat("--compression ", flags->compression,
                                          ": use default, none, snappy, zlib, zstd or lzma"));
  }
  // An engine without the codec would only fail: a named one is an error now, and the
  // default list leaves it out, saying so.
  std::vector<std::string> runnable;
  for (const std::string& engine : flags->engines) {
    if (HasCodec(*FindEngine(engine), flags->compression)) {
      runnable.push_back(engine);
      continue;
    }
    const std::string why = StrCat(engine, " has no ", flags->compression, " codec");
    if (engines_named) {
      return Status::InvalidArgument(
          StrCat("--compression ", flags->compression, ": ", why, "; leave it out of --engines"));
    }
    flags->skipped.push_back(StrCat(engine, ": it has no ", flags->compression, " codec"));
  }
  if (runnable.empty()) {
    return Status::InvalidArgument(
        StrCat("--compression ", flags->compression, ": no engine built here has that codec"));
  }
  flags->engines = std::move(runnable);
  if (flags->workloads.empty()) {
    for (const WorkloadSpec& spec : AllWorkloads()) flags->workloads.push_back(spec.name);
  }
  for (const std::string& workload : flags->workloads) {
    if (FindWorkload(workload) == nullptr) {
      return Status::InvalidArgument(StrCat("--workloads: unknown workload ", workload));
    }
  }
  if (flags->reuse) {
    if (flags->dir.empty()) return Status::InvalidArgument("--reuse needs --dir");
    for (const std::string& workload : flags->workloads) {
      const WorkloadSpec* spec = FindWorkload(workload);
      if (spec->database == Database::kMain && spec->workload != Workload::kReadRandom &&
          spec->workload != Workload::kReadSeq && spec->workload != Workload::kSeekRandom) {
        return Status::InvalidArgument(
            StrCat("--reuse runs only workloads that leave the main database as it is "
                   "(readrandom, readseq, seekrandom, fillseq, fillsync), not ",
                   workload));
      }
    }
    flags->keep = true;
  }
  if (flags->dir.empty()) flags->dir = StrCat("/tmp/fernbench-", getpid());
  if (flags->baseline.empty()) {
    flags->baseline = Contains(flags->engines, "rocksdb") ? "rocksdb" : flags->engines.front();
  } else if (!Contains(flags->engines, flags->baseline)) {
    return Status::InvalidArgument(
        StrCat("--baseline ", flags->baseline, " is not among --engines",
               FindEngine(flags->baseline) != nullptr &&
                       !HasCodec(*FindEngine(flags->baseline), flags->compression)
                   ? StrCat(" (it has no ", flags->compression, " codec)")
                   : std::string()));
  }
  return Status::OK();
}

}  // namespace

Status ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      flags->help = true;
      return Status::OK();
    }
    if (!arg.starts_with("--")) {
      return Status::InvalidArgument(StrCat("unexpected argument '", arg, "' (see --help)"));
    }
    arg.remove_prefix(2);
    size_t equals = arg.find('=');
    std::string_view name = arg.substr(0, equals);
    std::string_view value;
    if (equals != std::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (name == "keep" || name == "reuse") {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Status::InvalidArgument(StrCat("--", name, " needs a value"));
    }
    FERN_RETURN_IF_ERROR(SetFlag(name, value, flags));
  }
  return FillDefaultsAndValidate(flags);
}

std::string Usage() {
  std::string built;
  for (const EngineInfo& info : BuiltEngines()) {
    built += StrCat("  ", info.name, " ", info.version, "\n");
  }
  std::string missing;
  for (const std::string& reason : MissingEngines()) missing += StrCat("  ", reason, "\n");
  std::string workloads;
  for (const WorkloadSpec& spec : AllWorkloads()) {
    workloads += StrCat(workloads.empty() ? "" : ",", spec.name);
  }
  return StrCat(
      "fernbench: runs the WORKLOADS.md workloads on Fern and peer engines, side by side.\n"
      "\n"
      "Usage: fernbench [--flag=value | --flag value]...\n"
      "  --engines=LIST      engines to run, comma-separated (default: every one built\n"
      "                      that has the --compression codec)\n"
      "  --n=N               keys (default 2000000; gcd(2654435761, N) must be 1)\n"
      "  --cache_mb=MB       each engine's cache (default 64)\n"
      "  --compression=C     default (zstd for fern, snappy for rocksdb), none, snappy, zlib,\n"
      "                      zstd or lzma; an engine without C (lmdb has only none, rocksdb\n"
      "                      no lzma) is left out of the default --engines, refused by name\n"
      "  --threads=T         split each workload's operations across T threads (default 1)\n"
      "  --workloads=LIST    subset of ",
      workloads,
      " (default all;\n"
      "                      they always run in that order)\n"
      "  --baseline=ENGINE   engine the ratio table divides by (default rocksdb if run,\n"
      "                      else the first engine)\n"
      "  --dir=DIR           where the databases go (default /tmp/fernbench-<pid>)\n"
      "  --keep              keep the databases after the run\n"
      "  --fern_basement_kb=KB  Fern's basement size for tables it creates (default: Fern's)\n"
      "  --fern_node_kb=KB      Fern's node size for tables it creates (default: Fern's)\n"
      "  --fern_buffer_percent=P  Fern's Options::buffer_budget_percent (default: Fern's)\n"
      "  --reuse             run on the main databases an earlier --keep run of fillrandom\n"
      "                      and overwrite left in --dir (implies --keep; only readrandom,\n"
      "                      readseq, seekrandom, fillseq and fillsync)\n"
      "\n"
      "Backends built into this binary:\n",
      built.empty() ? "  (none)\n" : built, missing.empty() ? "" : "Backends not built:\n",
      missing);
}

}  // namespace fern::bench
