// Number lines shared by the reply parser and FrameReader (internal to proxy/codec).
//
// Replies come from Redis, which writes every length and integer one way: no '+', no leading
// zeros, no "-0", ending in CRLF. These helpers accept exactly that, so a reply has one spelling
// and anything else is a framing error. (Requests follow Redis's looser request rules instead:
// see request_parser.cc.)
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

namespace corral::codec::detail {

enum class Num : uint8_t { kOk, kMore, kBad };

inline bool isCrlf(const char* p) { return std::memcmp(p, "\r\n", 2) == 0; }

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// Parses an unsigned decimal line "123\r\n" starting at data[p], with the strictness of Redis's
// string2ll: no '+', no spaces, no leading zeros, at most `max`. On kOk sets `value` and `next`
// (the offset just past the CRLF). kMore means every byte so far may still begin a valid line.
// At most 19 digits are read, so a length line never makes us wait beyond ~21 bytes; Redis
// instead buffers up to 64 KiB looking for the CRLF and then fails, which ends the same way for
// any input, only later.
//
// This is the general case, kept out of line; parseLength() below inlines the common one.
[[gnu::noinline]] inline Num parseLengthSlow(const char* data, size_t len, size_t p, uint64_t max,
                                             uint64_t& value, size_t& next) {
  const size_t first = p;
  const size_t stop = std::min(len, first + 19);
  uint64_t v = 0;
  for (; p < stop; ++p) {
    const unsigned d = static_cast<unsigned char>(data[p]) - unsigned{'0'};
    if (d > 9) break;
    v = v * 10 + d;
  }
  if (p + 1 >= len) {  // no room for the CRLF yet
    if (p == len) return Num::kMore;
    return data[p] == '\r' && p > first ? Num::kMore : Num::kBad;
  }
  const size_t digits = p - first;
  // A 20th digit lands here as "not a CR".
  if (digits == 0 || (digits > 1 && data[first] == '0') || !isCrlf(data + p) || v > max) {
    return Num::kBad;
  }
  value = v;
  next = p + 2;
  return Num::kOk;
}

// The hot path: one or two digits with the CRLF already here (element counts, command names,
// most keys) cost a handful of instructions; anything else goes to parseLengthSlow().
inline Num parseLength(const char* data, size_t len, size_t p, uint64_t max, uint64_t& value,
                       size_t& next) {
  if (len - p >= 4) {
    const unsigned d0 = static_cast<unsigned char>(data[p]) - unsigned{'0'};
    if (d0 <= 9 && isCrlf(data + p + 1)) {
      if (d0 > max) return Num::kBad;
      value = d0;
      next = p + 3;
      return Num::kOk;
    }
    const unsigned d1 = static_cast<unsigned char>(data[p + 1]) - unsigned{'0'};
    if (d0 - 1 <= 8 && d1 <= 9 && isCrlf(data + p + 2)) {  // d0 in 1..9: no leading zero
      const unsigned v = d0 * 10 + d1;
      if (v > max) return Num::kBad;
      value = v;
      next = p + 4;
      return Num::kOk;
    }
  }
  return parseLengthSlow(data, len, p, max, value, next);
}

// The same for a signed line: an optional '-' (but not "-0"), any int64.
inline Num parseSigned(const char* data, size_t len, size_t p, int64_t& value, size_t& next) {
  uint64_t v = 0;
  if (p < len && data[p] == '-') {
    const Num r = parseLength(data, len, p + 1, kInt64Max + 1, v, next);
    if (r != Num::kOk) return r;
    if (v == 0) return Num::kBad;
    value = static_cast<int64_t>(0 - v);  // modular: v == 2^63 gives INT64_MIN
    return Num::kOk;
  }
  const Num r = parseLength(data, len, p, kInt64Max, v, next);
  value = static_cast<int64_t>(v);
  return r;
}

}  // namespace corral::codec::detail
