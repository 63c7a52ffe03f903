#include "db/use_gate.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fern {

bool UseGate::Enter() {
  users_.fetch_add(1);
  if (!closed_.load()) return true;
  users_.fetch_sub(1);
  return false;
}

void UseGate::Close() {
  closed_.store(true);
  // Closing is rare (DropTable) and the calls it waits for are short or bounded by the lock
  // timeout: polling keeps Enter and Exit free of any lock or wake-up.
  while (users_.load() != 0) absl::SleepFor(absl::Microseconds(200));
}

}  // namespace fern
