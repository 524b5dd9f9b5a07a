// The origin circuit breaker, the retry budget and GuardedOrigin (retries within the fill's
// deadline), on fake time.
#include "policies/origin_guard.h"

#include <doctest/doctest.h>

#include <deque>
#include <string>
#include <vector>

#include "policies/fill_test_support.h"
#include "policies/origin_breaker.h"
#include "policies/retry_budget.h"

namespace corral::policies {
namespace {

using filltest::FakeClock;
using filltest::FakeRandom;
using filltest::FakeTimer;
using filltest::kMs;
using Admit = OriginBreaker::Admit;
using Outcome = OriginBreaker::Outcome;
using State = OriginBreaker::State;

constexpr int64_t kT0 = filltest::kT0;

config::OriginBreakerSpec breakerSpec(uint32_t failures = 3, int64_t open_ms = 1000,
                                      uint32_t probes = 1) {
  config::OriginBreakerSpec s;
  s.enabled = true;
  s.failures = failures;
  s.open_for = config::Millis{open_ms};
  s.half_open_probes = probes;
  return s;
}

TEST_CASE("breaker: opens after N consecutive failures; a success resets the count") {
  const auto spec = breakerSpec(3);
  OriginBreaker b(kT0);
  for (int i = 0; i < 2; ++i) {
    CHECK(b.admit(spec, kT0) == Admit::kAllow);
    b.record(spec, Outcome::kFailure, false, kT0);
  }
  b.record(spec, Outcome::kSuccess, false, kT0);  // the count starts again
  b.record(spec, Outcome::kNeutral, false, kT0);  // no news: no change
  for (int i = 0; i < 2; ++i) b.record(spec, Outcome::kFailure, false, kT0);
  CHECK(b.state() == State::kClosed);
  b.record(spec, Outcome::kFailure, false, kT0 + 5 * kMs);
  CHECK(b.state() == State::kOpen);
  CHECK(b.transitionsTo(State::kOpen) == 1);
  CHECK(b.admit(spec, kT0 + 10 * kMs) == Admit::kReject);
  CHECK(b.rejected() == 1);
  // A late failure of a request admitted while closed changes nothing.
  b.record(spec, Outcome::kFailure, false, kT0 + 11 * kMs);
  CHECK(b.transitionsTo(State::kOpen) == 1);
  CHECK(b.secondsIn(State::kClosed, kT0 + 100 * kMs) == doctest::Approx(0.005));
  CHECK(b.secondsIn(State::kOpen, kT0 + 100 * kMs) == doctest::Approx(0.095));
}

TEST_CASE("breaker: half-open probes; success closes, failure reopens") {
  const auto spec = breakerSpec(1, 1000, 1);
  OriginBreaker b(kT0);
  b.record(spec, Outcome::kFailure, false, kT0);
  REQUIRE(b.state() == State::kOpen);
  CHECK(b.admit(spec, kT0 + 999 * kMs) == Admit::kReject);
  CHECK(b.admit(spec, kT0 + 1000 * kMs) == Admit::kProbe);
  CHECK(b.state() == State::kHalfOpen);
  CHECK(b.admit(spec, kT0 + 1001 * kMs) == Admit::kReject);  // one probe at a time
  // A non-probe answer has no say in half-open.
  b.record(spec, Outcome::kSuccess, false, kT0 + 1002 * kMs);
  CHECK(b.state() == State::kHalfOpen);
  b.record(spec, Outcome::kFailure, true, kT0 + 1010 * kMs);  // the probe failed
  CHECK(b.state() == State::kOpen);
  CHECK(b.admit(spec, kT0 + 1500 * kMs) == Admit::kReject);
  CHECK(b.admit(spec, kT0 + 2010 * kMs) == Admit::kProbe);
  b.record(spec, Outcome::kSuccess, true, kT0 + 2020 * kMs);
  CHECK(b.state() == State::kClosed);
  CHECK(b.admit(spec, kT0 + 2021 * kMs) == Admit::kAllow);
  CHECK(b.transitionsTo(State::kOpen) == 2);
  CHECK(b.transitionsTo(State::kHalfOpen) == 2);
  CHECK(b.transitionsTo(State::kClosed) == 1);
  CHECK(b.secondsIn(State::kHalfOpen, kT0 + 3000 * kMs) == doctest::Approx(0.020));
}

TEST_CASE("breaker: several probes must all succeed; a neutral probe gives its permit back") {
  const auto spec = breakerSpec(1, 100, 2);
  OriginBreaker b(kT0);
  b.record(spec, Outcome::kFailure, false, kT0);
  CHECK(b.admit(spec, kT0 + 100 * kMs) == Admit::kProbe);
  CHECK(b.admit(spec, kT0 + 100 * kMs) == Admit::kProbe);
  CHECK(b.admit(spec, kT0 + 100 * kMs) == Admit::kReject);
  b.record(spec, Outcome::kNeutral, true, kT0 + 101 * kMs);
  CHECK(b.admit(spec, kT0 + 102 * kMs) == Admit::kProbe);
  b.record(spec, Outcome::kSuccess, true, kT0 + 103 * kMs);
  CHECK(b.state() == State::kHalfOpen);
  b.record(spec, Outcome::kSuccess, true, kT0 + 104 * kMs);
  CHECK(b.state() == State::kClosed);
}

TEST_CASE("breaker: probes lost without an answer are handed out again after open_for") {
  const auto spec = breakerSpec(1, 100, 1);
  OriginBreaker b(kT0);
  b.record(spec, Outcome::kFailure, false, kT0);
  CHECK(b.admit(spec, kT0 + 100 * kMs) == Admit::kProbe);  // never answered
  CHECK(b.admit(spec, kT0 + 150 * kMs) == Admit::kReject);
  CHECK(b.admit(spec, kT0 + 200 * kMs) == Admit::kProbe);
}

TEST_CASE("breaker: disabled admits everything") {
  config::OriginBreakerSpec off;
  OriginBreaker b(kT0);
  for (int i = 0; i < 10; ++i) b.record(off, Outcome::kFailure, false, kT0);
  CHECK(b.admit(off, kT0) == Admit::kAllow);
  CHECK(b.state() == State::kClosed);
}

config::OriginRetrySpec retrySpec(double budget = 0.1, uint32_t floor = 0, uint32_t attempts = 3) {
  config::OriginRetrySpec s;
  s.enabled = true;
  s.budget = budget;
  s.min_per_second = floor;
  s.attempts = attempts;
  return s;
}

TEST_CASE("retry budget: a fraction of the last 10 s of requests, plus the floor") {
  const auto spec = retrySpec(0.1, 0);
  RetryBudget b;
  for (int i = 0; i < 100; ++i) b.recordRequest(kT0);
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += b.tryRetry(spec, kT0) ? 1 : 0;
  CHECK(allowed == 10);
  CHECK(b.exhausted() == 40);
  // 10 s later the window holds none of it: no requests, no budget.
  CHECK_FALSE(b.tryRetry(spec, kT0 + 10'000 * kMs));
  // The floor: min_per_second x 10 retries in a window without any request.
  const auto floor = retrySpec(0.1, 2);
  RetryBudget f;
  allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += f.tryRetry(floor, kT0) ? 1 : 0;
  CHECK(allowed == 20);
}

TEST_CASE("retry budget: the window slides one second at a time") {
  const auto spec = retrySpec(0.5, 0);
  RetryBudget b;
  for (int i = 0; i < 10; ++i) b.recordRequest(kT0);  // second s: 10 requests -> 5 retries
  for (int i = 0; i < 5; ++i) CHECK(b.tryRetry(spec, kT0 + 100 * kMs));
  CHECK_FALSE(b.tryRetry(spec, kT0 + 100 * kMs));
  for (int i = 0; i < 4; ++i) b.recordRequest(kT0 + 9'000 * kMs);  // +2 retries
  CHECK(b.tryRetry(spec, kT0 + 9'000 * kMs));
  CHECK(b.tryRetry(spec, kT0 + 9'000 * kMs));
  CHECK_FALSE(b.tryRetry(spec, kT0 + 9'000 * kMs));
  // Second s leaves the window: its requests and retries are forgotten (4 requests, 2 retries
  // remain -> spent).
  CHECK_FALSE(b.tryRetry(spec, kT0 + 10'500 * kMs));
}

// ---- GuardedOrigin ---------------------------------------------------------------------------

// Holds every attempt until the test answers it.
class FakeAttempts : public AttemptOrigin {
 public:
  struct Call {
    std::string path;
    std::string validator;
    int64_t timeout_ms;
    std::function<void(OriginResult)> done;
  };
  void attempt(const std::string& path, const std::string& validator, int64_t timeout_ms,
               std::function<void(OriginResult)> done) override {
    calls.push_back({path, validator, timeout_ms, std::move(done)});
  }
  void answer(size_t i, OriginResult r) {
    auto done = std::move(calls.at(i).done);
    calls.at(i).done = nullptr;
    REQUIRE(done);
    done(std::move(r));
  }
  std::vector<Call> calls;
};

OriginResult err(const char* e) { return OriginResult{OriginResult::Kind::kError, {}, e, {}}; }
OriginResult ok(const char* body) { return OriginResult{OriginResult::Kind::kValue, body, {}, {}}; }

struct GuardFixture {
  FakeClock clock;
  FakeTimer timer{clock};
  FakeRandom random;
  FakeAttempts inner;
  OriginHealth health{"users", kT0};
  config::OriginSpec spec;
  std::vector<OriginResult> answers;

  GuardFixture() {
    spec.name = "users";
    spec.timeout = config::Millis{1000};
    spec.retry = retrySpec(0.1, 3);
    spec.retry.backoff_base = config::Millis{20};
    spec.retry.backoff_max = config::Millis{500};
    random.fallback = 0.0;  // backoff = half the step: 10, 20, 40 ms
  }
  std::function<void(OriginResult)> collect() {
    return [this](OriginResult r) { answers.push_back(std::move(r)); };
  }
};

TEST_CASE("classify: what is a failure, what is retried") {
  CHECK(GuardedOrigin::classify(ok("v")) == Outcome::kSuccess);
  CHECK(GuardedOrigin::classify(OriginResult{OriginResult::Kind::kNotModified, {}, {}, {}}) ==
        Outcome::kSuccess);
  CHECK(GuardedOrigin::classify(OriginResult{OriginResult::Kind::kNotFound, {}, {}, {}}) ==
        Outcome::kSuccess);
  for (const char* f :
       {"status 500", "status 503", "status 429", "timeout", "connect failed", "connection reset",
        "connection closed", "resolve failed", "TLS: certificate verify failed"}) {
    CAPTURE(f);
    CHECK(GuardedOrigin::classify(err(f)) == Outcome::kFailure);
  }
  for (const char* s : {"status 400", "status 403", "status 301", "body too large"}) {
    CAPTURE(s);
    CHECK(GuardedOrigin::classify(err(s)) == Outcome::kSuccess);
  }
  for (const char* n : {"overloaded", "bad path", "bad base_url", "no origin"}) {
    CAPTURE(n);
    CHECK(GuardedOrigin::classify(err(n)) == Outcome::kNeutral);
  }
}

TEST_CASE("backoff: doubling from base, capped, drawn from the upper half") {
  auto s = retrySpec();
  s.backoff_base = config::Millis{20};
  s.backoff_max = config::Millis{100};
  CHECK(GuardedOrigin::backoffMs(s, 1, 0.0) == 10);
  CHECK(GuardedOrigin::backoffMs(s, 1, 0.999) == 19);
  CHECK(GuardedOrigin::backoffMs(s, 2, 0.0) == 20);
  CHECK(GuardedOrigin::backoffMs(s, 3, 0.5) == 60);
  CHECK(GuardedOrigin::backoffMs(s, 9, 0.0) == 50);  // capped at 100
}

TEST_CASE("guard: a transient 5xx is retried after a backoff and the fill gets the value") {
  GuardFixture f;
  GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
  g.fetch("/v1/users/1", f.collect());
  REQUIRE(f.inner.calls.size() == 1);
  CHECK(f.inner.calls[0].timeout_ms == 1000);
  f.clock.now_ns += 30 * kMs;
  f.inner.answer(0, err("status 503"));
  CHECK(f.answers.empty());
  CHECK(f.inner.calls.size() == 1);
  f.timer.advance(9);
  CHECK(f.inner.calls.size() == 1);
  f.timer.advance(1);  // the 10 ms backoff
  REQUIRE(f.inner.calls.size() == 2);
  CHECK(f.inner.calls[1].path == "/v1/users/1");
  CHECK(f.inner.calls[1].timeout_ms == 960);  // the time left of the fill's deadline
  f.inner.answer(1, ok("v"));
  REQUIRE(f.answers.size() == 1);
  CHECK(f.answers[0].body == "v");
  CHECK(static_cast<uint64_t>(f.health.retry_success) == 1);
  CHECK(static_cast<uint64_t>(f.health.retry_failure) == 0);
  CHECK(g.pending() == 0);
}

TEST_CASE("guard: at most `attempts` requests; a 404 or 400 is not retried") {
  GuardFixture f;
  GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
  g.fetch("/a", f.collect());
  f.inner.answer(0, err("status 500"));
  f.timer.advance(10);
  f.inner.answer(1, err("connect failed"));
  f.timer.advance(20);
  REQUIRE(f.inner.calls.size() == 3);
  f.inner.answer(2, err("status 502"));
  REQUIRE(f.answers.size() == 1);
  CHECK(f.answers[0].error == "status 502");  // the last answer
  CHECK(static_cast<uint64_t>(f.health.retry_failure) == 2);
  CHECK(f.timer.pending() == 0);

  g.fetch("/b", f.collect());
  f.inner.answer(3, OriginResult{OriginResult::Kind::kNotFound, {}, {}, {}});
  g.fetch("/c", f.collect());
  f.inner.answer(4, err("status 400"));
  CHECK(f.inner.calls.size() == 5);
  CHECK(f.answers.size() == 3);
}

TEST_CASE("guard: no retry whose backoff would reach the fill's deadline") {
  GuardFixture f;
  GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
  g.fetch("/a", f.collect());
  f.clock.now_ns += 975 * kMs;  // 25 ms left: 10 ms backoff + 20 ms base do not fit
  f.inner.answer(0, err("timeout"));
  REQUIRE(f.answers.size() == 1);
  CHECK(f.answers[0].error == "timeout");
  CHECK(static_cast<uint64_t>(f.health.retry_out_of_time) == 1);
  CHECK(f.inner.calls.size() == 1);
}

TEST_CASE("guard: per_try_timeout bounds each attempt, the deadline bounds the last") {
  GuardFixture f;
  f.spec.retry.per_try_timeout = config::Millis{300};
  GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
  g.fetch("/a", f.collect());
  CHECK(f.inner.calls[0].timeout_ms == 300);
  f.clock.now_ns += 300 * kMs;
  f.inner.answer(0, err("timeout"));
  f.timer.advance(10);
  CHECK(f.inner.calls[1].timeout_ms == 300);
  f.clock.now_ns += 300 * kMs;
  f.inner.answer(1, err("timeout"));
  f.timer.advance(20);
  REQUIRE(f.inner.calls.size() == 3);
  CHECK(f.inner.calls[2].timeout_ms == 300);  // 370 ms were left
}

TEST_CASE("guard: a 5xx storm retries within the budget, not attempts x requests") {
  GuardFixture f;
  f.spec.retry = retrySpec(0.1, 1, 3);  // 10% + 1/s (10 in the window)
  f.spec.retry.backoff_base = config::Millis{20};
  GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
  // 200 fills over one second, every origin request fails at once.
  for (int i = 0; i < 200; ++i) {
    g.fetch("/k" + std::to_string(i), f.collect());
    f.timer.advance(5);
    while (true) {
      bool any = false;
      for (size_t j = 0; j < f.inner.calls.size(); ++j) {
        if (f.inner.calls[j].done) {
          f.inner.answer(j, err("status 503"));
          any = true;
        }
      }
      if (!any) break;
    }
  }
  f.timer.advance(2000);
  for (size_t j = 0; j < f.inner.calls.size(); ++j) {
    if (f.inner.calls[j].done) f.inner.answer(j, err("status 503"));
  }
  CHECK(f.answers.size() == 200);
  const size_t retries = f.inner.calls.size() - 200;
  CHECK(retries <= 200 / 10 + 10);
  CHECK(retries >= 20);  // the budget was used, not refused outright
  CHECK(f.health.budget.exhausted() > 0);
}

TEST_CASE("guard: an open breaker answers `open` at once and costs no request") {
  GuardFixture f;
  f.spec.retry.enabled = false;
  f.spec.breaker = breakerSpec(2, 500, 1);
  GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
  for (int i = 0; i < 2; ++i) {
    g.fetch("/a", f.collect());
    f.inner.answer(f.inner.calls.size() - 1, err("status 503"));
  }
  CHECK(f.health.breaker.state() == State::kOpen);
  g.fetch("/a", f.collect());
  REQUIRE(f.answers.size() == 3);
  CHECK(f.answers[2].error == "open");
  CHECK(f.inner.calls.size() == 2);
  // After open_for: one probe; others still fail fast while it runs.
  f.clock.now_ns += 500 * kMs;
  g.fetch("/a", f.collect());
  g.fetch("/b", f.collect());
  CHECK(f.inner.calls.size() == 3);
  CHECK(f.answers.back().error == "open");
  f.inner.answer(2, ok("back"));
  CHECK(f.health.breaker.state() == State::kClosed);
  CHECK(f.answers.back().body == "back");
  g.fetch("/c", f.collect());
  CHECK(f.inner.calls.size() == 4);
}

TEST_CASE("guard: retries stop at an open breaker, with the last answer") {
  GuardFixture f;
  f.spec.breaker = breakerSpec(1, 500, 1);
  GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
  g.fetch("/a", f.collect());
  f.inner.answer(0, err("status 503"));  // opens the breaker
  f.timer.advance(10);
  CHECK(f.inner.calls.size() == 1);
  REQUIRE(f.answers.size() == 1);
  CHECK(f.answers[0].error == "status 503");
  CHECK(static_cast<uint64_t>(f.health.retry_breaker_open) == 1);  // due, not made
  CHECK(static_cast<uint64_t>(f.health.retry_failure) == 0);
}

TEST_CASE("guard: conditional fetches keep their validator on every attempt; a 304 succeeds") {
  GuardFixture f;
  f.spec.breaker = breakerSpec(2, 500, 1);
  GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
  const OriginResult not_modified{OriginResult::Kind::kNotModified, {}, {}, {}};

  // A 503 is retried like a plain fetch's, with the same validator; the 304 ends the fill.
  g.fetchConditional("/a", "E\"v1\"", f.collect());
  REQUIRE(f.inner.calls.size() == 1);
  CHECK(f.inner.calls[0].validator == "E\"v1\"");
  f.inner.answer(0, err("status 503"));
  f.timer.advance(10);
  REQUIRE(f.inner.calls.size() == 2);
  CHECK(f.inner.calls[1].path == "/a");
  CHECK(f.inner.calls[1].validator == "E\"v1\"");
  f.inner.answer(1, not_modified);
  REQUIRE(f.answers.size() == 1);
  CHECK(f.answers[0].kind == OriginResult::Kind::kNotModified);
  CHECK(static_cast<uint64_t>(f.health.retry_success) == 1);
  CHECK(f.timer.pending() == 0);

  // A 304 at once: no retry. It also ends the run of failures: one more 503 does not open the
  // breaker (2 consecutive failures would), so that fetch is retried.
  g.fetchConditional("/b", "LSun, 06 Dec 2026 10:00:00 GMT", f.collect());
  REQUIRE(f.inner.calls.size() == 3);
  CHECK(f.inner.calls[2].validator == "LSun, 06 Dec 2026 10:00:00 GMT");
  f.inner.answer(2, not_modified);
  REQUIRE(f.answers.size() == 2);
  CHECK(f.answers[1].kind == OriginResult::Kind::kNotModified);
  CHECK(f.timer.pending() == 0);
  g.fetch("/c", f.collect());
  REQUIRE(f.inner.calls.size() == 4);
  CHECK(f.inner.calls[3].validator.empty());  // a plain fetch sends none
  f.inner.answer(3, err("status 503"));
  CHECK(f.health.breaker.state() == State::kClosed);
  f.timer.advance(10);
  REQUIRE(f.inner.calls.size() == 5);
  f.inner.answer(4, err("status 503"));  // the second in a row: open
  CHECK(f.health.breaker.state() == State::kOpen);
  f.timer.advance(20);
  REQUIRE(f.answers.size() == 3);
  CHECK(f.answers[2].error == "status 503");

  // An open breaker refuses conditional fetches like plain ones, without a request.
  g.fetchConditional("/d", "E\"v2\"", f.collect());
  CHECK(f.inner.calls.size() == 5);
  REQUIRE(f.answers.size() == 4);
  CHECK(f.answers[3].error == "open");
}

TEST_CASE("guard: destroyed with a backoff pending: nothing runs later") {
  GuardFixture f;
  {
    GuardedOrigin g(f.inner, f.health, f.spec, f.timer, f.clock, f.random);
    g.fetch("/a", f.collect());
    f.inner.answer(0, err("status 503"));
    CHECK(f.timer.pending() == 1);
  }
  CHECK(f.timer.pending() == 0);
  f.timer.advance(1000);
  CHECK(f.inner.calls.size() == 1);
  CHECK(f.answers.empty());
}

TEST_CASE("origin metrics: shown for origins with retry or breaker") {
  std::deque<OriginHealth> hs;
  hs.emplace_back("users", kT0);
  hs.emplace_back("plain", kT0);
  hs[0].retry_used = true;
  hs[0].breaker_used = true;
  ++hs[0].retry_success;
  const auto spec = breakerSpec(1, 1000, 1);
  hs[0].breaker.record(spec, Outcome::kFailure, false, kT0 + 1000 * kMs);
  std::string out;
  appendOriginMetrics(out, hs, kT0 + 3000 * kMs);
  CHECK(out.find("corral_origin_retries_total{origin=\"users\",result=\"success\"} 1\n") !=
        std::string::npos);
  CHECK(out.find("corral_origin_breaker_state{origin=\"users\",state=\"open\"} 1\n") !=
        std::string::npos);
  CHECK(out.find("corral_origin_breaker_state{origin=\"users\",state=\"closed\"} 0\n") !=
        std::string::npos);
  CHECK(out.find("corral_origin_breaker_seconds_total{origin=\"users\",state=\"open\"} 2.000\n") !=
        std::string::npos);
  CHECK(out.find("corral_origin_breaker_transitions_total{origin=\"users\",to=\"open\"} 1\n") !=
        std::string::npos);
  CHECK(out.find("origin=\"plain\"") == std::string::npos);
}

}  // namespace
}  // namespace corral::policies
