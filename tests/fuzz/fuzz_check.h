// What both libFuzzer targets share: an invariant check that aborts (so libFuzzer records the
// input), and the split-point checks that compare a framer fed in pieces with the same framer
// fed whole and with a simple reference framer.
#pragma once

#include <algorithm>
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

// drive(data, size, first, step, limits) feeds the framer `first` bytes, then `step` more at a
// time, and returns what it framed; reference(text, limits) frames the whole input simply.
// Fed whole, in two pieces at a content-chosen point, and byte by byte (or in small steps for
// larger inputs), the framer must see the same frames.
template <typename Drive, typename Reference>
void checkSplits(const uint8_t* data, size_t size, const codec::Limits& limits, Drive drive,
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

}  // namespace corral::fuzz
