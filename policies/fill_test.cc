// The fill engine on misses: local and distributed single-flight, origin outcomes, deadlines and
// audit, every branch of fill.h's flow with the fakes of fill_test_support.h.
#include "policies/fill.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "policies/fill_test_support.h"

namespace corral::policies::filltest {
namespace {

// ---- misses: local, off ---------------------------------------------------------------------

TEST_CASE("fill: local single-flight coalesces N misses into one origin call") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kLocal);
  for (int i = 1; i <= 5; ++i) e.miss(p, i);
  CHECK(e.engine->inflight() == 1);
  CHECK(e.c().coalesced == 4);
  REQUIRE(e.store.lookups.size() == 1);
  const auto& l = e.store.lookups[0];
  CHECK(l.keys.data == "user:42");
  CHECK(l.keys.lease == kLease42);
  CHECK(l.token == "");
  CHECK_FALSE(l.take_lease);
  CHECK_FALSE(l.refresh);
  CHECK(l.lock_ttl_ms == 600);
  CHECK(e.random.calls == 0);  // no token without a lease

  e.store.answer(0, LKind::kMissing);
  REQUIRE(e.origin.requests.size() == 1);
  CHECK(e.origin.requests[0].path == "/v1/users/42");
  CHECK(e.c().fills == 1);
  e.miss(p, 6);  // joins during the origin call
  CHECK(e.c().coalesced == 5);
  CHECK(e.got.empty());

  e.origin.complete(0, OKind::kValue, "{\"id\":42}");
  // Answered at once, before the commit is acknowledged.
  REQUIRE(e.got.size() == 6);
  for (int i = 0; i < 6; ++i) checkValue(e.got[i], i + 1, "{\"id\":42}");
  CHECK(e.engine->inflight() == 0);
  REQUIRE(e.store.commits.size() == 1);
  const auto& cm = e.store.commits[0];
  CHECK_FALSE(cm.negative);
  CHECK(cm.token == "");  // SET NX
  CHECK(cm.value == "{\"id\":42}");
  CHECK(cm.ttl_ms == 52'500);  // 60000 * (1 - 0.5 * 0.25) + window 0
  CHECK(e.origin.requests.size() == 1);
  CHECK(e.store.releases.empty());

  e.store.commits[0].done(false);  // the key was written meanwhile: SET NX refused
  CHECK(e.c().not_stored == 1);
  CHECK(e.c().fills == 1);
  CHECK(e.c().fill_errors == 0);
  CHECK(e.timer.pending() == 0);  // the deadline timer was cancelled

  // The next miss starts a new flight.
  e.miss(p, 7);
  CHECK(e.store.lookups.size() == 2);
  CHECK(e.c().coalesced == 5);
}

TEST_CASE("fill: single_flight off makes one origin call per miss") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kOff);
  for (int i = 1; i <= 3; ++i) e.miss(p, i);
  CHECK(e.engine->inflight() == 3);
  CHECK(e.c().coalesced == 0);
  REQUIRE(e.store.lookups.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK_FALSE(e.store.lookups[i].take_lease);
    e.store.answer(i, LKind::kMissing);
  }
  REQUIRE(e.origin.requests.size() == 3);
  CHECK(e.c().fills == 3);
  e.origin.complete(1, OKind::kValue, "b");
  e.origin.complete(0, OKind::kValue, "a");
  e.origin.complete(2, OKind::kNotFound);
  REQUIRE(e.got.size() == 3);
  checkValue(e.got[0], 2, "b");
  checkValue(e.got[1], 1, "a");
  checkNil(e.got[2], 3);
  REQUIRE(e.store.commits.size() == 2);  // negative_ttl 0: no negative entry
  CHECK(e.store.commits[0].token == "");
  CHECK(e.store.commits[1].token == "");
  CHECK(e.store.releases.empty());  // no token, nothing to release
  CHECK(e.engine->inflight() == 0);
}

