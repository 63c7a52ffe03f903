// The one way Fern propagates a Status inside the library.
#ifndef FERN_UTIL_STATUS_MACROS_H_
#define FERN_UTIL_STATUS_MACROS_H_

#include "fern/status.h"

// Evaluates `expr` (a fern::Status) once and returns it from the caller if it is not OK.
#define FERN_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::fern::Status fern_status_ = (expr);        \
    if (!fern_status_.ok()) return fern_status_; \
  } while (0)

#endif  // FERN_UTIL_STATUS_MACROS_H_
