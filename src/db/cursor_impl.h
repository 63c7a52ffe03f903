// CursorImpl: a Cursor that copies rows out of the tree a batch at a time (RowBatch) and
// moves within the batch.
//
// Each batch reflects what the cursor's view lets it see when it was read. A cursor of a
// transaction also sees that transaction's own writes: once the transaction (or one of its
// family) writes, the next step reads again from the current key instead of moving within
// the copied batch. Under kReadCommitted and kReadUncommitted a cursor reads as of each call
// (API.md): a seek takes a fresh view, and a step that finds the tree's committed contents
// changed (FractalTree::committed_changes; read uncommitted: any message taken) since the
// view was taken takes a fresh one and reads again from the current key (in a small batch:
// under a steady stream of commits every step is a short point read). A cursor whose
// transaction has ended, or whose Env was closed, fails with InvalidArgument.
//
// A batch covers a key range inside one basement; moving past it reads the neighbouring
// range by key, so splits and merges between batches are harmless. Batch sizes adapt: a
// seek reads kSeekRows stored rows, and each further batch in a scan reads twice as many as
// the one before, up to whole basements, so a seek followed by a few steps copies little
// and a long scan copies in large batches.
#ifndef FERN_DB_CURSOR_IMPL_H_
#define FERN_DB_CURSOR_IMPL_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "db/use_gate.h"
#include "fern/cursor.h"
#include "ft/row_batch.h"
#include "ft/tree.h"
#include "txn/txn_manager.h"

namespace fern {

// Used by one thread at a time (API.md).
class CursorImpl final : public Cursor {
 public:
  // Stored rows the first batch after a seek covers. Where the basement is not cached, a
  // seek decodes only the chunks holding these rows and the next (ReadChunks): with 2 KiB
  // chunks of ~16 rows of 116 bytes, 16 rows nearly always took two chunks, 12 rows less
  // often. fernbench seekrandom at 64 MiB (a seek and 10 steps, on one kept database, 8
  // alternating runs each): 92-111k seeks/s with 16, 95-124k with 12 (medians 107k, 120k).
  static constexpr size_t kSeekRows = 12;
  // Batches grow from kSeekRows; from this size on (the third batch of a scan) each forward
  // batch asks the tree to read ahead.
  static constexpr size_t kReadaheadRows = 4 * kSeekRows;
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

  // The transaction the cursor reads for, if any: its family's writes make the cursor read
  // again, and its end makes it fail. `fresh_view` (kReadCommitted only) gives the view each
  // seek or refresh takes. `reads_each_call` (kReadCommitted and kReadUncommitted): a step
  // that finds the tree's committed contents changed (or, read uncommitted, any message
  // injected) since the view was taken takes a fresh one and reads again.
  struct TxnLink {
    TxnStatePtr state;
    std::function<ReadView()> fresh_view;
    bool reads_each_call = false;
  };
  CursorImpl(std::shared_ptr<FractalTree> tree, Status status, ReadView view,
             std::function<Status(const RowBatch&, ReadView*)> lock_batch, TxnLink txn)
      : CursorImpl(std::move(tree), std::move(status), std::move(view), std::move(lock_batch)) {
    txn_ = std::move(txn);
    if (txn_.state != nullptr) seen_writes_ = txn_.state->family_writes();
  }
  ~CursorImpl() override;
  // A user's cursor on table `name`: once `gate` is closed (DropTable), every call fails with
  // InvalidArgument naming the table, not the closed tree's error.
  void WatchTable(const UseGate* gate, std::string name) {
    table_gate_ = gate;
    table_name_ = std::move(name);
  }

  void SeekToFirst() override;
  void SeekToLast() override;
  void Seek(std::string_view target) override;
  void SeekForPrev(std::string_view target) override;
  void Next() override;
  void Prev() override;
  // A positioned cursor stops being Valid() as soon as its transaction ends or its table is
  // dropped, before it moves (cursor.h).
  bool Valid() const override { return valid_ && EndedWhy().ok(); }
  // Empty when the cursor is not Valid().
  std::string_view key() const override { return Valid() ? batch_->key(pos_) : std::string_view(); }
  std::string_view value() const override {
    return Valid() ? batch_->value(pos_) : std::string_view();
  }
  Status status() const override { return status_.ok() ? EndedWhy() : status_; }

  // The Env is closing: lets go of the tree and everything read ahead, after which every
  // call fails with `why` and destroying the cursor touches nothing of the Env's.
  // REQUIRES: no other thread is using the cursor.
  void Detach(const Status& why);
  // Where the Env keeps track of its live cursors (nullptr: not tracked).
  void SetRegistry(std::shared_ptr<class CursorRegistry> registry) {
    registry_ = std::move(registry);
  }

 private:
  // Reads the batch `where` / `key` names with the current batch size; false (with
  // status_ set and the cursor invalid) on error. A seek's first batch is a point read
  // (kKeepIfHot); the batches a scan reads on into keep their basements.
  // A forward streaming Load takes what ahead_ decoded.
  // `take_ahead` false: not from ahead_ (a reread, behind what ahead_ has decoded).
  bool Load(FractalTree::Locate where, std::string_view key,
            FractalTree::Caching caching = FractalTree::Caching::kKeep, bool take_ahead = true);
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
  // False (the cursor invalid, status_ set) if the cursor failed or its transaction ended.
  bool Usable();
  // Usable() for a seek, which first forgets a Busy or Deadlock an earlier call met.
  bool UsableForSeek();
  // Called by a seek, and by a step that finds OthersChanged(): notes the transaction's
  // writes and the tree's changes so far, then (kReadCommitted) takes a fresh view.
  void StartView();
  // What has happened to the tree up to now that the cursor's view cares about (see
  // TxnLink::reads_each_call): its committed changes, and under read uncommitted its MSN.
  struct ChangeStamp {
    uint64_t committed = 0;
    Msn msn = 0;
    bool operator==(const ChangeStamp&) const = default;
  };
  ChangeStamp CurrentChanges() const {
    return {tree_->committed_changes(), view_.dirty ? tree_->last_msn() : 0};
  }
  // The cursor reads as of each call and something changed since its view was taken.
  bool OthersChanged() const { return txn_.reads_each_call && CurrentChanges() != seen_changes_; }
  // The cursor's transaction wrote since the batch was read, or (OthersChanged) anyone did;
  // the batch may be stale.
  bool Stale() const {
    return (txn_.state != nullptr && txn_.state->family_writes() != seen_writes_) ||
           OthersChanged();
  }
  // Reads the batch after (forward) or before the current key again, then settles there.
  void Reread(bool forward);

  std::shared_ptr<FractalTree> tree_;
  Status status_;
  const UseGate* table_gate_ = nullptr;  // see WatchTable
  std::string table_name_;
  ReadView view_;
  std::function<Status(const RowBatch&, ReadView*)> lock_batch_;
  // InvalidArgument saying why once the table was dropped or the transaction ended; OK
  // otherwise. Usable() records it in status_ when the cursor is next used.
  Status EndedWhy() const;

  TxnLink txn_;
  uint64_t seen_writes_ = 0;  // txn_'s family_writes() when the batch was read
  ChangeStamp seen_changes_;  // CurrentChanges() when the view was taken (reads_each_call)
  std::shared_ptr<class CursorRegistry> registry_;
  // The thread's spare batch if it had one, given back when the cursor goes (RowBatch).
  std::unique_ptr<RowBatch> batch_ = RowBatch::TakeSpare();
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
