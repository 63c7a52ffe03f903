// The cachetable's mutex is Fern's TSan-visible mutex (util/mutex.h); these names remain
// for the cachetable's code.
#ifndef FERN_CACHETABLE_ANNOTATED_MUTEX_H_
#define FERN_CACHETABLE_ANNOTATED_MUTEX_H_

#include "util/mutex.h"

namespace fern {

using AnnotatedMutex = Mutex;
using AnnotatedMutexLock = MutexLock;

}  // namespace fern

#endif  // FERN_CACHETABLE_ANNOTATED_MUTEX_H_