TEST_CASE("fill: a lookup that finds a value or a negative entry answers without the origin") {
  Env e;
  const FillPolicy p = e.policy();
  SUBCASE("value") {
    e.miss(p, 1);
    e.miss(p, 2);
    e.store.answer(0, LKind::kValue, "cached");
    REQUIRE(e.got.size() == 2);
    checkValue(e.got[0], 1, "cached");
    checkValue(e.got[1], 2, "cached");
    CHECK(e.c().negative_hits == 0);
  }
  SUBCASE("negative") {
    e.miss(p, 1);
    e.miss(p, 2);
    e.store.answer(0, LKind::kNegative);
    REQUIRE(e.got.size() == 2);
    checkNil(e.got[0], 1);
    checkNil(e.got[1], 2);
    CHECK(e.c().negative_hits == 2);  // per miss answered
  }
  CHECK(e.origin.requests.empty());
  CHECK(e.c().fills == 0);
  CHECK(e.store.commits.empty());
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);
}

TEST_CASE("fill: a store error answers by on_error") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  SUBCASE("nil") {
    e.miss(p, 1);
    e.store.answer(0, LKind::kError, {}, "READONLY\r\nx");
    REQUIRE(e.got.size() == 1);
    checkNil(e.got[0], 1);
  }
  SUBCASE("error") {
    p.on_error = FillOnError::kError;
    e.miss(p, 1);
    e.store.answer(0, LKind::kError, {}, "READONLY\r\nx");
    REQUIRE(e.got.size() == 1);
    checkError(e.got[0], 1, "FILLERR users-api store READONLY  x");
  }
  CHECK(e.c().store_errors == 1);
  CHECK(e.c().fill_errors == 0);
  CHECK(e.origin.requests.empty());
}

// ---- distributed ----------------------------------------------------------------------------

TEST_CASE("fill: distributed lease won: fill and token-checked commit") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.swr_ms = 10'000;  // window: stored TTL = soft TTL + 10000
  e.miss(p, 1);
  e.miss(p, 2);
  REQUIRE(e.store.lookups.size() == 1);
  const std::string token = e.store.lookups[0].token;
  CHECK(token == "80000000800000008000000080000000");  // four draws of U = 0.5
  CHECK(isToken(token));
  CHECK(e.store.lookups[0].take_lease);
  e.store.answer(0, LKind::kLeaseWon);
  CHECK(e.c().lease_wins == 1);
  CHECK(e.c().lease_losses == 0);
  REQUIRE(e.origin.requests.size() == 1);
  e.origin.complete(0, OKind::kValue, "v");
  REQUIRE(e.got.size() == 2);
  checkValue(e.got[0], 1, "v");
  checkValue(e.got[1], 2, "v");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].token == token);
  CHECK(e.store.commits[0].ttl_ms == 52'500 + 10'000);
  e.store.commits[0].done(true);
  CHECK(e.c().not_stored == 0);
  CHECK(e.store.releases.empty());  // the commit deletes the lease itself

  // A second flight draws a different token from the random source.
  e.random.queue = {0.25, 0.0, 0.0, 0.999};
  e.miss(p, 3);
  REQUIRE(e.store.lookups.size() == 2);
  CHECK(e.store.lookups[1].token == "400000000000000000000000ffbe76c8");
}

TEST_CASE("fill: distributed lease lost: poll with backoff until the value appears") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.wait_ms = 1'000;
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseHeld);
  CHECK(e.c().lease_losses == 1);
  CHECK(e.origin.requests.empty());
  e.timer.advance(1);
  CHECK(e.store.lookups.size() == 1);
  e.timer.advance(1);
  REQUIRE(e.store.lookups.size() == 2);
  CHECK(e.store.lookups[1].at_ms == 2);
  CHECK(e.store.lookups[1].take_lease);
  CHECK(e.store.lookups[1].token == e.store.lookups[0].token);
  // Held again and again: the backoff doubles to 4, 8, then stays at 10 ms.
  for (int64_t backoff : {4, 8, 10, 10, 10}) {
    CAPTURE(backoff);
    e.store.answerLast(LKind::kLeaseHeld);
    const size_t n = e.store.lookups.size();
    const int64_t held_at = e.clock.ms();
    e.timer.advance(backoff - 1);
    CHECK(e.store.lookups.size() == n);
    e.timer.advance(1);
    REQUIRE(e.store.lookups.size() == n + 1);
    CHECK(e.store.lookups.back().at_ms == held_at + backoff);
    CHECK(e.store.lookups.back().take_lease);
  }
  CHECK(e.store.lookups.back().at_ms == 44);
  CHECK(e.c().lease_losses == 6);
  e.miss(p, 2);  // a miss during the wait joins
  CHECK(e.c().coalesced == 1);
  e.store.answerLast(LKind::kValue, "from another corral");
  REQUIRE(e.got.size() == 2);
  checkValue(e.got[0], 1, "from another corral");
  checkValue(e.got[1], 2, "from another corral");
  CHECK(e.origin.requests.empty());
  CHECK(e.c().fills == 0);
  CHECK(e.c().lease_wins == 0);
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);
}

