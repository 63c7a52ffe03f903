#include "cachetable/clock_list.h"

#include <algorithm>

namespace fern {

void ClockList::AddHand(ClockHand* hand) {
  hand->at_ = anchor_;
  hands_.push_back(hand);
}

void ClockList::RemoveHand(ClockHand* hand) {
  auto it = std::find(hands_.begin(), hands_.end(), hand);
  if (it != hands_.end()) hands_.erase(it);
  hand->at_ = nullptr;
}

void ClockList::InsertBehind(ClockNode* node, const ClockHand& hand) {
  ++size_;
  if (anchor_ == nullptr) {
    node->clock_prev = node;
    node->clock_next = node;
    anchor_ = node;
    for (ClockHand* h : hands_) h->at_ = node;
    return;
  }
  ClockNode* next = hand.at_ != nullptr ? hand.at_ : anchor_;
  ClockNode* prev = next->clock_prev;
  node->clock_prev = prev;
  node->clock_next = next;
  prev->clock_next = node;
  next->clock_prev = node;
}

void ClockList::Remove(ClockNode* node) {
  --size_;
  ClockNode* next = node->clock_next == node ? nullptr : node->clock_next;
  if (next != nullptr) {
    node->clock_prev->clock_next = next;
    next->clock_prev = node->clock_prev;
  }
  if (anchor_ == node) anchor_ = next;
  for (ClockHand* h : hands_) {
    if (h->at_ == node) h->at_ = next;
  }
  node->clock_prev = nullptr;
  node->clock_next = nullptr;
}

ClockNode* ClockList::Advance(ClockHand* hand) {
  ClockNode* node = hand->at_;
  if (node != nullptr) hand->at_ = node->clock_next;
  return node;
}

}  // namespace fern
