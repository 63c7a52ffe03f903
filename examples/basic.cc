// A program using only the installed Fern package: put, get, scan, reopen.
// Usage: basic DIR        (DIR must not exist yet or be an Env made by this program)
#include <cstdio>
#include <memory>
#include <string>

#include "fern/fern.h"

namespace {

bool Check(const fern::Status& s, const char* what) {
  if (!s.ok()) std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  return s.ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: basic DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  {
    std::unique_ptr<fern::Env> env;
    if (!Check(fern::Env::Open(dir, fern::Options(), &env), "open")) return 1;
    fern::Table* table;
    if (!Check(env->OpenTable("greetings", fern::TableOptions(), &table), "open table")) return 1;
    for (int i = 0; i < 1000; ++i) {
      if (!Check(table->Put(nullptr, "key" + std::to_string(1000 + i), "value" + std::to_string(i)),
                 "put")) {
        return 1;
      }
    }
    std::string value;
    if (!Check(table->Get(nullptr, "key1042", &value), "get") || value != "value42") return 1;
  }
  // Reopen and scan: everything written before the clean close is there, in order.
  std::unique_ptr<fern::Env> env;
  if (!Check(fern::Env::Open(dir, fern::Options(), &env), "reopen")) return 1;
  fern::Table* table;
  if (!Check(env->OpenTable("greetings", fern::TableOptions(), &table), "reopen table")) return 1;
  auto cursor = table->NewCursor(nullptr);
  int count = 0;
  std::string previous;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++count) {
    if (count > 0 && std::string(cursor->key()) <= previous) return 1;
    previous = std::string(cursor->key());
  }
  if (!Check(cursor->status(), "scan") || count != 1000) return 1;
  std::printf("basic: 1000 rows written, reopened and scanned in order\n");
  return 0;
}
