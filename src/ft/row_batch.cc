#include "ft/row_batch.h"

#include <utility>

#include "util/thread_cache.h"

namespace fern {

namespace {

struct SpareBatch {
  std::unique_ptr<RowBatch> batch;
};

}  // namespace

std::unique_ptr<RowBatch> RowBatch::TakeSpare() {
  SpareBatch* spare = ThreadCached<SpareBatch>();
  if (spare != nullptr && spare->batch != nullptr) return std::move(spare->batch);
  return std::make_unique<RowBatch>();
}

void RowBatch::KeepSpare(std::unique_ptr<RowBatch> batch) {
  if (batch == nullptr || batch->memory_bytes() > kMaxSpareBytes) return;
  SpareBatch* spare = ThreadCached<SpareBatch>();
  if (spare == nullptr || spare->batch != nullptr) return;
  batch->Clear();
  // Their views point into buffers the batch's last read saw.
  batch->scratch_.keyed.clear();
  batch->scratch_.broadcasts.clear();
  batch->scratch_.row.Clear();
  spare->batch = std::move(batch);
}

size_t RowBatch::memory_bytes() const {
  return sizeof(RowBatch) + data_.capacity() + rows_.capacity() * sizeof(Row) + lower.capacity() +
         upper.capacity() +
         (scratch_.keyed.capacity() + scratch_.broadcasts.capacity()) * sizeof(Message) +
         scratch_.order.capacity() * sizeof(uint32_t) + scratch_.row.memory_bytes();
}

}  // namespace fern
