#include "util/fault_injection.h"

#include <atomic>

namespace fern {

namespace {
std::atomic<FaultInjector*> g_injector{nullptr};
}  // namespace

void SetFaultInjector(FaultInjector* injector) {
  g_injector.store(injector, std::memory_order_release);
}

FaultInjector* CurrentFaultInjector() { return g_injector.load(std::memory_order_acquire); }

}  // namespace fern