TEST_CASE("fill: a watched lease wait is woken by the key's change; polls are the safety net") {
  Env e;
  std::vector<std::string> watched;
  e.engine->setWaitWatcher([&watched](std::string_view k) { watched.emplace_back(k); });
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.wait_ms = 1'000;
  e.miss(p, 1);
  const std::string key = e.store.lookups[0].keys.data;
  e.store.answerLast(LKind::kLeaseHeld);
  REQUIRE(watched.size() == 1);  // Redis is asked to tell of the key's next change
  CHECK(watched[0] == key);
  // No change: the safety-net polls, 20 then 40 ms apart (not 2, 4, 8, 10).
  e.timer.advance(19);
  CHECK(e.store.lookups.size() == 1);
  e.timer.advance(1);
  REQUIRE(e.store.lookups.size() == 2);
  e.store.answerLast(LKind::kLeaseHeld);
  CHECK(watched.size() == 2);  // each wait asks again
  e.timer.advance(39);
  CHECK(e.store.lookups.size() == 2);
  // The key changed (the winner stored it): a lookup at once, not at the next poll.
  e.engine->wake("some:other:key");
  CHECK(e.store.lookups.size() == 2);
  e.engine->wake(key);
  REQUIRE(e.store.lookups.size() == 3);
  CHECK(e.store.lookups[2].at_ms == 59);
  e.engine->wake(key);  // a second change while the lookup is out: nothing more
  CHECK(e.store.lookups.size() == 3);
  e.store.answerLast(LKind::kValue, "from another corral");
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, "from another corral");
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);  // the cancelled poll left nothing behind
  // wakeAll: every waiting flight looks again.
  e.miss(p, 2);
  e.store.answerLast(LKind::kLeaseHeld);
  const size_t n = e.store.lookups.size();
  e.engine->wakeAll();
  CHECK(e.store.lookups.size() == n + 1);
  e.store.answerLast(LKind::kValue, "v");
  CHECK(e.got.size() == 2);
}

TEST_CASE("fill: distributed takeover after the other corral's lease expires") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kDistributed);
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseHeld);
  e.timer.advance(5);
  e.store.answerLast(LKind::kLeaseHeld);
  e.timer.advance(10);
  REQUIRE(e.store.lookups.size() == 3);
  e.store.answerLast(LKind::kLeaseWon);  // the other lease expired: ours now
  CHECK(e.c().lease_losses == 2);
  CHECK(e.c().lease_wins == 1);
  REQUIRE(e.origin.requests.size() == 1);
  e.origin.complete(0, OKind::kValue, "mine");
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, "mine");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].token == e.store.lookups[0].token);
  CHECK(e.timer.pending() == 0);
}

