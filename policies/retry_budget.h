// A retry budget for one origin, shared by every worker of the process (Finagle's RetryBudget,
// in our own terms): retries may be at most `budget` times the first requests made to the origin
// in the last 10 seconds, plus a floor of min_per_second for each second of that window (so a
// quiet origin may still retry its rare failures).
//
//   first request ──recordRequest──> [10 one-second slots: requests, retries] <──tryRetry── retry?
//        retries in window + 1 <= budget x requests in window + min_per_second x 10 ? yes: count it
//
// During a 5xx storm every request fails, so retries add at most about budget x the normal calls
// (plus the floor) instead of multiplying them by the attempt count. Thread-safe: a mutex, held
// for a few additions per origin request (never on the hit path, never across I/O). Time is passed
// in as monotonic nanoseconds.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

#include "config/policy_config.h"

namespace corral::policies {

class RetryBudget {
 public:
  static constexpr int64_t kWindowSeconds = 10;

  // A first attempt went to the origin.
  void recordRequest(int64_t now_ns);
  // May a retry be made now? Counts it when yes; counts an exhaustion when no.
  bool tryRetry(const config::OriginRetrySpec& spec, int64_t now_ns);
  uint64_t exhausted() const { return exhausted_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    int64_t second = -1;  // which second of the monotonic clock the counts belong to
    uint64_t requests = 0;
    uint64_t retries = 0;
  };
  Slot& slot(int64_t second);  // mu_ held; the slot of `second`, emptied if it held an older one

  std::mutex mu_;
  std::array<Slot, kWindowSeconds> slots_{};
  std::atomic<uint64_t> exhausted_{0};
};

}  // namespace corral::policies
