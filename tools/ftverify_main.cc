// ftverify FILE.ft: checks every block of a Fern table file.
// ftverify ENV_DIR: checks every table file the Env's catalog names, and each file against
// the catalog and the log as Env::Open does (file uid, header count, checkpoint LSN).
// Exit status: 0 clean, 1 problems found (each named with its table and block), 2 cannot open.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "db/catalog.h"
#include "db/open_checks.h"
#include "env_read_lock.h"
#include "ft/tree_inspector.h"
#include "log/log_reader.h"
#include "tool_output.h"
#include "tool_progress.h"
#include "util/strings.h"

namespace {

constexpr int kCannotOpen = -1;

// Verifies one table file, printing each problem after `indent`. Returns the number of
// damaged blocks (an unknown comparator limits the checks but is not damage), or
// kCannotOpen with why in `*open_error`; fills `report`.
int VerifyFile(const std::string& path, const char* indent, fern::TreeReport* report,
               fern::Status* open_error) {
  fern::InspectOptions options;
  options.verify = true;
  options.progress = fern::TerminalProgress("verified");
  fern::Status s = fern::InspectTreeFile(path, options, report);
  fern::EndProgress();
  if (!s.ok()) {
    *open_error = s;
    return kCannotOpen;
  }
  int damage = 0;
  for (const fern::InspectProblem& problem : report->problems) {
    if (problem.block >= 0) {
      std::printf("%sblock %lld: %s\n", indent, static_cast<long long>(problem.block),
                  problem.what.c_str());
    } else {
      std::printf("%sfile: %s\n", indent, problem.what.c_str());
    }
    if (!problem.note) ++damage;
  }
  return damage;
}

// Takes the shared lock of the Env in `env_dir` for the whole check; false (after saying
// why) when an open Env holds it.
bool LockEnv(const std::string& env_dir, std::unique_ptr<fern::FileLock>* lock) {
  fern::Status s = fern::LockEnvForReading(env_dir, lock);
  if (s.ok()) return true;
  std::fprintf(stderr, "ftverify: %s\n", s.ToString().c_str());
  return false;
}

int VerifyOneFile(const std::string& path) {
  std::unique_ptr<fern::FileLock> lock;
  if (!LockEnv(fern::EnvDirOf(path), &lock)) return 2;
  fern::TreeReport report;
  fern::Status open_error;
  const int damage = VerifyFile(path, "", &report, &open_error);
  if (damage == kCannotOpen) {
    std::fprintf(stderr, "ftverify: cannot open %s: %s\n", path.c_str(),
                 open_error.ToString().c_str());
    return 2;
  }
  std::printf("%s: %llu nodes, %llu rows, %d problem%s\n", path.c_str(),
              static_cast<unsigned long long>(report.nodes_visited),
              static_cast<unsigned long long>(report.rows), damage, damage == 1 ? "" : "s");
  return damage == 0 ? 0 : 1;
}

int VerifyEnv(const std::string& dir) {
  std::unique_ptr<fern::FileLock> lock;
  if (!LockEnv(dir, &lock)) return 2;
  fern::Catalog catalog;
  fern::Status s = fern::Catalog::Load(dir + "/" + fern::kCatalogFileName, &catalog);
  if (s.IsNotFound()) {
    std::fprintf(stderr, "ftverify: %s is not a Fern Env (it has no %s)\n", dir.c_str(),
                 fern::kCatalogFileName);
    return 2;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "ftverify: cannot read the catalog of %s: %s\n", dir.c_str(),
                 s.ToString().c_str());
    return 2;
  }
  int problems = 0;
  // Where the valid log ends; 0 when there is none (tables that hold any log then fail).
  fern::Lsn log_last_lsn = 0;
  std::unique_ptr<fern::LogReader> reader;
  s = fern::LogReader::Open(dir, &reader);
  if (s.ok()) {
    fern::Status present = fern::CheckLogPresent(dir, catalog, reader->files());
    if (!present.ok()) {
      std::printf("log: %s\n", present.ToString().c_str());
      ++problems;
    }
  }
  if (s.ok() && !reader->files().empty()) {
    s = fern::CheckLogStart(dir, reader->files().front().first_lsn, catalog.replay_from_lsn);
    if (!s.ok()) {
      std::printf("log: %s\n", s.ToString().c_str());
      ++problems;
    }
    fern::LogEnd end;
    s = reader->FindEnd(&end);
    if (s.ok()) log_last_lsn = end.last_lsn;
  }
  if (!s.ok()) {
    std::printf("log: %s\n", s.ToString().c_str());
    ++problems;
  }

  for (const auto& [name, entry] : catalog.tables) {
    const std::string path = dir + "/" + entry.file_name;
    const std::string label = fern::StrCat("table \"", fern::EscapeBytes(name), "\" (", path, ")");
    std::printf("%s:\n", label.c_str());
    fern::TreeReport report;
    fern::Status open_error;
    const int damage = VerifyFile(path, "  ", &report, &open_error);
    if (damage == kCannotOpen) {
      std::printf("  cannot open the file: %s\n", open_error.ToString().c_str());
      ++problems;
      continue;
    }
    problems += damage;
    s = fern::CheckTableFile(path, entry, report.header, log_last_lsn);
    if (!s.ok()) {
      std::printf("  catalog: %s\n", s.ToString().c_str());
      ++problems;
    }
    std::printf("  %llu nodes, %llu rows\n", static_cast<unsigned long long>(report.nodes_visited),
                static_cast<unsigned long long>(report.rows));
  }
  std::printf("%s: %zu table%s, %d problem%s\n", dir.c_str(), catalog.tables.size(),
              catalog.tables.size() == 1 ? "" : "s", problems, problems == 1 ? "" : "s");
  return problems == 0 ? 0 : 1;
}

int Run(int argc, char** argv) {
  if (argc != 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    // To stdout when asked for, to stderr after a usage error.
    std::fprintf(argc == 2 ? stdout : stderr,
                 "usage: ftverify FILE.ft | ftverify ENV_DIR\n"
                 "Reads every block of a Fern table file and checks checksums, decompression,\n"
                 "pivot order and key bounds, MSN order and sizes. Given an Env directory,\n"
                 "checks every table its catalog names, and each file against the catalog\n"
                 "and the log as Env::Open does (file uid, newest header, checkpoint LSN).\n"
                 "Refuses (exit 2) while an Env has the directory open: its files change as it\n"
                 "runs, so check a closed Env or a copy.\n"
                 "Exit status: 0 clean, 1 problems found, 2 the file or Env cannot be opened\n"
                 "or the report cannot be written.\n");
    return argc == 2 ? 0 : 2;
  }
  const std::string path = argv[1];
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return VerifyEnv(path);
  return VerifyOneFile(path);
}

}  // namespace

int main(int argc, char** argv) { return fern::FinishOutput("ftverify", Run(argc, argv), 2); }
