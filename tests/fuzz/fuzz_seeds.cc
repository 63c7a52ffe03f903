// Writes seed corpora for the fuzz targets, generated with the real encoders so they stay in
// step with the formats:
//   OUT/node_fuzzer/        node blocks of small tables (leaves and internal nodes with
//                           buffered messages, one table per codec) and single partition frames
//   OUT/log_record_fuzzer/  one framed record of every type, a log file header followed by
//                           records, a record group, and the head of a real log
//   OUT/block_table_fuzzer/ serialized block tables: empty, version 1, and version 2 with
//                           blocks split in two extents
// Usage: fuzz_seeds OUT   (OUT and its subdirectories are created; existing files are kept)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "ft/block_table.h"
#include "ft/leaf_frame.h"
#include "ft/node_format.h"
#include "ft/tree_file.h"
#include "log/log_format.h"
#include "log/log_group.h"
#include "util/compression.h"
#include "util/file.h"

namespace fern {
namespace {

namespace fs = std::filesystem;

void WriteSeed(const fs::path& dir, const std::string& name, std::string_view bytes) {
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

bool Fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "fuzz_seeds: %s: %s\n", what.c_str(), s.ToString().c_str());
  return false;
}

// Appending "+x" to the old value, or deleting the row when extra is "-".
std::optional<std::string> AppendUpdate(std::string_view key, const std::string_view* old,
                                        std::string_view extra) {
  if (extra == "-") return std::nullopt;
  return std::string(old != nullptr ? *old : std::string_view()) + std::string(extra);
}

// Builds one small table per codec in `env_dir` and writes a sample of its blocks, and of
// their partition frames, to `out`.
bool WriteNodeSeeds(const fs::path& env_dir, const fs::path& out) {
  Options options;
  options.sync_commits = false;
  options.cache_bytes = size_t{16} << 20;
  options.update_function = AppendUpdate;
  std::unique_ptr<Env> env;
  Status s = Env::Open(env_dir.string(), options, &env);
  if (!s.ok()) return Fail("open env", s);
  const Compression codecs[] = {Compression::kNone, Compression::kSnappy, Compression::kZlib,
                                Compression::kZstd, Compression::kLzma};
  for (Compression codec : codecs) {
    TableOptions table_options;
    table_options.compression = codec;
    table_options.node_bytes = 4096;
    table_options.basement_bytes = 512;
    Table* table;
    const std::string name = CompressionName(codec);
    if (!(s = env->OpenTable(name, table_options, &table)).ok()) return Fail("open table", s);
    for (int i = 0; i < 600; ++i) {
      char key[32];
      std::snprintf(key, sizeof(key), "%016d", (i * 7919) % 400);
      std::string value(20 + i % 40, static_cast<char>('a' + i % 26));
      if (i % 9 == 4) {
        s = table->Delete(nullptr, key);
      } else if (i % 11 == 5) {
        s = table->Update(nullptr, key, i % 2 ? "+u" : "-");
      } else {
        s = table->Put(nullptr, key, value);
      }
      if (!s.ok()) return Fail("write", s);
    }
    if (!(s = table->UpdateAll(nullptr, "+b")).ok()) return Fail("update all", s);
  }
  if (!(s = env->Checkpoint()).ok()) return Fail("checkpoint", s);
  env.reset();

  for (const auto& entry : fs::directory_iterator(env_dir)) {
    if (entry.path().extension() != ".ft") continue;
    std::unique_ptr<TreeFile> file;
    if (!(s = TreeFile::Open(entry.path().string(), true, &file)).ok()) return Fail("open", s);
    std::vector<BlockNum> blocks;
    file->ForEachBlock([&](BlockNum b, BlockLocation) { blocks.push_back(b); });
    // Every internal node and every fourth leaf, small ones only.
    for (size_t i = 0; i < blocks.size(); ++i) {
      std::string bytes;
      if (!(s = file->ReadBlock(blocks[i], &bytes)).ok()) return Fail("read block", s);
      NodeHeader header;
      size_t needed;
      const std::string stem = entry.path().stem().string() + "-block" + std::to_string(blocks[i]);
      if (!(s = ParseNodeHeader(bytes, bytes.size(), stem, &header, &needed)).ok()) {
        return Fail("parse", s);
      }
      if (bytes.size() > 8192 || (header.height == 0 && i % 4 != 0)) continue;
      WriteSeed(out, stem, bytes);
      const PartitionExtent& e = header.extents[header.extents.size() / 2];
      WriteSeed(out, stem + "-frame", std::string_view(bytes).substr(e.offset, e.size));
    }
  }
  // A chunked leaf frame (leaf_frame.h): the small nodes above hold none.
  Basement rows;
  ApplyContext ctx;
  ctx.cmp = BytewiseComparator();
  for (int i = 0; i < 60; ++i) {
    char key[17];
    std::snprintf(key, sizeof(key), "%016d", 3 * i);
    rows.Apply(Message{MessageType::kInsert,
                       static_cast<Msn>(i + 1),
                       {},
                       key,
                       std::string(100, static_cast<char>('a' + i % 26))},
               ctx);
  }
  std::string frame;
  size_t raw_size;
  if (!(s = EncodeLeafFrame(rows, Compression::kSnappy, 0, 1024, &frame, &raw_size)).ok()) {
    return Fail("encode chunked leaf frame", s);
  }
  WriteSeed(out, "chunked-leaf-frame", frame);
  return true;
}

bool WriteLogSeeds(const fs::path& env_dir, const fs::path& out) {
  const std::string value(100, 'v');  // the records below point into it
  const LogRecord records[] = {
      LogRecord::BeginTxn(7, 3),
      LogRecord::CommitTxn(7),
      LogRecord::AbortTxn(8),
      LogRecord::PrepareTxn(9, "xid-1"),
      LogRecord::Insert(1, 7, "key", "value"),
      LogRecord::Delete(1, 7, "key"),
      LogRecord::Update(1, 7, "key", "extra"),
      LogRecord::UpdateBroadcast(1, 7, "extra"),
      LogRecord::TableCreate(2, "table", "table-2.ft"),
      LogRecord::TableOpen(2, "table", "table-2.ft"),
      LogRecord::TableDrop(2, "table"),
      LogRecord::BeginCheckpoint(5),
      LogRecord::EndCheckpoint(5, 40),
      LogRecord::AutocommitInsert(1, 0, "0000000000000042", value),
      LogRecord::AutocommitDelete(1, 0, "0000000000000042"),
  };
  std::string file = EncodeLogFileHeader(41);
  Lsn lsn = 41;
  for (const LogRecord& record : records) {
    std::string payload;
    EncodeLogPayload(record, &payload);
    std::string framed;
    AppendLogRecordFrame(lsn, record.type, payload, &framed);
    WriteSeed(out, std::string("record-") + LogRecordTypeName(record.type), framed);
    file += framed;
    ++lsn;
  }
  WriteSeed(out, "file", file);

  // A record group: the records above, many times over, packed as the writer packs them.
  std::string frames;
  lsn = 41;
  for (int round = 0; round < 8; ++round) {
    for (const LogRecord& record : records) {
      std::string payload;
      EncodeLogPayload(record, &payload);
      AppendLogRecordFrame(lsn++, record.type, payload, &frames);
    }
  }
  std::string packed;
  PackLogFrames(frames, &packed);
  WriteSeed(out, "group", packed);

  // The head of the log of the Env built for the node seeds.
  for (const auto& entry : fs::directory_iterator(env_dir)) {
    if (entry.path().extension() != ".log") continue;
    std::string bytes;
    Status s = ReadFileToString(entry.path().string(), &bytes);
    if (!s.ok()) return Fail("read log", s);
    WriteSeed(out, "real-" + entry.path().stem().string(), bytes.substr(0, 4096));
  }
  return true;
}

// Block tables: empty, one-extent blocks (version 1), and with split blocks (version 2),
// made as a table file makes them.
void WriteBlockTableSeeds(const fs::path& out) {
  BlockTable table;
  WriteSeed(out, "empty", table.SerializeCurrent());
  std::vector<BlockNum> blocks;
  for (int i = 0; i < 6; ++i) {
    blocks.push_back(table.AllocateBlockNum());
    table.Relocate(blocks.back(), (100 + 20 * i) << 10);
    table.Relocate(table.AllocateBlockNum(), 4096);  // keeps the holes below apart
  }
  WriteSeed(out, "one-extent", table.SerializeCurrent());
  for (size_t i = 0; i < blocks.size(); i += 2) table.FreeBlockNum(blocks[i]);
  for (int i = 0; i < 3; ++i) table.Relocate(table.AllocateBlockNum(), 300 << 10);
  WriteSeed(out, "split", table.SerializeCurrent());
}

}  // namespace
}  // namespace fern

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT\n");
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path env_dir = out / "env";
  std::error_code ec;
  fs::remove_all(env_dir, ec);
  fs::create_directories(out / "node_fuzzer");
  fs::create_directories(out / "log_record_fuzzer");
  fs::create_directories(out / "block_table_fuzzer");
  fern::WriteBlockTableSeeds(out / "block_table_fuzzer");
  bool ok = fern::WriteNodeSeeds(env_dir, out / "node_fuzzer") &&
            fern::WriteLogSeeds(env_dir, out / "log_record_fuzzer");
  fs::remove_all(env_dir, ec);
  return ok ? 0 : 1;
}
