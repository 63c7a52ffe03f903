// Txn: a transaction over the tables of one Env.
#ifndef FERN_TXN_H_
#define FERN_TXN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fern/status.h"

namespace fern {

// A Txn is used by one thread at a time (it may move between threads).
class Txn {
 public:
  virtual ~Txn();  // aborts if still live
  virtual Status Commit() = 0;
  virtual Status Abort() = 0;
  virtual Status Prepare(std::string_view xid) = 0;  // XA phase one: durable, keeps its locks
  virtual Status BeginChild(std::unique_ptr<Txn>* child) = 0;  // nested transaction
  virtual uint64_t id() const = 0;
  virtual std::string xid() const = 0;  // empty unless prepared
};

}  // namespace fern

#endif  // FERN_TXN_H_
