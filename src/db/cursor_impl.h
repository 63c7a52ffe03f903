// CursorImpl: a Cursor that reads a basement at a time (RowBatch) and moves within it.
//
// Each batch reflects every write committed before it was read. Moving past a batch reads
// the neighbouring basement by key, so splits and merges between batches are harmless.
#ifndef FERN_DB_CURSOR_IMPL_H_
#define FERN_DB_CURSOR_IMPL_H_

#include <functional>
#include <memory>

#include "fern/cursor.h"
#include "ft/row_batch.h"
#include "ft/tree.h"

namespace fern {

// Used by one thread at a time (API.md).
class CursorImpl final : public Cursor {
 public:
  // A non-OK `status` makes a cursor that is never valid and reports it. `view` says whose
  // versions it sees; `lock_batch` (optional, for serializable transactions) read-locks the
  // key range of each batch, after which the batch is read again under the lock.
  CursorImpl(std::shared_ptr<FractalTree> tree, Status status, ReadView view = ReadView(),
             std::function<Status(const RowBatch&)> lock_batch = nullptr)
      : tree_(std::move(tree)),
        status_(std::move(status)),
        view_(std::move(view)),
        lock_batch_(std::move(lock_batch)) {}

  void SeekToFirst() override;
  void SeekToLast() override;
  void Seek(std::string_view target) override;
  void SeekForPrev(std::string_view target) override;
  void Next() override;
  void Prev() override;
  bool Valid() const override { return valid_; }
  std::string_view key() const override { return batch_.key(pos_); }
  std::string_view value() const override { return batch_.value(pos_); }
  Status status() const override { return status_; }

 private:
  bool Load(FractalTree::Locate where, std::string_view key);
  // From the current batch, moves forward (or backward) through following batches until a
  // row is found; sets valid_.
  void SettleForward(size_t pos);
  void SettleBackward(size_t pos_plus_one);
  bool Usable();

  std::shared_ptr<FractalTree> tree_;
  Status status_;
  ReadView view_;
  std::function<Status(const RowBatch&)> lock_batch_;
  RowBatch batch_;
  size_t pos_ = 0;
  bool valid_ = false;
  std::string bound_;  // scratch copy of a batch bound while the batch is replaced
};

}  // namespace fern

#endif  // FERN_DB_CURSOR_IMPL_H_
