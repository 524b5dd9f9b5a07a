// The worker loop's time and randomness: one home for the clocks every thread reads and for
// the implementations of policies::Clock and policies::Random that workers hand to the engine.
//
//   monotonicMs (coarse, a vDSO read) --> loop turn's cached now_ms, timeouts, reconnects
//   monotonicUs/Ns (precise)          --> request latency, rate limits (the same clock on every
//                                         thread, so process-wide buckets agree)
#pragma once

#include <cstdint>

#include "policies/clock.h"

namespace corral::loop {

int64_t monotonicMs();  // CLOCK_MONOTONIC_COARSE, milliseconds
int64_t monotonicUs();  // CLOCK_MONOTONIC, microseconds
int64_t monotonicNs();  // CLOCK_MONOTONIC, nanoseconds
int64_t unixMs();       // CLOCK_REALTIME, milliseconds

// policies::Clock over the clocks above (no state: one per worker or shared).
class SystemClock final : public policies::Clock {
 public:
  int64_t monoNs() const override { return monotonicNs(); }
  int64_t unixMs() const override { return loop::unixMs(); }
};

// policies::Random: splitmix64, statistically fine for TTL jitter and early refresh. Not
// thread-safe: one per worker (no locks, no syscalls on the request path).
class FastRandom final : public policies::Random {
 public:
  explicit FastRandom(uint64_t seed) : state_(0x9e3779b97f4a7c15ull ^ seed) {}
  double uniform() override;
  uint64_t next();

 private:
  uint64_t state_;
};

}  // namespace corral::loop
