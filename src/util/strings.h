// String building for messages and keys.
//
// Debian's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW
// is 0), so absl::StrCat does not accept std::string_view. Fern's code uses std::string_view
// throughout and builds text with fern::StrCat instead.
#ifndef FERN_UTIL_STRINGS_H_
#define FERN_UTIL_STRINGS_H_

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace fern {

namespace strings_internal {
// Shortest text that reads back as the same value ("0.1", "1e-09"), unlike std::to_string's
// fixed six decimals.
void AppendFloat(std::string* out, double v);
void AppendFloat(std::string* out, float v);

inline void AppendPiece(std::string* out, std::string_view piece) { out->append(piece); }
inline void AppendPiece(std::string* out, const char* piece) {
  out->append(piece != nullptr ? piece : "(null)");
}
inline void AppendPiece(std::string* out, const std::string& piece) { out->append(piece); }
inline void AppendPiece(std::string* out, char c) { out->push_back(c); }
inline void AppendPiece(std::string* out, bool b) { out->append(b ? "true" : "false"); }
template <std::integral T>
void AppendPiece(std::string* out, T v) {
  out->append(std::to_string(v));
}
inline void AppendPiece(std::string* out, float v) { AppendFloat(out, v); }
template <std::floating_point T>
void AppendPiece(std::string* out, T v) {
  AppendFloat(out, static_cast<double>(v));
}
inline void AppendPiece(std::string* out, char* piece) {
  AppendPiece(out, static_cast<const char*>(piece));
}
// Any other pointer would convert to bool and print "true": refuse it at compile time.
template <typename T>
requires(!std::same_as<std::remove_cv_t<T>, char>) void AppendPiece(std::string* out,
                                                                    T* pointer) = delete;
}  // namespace strings_internal

// Concatenates strings, string_views, C strings (nullptr as "(null)"), chars, bools
// ("true"/"false"), integers and floating-point numbers, in decimal.
template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (strings_internal::AppendPiece(&out, args), ...);
  return out;
}

// Renders bytes for a human: printable ASCII as is, anything else as \xNN; at most
// `max_bytes` of input, with "..." when cut.
std::string EscapeBytes(std::string_view bytes, size_t max_bytes = 64);

// Whether `s` is one or more ASCII digits.
bool AllDigits(std::string_view s);

// `value` as 16 lowercase hex digits (for identifiers such as file uids).
std::string Hex64(uint64_t value);

}  // namespace fern

#endif  // FERN_UTIL_STRINGS_H_
