// Byte encodings shared by every on-disk format: fixed-width little-endian integers,
// LEB128 varints, length-prefixed strings, and a bounds-checked Decoder that never reads
// past its input (damaged bytes yield `false`, never an out-of-bounds read).
#ifndef FERN_UTIL_CODING_H_
#define FERN_UTIL_CODING_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace fern {

inline void EncodeFixed16(char* dst, uint16_t v) {
  dst[0] = static_cast<char>(v);
  dst[1] = static_cast<char>(v >> 8);
}
inline void EncodeFixed32(char* dst, uint32_t v) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}
inline void EncodeFixed64(char* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}
inline uint16_t DecodeFixed16(const char* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}
inline uint32_t DecodeFixed32(const char* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return uint32_t{b[0]} | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
}
inline uint64_t DecodeFixed64(const char* p) {
  return uint64_t{DecodeFixed32(p)} | (uint64_t{DecodeFixed32(p + 4)} << 32);
}

// The Put functions append to a std::string or any string type with push_back and
// append(const char*, size_t) (ChunkString, for arenas in chunk memory).
template <typename String>
inline void PutFixed8(String* dst, uint8_t v) {
  dst->push_back(static_cast<char>(v));
}
template <typename String>
inline void PutFixed16(String* dst, uint16_t v) {
  char buf[2];
  EncodeFixed16(buf, v);
  dst->append(buf, 2);
}
template <typename String>
inline void PutFixed32(String* dst, uint32_t v) {
  char buf[4];
  EncodeFixed32(buf, v);
  dst->append(buf, 4);
}
template <typename String>
inline void PutFixed64(String* dst, uint64_t v) {
  char buf[8];
  EncodeFixed64(buf, v);
  dst->append(buf, 8);
}
template <typename String>
inline void PutVarint64(String* dst, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  dst->append(buf, n);
}
template <typename String>
inline void PutVarint32(String* dst, uint32_t v) {
  PutVarint64(dst, v);
}
template <typename String>
inline void PutLengthPrefixed(String* dst, std::string_view s) {
  PutVarint32(dst, static_cast<uint32_t>(s.size()));
  dst->append(s.data(), s.size());
}
inline size_t VarintLength(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Reads from a byte range front to back. Every getter returns false (and consumes nothing
// useful) when the input is too short or malformed; callers turn that into Corruption.
class Decoder {
 public:
  explicit Decoder(std::string_view input) : input_(input) {}

  bool GetFixed8(uint8_t* v) {
    if (input_.empty()) return false;
    *v = static_cast<uint8_t>(input_[0]);
    input_.remove_prefix(1);
    return true;
  }
  bool GetFixed16(uint16_t* v) {
    if (input_.size() < 2) return false;
    *v = DecodeFixed16(input_.data());
    input_.remove_prefix(2);
    return true;
  }
  bool GetFixed32(uint32_t* v) {
    if (input_.size() < 4) return false;
    *v = DecodeFixed32(input_.data());
    input_.remove_prefix(4);
    return true;
  }
  bool GetFixed64(uint64_t* v) {
    if (input_.size() < 8) return false;
    *v = DecodeFixed64(input_.data());
    input_.remove_prefix(8);
    return true;
  }
  // Rejects a varint longer than 10 bytes, or whose 10th byte holds bits beyond bit 63.
  bool GetVarint64(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift <= 63 && !input_.empty(); shift += 7) {
      uint64_t byte = static_cast<uint8_t>(input_[0]);
      input_.remove_prefix(1);
      if (shift == 63 && byte > 1) return false;
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool GetVarint32(uint32_t* v) {
    uint64_t wide;
    if (!GetVarint64(&wide) || wide > UINT32_MAX) return false;
    *v = static_cast<uint32_t>(wide);
    return true;
  }
  bool GetBytes(size_t n, std::string_view* out) {
    if (input_.size() < n) return false;
    *out = input_.substr(0, n);
    input_.remove_prefix(n);
    return true;
  }
  bool GetLengthPrefixed(std::string_view* out) {
    uint32_t n;
    return GetVarint32(&n) && GetBytes(n, out);
  }
  bool Skip(size_t n) {
    if (input_.size() < n) return false;
    input_.remove_prefix(n);
    return true;
  }

  size_t remaining() const { return input_.size(); }
  bool empty() const { return input_.empty(); }
  std::string_view rest() const { return input_; }

 private:
  std::string_view input_;
};

}  // namespace fern

#endif  // FERN_UTIL_CODING_H_
