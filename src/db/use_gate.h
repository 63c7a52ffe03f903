// UseGate: lets calls into an object run concurrently until it is closed, and lets the
// closer wait for the calls under way to finish. A table's gate makes DropTable wait for the
// writes and commits in flight in it before it closes the tree: a write logged but then
// refused by a closed tree would otherwise stop every write in the Env.
//
// Thread-safe. Entering is two atomic operations (no lock), and may nest in one thread: a
// nested Enter after Close began simply fails, so Close cannot deadlock on its own thread's
// outer call, which finishes and lets it go on.
#ifndef FERN_DB_USE_GATE_H_
#define FERN_DB_USE_GATE_H_

#include <atomic>
#include <cstdint>

#include "absl/container/inlined_vector.h"

namespace fern {

class UseGate {
 public:
  // Holds the gate open for one call; entered() is false if the gate was closed.
  class Scope {
   public:
    explicit Scope(UseGate* gate) : gate_(gate), entered_(gate->Enter()) {}
    ~Scope() {
      if (entered_) gate_->Exit();
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    bool entered() const { return entered_; }

   private:
    UseGate* const gate_;
    const bool entered_;
  };

  bool closed() const { return closed_.load(); }
  // Refuses every later Enter and returns once every call that entered has left (also when
  // another thread closed it first). Must not be called from inside a Scope of this gate.
  void Close();

 private:
  friend class UseGateSet;

  bool Enter();
  void Exit() { users_.fetch_sub(1); }

  // Sequentially consistent, so that Close's store of closed_ and its reads of users_ and an
  // entering call's increment of users_ and its read of closed_ cannot both miss each other.
  std::atomic<int64_t> users_{0};
  std::atomic<bool> closed_{false};
};

// Holds several gates open at once, each until the set is destroyed: a commit holds those of
// every table it wrote from its commit record until its keys are resolved. Not thread-safe.
class UseGateSet {
 public:
  UseGateSet() = default;
  ~UseGateSet() {
    for (UseGate* gate : entered_) gate->Exit();
  }
  UseGateSet(const UseGateSet&) = delete;
  UseGateSet& operator=(const UseGateSet&) = delete;

  // Enters `gate` for as long as the set lives; false (and nothing held) if it is closed.
  bool Enter(UseGate* gate) {
    if (!gate->Enter()) return false;
    entered_.push_back(gate);
    return true;
  }
  // Whether the set holds `gate` open (a holder need not enter it again: a nested Enter
  // fails once a Close has begun, though the set keeps the closer waiting).
  bool Holds(const UseGate* gate) const {
    for (const UseGate* held : entered_) {
      if (held == gate) return true;
    }
    return false;
  }

 private:
  absl::InlinedVector<UseGate*, 2> entered_;
};

}  // namespace fern

#endif  // FERN_DB_USE_GATE_H_
