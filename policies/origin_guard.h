// Retries and the circuit breaker around an origin: what a fill's origin call goes through.
//
//   FillEngine --fetch(path) / fetchConditional(path, validator)--> GuardedOrigin
//      breaker.admit? reject ........................................ done(kError "open") at once
//      attempt(path, validator, min(per_try_timeout, time left)) --> AttemptOrigin (HttpOrigin)
//         answer --classify--> breaker.record(success | failure | neutral)
//         failure (connect, timeout, reset, 5xx, 429), attempts left, time left after the backoff,
//         retry budget allows --> Timer.after(jittered backoff) --> breaker.admit? --> attempt ...
//         otherwise --> done(that answer)
//
// The fill's deadline is the origin's `timeout`, counted from fetch(): every attempt gets at
// most the time left, and no retry starts when its backoff alone would reach the deadline (the
// FillEngine's own deadline for the origin phase is that timeout plus a margin, so the guard
// always answers first). One GuardedOrigin per origin per worker thread (not thread-safe); the
// OriginHealth it reports to (breaker, budget, counters) is one per origin per process, in the
// Registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "config/policy_config.h"
#include "policies/clock.h"
#include "policies/fill.h"
#include "policies/origin_breaker.h"
#include "policies/retry_budget.h"

namespace corral::policies {

// One origin request with its own timeout (proxy/origin's HttpOrigin implements it).
class AttemptOrigin {
 public:
  virtual ~AttemptOrigin() = default;
  // GET base_url + path, ending by timeout_ms (> 0), conditional on validator as in
  // Origin::fetchConditional ("": a plain GET). done runs exactly once on the caller's thread,
  // maybe before attempt returns.
  virtual void attempt(const std::string& path, const std::string& validator, int64_t timeout_ms,
                       std::function<void(OriginResult)> done) = 0;
};

// Process-wide state of one origin (by name): kept across reloads, never removed (Registry).
struct OriginHealth {
  OriginHealth(std::string n, int64_t now_ns) : name(std::move(n)), breaker(now_ns) {}
  std::string name;
  OriginBreaker breaker;
  RetryBudget budget;
  std::atomic<bool> retry_used{false};    // some worker runs it with retry: (metrics shown)
  std::atomic<bool> breaker_used{false};  // ... with breaker:
  FillCount retry_success;                // retries made whose answer was not a failure
  FillCount retry_failure;                // retries made that failed too
  FillCount retry_out_of_time;   // retries due but not made: the fill's deadline was too near
  FillCount retry_breaker_open;  // retries due but not made: the breaker had opened meanwhile
};

// Prometheus text of every origin's retry and breaker metrics (corral_origin_*).
void appendOriginMetrics(std::string& out, const std::deque<OriginHealth>& origins, int64_t now_ns);

class GuardedOrigin final : public Origin {
 public:
  // inner, health, timer, clock and random must outlive this. spec is copied (its retry and
  // breaker settings and timeout).
  GuardedOrigin(AttemptOrigin& inner, OriginHealth& health, const config::OriginSpec& spec,
                Timer& timer, const Clock& clock, Random& random);
  // Cancels pending backoffs; fetches in progress are dropped (their done never runs), like
  // HttpOrigin's. Destroy it at worker shutdown, after the fill engine.
  ~GuardedOrigin() override;
  GuardedOrigin(const GuardedOrigin&) = delete;
  GuardedOrigin& operator=(const GuardedOrigin&) = delete;

  void fetch(const std::string& path, std::function<void(OriginResult)> done) override;
  // Every attempt (retries too) carries the validator; a 304 (kNotModified) is a success for
  // the breaker and is never retried.
  void fetchConditional(const std::string& path, const std::string& validator,
                        std::function<void(OriginResult)> done) override;

  // What an answer says about the origin: alive (200, 304, 404, another 4xx, a body too large),
  // failing (connect error, timeout, reset, 5xx, 429: retried), or no news (nothing was sent:
  // "overloaded", "bad path", ...).
  static OriginBreaker::Outcome classify(const OriginResult& r);
  // The backoff before retry n (1: the first retry): base x 2^(n-1), capped at max, then drawn
  // uniformly from its upper half (u in [0, 1)).
  static int64_t backoffMs(const config::OriginRetrySpec& spec, uint32_t n, double u);

  size_t pending() const { return calls_.size(); }  // fetches not yet answered

 private:
  struct Call {
    std::string path;
    std::string validator;  // "" or httpValidator()'s, sent with every attempt
    std::function<void(OriginResult)> done;
    uint32_t attempts = 0;  // started
    int64_t deadline_ns = 0;
    bool probe = false;  // the attempt in progress is a half-open probe
    std::optional<uint64_t> backoff_timer;
    std::optional<OriginResult> last;  // the last failed answer, given if no retry is made
  };
  void startAttempt(uint64_t id);
  void onAnswer(uint64_t id, OriginResult r);
  void finish(uint64_t id, OriginResult r);

  AttemptOrigin& inner_;
  OriginHealth& health_;
  config::OriginSpec spec_;
  Timer& timer_;
  const Clock& clock_;
  Random& random_;
  std::unordered_map<uint64_t, Call> calls_;
  uint64_t next_id_ = 1;
  // Callbacks hold a weak_ptr to this: once the guard is gone they do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace corral::policies
