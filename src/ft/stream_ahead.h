// StreamAhead: decoding ahead of a forward scan that streams (FractalTree::Caching::kStream).
//
// A streaming scan reads every basement it does not find cached from disk into a transient
// copy, and reading, decompressing and parsing it was over half of a bulk scan's time
// (fernbench readseq, 1 GiB cache, cold process), all on the scan's thread. With a
// StreamAhead the tree decodes the next basements on its readahead pool while the scan
// copies rows out of the current one (FractalTree::StreamAheadFrom), and the scan takes
// each decoded copy instead of reading the basement itself: the two halves of the work run
// on two cores.
//
// A copy is matched to its basement by the frame id it was decoded from
// (LeafPartition::frame_id), which changes whenever the basement's frame does, so a copy
// decoded before a write reached the basement is never used. The copies are bounded: at most
// kMaxQueued wait at once, and no more are decoded once they hold kMaxQueuedBytes. Every
// basement a StreamAhead holds (queued, taken, or kept for its memory) is charged to the
// cachetable's OutsideMemory, so it counts against the cache budget; when the charge is
// refused (the cachetable's share for such memory is in use), nothing more is decoded ahead
// until some is given back, and the scan decodes for itself meanwhile.
//
// One scan (a cursor, used by one thread at a time) owns it; the one background task
// decoding for it shares it. Thread-safe.
#ifndef FERN_FT_STREAM_AHEAD_H_
#define FERN_FT_STREAM_AHEAD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cachetable/outside_memory.h"
#include "fern/options.h"
#include "ft/basement.h"
#include "util/mutex.h"

namespace fern {

class StreamAhead {
 public:
  static constexpr size_t kMaxQueued = 8;
  static constexpr size_t kMaxQueuedBytes = size_t{2} << 20;

  // `cmp` orders the scanned tree's keys and outlives this. The memory held is charged to
  // `memory` (null: to nothing, for tests).
  StreamAhead(const Comparator* cmp, std::shared_ptr<OutsideMemory> memory)
      : cmp_(cmp), memory_(std::move(memory)) {}
  // Releases every charge.
  ~StreamAhead();
  StreamAhead(const StreamAhead&) = delete;
  StreamAhead& operator=(const StreamAhead&) = delete;

  // ---- the scan's side ----

  // The scan has read every key below `from` and reads on from there: copies of basements
  // wholly below it are dropped, and the background task skips ahead to it if behind.
  void Advance(std::string_view from);
  // The decoded copy of frame `frame_id`, or null: the one the last Take returned, or a
  // queued one (the copies queued before it are dropped), or the one the background task
  // is decoding at this moment if it is done within microseconds. Valid until the next
  // Take or Restart.
  const Basement* Take(uint64_t frame_id);
  // Whether a background task should be started: none runs and fewer than half of
  // kMaxQueued copies wait.
  bool WantsTask() const;
  // Drops every copy and the position (the scan moved elsewhere: a seek); what a running
  // task decodes for the earlier position is dropped when it arrives.
  void Restart();

  // ---- the background task's side ----

  // Claims the task; false if one runs. *generation identifies the scan position the task
  // decodes for.
  bool BeginTask(uint64_t* generation);
  void EndTask();
  // Whether the task should go on: its generation is current, the queue has room, and the
  // last charge was not refused since a copy last left the queue or the task began.
  bool HasRoom(uint64_t generation) const;
  // HasRoom, waiting up to `timeout` for the scan to take a copy when the queue is full.
  bool AwaitRoom(uint64_t generation, absl::Duration timeout);
  // Where the task should look next, given that it would go on from `*key`: moved to the
  // scan's position if the scan is past it. False if the generation is not current.
  bool NextKey(uint64_t generation, std::string* key) const;
  // Whether the task should decode frame `frame_id`, of a basement whose keys lie below
  // `upper` (null: unbounded) and which decodes to about `raw_bytes`: the generation is
  // current, the queue has room, the scan has not gone past the basement, its frame is
  // neither queued nor already taken, the memory would likely be granted, and the scan is
  // not about to read it itself (see the .cc).
  bool Wants(uint64_t generation, uint64_t frame_id, const std::string* upper, size_t raw_bytes);
  // Announces that the task decodes frame `frame_id` now (so that a Take of it waits a
  // little rather than decoding it a second time) and returns a basement to decode into.
  std::unique_ptr<Basement> BeginDecode(uint64_t frame_id);
  // Ends what BeginDecode began: queues `rows` as the copy of frame `frame_id` (keys below
  // `upper`) if the generation is still current and its memory is granted, or drops it
  // (null: the decode failed; the scan then reads the basement itself and meets the
  // error).
  void EndDecode(uint64_t generation, uint64_t frame_id, const std::string* upper,
                 std::unique_ptr<Basement> rows);

  size_t queued() const;   // copies waiting, for tests
  size_t charged() const;  // bytes charged now, for tests

 private:
  // A basement held, with the bytes charged for it.
  struct Held {
    std::unique_ptr<Basement> rows;
    size_t charged = 0;
  };
  struct Copy {
    uint64_t frame_id = 0;
    bool has_upper = false;
    std::string upper;  // every key of the basement is below it
    Held held;
  };
  bool HasRoomLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the scan has read everything below `upper` (null: unbounded).
  bool PassedLocked(const std::string* upper) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropFrontLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps `held` as a spare for its memory, or frees it and releases its charge.
  void RecycleLocked(Held held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLocked(size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Comparator* const cmp_;
  const std::shared_ptr<OutsideMemory> memory_;
  mutable Mutex mu_;
  absl::CondVar taken_;  // signalled when a copy leaves the queue, or at a Restart
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool task_running_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t decoding_ ABSL_GUARDED_BY(mu_) = 0;      // frame being decoded (0: none)
  bool left_to_scan_ ABSL_GUARDED_BY(mu_) = false;  // Wants passed the last frame over
  std::atomic<uint64_t> decodes_ended_{0};          // EndDecode calls, for Take's spin
  bool has_position_ ABSL_GUARDED_BY(mu_) = false;
  std::string position_ ABSL_GUARDED_BY(mu_);    // the scan has read every key below it
  std::deque<Copy> queue_ ABSL_GUARDED_BY(mu_);  // in the order decoded: key order
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  Copy current_ ABSL_GUARDED_BY(mu_);                 // what the last Take returned
  std::vector<Held> spare_ ABSL_GUARDED_BY(mu_);      // memory to reuse
  size_t decoding_charged_ ABSL_GUARDED_BY(mu_) = 0;  // of the spare BeginDecode handed out
  size_t charged_ ABSL_GUARDED_BY(mu_) = 0;           // in all, to memory_
  bool refused_ ABSL_GUARDED_BY(mu_) = false;         // a charge was refused (HasRoom)
};

}  // namespace fern

#endif  // FERN_FT_STREAM_AHEAD_H_