TEST_CASE("fill: distributed lease wait times out after stampede.wait") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.wait_ms = 30;
  bool last_wins = false;
  SUBCASE("on_error nil") {}
  SUBCASE("on_error error") { p.on_error = FillOnError::kError; }
  SUBCASE("the last lookup wins the lease") { last_wins = true; }
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseHeld);
  // Polls at 2, 6, 14, 24, then at the deadline (30), not at 34.
  for (int64_t step : {2, 4, 8, 10}) {
    e.timer.advance(step);
    e.store.answerLast(LKind::kLeaseHeld);
  }
  e.timer.advance(5);
  CHECK(e.store.lookups.size() == 5);
  e.timer.advance(1);
  REQUIRE(e.store.lookups.size() == 6);
  CHECK(e.store.lookups[4].at_ms == 24);
  CHECK(e.store.lookups[5].at_ms == 30);
  CHECK(e.store.lookups[5].take_lease);
  CHECK(e.got.empty());
  if (last_wins) {
    e.store.answerLast(LKind::kLeaseWon);
    CHECK(e.c().lease_wins == 1);
    REQUIRE(e.origin.requests.size() == 1);
    e.origin.complete(0, OKind::kValue, "v");
    REQUIRE(e.got.size() == 1);
    checkValue(e.got[0], 1, "v");
    CHECK(e.c().wait_timeouts == 0);
  } else {
    e.store.answerLast(LKind::kLeaseHeld);
    CHECK(e.c().lease_losses == 6);
    CHECK(e.c().wait_timeouts == 1);
    REQUIRE(e.got.size() == 1);
    if (p.on_error == FillOnError::kError) {
      checkError(e.got[0], 1, "FILLERR users-api lease wait timed out");
    } else {
      checkNil(e.got[0], 1);
    }
    CHECK(e.origin.requests.empty());
    CHECK(e.store.releases.empty());  // never held it
  }
  CHECK(e.c().fill_errors == 0);
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);
  e.timer.advance(1'000);
  CHECK(e.got.size() == 1);  // exactly once
}

// ---- origin outcomes ------------------------------------------------------------------------

TEST_CASE("fill: an origin 404 is remembered as a negative entry") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.negative_ttl_ms = 30'000;
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(0, OKind::kNotFound);
  REQUIRE(e.got.size() == 1);
  checkNil(e.got[0], 1);
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].negative);
  CHECK(e.store.commits[0].ttl_ms == 30'000);
  CHECK(e.store.commits[0].token == e.store.lookups[0].token);
  CHECK(e.store.commits[0].keys.negative == kNegative42);
  CHECK(e.store.releases.empty());
  e.store.commits[0].done(false);  // token refused
  CHECK(e.c().not_stored == 1);

  // The next miss finds it.
  e.miss(p, 2);
  e.store.answerLast(LKind::kNegative);
  REQUIRE(e.got.size() == 2);
  checkNil(e.got[1], 2);
  CHECK(e.c().negative_hits == 1);
  CHECK(e.c().fills == 1);
}

TEST_CASE("fill: an origin 404 without negative caching releases the lease") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kDistributed);  // negative_ttl 0
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(0, OKind::kNotFound);
  REQUIRE(e.got.size() == 1);
  checkNil(e.got[0], 1);
  CHECK(e.store.commits.empty());
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].token == e.store.lookups[0].token);
  CHECK(e.store.releases[0].keys.lease == kLease42);
}

TEST_CASE("fill: an origin error answers by on_error, or with the stale value") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  SUBCASE("on_error nil") {
    e.miss(p, 1);
    e.store.answerLast(LKind::kLeaseWon);
    e.origin.complete(0, OKind::kError, "status 503");
    REQUIRE(e.got.size() == 1);
    checkNil(e.got[0], 1);
    CHECK(e.c().stale_served == 0);
  }
  SUBCASE("on_error error") {
    p.on_error = FillOnError::kError;
    e.miss(p, 1);
    e.store.answerLast(LKind::kLeaseWon);
    e.origin.complete(0, OKind::kError, "status 503");
    REQUIRE(e.got.size() == 1);
    checkError(e.got[0], 1, "FILLERR users-api status 503");
    CHECK(e.c().stale_served == 0);
  }
  SUBCASE("stale-if-error") {
    p.on_error = FillOnError::kError;
    p.sie_ms = 5'000;
    const std::string stale = "old";
    e.miss(p, 1, "user:42", &stale);
    e.miss(p, 2);  // joins without a stale value
    REQUIRE(e.store.lookups.size() == 1);
    CHECK(e.store.lookups[0].refresh);  // the data key still holds "old"
    CHECK(e.store.lookups[0].fresh_above_ms == 5'000);
    e.store.answerLast(LKind::kLeaseWon);
    e.origin.complete(0, OKind::kError, "timeout");
    REQUIRE(e.got.size() == 2);
    checkValue(e.got[0], 1, "old");
    checkError(e.got[1], 2, "FILLERR users-api timeout");
    CHECK(e.c().stale_served == 1);
  }
  CHECK(e.c().fill_errors == 1);
  CHECK(e.c().fills == 1);
  CHECK(e.store.commits.empty());
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].token == e.store.lookups[0].token);
  CHECK(e.engine->deltaMs("users") == 0.0);  // errors are not latency samples
}

