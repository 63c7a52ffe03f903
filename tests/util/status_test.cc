#include "fern/status.h"

#include <gtest/gtest.h>

#include <string>

#include "util/status_macros.h"

namespace fern {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::OK().ok());
}

TEST(StatusTest, EachFactorySetsItsCodeAndName) {
  struct Case {
    Status status;
    Status::Code code;
    const char* text;
  };
  const Case cases[] = {
      {Status::NotFound("m"), Status::Code::kNotFound, "NotFound: m"},
      {Status::Corruption("m"), Status::Code::kCorruption, "Corruption: m"},
      {Status::InvalidArgument("m"), Status::Code::kInvalidArgument, "InvalidArgument: m"},
      {Status::IOError("m"), Status::Code::kIOError, "IOError: m"},
      {Status::Busy("m"), Status::Code::kBusy, "Busy: m"},
      {Status::Deadlock("m"), Status::Code::kDeadlock, "Deadlock: m"},
      {Status::AlreadyExists("m"), Status::Code::kAlreadyExists, "AlreadyExists: m"},
      {Status::NotSupported("m"), Status::Code::kNotSupported, "NotSupported: m"},
      {Status::Aborted("m"), Status::Code::kAborted, "Aborted: m"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(c.status.ok());
    EXPECT_EQ(c.status.code(), c.code);
    EXPECT_EQ(c.status.ToString(), c.text);
    EXPECT_EQ(c.status.message(), "m");
  }
  EXPECT_TRUE(Status::NotFound().IsNotFound());
  EXPECT_TRUE(Status::Corruption().IsCorruption());
  EXPECT_TRUE(Status::InvalidArgument().IsInvalidArgument());
  EXPECT_TRUE(Status::IOError().IsIOError());
  EXPECT_TRUE(Status::Busy().IsBusy());
  EXPECT_TRUE(Status::Deadlock().IsDeadlock());
  EXPECT_TRUE(Status::AlreadyExists().IsAlreadyExists());
  EXPECT_TRUE(Status::NotSupported().IsNotSupported());
  EXPECT_TRUE(Status::Aborted().IsAborted());
  EXPECT_FALSE(Status::Busy().IsDeadlock());
}

TEST(StatusTest, EmptyMessageHasNoSeparator) {
  EXPECT_EQ(Status::NotFound().ToString(), "NotFound");
}

TEST(StatusTest, WithContextPrefixesTheMessageAndKeepsTheCode) {
  Status s = Status::Corruption("bad checksum").WithContext("t.ft block 7");
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.ToString(), "Corruption: t.ft block 7: bad checksum");
  EXPECT_EQ(Status::IOError().WithContext("LOCK").ToString(), "IOError: LOCK");
  EXPECT_TRUE(Status::OK().WithContext("ignored").ok());
  EXPECT_EQ(Status::OK().WithContext("ignored").ToString(), "OK");
}

Status FailsAt(int step, int* reached) {
  for (int i = 0; i < 3; ++i) {
    *reached = i;
    FERN_RETURN_IF_ERROR(i == step ? Status::IOError(std::to_string(i)) : Status::OK());
  }
  return Status::OK();
}

TEST(StatusTest, ReturnIfErrorStopsAtTheFirstFailure) {
  int reached = -1;
  Status s = FailsAt(1, &reached);
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(s.ToString(), "IOError: 1");
  EXPECT_TRUE(FailsAt(5, &reached).ok());
  EXPECT_EQ(reached, 2);
}

}  // namespace
}  // namespace fern
