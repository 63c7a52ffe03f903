// The umbrella header: everything a program linking Fern needs.
#ifndef FERN_FERN_H_
#define FERN_FERN_H_

#include "fern/cursor.h"
#include "fern/env.h"
#include "fern/loader.h"
#include "fern/options.h"
#include "fern/status.h"
#include "fern/table.h"
#include "fern/txn.h"

#endif  // FERN_FERN_H_
