// The two things a policy decision needs from the outside world, as interfaces so that tests
// can fake them (policies/ has no sockets, no libevent, no threads of its own).
#pragma once

#include <cstdint>

namespace corral::policies {

// Time. The proxy implements it with the worker loop's cached clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t monoNs() const = 0;  // monotonic nanoseconds (rate limits, read-your-writes)
  virtual int64_t unixMs() const = 0;  // wall clock (EXPIREAT / PXAT arguments)
};

// Randomness (TTL jitter, early refresh). uniform() returns a value in [0, 1).
class Random {
 public:
  virtual ~Random() = default;
  virtual double uniform() = 0;
};

}  // namespace corral::policies
