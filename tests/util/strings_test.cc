#include "util/strings.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace fern {
namespace {

TEST(StrCatTest, JoinsMixedArguments) {
  const std::string owned = "table";
  const std::string_view view = "block";
  const char* pointer = "file";
  EXPECT_EQ(StrCat(pointer, ":", owned, '/', view, " #", 42, " ok=", true, " bad=", false),
            "file:table/block #42 ok=true bad=false");
  EXPECT_EQ(StrCat(), "");
  EXPECT_EQ(StrCat(std::string_view("a\0b", 3), 'c'), std::string("a\0bc", 4));
}

TEST(StrCatTest, FormatsIntegersOfEveryWidth) {
  EXPECT_EQ(StrCat(int8_t{-5}, " ", uint8_t{200}, " ", int16_t{-300}, " ", uint16_t{65535}),
            "-5 200 -300 65535");
  EXPECT_EQ(StrCat(std::numeric_limits<int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(StrCat(std::numeric_limits<uint64_t>::max()), "18446744073709551615");
  EXPECT_EQ(StrCat(size_t{0}, -1L, 7U), "0-17");
}

TEST(StrCatTest, FormatsFloatingPointExactlyAndShortly) {
  EXPECT_EQ(StrCat(2.5), "2.5");
  EXPECT_EQ(StrCat(0.1), "0.1");
  EXPECT_EQ(StrCat(1.5f), "1.5");
  EXPECT_EQ(StrCat(-3.0), "-3");
  EXPECT_EQ(StrCat(1e-9), "1e-09") << "small values must not print as 0.000000";
  EXPECT_EQ(StrCat(1.1e20), "1.1e+20");
  EXPECT_EQ(StrCat(0.1f), "0.1") << "a float is printed as a float, not widened";
}

TEST(StrCatTest, NullCharPointerIsRenderedNotDereferenced) {
  const char* null = nullptr;
  EXPECT_EQ(StrCat("[", null, "]"), "[(null)]");
}

TEST(StrCatTest, AcceptsMutableCharPointers) {
  char buffer[] = "errno text";
  char* mutable_pointer = buffer;
  EXPECT_EQ(StrCat(mutable_pointer, "!"), "errno text!");
}

// Other pointers would silently convert to bool and print "true"; they do not compile.
template <typename T>
concept Appendable = requires(std::string* out, T value) {
  strings_internal::AppendPiece(out, value);
};
static_assert(Appendable<const char*>);
static_assert(Appendable<char*>);
static_assert(Appendable<std::string_view>);
static_assert(Appendable<double>);
static_assert(!Appendable<const int*>);
static_assert(!Appendable<void*>);
static_assert(!Appendable<std::string*>);

TEST(EscapeBytesTest, KeepsPrintableAsciiAndEscapesTheRest) {
  EXPECT_EQ(EscapeBytes("key-01 ~"), "key-01 ~");
  EXPECT_EQ(EscapeBytes(std::string_view("\0\x01\x1f\x7f\x80\xff", 6)),
            "\\x00\\x01\\x1f\\x7f\\x80\\xff");
  EXPECT_EQ(EscapeBytes("a\\b"), "a\\x5cb") << "a backslash is escaped, so output is unambiguous";
  EXPECT_EQ(EscapeBytes("tab\there\n"), "tab\\x09here\\x0a");
  EXPECT_EQ(EscapeBytes(""), "");
}

TEST(EscapeBytesTest, CutsLongInputWithAnEllipsis) {
  const std::string long_input(100, 'x');
  EXPECT_EQ(EscapeBytes(long_input), std::string(64, 'x') + "...");
  EXPECT_EQ(EscapeBytes(long_input, 100), long_input) << "exactly the limit is not cut";
  EXPECT_EQ(EscapeBytes("abcdef", 3), "abc...");
  EXPECT_EQ(EscapeBytes("abc", 0), "...");
  EXPECT_EQ(EscapeBytes(std::string(5, '\xee'), 2), "\\xee\\xee...");
}

TEST(Hex64Test, SixteenLowercaseDigits) {
  EXPECT_EQ(Hex64(0), "0000000000000000");
  EXPECT_EQ(Hex64(0x8badf00d12345678ull), "8badf00d12345678");
  EXPECT_EQ(Hex64(~uint64_t{0}), "ffffffffffffffff");
}

}  // namespace
}  // namespace fern
