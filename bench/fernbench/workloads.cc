#include "fernbench/workloads.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>

#include "fernbench/data.h"
#include "util/strings.h"

namespace fern::bench {

namespace {

// What one thread's slice found. Counters only ever grow; the first problem of each kind is
// described in words so that a failed check says what was seen.
struct Tally {
  Status status;
  uint64_t misses = 0;        // gets or seeks that found no row, deletes of an absent key
  uint64_t wrong_values = 0;  // gets whose value differs from the bytes written
  uint64_t wrong_keys = 0;    // cursor rows other than the expected key
  uint64_t rows = 0;          // rows a readseq cursor visited
  std::string first_wrong;    // the first wrong key or value, for the report

  void NoteWrong(std::string_view what) {
    if (first_wrong.empty()) first_wrong = std::string(what);
  }
  void Add(const Tally& other) {
    if (status.ok()) status = other.status;
    misses += other.misses;
    wrong_values += other.wrong_values;
    wrong_keys += other.wrong_keys;
    rows += other.rows;
    if (first_wrong.empty()) first_wrong = other.first_wrong;
  }
};

// Calls slice(begin, end, &tally) for `threads` contiguous slices of [0, count), each on a
// thread of its own (on the calling thread when threads == 1), and sums the tallies. A slice
// stops early once `stop` is set, which any slice sets on an engine error.
template <typename Slice>
Tally RunSlices(uint64_t count, int threads, Slice slice) {
  std::atomic<bool> stop{false};
  std::vector<Tally> tallies(threads);
  auto run = [&](int t) {
    uint64_t begin = count * t / threads;
    uint64_t end = count * (t + 1) / threads;
    slice(begin, end, stop, &tallies[t]);
    if (!tallies[t].status.ok()) stop.store(true, std::memory_order_relaxed);
  };
  if (threads == 1) {
    run(0);
  } else {
    std::vector<std::thread> workers;
    workers.reserve(threads);
    for (int t = 0; t < threads; ++t) workers.emplace_back(run, t);
    for (std::thread& worker : workers) worker.join();
  }
  Tally total;
  for (const Tally& tally : tallies) total.Add(tally);
  return total;
}

bool Stopped(const std::atomic<bool>& stop) { return stop.load(std::memory_order_relaxed); }

std::string Printable(std::string_view bytes) { return EscapeBytes(bytes, 24); }

// Puts key perm(j) (or j itself when `order` is null) for j in the slice, with the value
// seeded by key + seed_offset.
Tally Fill(Engine* engine, uint64_t count, int threads, const Permutation* order,
           uint64_t seed_offset, bool sync) {
  return RunSlices(count, threads,
                   [&](uint64_t begin, uint64_t end, const std::atomic<bool>& stop, Tally* tally) {
                     Key key(0);
                     Value value(0);
                     for (uint64_t j = begin; j < end && !Stopped(stop); ++j) {
                       uint64_t i = order != nullptr ? (*order)(j) : j;
                       key.Set(i);
                       value.Set(i + seed_offset);
                       tally->status = engine->Put(key.view(), value.view(), sync);
                       if (!tally->status.ok()) return;
                     }
                   });
}

Tally ReadRandom(Engine* engine, const WorkloadParams& params, uint64_t count) {
  Permutation order(params.n);
  return RunSlices(count, params.threads,
                   [&](uint64_t begin, uint64_t end, const std::atomic<bool>& stop, Tally* tally) {
                     Key key(0);
                     Value expected(0);
                     std::string value;
                     for (uint64_t j = begin; j < end && !Stopped(stop); ++j) {
                       uint64_t i = order(j);
                       key.Set(i);
                       Status status = engine->Get(key.view(), &value);
                       if (status.IsNotFound()) {
                         ++tally->misses;
                         continue;
                       }
                       if (!status.ok()) {
                         tally->status = status;
                         return;
                       }
                       expected.Set(i + params.stored_value_offset);
                       if (value != expected.view()) {
                         ++tally->wrong_values;
                         tally->NoteWrong(StrCat("key ", key.view(), " holds ", Printable(value)));
                       }
                     }
                   });
}

// Slice t walks the keys [begin, end) of the key space with its own cursor; the first slice
// starts at the table's beginning and the last runs to its end, so rows outside 0..n-1 count.
Tally ReadSeq(Engine* engine, const WorkloadParams& params) {
  const uint64_t n = params.n;
  return RunSlices(
      n, params.threads,
      [&](uint64_t begin, uint64_t end, const std::atomic<bool>& stop, Tally* tally) {
        std::unique_ptr<EngineCursor> cursor;
        tally->status = engine->NewCursor(&cursor);
        if (!tally->status.ok()) return;
        Key expected(begin);
        const Key limit(end);
        cursor->Seek(begin == 0 ? std::string_view() : expected.view());
        for (; cursor->Valid() && !Stopped(stop); cursor->Next()) {
          if (end < n && cursor->key() >= limit.view()) break;
          if (cursor->key() != expected.view()) {
            ++tally->wrong_keys;
            tally->NoteWrong(StrCat("row ", tally->rows + begin, " is key ",
                                    Printable(cursor->key()), ", expected ", expected.view()));
          }
          ++tally->rows;
          expected.Increment();
        }
        tally->status = cursor->status();
      });
}

Tally SeekRandom(Engine* engine, const WorkloadParams& params, uint64_t count) {
  Permutation order(params.n);
  return RunSlices(
      count, params.threads,
      [&](uint64_t begin, uint64_t end, const std::atomic<bool>& stop, Tally* tally) {
        std::unique_ptr<EngineCursor> cursor;
        tally->status = engine->NewCursor(&cursor);
        if (!tally->status.ok()) return;
        Key key(0);
        for (uint64_t j = begin; j < end && !Stopped(stop); ++j) {
          uint64_t i = order(j);
          key.Set(i);
          cursor->Seek(key.view());
          if (!cursor->Valid() || cursor->key() != key.view()) {
            ++tally->misses;
            continue;
          }
          uint64_t nexts = std::min<uint64_t>(kNextsPerSeek, params.n - 1 - i);
          for (uint64_t step = 0; step < nexts; ++step) {
            key.Increment();
            cursor->Next();
            if (!cursor->Valid() || cursor->key() != key.view()) {
              ++tally->wrong_keys;
              tally->NoteWrong(StrCat("after seeking ", Key(i).view(), ", Next ", step + 1,
                                      " gave ", cursor->Valid() ? Printable(cursor->key()) : "end",
                                      ", expected ", key.view()));
              break;
            }
          }
        }
        tally->status = cursor->status();
      });
}

Tally DeleteRandom(Engine* engine, const WorkloadParams& params, uint64_t count) {
  Permutation order(params.n);
  return RunSlices(count, params.threads,
                   [&](uint64_t begin, uint64_t end, const std::atomic<bool>& stop, Tally* tally) {
                     Key key(0);
                     for (uint64_t j = begin; j < end && !Stopped(stop); ++j) {
                       key.Set(order(j));
                       Status status = engine->Delete(key.view(), /*sync=*/false);
                       if (status.IsNotFound()) {
                         ++tally->misses;
                       } else if (!status.ok()) {
                         tally->status = status;
                         return;
                       }
                     }
                   });
}

}  // namespace

const std::vector<WorkloadSpec>& AllWorkloads() {
  static const std::vector<WorkloadSpec>* const workloads = new std::vector<WorkloadSpec>{
      {Workload::kFillRandom, "fillrandom", Database::kMain, false},
      {Workload::kOverwrite, "overwrite", Database::kMain, false},
      {Workload::kReadRandom, "readrandom", Database::kMain, false},
      {Workload::kReadSeq, "readseq", Database::kMain, false},
      {Workload::kSeekRandom, "seekrandom", Database::kMain, false},
      {Workload::kDeleteRandom, "deleterandom", Database::kMain, false},
      {Workload::kFillSeq, "fillseq", Database::kFillSeq, false},
      {Workload::kFillSync, "fillsync", Database::kFillSync, true},
  };
  return *workloads;
}

const WorkloadSpec* FindWorkload(std::string_view name) {
  for (const WorkloadSpec& spec : AllWorkloads()) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

const char* DatabaseName(Database database) {
  switch (database) {
    case Database::kMain:
      return "main";
    case Database::kFillSeq:
      return "fillseq";
    case Database::kFillSync:
      return "fillsync";
  }
  return "unknown";
}

uint64_t OperationCount(Workload workload, uint64_t n) {
  switch (workload) {
    case Workload::kFillRandom:
    case Workload::kOverwrite:
    case Workload::kReadSeq:
    case Workload::kFillSeq:
      return n;
    case Workload::kReadRandom:
      return n / 2;
    case Workload::kSeekRandom:
      return std::min(kSeekCount, n);
    case Workload::kDeleteRandom:
      return n / 10;
    case Workload::kFillSync:
      return kFillSyncCount;
  }
  return 0;
}

Status RunWorkload(const WorkloadSpec& spec, const WorkloadParams& params, Engine* engine,
                   std::vector<std::string>* failures) {
  const uint64_t n = params.n;
  const uint64_t count = OperationCount(spec.workload, n);
  const Permutation order(n);
  Tally tally;
  switch (spec.workload) {
    case Workload::kFillRandom:
      tally = Fill(engine, count, params.threads, &order, 0, spec.sync);
      break;
    case Workload::kOverwrite:
      tally = Fill(engine, count, params.threads, &order, n, spec.sync);
      break;
    case Workload::kReadRandom: {
      tally = ReadRandom(engine, params, count);
      if (tally.misses != 0) {
        failures->push_back(StrCat(tally.misses, " of ", count, " gets missed (must be 0)"));
      }
      if (tally.wrong_values != 0) {
        failures->push_back(StrCat(tally.wrong_values, " of ", count,
                                   " gets returned a wrong value; first: ", tally.first_wrong));
      }
      break;
    }
    case Workload::kReadSeq: {
      tally = ReadSeq(engine, params);
      if (tally.rows != n) {
        failures->push_back(StrCat("the cursor visited ", tally.rows, " rows, expected ", n));
      }
      if (tally.wrong_keys != 0) {
        failures->push_back(StrCat(tally.wrong_keys,
                                   " rows were not the expected key; first: ", tally.first_wrong));
      }
      break;
    }
    case Workload::kSeekRandom: {
      tally = SeekRandom(engine, params, count);
      if (tally.misses != 0) {
        failures->push_back(
            StrCat(tally.misses, " of ", count, " seeks did not land on their key"));
      }
      if (tally.wrong_keys != 0) {
        failures->push_back(StrCat(
            tally.wrong_keys, " seeks were followed by a wrong row; first: ", tally.first_wrong));
      }
      break;
    }
    case Workload::kDeleteRandom: {
      tally = DeleteRandom(engine, params, count);
      if (tally.misses != 0) {
        failures->push_back(StrCat(tally.misses, " of ", count, " deletes found no row"));
      }
      break;
    }
    case Workload::kFillSeq:
      tally = Fill(engine, count, params.threads, nullptr, 0, spec.sync);
      break;
    case Workload::kFillSync: {
      const Permutation sync_order(kFillSyncCount);
      tally = Fill(engine, count, params.threads, &sync_order, 0, spec.sync);
      break;
    }
  }
  return tally.status;
}

}  // namespace fern::bench
