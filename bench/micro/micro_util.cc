#include "micro/micro_util.h"

#include <stdlib.h>

#include <filesystem>
#include <random>

#include "absl/synchronization/mutex.h"
#include "fern/options.h"
#include "fernbench/data.h"
#include "ft/message.h"
#include "util/strings.h"

namespace fern::micro {

namespace {

// As in fernbench: Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock
// detector on; every lock taken while holding another then goes through one global
// lock-order graph, which serializes threads. Release builds of Abseil default to kIgnore.
const bool kDeadlockDetectionOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

Row MakeRow(uint64_t i, uint64_t seed_offset) {
  bench::Key key(i);
  bench::Value value(seed_offset + i);
  return Row{std::string(key.view()), std::string(value.view())};
}

std::vector<uint64_t> RandomIndexes(size_t count, uint64_t bound, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> pick(0, bound - 1);
  std::vector<uint64_t> indexes(count);
  for (uint64_t& index : indexes) index = pick(rng);
  return indexes;
}

size_t FillBasement(uint64_t first_key, size_t target_bytes, Basement* basement) {
  ApplyContext ctx;
  ctx.cmp = BytewiseComparator();
  basement->Clear();
  Msn msn = 0;
  for (uint64_t i = first_key;; ++i) {
    Row row = MakeRow(i);
    Basement candidate = *basement;
    candidate.Apply(Message{MessageType::kInsert, ++msn, XidStack(), row.key, row.value}, ctx);
    if (candidate.serialized_bytes() > target_bytes) break;
    *basement = std::move(candidate);
  }
  return basement->count();
}

std::string BasementPartition(size_t target_bytes) {
  Basement basement;
  // Keys from the middle of a 2,000,000-key table, as a leaf of fillrandom's tree holds.
  FillBasement(1'000'000, target_bytes, &basement);
  std::string out;
  basement.Serialize(&out);
  return out;
}

ScratchDir::ScratchDir() {
  const char* tmp = getenv("TMPDIR");
  std::string pattern = StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/fern-micro-XXXXXX");
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool CheckOk(benchmark::State& state, const Status& s, const char* what) {
  if (s.ok()) return true;
  state.SkipWithError(StrCat(what, ": ", s.ToString()).c_str());
  return false;
}

}  // namespace fern::micro
