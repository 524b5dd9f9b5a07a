// The fill engine on hits: stale-while-revalidate, stale-if-error and XFetch early refresh.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "policies/fill.h"
#include "policies/fill_test_support.h"

namespace corral::policies::filltest {
namespace {

// ---- hits: SWR, stale-if-error, xfetch ------------------------------------------------------

TEST_CASE("fill: onHit serves fresh values and values without a TTL") {
  Env e;
  FillPolicy p = e.policy();
  p.swr_ms = 10'000;
  p.xfetch = true;
  CHECK(e.engine->onHit(p, "user:42", "/p", -1) == HitAction::kServe);
  CHECK(e.engine->onHit(p, "user:42", "/p", 10'001) == HitAction::kServe);
  CHECK(e.random.calls == 0);  // delta 0: xfetch does not draw
  p.swr_ms = 0;
  CHECK(e.engine->onHit(p, "user:42", "/p", 0) == HitAction::kServe);  // no window at all
  CHECK(e.store.lookups.empty());
  CHECK(e.c().refreshes == 0);
}

TEST_CASE("fill: stale-while-revalidate starts one background refresh while it runs") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.swr_ms = 10'000;
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 10'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 1);
  CHECK(e.c().stale_served == 1);
  REQUIRE(e.store.lookups.size() == 1);
  CHECK(e.store.lookups[0].refresh);
  CHECK(e.store.lookups[0].fresh_above_ms == 10'000);
  CHECK(isToken(e.store.lookups[0].token));
  CHECK(e.engine->inflight() == 1);
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 4'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 1);
  CHECK(e.c().stale_served == 2);
  CHECK(e.store.lookups.size() == 1);

  SUBCASE("refresh fills") {
    e.store.answer(0, LKind::kLeaseWon);
    REQUIRE(e.origin.requests.size() == 1);
    CHECK(e.origin.requests[0].path == "/v1/users/42");
    CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 3'000) == HitAction::kServeStale);
    CHECK(e.c().refreshes == 1);
    e.origin.complete(0, OKind::kValue, "fresh");
    REQUIRE(e.store.commits.size() == 1);
    CHECK(e.store.commits[0].token == e.store.lookups[0].token);
    CHECK(e.store.commits[0].ttl_ms == 52'500 + 10'000);
    CHECK(e.c().fills == 1);
  }
  SUBCASE("another corral refreshes: end quietly") {
    e.store.answer(0, LKind::kLeaseHeld);
    CHECK(e.c().lease_losses == 1);
    CHECK(e.timer.pending() == 0);  // no polling without waiters
    CHECK(e.origin.requests.empty());
  }
  SUBCASE("someone refreshed it already") {
    e.store.answer(0, LKind::kValue, "fresh");
    CHECK(e.origin.requests.empty());
  }
  SUBCASE("a miss joins the refresh") {
    e.miss(p, 1);
    CHECK(e.c().coalesced == 1);
    e.store.answer(0, LKind::kLeaseHeld);  // now it has a waiter: it polls
    CHECK(e.timer.pending() == 2);         // deadline + poll
    e.timer.advance(5);
    REQUIRE(e.store.lookups.size() == 2);
    CHECK(e.store.lookups[1].refresh);
    e.store.answer(1, LKind::kValue, "fresh");
    REQUIRE(e.got.size() == 1);
    checkValue(e.got[0], 1, "fresh");
  }
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);
  // Done: the next stale hit starts a new refresh.
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 2'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 2);
  CHECK(e.store.lookups.back().fresh_above_ms == 2'000);
}

TEST_CASE("fill: stale_if_error past soft expiry makes the client wait for the refresh") {
  Env e;
  FillPolicy p = e.policy();
  p.sie_ms = 5'000;
  CHECK(e.engine->onHit(p, "user:42", "/p", 5'001) == HitAction::kServe);
  CHECK(e.engine->onHit(p, "user:42", "/p", 5'000) == HitAction::kWaitRefresh);
  CHECK(e.engine->onHit(p, "user:42", "/p", 1) == HitAction::kWaitRefresh);
  // With both windows: within swr serve stale, beyond it (up to sie) wait.
  p.swr_ms = 2'000;
  CHECK(e.engine->onHit(p, "user:42", "/p", 3'500) == HitAction::kServeStale);
  CHECK(e.engine->onHit(p, "user:42", "/p", 2'999) == HitAction::kWaitRefresh);
  CHECK(e.c().refreshes == 1);
  CHECK(e.c().stale_served == 1);
  CHECK(e.store.lookups.size() == 1);  // only the SWR refresh
}

// One fill of `latency_ms` under policy p (local), to feed the latency average.
void fillWithLatency(Env& e, const FillPolicy& p, int64_t latency_ms, OKind kind = OKind::kValue) {
  e.miss(p, 0, "lat:" + std::to_string(e.origin.requests.size()));
  e.store.answerLast(LKind::kMissing);
  e.timer.advance(latency_ms);
  e.origin.complete(e.origin.requests.size() - 1, kind, "x");
}

TEST_CASE("fill: deltaMs is a moving average of fill latency (alpha 0.2)") {
  Env e;
  const FillPolicy p = e.policy();
  CHECK(e.engine->deltaMs("users") == 0.0);
  CHECK(e.engine->deltaMs("unknown") == 0.0);
  fillWithLatency(e, p, 100);
  CHECK(e.engine->deltaMs("users") == doctest::Approx(100.0));
  fillWithLatency(e, p, 200);
  CHECK(e.engine->deltaMs("users") == doctest::Approx(120.0));
  fillWithLatency(e, p, 50, OKind::kNotFound);
  CHECK(e.engine->deltaMs("users") == doctest::Approx(106.0));
  fillWithLatency(e, p, 5, OKind::kError);  // not a sample
  CHECK(e.engine->deltaMs("users") == doctest::Approx(106.0));
  CHECK(e.c().fills == 4);
  CHECK(e.engine->deltaMs("other") == 0.0);
}

TEST_CASE("fill: xfetch refreshes early with probability exp(-remaining / (delta * beta))") {
  Env e;
  FillPolicy p = e.policy();
  p.xfetch = true;
  p.beta = 2.0;
  fillWithLatency(e, p, 50);  // delta 50 ms; delta * beta = 100
  REQUIRE(e.engine->deltaMs("users") == doctest::Approx(50.0));
  const size_t lookups = e.store.lookups.size();
  const int calls = e.random.calls;
  // remaining 100 ms: threshold exp(-1) = 0.3679
  e.random.queue = {0.37};
  CHECK(e.engine->onHit(p, "user:42", "/p", 100) == HitAction::kServe);
  CHECK(e.random.calls == calls + 1);
  CHECK(e.c().refreshes == 0);
  CHECK(e.store.lookups.size() == lookups);

  e.random.queue = {0.36};
  CHECK(e.engine->onHit(p, "user:42", "/p", 100) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 1);
  CHECK(e.c().stale_served == 0);  // the value is still fresh
  REQUIRE(e.store.lookups.size() == lookups + 1);
  CHECK(e.store.lookups.back().refresh);
  CHECK(e.store.lookups.back().fresh_above_ms == 100);

  // While that refresh runs, no draw and no second refresh.
  const int calls2 = e.random.calls;
  CHECK(e.engine->onHit(p, "user:42", "/p", 90) == HitAction::kServe);
  CHECK(e.random.calls == calls2);
  CHECK(e.c().refreshes == 1);

  // Far from expiry the probability is tiny: exp(-10) = 4.5e-5.
  e.random.queue = {0.0001};
  CHECK(e.engine->onHit(p, "user:7", "/p", 1'000) == HitAction::kServe);
  e.random.queue = {0.00004};
  CHECK(e.engine->onHit(p, "user:7", "/p", 1'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 2);

  // U = 0 always refreshes (no log of zero).
  e.random.queue = {0.0};
  CHECK(e.engine->onHit(p, "user:8", "/p", 1'000'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 3);
}

}  // namespace
}  // namespace corral::policies::filltest
