// CursorImpl: a Cursor that copies rows out of the tree a batch at a time (RowBatch) and
// moves within the batch.
//
// Each batch reflects every write committed before it was read. A batch covers a key range
// inside one basement; moving past it reads the neighbouring range by key, so splits and
// merges between batches are harmless. Batch sizes adapt: a seek reads kSeekRows stored
// rows, and each further batch in a scan reads twice as many as the one before, up to whole
// basements, so a seek followed by a few steps copies little and a long scan copies in
// large batches.
#ifndef FERN_DB_CURSOR_IMPL_H_
#define FERN_DB_CURSOR_IMPL_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "fern/cursor.h"
#include "ft/row_batch.h"
#include "ft/tree.h"

namespace fern {

// Used by one thread at a time (API.md).
class CursorImpl final : public Cursor {
 public:
  // Stored rows the first batch after a seek covers.
  static constexpr size_t kSeekRows = 16;
  // Batches grow from kSeekRows; from this size on (the third batch of a scan) each forward
  // batch asks the tree to read ahead.
  static constexpr size_t kReadaheadRows = 64;
  // The cap of the doubling: more than any basement holds.
  static constexpr size_t kMaxBatchRows = size_t{1} << 30;

  // A non-OK `status` makes a cursor that is never valid and reports it. `view` says whose
  // versions it sees; `lock_batch` (optional, for serializable transactions) read-locks the
  // key range of each batch and may replace the view (with one taken under the lock), after
  // which the batch is read again.
  CursorImpl(std::shared_ptr<FractalTree> tree, Status status, ReadView view = ReadView(),
             std::function<Status(const RowBatch&, ReadView*)> lock_batch = nullptr)
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
  // Reads the batch `where` / `key` names with the current batch size; false (with
  // status_ set and the cursor invalid) on error. A seek's first batch is a point read
  // (kKeepIfHot); the batches a scan reads on into keep their basements.
  // A forward streaming Load takes what ahead_ decoded.
  bool Load(FractalTree::Locate where, std::string_view key,
            FractalTree::Caching caching = FractalTree::Caching::kKeep);
  // A cursor that has read fewer than kReadaheadRows rows since its seek is still a point
  // read (a seek and a few Next calls); after that it scans, and keeps what it reads until
  // it has scanned FractalTree::StreamingScanBytes(); from then on it streams.
  FractalTree::Caching CachingForNextBatch() const {
    if (batch_rows_ < kReadaheadRows) return FractalTree::Caching::kKeepIfHot;
    return Streaming() ? FractalTree::Caching::kStream : FractalTree::Caching::kKeep;
  }
  bool Streaming() const { return scanned_bytes_ > tree_->StreamingScanBytes(); }
  // A seek starts a new scan: small batches again, nothing scanned yet.
  void StartScan() {
    batch_rows_ = kSeekRows;
    scanned_bytes_ = 0;
    if (ahead_ != nullptr) ahead_->Restart();
  }
  // From position `pos` of the current batch, moves forward through following batches
  // until a row is found; sets valid_.
  void SettleForward(size_t pos);
  // The same backward, from the row just before `pos_plus_one`.
  void SettleBackward(size_t pos_plus_one);
  bool Usable();

  std::shared_ptr<FractalTree> tree_;
  Status status_;
  ReadView view_;
  std::function<Status(const RowBatch&, ReadView*)> lock_batch_;
  RowBatch batch_;
  size_t pos_ = 0;
  bool valid_ = false;
  size_t batch_rows_ = kSeekRows;  // stored rows the next Load covers
  // Serialized bytes of the basements the batches since the last seek came from (a
  // basement read in several slices counts each time: only the first few batches are).
  size_t scanned_bytes_ = 0;
  std::string bound_;  // the key a Load starts from, apart from the batch it replaces
  // Basements decoded ahead of a forward scan once it streams; made at the first such
  // batch.
  std::shared_ptr<StreamAhead> ahead_;
  // The range lock_batch_ locked, while the batch is read again.
  bool locked_has_lower_ = false;
  bool locked_has_upper_ = false;
  std::string locked_lower_;
  std::string locked_upper_;
};

}  // namespace fern

#endif  // FERN_DB_CURSOR_IMPL_H_
