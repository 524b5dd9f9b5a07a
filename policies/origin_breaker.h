// A circuit breaker for one origin, shared by every worker of the process (lock-free atomics).
//
//          N consecutive failures              open_for passed: the next admit() becomes a probe
//   closed ────────────────────────> open ──────────────────────────────────> half_open
//     ^                               ^  (a probe fails)                         │
//     └────── half_open_probes successful probes ────────────────────────────────┘
//
// While open every admit() says kReject: a fill then costs no origin request. In half_open only
// the probes (at most half_open_probes at once) go through; other requests are rejected. Results
// of requests admitted before a transition are ignored (only probes decide half_open; a late
// failure of a closed-era request does not reopen it).
//
// Why per process and atomics: a dead origin should cost one set of N failures per corral, not N
// per worker, and the breaker is consulted on every fill (also during an outage, when fills are
// cheap and many): an atomic load when open. Transitions are compare-and-swaps, so each happens
// once whichever worker sees it; the bookkeeping around them (time per state) tolerates the rare
// interleavings as metrics do. Time is passed in (nanoseconds of a monotonic clock): the class
// reads no clock of its own, so tests drive it directly.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "config/policy_config.h"

namespace corral::policies {

class OriginBreaker {
 public:
  enum class State : uint8_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
  static constexpr size_t kStates = 3;
  static const char* name(State s);  // "closed", "open", "half_open"

  enum class Admit : uint8_t { kAllow, kProbe, kReject };
  // What an answered request tells about the origin.
  enum class Outcome : uint8_t {
    kSuccess,  // it answered (200, 404, another 4xx): alive
    kFailure,  // connect error, timeout, reset, 5xx, 429
    kNeutral,  // nothing was asked (our own bulkhead, a bad path): no news
  };

  explicit OriginBreaker(int64_t now_ns);

  // May a request go to the origin now? kProbe: yes, and its result decides half_open (pass
  // probe=true to record()).
  Admit admit(const config::OriginBreakerSpec& spec, int64_t now_ns);
  // The result of an admitted request.
  void record(const config::OriginBreakerSpec& spec, Outcome outcome, bool probe, int64_t now_ns);

  State state() const { return state_.load(std::memory_order_acquire); }
  // Seconds spent in state s up to now_ns (the current state's running time included).
  double secondsIn(State s, int64_t now_ns) const;
  uint64_t transitionsTo(State s) const {
    return transitions_[static_cast<size_t>(s)].load(std::memory_order_relaxed);
  }
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

 private:
  // Moves from `from` to `to` if the state is still `from`; false if another thread moved first.
  bool move(State from, State to, int64_t now_ns);

  std::atomic<State> state_{State::kClosed};
  std::atomic<uint32_t> failures_{0};    // consecutive, while closed
  std::atomic<int64_t> entered_ns_;      // when the current state began
  std::atomic<int32_t> probes_left_{0};  // half_open: probes that may still start
  std::atomic<uint32_t> probe_successes_{0};
  std::array<std::atomic<int64_t>, kStates> ns_in_{};  // finished stretches per state
  std::array<std::atomic<uint64_t>, kStates> transitions_{};
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace corral::policies
