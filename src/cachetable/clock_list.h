// ClockList: the circular list every cached pair is threaded on, and the hands that sweep it.
//
// The list is intrusive (a pair is a ClockNode) and circular. Each sweeper — the evictor and
// the cleaner (a checkpoint works per file, not along the clock) — owns a ClockHand and
// moves it on its own, so the sweepers do not disturb each other's position. New nodes go just
// behind a chosen hand (the evictor's), so they are the last that hand reaches: the list stays in
// order of first miss as seen from that hand.
//
// Thread-safety: none of its own; the cachetable guards the list and its hands with its
// list mutex.
#ifndef FERN_CACHETABLE_CLOCK_LIST_H_
#define FERN_CACHETABLE_CLOCK_LIST_H_

#include <cstddef>

#include "absl/container/inlined_vector.h"

namespace fern {

struct ClockNode {
  ClockNode* clock_prev = nullptr;
  ClockNode* clock_next = nullptr;
};

// A position on the clock. Null exactly when the list is empty.
class ClockHand {
 public:
  ClockNode* position() const { return at_; }

 private:
  friend class ClockList;
  ClockNode* at_ = nullptr;
};

class ClockList {
 public:
  ClockList() = default;
  ClockList(const ClockList&) = delete;
  ClockList& operator=(const ClockList&) = delete;

  // Registers `hand`, which must outlive the list or be removed first. It starts on some
  // node of the list (or nowhere if the list is empty).
  void AddHand(ClockHand* hand);
  void RemoveHand(ClockHand* hand);

  // Inserts `node` (not on any list) just behind `hand`'s position. REQUIRES: `hand` is
  // registered.
  void InsertBehind(ClockNode* node, const ClockHand& hand);
  // Unlinks `node`; hands on it move to its successor.
  void Remove(ClockNode* node);
  // Returns the node under `hand` and moves the hand to the next one; nullptr if empty.
  ClockNode* Advance(ClockHand* hand);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  absl::InlinedVector<ClockHand*, 4> hands_;
  ClockNode* anchor_ = nullptr;  // any node of the list; null when empty
  size_t size_ = 0;
};

}  // namespace fern

#endif  // FERN_CACHETABLE_CLOCK_LIST_H_
