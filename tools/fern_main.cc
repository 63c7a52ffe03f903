// fern: a command-line client for an Env directory.
//   fern put DIR TABLE KEY VALUE     fern get DIR TABLE KEY      fern delete DIR TABLE KEY
//   fern scan DIR TABLE [FROM [TO]]  fern drop DIR TABLE         fern stats DIR [TABLE...]
//   fern checkpoint DIR [TABLE...]  fern logdump DIR
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "db/catalog.h"
#include "fern/fern.h"
#include "log/log_dump.h"
#include "tool_output.h"
#include "util/file.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace {

// To stdout when asked for (--help), to stderr after a usage error. Returns the usage
// error's exit status.
int Usage(std::FILE* out = stderr) {
  std::fprintf(out,
               "usage:\n"
               "  fern put DIR TABLE KEY VALUE\n"
               "  fern get DIR TABLE KEY\n"
               "  fern delete DIR TABLE KEY\n"
               "  fern scan DIR TABLE [FROM [TO]]   rows with FROM <= key < TO, a line each: key,\n"
               "                                     a tab, value; bytes other than printable\n"
               "                                     ASCII, and backslashes, written as \\xNN\n"
               "  fern drop DIR TABLE\n"
               "  fern stats DIR [TABLE...]          engine counters after opening the tables\n"
               "  fern checkpoint DIR [TABLE...]\n"
               "  fern logdump DIR                   the write-ahead log, one record a line:\n"
               "                                     LSN FILE+OFFSET TYPE FIELDS...\n"
               "Tables use the default comparator; the Env must exist except for put, and\n"
               "the table too except for put (which creates what is missing).\n"
               "logdump only reads: it neither recovers the Env nor takes its lock.\n"
               "Exit status: 0 done, 1 an error (named on stderr), 2 usage, 3 get found no\n"
               "such key.\n");
  return 2;
}

// get's answer when the key is absent, apart from errors so that scripts can tell them
// apart.
constexpr int kKeyNotFound = 3;

// Whether `command` exists and takes `count` arguments (the command included), so that a
// mistyped command gets the usage, not an error about opening its directory.
bool IsCommandLine(const std::string& command, size_t count) {
  if (command == "put") return count == 5;
  if (command == "get" || command == "delete") return count == 4;
  if (command == "scan") return count >= 3 && count <= 5;
  if (command == "drop") return count == 3;
  if (command == "stats" || command == "checkpoint") return count >= 2;
  if (command == "logdump") return count == 2;
  return false;
}

int Fail(const fern::Status& s) {
  std::fprintf(stderr, "fern: %s\n", s.ToString().c_str());
  return 1;
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    Usage(stdout);
    return 0;
  }
  if (args.size() < 2) return Usage();
  const std::string& command = args[0];
  if (!IsCommandLine(command, args.size())) return Usage();
  if (command == "logdump") {
    // Read-only: opening the Env would recover it and truncate a torn tail, the very thing
    // a dump is often wanted for. A directory with neither a catalog nor log files is not
    // an Env at all (one with either is worth dumping, damaged or not).
    std::vector<std::string> names;
    fern::Status s = fern::ListDir(args[1], &names);
    if (!s.ok()) return Fail(s);
    bool env_files = false;
    for (const std::string& name : names) {
      env_files = env_files || name == fern::kCatalogFileName ||
                  (name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0);
    }
    if (!env_files) {
      return Fail(fern::Status::InvalidArgument(fern::StrCat(
          args[1], ": not a Fern Env (no ", fern::kCatalogFileName, " and no log files)")));
    }
    s = fern::DumpLog(args[1], [](std::string_view line) {
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
    });
    std::fflush(stdout);
    if (!s.ok()) return Fail(s);
    return 0;
  }
  fern::Options options;
  options.create_if_missing = command == "put";
  options.cache_bytes = size_t{64} << 20;
  std::unique_ptr<fern::Env> env;
  fern::Status s = fern::Env::Open(args[1], options, &env);
  if (!s.ok()) return Fail(s);

  // Only put creates a table; the others refuse a name the Env does not hold rather than
  // leave an empty table behind (the Env holds its lock now, so the catalog is settled).
  auto open_table = [&](const std::string& name, fern::Table** table) -> fern::Status {
    if (command != "put") {
      fern::Catalog catalog;
      FERN_RETURN_IF_ERROR(fern::Catalog::Load(args[1] + "/" + fern::kCatalogFileName, &catalog));
      if (catalog.tables.count(name) == 0) {
        return fern::Status::NotFound(
            fern::StrCat("table \"", fern::EscapeBytes(name), "\" does not exist in ", args[1]));
      }
    }
    return env->OpenTable(name, fern::TableOptions(), table);
  };
  fern::Table* table = nullptr;
  if (command == "put" && args.size() == 5) {
    if (!(s = open_table(args[2], &table)).ok()) return Fail(s);
    if (!(s = table->Put(nullptr, args[3], args[4])).ok()) return Fail(s);
    return 0;
  }
  if (command == "get" && args.size() == 4) {
    if (!(s = open_table(args[2], &table)).ok()) return Fail(s);
    std::string value;
    s = table->Get(nullptr, args[3], &value);
    if (s.IsNotFound()) {
      std::fprintf(stderr, "fern: key not found\n");
      return kKeyNotFound;
    }
    if (!s.ok()) return Fail(s);
    std::fwrite(value.data(), 1, value.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  if (command == "delete" && args.size() == 4) {
    if (!(s = open_table(args[2], &table)).ok()) return Fail(s);
    if (!(s = table->Delete(nullptr, args[3])).ok()) return Fail(s);
    return 0;
  }
  if (command == "scan" && args.size() >= 3 && args.size() <= 5) {
    if (!(s = open_table(args[2], &table)).ok()) return Fail(s);
    auto cursor = table->NewCursor(nullptr);
    if (args.size() >= 4) {
      cursor->Seek(args[3]);
    } else {
      cursor->SeekToFirst();
    }
    for (; cursor->Valid(); cursor->Next()) {
      if (args.size() == 5 && cursor->key() >= std::string_view(args[4])) break;
      // Escaped, so that a tab or a newline in a key or value cannot break the lines.
      constexpr size_t kWhole = std::numeric_limits<size_t>::max();
      const std::string line = fern::StrCat(fern::EscapeBytes(cursor->key(), kWhole), "\t",
                                            fern::EscapeBytes(cursor->value(), kWhole), "\n");
      std::fwrite(line.data(), 1, line.size(), stdout);
    }
    if (!cursor->status().ok()) return Fail(cursor->status());
    return 0;
  }
  if (command == "drop" && args.size() == 3) {
    if (!(s = env->DropTable(args[2])).ok()) return Fail(s);
    return 0;
  }
  if ((command == "stats" || command == "checkpoint") && args.size() >= 2) {
    for (size_t i = 2; i < args.size(); ++i) {
      if (!(s = open_table(args[i], &table)).ok()) return Fail(s);
    }
    if (command == "checkpoint") {
      if (!(s = env->Checkpoint()).ok()) return Fail(s);
      return 0;
    }
    std::string stats;
    env->GetProperty("fern.stats", &stats);
    std::fputs(stats.c_str(), stdout);
    return 0;
  }
  return Usage();
}

}  // namespace

int main(int argc, char** argv) { return fern::FinishOutput("fern", Run(argc, argv), 1); }
