// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudorandom function over short inputs,
// our own small implementation. Without the 128-bit key nobody can compute, or predict, the
// digest of any input, which is what corral needs it for:
//   - internal key names of fills (fill.h): a digest of the data key under the deployment's
//     fill secret, so that no client can name, hence forge, a lease or a negative entry;
//   - rate-limit bucket keys (rate_limiter.cc): long client names, keys and captures become a
//     fixed-size digest under a random per-process key.
// 64-bit output. Not constant-time with respect to the input length (no hash is).
#pragma once

#include <cstdint>
#include <string_view>

namespace corral::policies {

struct SipKey {
  uint64_t k0 = 0;  // key bytes 0..7, little-endian
  uint64_t k1 = 0;  // key bytes 8..15
};

uint64_t sipHash24(const SipKey& key, std::string_view data);

// A key drawn from std::random_device (for keys that live and die with the process).
SipKey randomSipKey();

}  // namespace corral::policies