TEST_CASE("fill: stale value with a local policy refreshes under a lease and overwrites") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kLocal);
  p.sie_ms = 5'000;
  const std::string stale = "old";
  e.miss(p, 1, "user:42", &stale);
  REQUIRE(e.store.lookups.size() == 1);
  CHECK(e.store.lookups[0].refresh);
  CHECK(isToken(e.store.lookups[0].token));
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(0, OKind::kValue, "new");
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, "new");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].token == e.store.lookups[0].token);  // not SET NX: it must replace
  CHECK(e.store.commits[0].ttl_ms == 52'500 + 5'000);
  CHECK(e.c().stale_served == 0);
}

TEST_CASE("fill: bodies over max_value_bytes are served but not stored") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.max_value_bytes = 4;
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(0, OKind::kValue, "12345");
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, "12345");
  CHECK(e.store.commits.empty());
  CHECK(e.c().not_stored == 1);
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].token == e.store.lookups[0].token);

  // Exactly the limit is stored.
  e.miss(p, 2);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(1, OKind::kValue, "1234");
  CHECK(e.store.commits.size() == 1);
  CHECK(e.c().not_stored == 1);
}

TEST_CASE("fill: revoke keeps a running fill from storing its value") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.negative_ttl_ms = 30'000;
  e.miss(p, 1);
  e.miss(p, 9, "user:43");
  e.store.answer(0, LKind::kLeaseWon);
  e.store.answer(1, LKind::kLeaseWon);
  e.engine->revoke("user:42");
  e.engine->revoke("user:nobody");  // no flight: nothing
  SUBCASE("value") {
    e.origin.complete(0, OKind::kValue, "pre-write");
    REQUIRE(e.got.size() == 1);
    checkValue(e.got[0], 1, "pre-write");  // the waiter still gets it
    CHECK(e.c().not_stored == 1);
  }
  SUBCASE("404") {
    e.origin.complete(0, OKind::kNotFound);
    REQUIRE(e.got.size() == 1);
    checkNil(e.got[0], 1);
    CHECK(e.c().not_stored == 0);
  }
  CHECK(e.store.commits.empty());
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].keys.data == "user:42");
  // The other key's flight was not revoked.
  e.origin.complete(1, OKind::kValue, "v43");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].keys.data == "user:43");
}

TEST_CASE("fill: detach removes one waiter; the flight goes on") {
  Env e;
  const FillPolicy p = e.policy();
  const uint64_t w1 = e.miss(p, 1);
  const uint64_t w2 = e.miss(p, 2);
  const uint64_t w3 = e.miss(p, 3);
  CHECK(w1 != w2);
  CHECK(w2 != w3);
  e.engine->detach(w2);
  e.engine->detach(w2);      // twice: nothing
  e.engine->detach(999999);  // unknown: nothing
  e.store.answer(0, LKind::kMissing);
  e.engine->detach(w1);
  e.engine->detach(w3);
  CHECK(e.engine->inflight() == 1);  // nobody waits, the fill still completes
  e.origin.complete(0, OKind::kValue, "v");
  CHECK(e.got.empty());
  CHECK(e.store.commits.size() == 1);
  CHECK(e.engine->inflight() == 0);
}

