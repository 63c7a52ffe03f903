#include "util/strings.h"

#include <algorithm>
#include <charconv>

namespace fern {

namespace strings_internal {

namespace {
template <typename T>
void AppendShortest(std::string* out, T v) {
  char buffer[64];  // the shortest form of any double needs at most 24 characters
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  if (error == std::errc()) out->append(buffer, end);
}
}  // namespace

void AppendFloat(std::string* out, double v) { AppendShortest(out, v); }
void AppendFloat(std::string* out, float v) { AppendShortest(out, v); }

}  // namespace strings_internal

std::string EscapeBytes(std::string_view bytes, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t n = bytes.size() < max_bytes ? bytes.size() : max_bytes;
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (n < bytes.size()) out += "...";
  return out;
}

std::string Hex64(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[i] = kDigits[value & 0xf];
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace fern
