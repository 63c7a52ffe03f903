// libFuzzer target for the serialized block table (src/ft/block_table.h, versions 1 and 2):
// arbitrary bytes are parsed as a table, as they are and with their trailing checksum made
// to match (so that mutations reach the entries), with and without a location for the table
// itself.
//
// Whatever the bytes, nothing may crash, read out of bounds or allocate from a damaged count.
// A table that loads must be consistent: no two extents overlap (a split block's two
// count as two), its serialization loads again to the same blocks, and it takes the life a
// table file gives it: blocks rewritten (split where no hole holds them), freed and new ones
// written across a checkpoint, each time with no extents overlapping.
//
// Build and run: scripts/fuzz.sh (or tests/fuzz/CMakeLists.txt with -DFERN_FUZZ=ON).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ft/block_allocator.h"
#include "ft/block_table.h"
#include "util/checksum.h"
#include "util/coding.h"

namespace fern {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

std::map<BlockNum, BlockLocation> Blocks(const BlockTable& table) {
  std::map<BlockNum, BlockLocation> blocks;
  table.ForEachBlock([&](BlockNum b, BlockLocation loc) { blocks[b] = loc; });
  return blocks;
}

// Every extent of every current block, marked in a fresh allocator: any overlap fails.
void CheckNoOverlap(const BlockTable& table) {
  BlockAllocator extents(BlockTable::kReservedFileBytes);
  for (const auto& [b, loc] : Blocks(table)) {
    if (loc.split()) {
      Check(loc.head_bytes < loc.size && loc.head_bytes % BlockAllocator::kAlignment == 0);
      Check(extents.TryMarkAllocated(loc.offset, loc.head_bytes));
      Check(extents.TryMarkAllocated(loc.tail_offset, loc.size - loc.head_bytes));
    } else {
      Check(extents.TryMarkAllocated(loc.offset, loc.size));
    }
  }
}

void Exercise(BlockTable* table) {
  CheckNoOverlap(*table);
  const std::map<BlockNum, BlockLocation> loaded = Blocks(*table);
  BlockTable again;
  Check(BlockTable::Deserialize(table->SerializeCurrent(), &again).ok());
  Check(Blocks(again) == loaded);

  // Rewrite the first few blocks bigger, free one, write new ones, with a checkpoint in
  // between; sizes stay small so a damaged table's huge offsets cannot make this costly.
  int rewritten = 0;
  for (const auto& [b, loc] : loaded) {
    if (++rewritten > 8) break;
    table->Relocate(b, (loc.size % (1 << 20)) + (200 << 10));
  }
  CheckNoOverlap(*table);
  table->BeginCheckpoint();
  const std::string image = table->SerializeCheckpoint();
  const BlockLocation table_location = table->AllocateTableSpace(image.size());
  if (!loaded.empty()) table->FreeBlockNum(loaded.begin()->first);
  for (int i = 0; i < 4; ++i) table->Relocate(table->AllocateBlockNum(), (i + 1) * (90 << 10));
  table->CompleteCheckpoint(table_location);
  CheckNoOverlap(*table);
  BlockTable reloaded;
  Check(BlockTable::Deserialize(table->SerializeCurrent(), &reloaded).ok());
  Check(Blocks(reloaded) == Blocks(*table));
}

void Try(std::string_view bytes) {
  {
    BlockTable table;
    if (BlockTable::Deserialize(bytes, &table).ok()) Exercise(&table);
  }
  {
    // The table's own extent just past the reserved area, as TreeFile::Open passes it.
    BlockTable table;
    const BlockLocation self{BlockTable::kReservedFileBytes, bytes.size()};
    if (BlockTable::Deserialize(bytes, self, &table).ok()) Exercise(&table);
  }
}

}  // namespace
}  // namespace fern

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fern::Try(input);
  if (size >= 8) {
    std::string fixed(input);
    const uint64_t sum = fern::Checksum64(std::string_view(fixed).substr(0, size - 8));
    fern::EncodeFixed64(fixed.data() + size - 8, sum);
    fern::Try(fixed);
  }
  return 0;
}