TEST_CASE("fill: a waiter's callback may detach a later waiter or start a new miss") {
  Env e;
  const FillPolicy p = e.policy();
  uint64_t w2 = 0;
  e.engine->onMiss(p, "user:42", "/p", nullptr, [&](const FillOutcome& o) {
    e.got.emplace_back(1, o);
    e.engine->detach(w2);
    e.miss(p, 4);  // a new flight, not the one being answered
  });
  w2 = e.miss(p, 2);
  e.miss(p, 3);
  e.store.answer(0, LKind::kValue, "v");
  REQUIRE(e.got.size() == 2);
  checkValue(e.got[0], 1, "v");
  checkValue(e.got[1], 3, "v");
  CHECK(e.engine->inflight() == 1);
  CHECK(e.store.lookups.size() == 2);
}

// ---- deadlines ------------------------------------------------------------------------------

TEST_CASE("fill: the flight deadline ends a fill whose origin never answers") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.on_error = FillOnError::kError;
  e.miss(p, 1);
  e.timer.advance(20);
  e.store.answerLast(LKind::kLeaseWon);  // origin call starts at 20
  REQUIRE(e.origin.requests.size() == 1);
  e.timer.advance(399);  // 300 ms timeout + 100 ms margin = 420
  CHECK(e.got.empty());
  e.timer.advance(1);
  REQUIRE(e.got.size() == 1);
  checkError(e.got[0], 1, "FILLERR users-api timeout");
  CHECK(e.c().fill_errors == 1);
  CHECK(e.engine->inflight() == 0);
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].token == e.store.lookups[0].token);

  // The origin answers late: ignored.
  e.origin.complete(0, OKind::kValue, "late");
  CHECK(e.got.size() == 1);
  CHECK(e.store.commits.empty());
  CHECK(e.engine->deltaMs("users") == 0.0);
  e.timer.advance(10'000);
  CHECK(e.got.size() == 1);
}

TEST_CASE("fill: the flight deadline ends a fill whose store never answers") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kLocal);
  p.wait_ms = 200;
  e.miss(p, 1);
  e.timer.advance(299);
  CHECK(e.got.empty());
  e.timer.advance(1);  // wait 200 + margin 100
  REQUIRE(e.got.size() == 1);
  checkNil(e.got[0], 1);
  CHECK(e.c().store_errors == 1);
  CHECK(e.store.releases.empty());     // local: no token
  e.store.answer(0, LKind::kMissing);  // late: ignored
  CHECK(e.origin.requests.empty());
  CHECK(e.got.size() == 1);
  CHECK(e.engine->inflight() == 0);
}

TEST_CASE("fill: replies after the engine is destroyed are ignored") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kDistributed);
  e.miss(p, 1);
  e.miss(p, 2, "user:43");
  e.store.answer(1, LKind::kLeaseWon);
  e.engine.reset();
  CHECK(e.timer.pending() == 0);  // its timers were cancelled
  e.store.answer(0, LKind::kLeaseWon);
  e.origin.complete(0, OKind::kValue, "v");
  CHECK(e.got.empty());
  CHECK(e.origin.requests.size() == 1);
  CHECK(e.store.commits.empty());
}

// ---- audit ----------------------------------------------------------------------------------

TEST_CASE("fill: audit counts the fill it would make and never fills") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.audit = true;
  p.swr_ms = 10'000;
  const uint64_t a = e.miss(p, 1);
  const uint64_t b = e.miss(p, 2);
  CHECK(a != b);
  REQUIRE(e.got.size() == 2);  // synchronously
  checkNil(e.got[0], 1);
  checkNil(e.got[1], 2);
  CHECK(e.c().would_fill == 2);
  CHECK(e.engine->onHit(p, "user:42", "/p", 5'000) == HitAction::kServe);
  CHECK(e.c().would_fill == 3);
  CHECK(e.engine->onHit(p, "user:42", "/p", 50'000) == HitAction::kServe);
  CHECK(e.c().would_fill == 3);
  CHECK(e.store.lookups.empty());
  CHECK(e.origin.requests.empty());
  CHECK(e.engine->inflight() == 0);
  CHECK(e.c().fills == 0);
  CHECK(e.c().refreshes == 0);
  CHECK(e.c().stale_served == 0);
  e.engine->detach(a);  // nothing to detach
}

}  // namespace
}  // namespace corral::policies::filltest
