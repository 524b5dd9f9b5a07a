// The origin circuit breaker's transitions (see origin_breaker.h for the picture).
#include "policies/origin_breaker.h"

#include <algorithm>

namespace corral::policies {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;

size_t idx(OriginBreaker::State s) { return static_cast<size_t>(s); }

}  // namespace

const char* OriginBreaker::name(State s) {
  switch (s) {
    case State::kClosed:
      return "closed";
    case State::kOpen:
      return "open";
    case State::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

OriginBreaker::OriginBreaker(int64_t now_ns) : entered_ns_(now_ns) {}

bool OriginBreaker::move(State from, State to, int64_t now_ns) {
  State expected = from;
  if (!state_.compare_exchange_strong(expected, to, std::memory_order_acq_rel)) return false;
  // Only the thread that made the transition gets here, so each stretch is counted once.
  const int64_t began = entered_ns_.exchange(now_ns, std::memory_order_acq_rel);
  ns_in_[idx(from)].fetch_add(std::max<int64_t>(0, now_ns - began), std::memory_order_relaxed);
  transitions_[idx(to)].fetch_add(1, std::memory_order_relaxed);
  if (to == State::kOpen) probes_left_.store(0, std::memory_order_release);
  if (to == State::kHalfOpen) probe_successes_.store(0, std::memory_order_release);
  if (to == State::kClosed) failures_.store(0, std::memory_order_release);
  return true;
}

OriginBreaker::Admit OriginBreaker::admit(const config::OriginBreakerSpec& spec, int64_t now_ns) {
  if (!spec.enabled) return Admit::kAllow;
  const int64_t open_ns = spec.open_for.count() * kNsPerMs;
  const auto probes = static_cast<int32_t>(spec.half_open_probes);
  State s = state_.load(std::memory_order_acquire);
  if (s == State::kClosed) return Admit::kAllow;
  if (s == State::kOpen) {
    if (now_ns - entered_ns_.load(std::memory_order_acquire) >= open_ns &&
        move(State::kOpen, State::kHalfOpen, now_ns)) {
      // This request is the first probe; the others may start from now on.
      probes_left_.store(probes - 1, std::memory_order_release);
      return Admit::kProbe;
    }
    s = state_.load(std::memory_order_acquire);
    if (s == State::kClosed) return Admit::kAllow;
    if (s == State::kOpen) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return Admit::kReject;
    }
  }
  // Half open: a probe permit, if one is left.
  int32_t left = probes_left_.load(std::memory_order_acquire);
  while (left > 0) {
    if (probes_left_.compare_exchange_weak(left, left - 1, std::memory_order_acq_rel)) {
      return Admit::kProbe;
    }
  }
  // Probes that never answered (lost with a worker that stopped) must not keep the breaker half
  // open for ever: after open_for without a verdict, probes are handed out again.
  int64_t began = entered_ns_.load(std::memory_order_acquire);
  if (now_ns - began >= open_ns &&
      entered_ns_.compare_exchange_strong(began, now_ns, std::memory_order_acq_rel)) {
    ns_in_[idx(State::kHalfOpen)].fetch_add(std::max<int64_t>(0, now_ns - began),
                                            std::memory_order_relaxed);
    probes_left_.store(probes - 1, std::memory_order_release);
    return Admit::kProbe;
  }
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return Admit::kReject;
}

void OriginBreaker::record(const config::OriginBreakerSpec& spec, Outcome outcome, bool probe,
                           int64_t now_ns) {
  if (!spec.enabled) return;
  const State s = state_.load(std::memory_order_acquire);
  if (s == State::kClosed) {
    if (outcome == Outcome::kSuccess) {
      if (failures_.load(std::memory_order_relaxed) != 0) {
        failures_.store(0, std::memory_order_relaxed);
      }
    } else if (outcome == Outcome::kFailure) {
      const uint32_t n = failures_.fetch_add(1, std::memory_order_acq_rel) + 1;
      if (n >= spec.failures) move(State::kClosed, State::kOpen, now_ns);
    }
    return;
  }
  if (s != State::kHalfOpen || !probe) return;  // open, or a request from before: no say
  switch (outcome) {
    case Outcome::kSuccess: {
      const uint32_t ok = probe_successes_.fetch_add(1, std::memory_order_acq_rel) + 1;
      if (ok >= spec.half_open_probes) move(State::kHalfOpen, State::kClosed, now_ns);
      return;
    }
    case Outcome::kFailure:
      move(State::kHalfOpen, State::kOpen, now_ns);
      return;
    case Outcome::kNeutral:
      // Nothing was asked: the permit goes back for another request to use.
      probes_left_.fetch_add(1, std::memory_order_acq_rel);
      return;
  }
}

double OriginBreaker::secondsIn(State s, int64_t now_ns) const {
  int64_t ns = ns_in_[idx(s)].load(std::memory_order_relaxed);
  if (state() == s)
    ns += std::max<int64_t>(0, now_ns - entered_ns_.load(std::memory_order_relaxed));
  return static_cast<double>(ns) / 1e9;
}

}  // namespace corral::policies
