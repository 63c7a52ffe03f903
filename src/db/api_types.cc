// Out-of-line destructors of the public interfaces (their key functions).
#include "fern/fern.h"

namespace fern {

Cursor::~Cursor() = default;
Txn::~Txn() = default;
Table::~Table() = default;
Loader::~Loader() = default;
Env::~Env() = default;

}  // namespace fern
