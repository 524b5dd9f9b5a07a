// What both libFuzzer targets share: an invariant check that aborts (so libFuzzer records the
// input), and the split-point checks that compare a framer fed in pieces with the same framer
// fed whole and with a simple reference framer.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "proxy/codec/resp.h"

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "invariant failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

namespace corral::fuzz {

// The parser may see a malformed line before its CRLF arrives, where the reference still waits:
// then everything before the end must agree, and the parser ends in an error.
template <typename Event>
bool agrees(const std::vector<Event>& got, const std::vector<Event>& want) {
  if (got == want) return true;
  if (got.size() != want.size() || want.back().status != codec::ParseStatus::kIncomplete ||
      got.back().status != codec::ParseStatus::kError) {
    return false;
  }
  return std::equal(got.begin(), got.end() - 1, want.begin());
}

// drive(data, size, first, step, setup) feeds the framer `first` bytes, then `step` more at a
// time, and returns what it framed; reference(text, setup) frames the whole input simply.
// `setup` is the limits (and settings) both run under.
// Fed whole, in two pieces at a content-chosen point, and byte by byte (or in small steps for
// larger inputs), the framer must see the same frames.
template <typename Setup, typename Drive, typename Reference>
void checkSplits(const uint8_t* data, size_t size, const Setup& limits, Drive drive,
                 Reference reference) {
  const auto whole = drive(data, size, size, size, limits);
  FUZZ_CHECK(agrees(
      whole, reference(std::string_view(reinterpret_cast<const char*>(data), size), limits)));
  // A split point that depends on the content, so the fuzzer can steer it.
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 16777619u;
  const size_t k = size == 0 ? 0 : h % (size + 1);
  FUZZ_CHECK(drive(data, size, k, size, limits) == whole);
  if (size <= 256) {
    FUZZ_CHECK(drive(data, size, 1, 1, limits) == whole);
  } else {
    FUZZ_CHECK(drive(data, size, k, 1 + h % 61, limits) == whole);
  }
}

// --- reference model helpers ---

enum class Ref : uint8_t { kOk, kMore, kBad };

// A decimal line at s[p] ending in CRLF: optional '-' if `negative_ok`, no leading zeros, no
// "-0", fits int64. Judged only once its CRLF is there (kMore before that).
inline Ref refNumber(std::string_view s, size_t p, bool negative_ok, int64_t& value, size_t& end) {
  const size_t cr = s.find('\r', p);
  if (cr == std::string_view::npos || cr + 1 == s.size()) return Ref::kMore;
  if (s[cr + 1] != '\n') return Ref::kBad;
  std::string_view digits = s.substr(p, cr - p);
  const bool negative = negative_ok && !digits.empty() && digits[0] == '-';
  if (negative) digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 19) return Ref::kBad;
  if (digits[0] == '0' && (digits.size() > 1 || negative)) return Ref::kBad;
  for (char c : digits) {
    if (c < '0' || c > '9') return Ref::kBad;
  }
  uint64_t u = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), u);
  const uint64_t max = uint64_t{1} << 63;
  if (negative ? u > max : u >= max) return Ref::kBad;
  value = negative ? static_cast<int64_t>(0 - u) : static_cast<int64_t>(u);
  end = cr + 2;
  return Ref::kOk;
}

}  // namespace corral::fuzz
