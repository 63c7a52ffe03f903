#include "util/mutex.h"

namespace fern {

void UseReleaseMutexDiagnostics() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace fern
