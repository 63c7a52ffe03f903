// fern::Status: the outcome of every fallible call in Fern's public interface.
#ifndef FERN_STATUS_H_
#define FERN_STATUS_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace fern {

class [[nodiscard]] Status {
 public:
  enum class Code : uint8_t {
    kOk,
    kNotFound,
    kCorruption,
    kInvalidArgument,
    kIOError,
    kBusy,           // a row lock could not be had within the lock timeout
    kDeadlock,       // this transaction was chosen to break a lock cycle
    kAlreadyExists,  // Table::Insert of a key that is present
    kNotSupported,
    kAborted
  };

  Status() = default;  // OK
  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg = {}) { return Status(Code::kNotFound, msg); }
  static Status Corruption(std::string_view msg = {}) { return Status(Code::kCorruption, msg); }
  static Status InvalidArgument(std::string_view msg = {}) {
    return Status(Code::kInvalidArgument, msg);
  }
  static Status IOError(std::string_view msg = {}) { return Status(Code::kIOError, msg); }
  static Status Busy(std::string_view msg = {}) { return Status(Code::kBusy, msg); }
  static Status Deadlock(std::string_view msg = {}) { return Status(Code::kDeadlock, msg); }
  static Status AlreadyExists(std::string_view msg = {}) {
    return Status(Code::kAlreadyExists, msg);
  }
  static Status NotSupported(std::string_view msg = {}) {
    return Status(Code::kNotSupported, msg);
  }
  static Status Aborted(std::string_view msg = {}) { return Status(Code::kAborted, msg); }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsDeadlock() const { return code_ == Code::kDeadlock; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }
  bool IsNotSupported() const { return code_ == Code::kNotSupported; }
  bool IsAborted() const { return code_ == Code::kAborted; }
  Code code() const { return code_; }
  std::string_view message() const { return message_; }

  // "OK", or "<CodeName>: <message>" (e.g. "NotFound: key 42").
  std::string ToString() const;

  // Returns a Status with the same code whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}

  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace fern

#endif  // FERN_STATUS_H_
