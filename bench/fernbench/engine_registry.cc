#include <algorithm>

#include "fernbench/engine.h"

namespace fern::bench {

std::vector<EngineInfo> BuiltEngines() {
  std::vector<EngineInfo> engines;
#ifdef FERN_BENCH_HAVE_FERN
  engines.push_back(
      {"fern", FernVersion(), &NewFernEngine, {"none", "snappy", "zlib", "zstd", "lzma"}});
#endif
#ifdef FERN_BENCH_HAVE_ROCKSDB
  engines.push_back(
      {"rocksdb", RocksDbVersion(), &NewRocksDbEngine, {"none", "snappy", "zlib", "zstd"}});
#endif
#ifdef FERN_BENCH_HAVE_LMDB
  engines.push_back({"lmdb", LmdbVersion(), &NewLmdbEngine, {"none"}});  // LMDB compresses nothing
#endif
  return engines;
}

std::vector<std::string> MissingEngines() {
  std::vector<std::string> missing;
#ifndef FERN_BENCH_HAVE_FERN
  missing.push_back("fern (libfern does not define fern::Env::Open yet; reconfigure once it does)");
#endif
#ifndef FERN_BENCH_HAVE_ROCKSDB
  missing.push_back("rocksdb (RocksDB was not found at configure time)");
#endif
#ifndef FERN_BENCH_HAVE_LMDB
  missing.push_back("lmdb (LMDB was not found at configure time)");
#endif
  return missing;
}

bool HasCodec(const EngineInfo& info, std::string_view compression) {
  return compression == "default" ||
         std::find(info.codecs.begin(), info.codecs.end(), compression) != info.codecs.end();
}

const EngineInfo* FindEngine(std::string_view name) {
  static const std::vector<EngineInfo>* const engines = new std::vector<EngineInfo>(BuiltEngines());
  for (const EngineInfo& info : *engines) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

}  // namespace fern::bench
