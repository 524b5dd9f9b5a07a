// Fills under ttl.from_origin: TTLs from the origin's caching headers, no-store, no-cache, and
// conditional refreshes (validator sent, 304 extends without a commit).
#include "policies/fill_freshness.h"

#include <doctest/doctest.h>

#include <string>

#include "policies/fill.h"
#include "policies/fill_test_support.h"

namespace corral::policies::filltest {
namespace {

FillPolicy fromOrigin(Env& e) {
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.ttl_from_origin = true;
  p.ttl_min_ms = 5'000;
  p.ttl_max_ms = 120'000;
  p.jitter = 0.0;  // exact TTLs below
  p.swr_ms = 10'000;
  return p;
}

OriginResult ok(std::string body, std::string cache_control, std::string etag = {}) {
  OriginResult r;
  r.kind = OKind::kValue;
  r.body = std::move(body);
  r.headers.cache_control = std::move(cache_control);
  r.headers.etag = std::move(etag);
  return r;
}

OriginResult notModified(std::string cache_control) {
  OriginResult r;
  r.kind = OKind::kNotModified;
  r.headers.cache_control = std::move(cache_control);
  return r;
}

}  // namespace

TEST_CASE("fillTtl: headers, clamps, default, no-store, no-cache, jitter") {
  Env e;
  FillPolicy p = fromOrigin(e);
  HttpCacheHeaders h;
  const int64_t now = e.clock.unixMs();
  auto ttl = [&](const std::string& cc) {
    h.cache_control = cc;
    return fillTtl(p, h, now, e.random);
  };
  CHECK(ttl("max-age=60").ttl_ms == 60'000 + 10'000);
  CHECK(ttl("max-age=60").soft_ms == 60'000);
  CHECK(ttl("max-age=1").soft_ms == 5'000);        // ttl.min
  CHECK(ttl("max-age=0").soft_ms == 5'000);        // ttl.min
  CHECK(ttl("max-age=86400").soft_ms == 120'000);  // ttl.max
  CHECK(ttl("public").soft_ms == 60'000);          // no lifetime: ttl.default
  CHECK(ttl("").soft_ms == 60'000);
  CHECK_FALSE(ttl("no-store, max-age=60").store);
  CHECK_FALSE(ttl("private").store);
  CHECK(ttl("no-cache, max-age=60").soft_ms == 0);  // stale at once, kept for the window
  CHECK(ttl("no-cache").ttl_ms == 10'000);
  CHECK(ttl("no-cache").store);
  p.swr_ms = 0;
  CHECK_FALSE(ttl("no-cache").store);  // no window: nothing would ever serve it
  p.swr_ms = 10'000;
  p.jitter = 0.25;
  e.random.queue = {0.5};
  CHECK(ttl("max-age=80").soft_ms == 70'000);  // 80000 * (1 - 0.5 * 0.25)
  // Without from_origin the headers are not read.
  p.ttl_from_origin = false;
  p.jitter = 0.0;
  CHECK(ttl("no-store, max-age=1").soft_ms == 60'000);
  CHECK(ttl("no-store, max-age=1").store);
}

TEST_CASE("fillTtl: the origin's stale-while-revalidate / stale-if-error set the windows") {
  Env e;
  FillPolicy p = fromOrigin(e);  // policy: swr 10 s, sie 0, ttl.max 120 s
  HttpCacheHeaders h;
  h.cache_control = "max-age=60, stale-while-revalidate=30, stale-if-error=90";
  FillTtl t = fillTtl(p, h, 0, e.random);
  CHECK(t.swr_ms == 30'000);
  CHECK(t.sie_ms == 90'000);
  CHECK(t.ttl_ms == 60'000 + 90'000);
  CHECK(encodeMeta(t, "E\"x\"") == "30000:90000:E\"x\"");
  h.cache_control = "max-age=60, stale-if-error=86400";  // bounded by ttl.max
  t = fillTtl(p, h, 0, e.random);
  CHECK(t.swr_ms == 10'000);  // the policy's
  CHECK(t.sie_ms == 120'000);
  CHECK(t.ttl_ms == 60'000 + 120'000);
  h.cache_control = "max-age=60, stale-while-revalidate=0";
  t = fillTtl(p, h, 0, e.random);
  CHECK(t.swr_ms == 0);
  CHECK(t.ttl_ms == 60'000);
  p.ttl_from_origin = false;  // not read without from_origin
  h.cache_control = "stale-while-revalidate=30";
  CHECK(fillTtl(p, h, 0, e.random).ttl_ms == 60'000 + 10'000);
}

TEST_CASE("meta text: the validator after the windows") {
  CHECK(metaValidator("10:20:E\"a:b\"") == "E\"a:b\"");
  CHECK(metaValidator("10:20:") == "");
  CHECK(metaValidator("10:20") == "");
  CHECK(metaValidator("") == "");
}

TEST_CASE("onHit: a value's own windows replace the policy's") {
  Env e;
  FillPolicy p = fromOrigin(e);  // policy window: swr 10 s
  ValueWindows w{0, 30'000};     // the origin said: no SWR, stale-if-error 30 s
  // PTTL 25 s with a 30 s window: 5 s past soft expiry, within stale-if-error: wait for it.
  CHECK(e.engine->onHit(p, "user:42", "/p", 25'000, &w) == HitAction::kWaitRefresh);
  // The same PTTL judged by the policy's 10 s window would be fresh.
  CHECK(e.engine->onHit(p, "user:42", "/p", 25'000) == HitAction::kServe);
  w = {20'000, 0};
  CHECK(e.engine->onHit(p, "user:42", "/p", 15'000, &w) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 1);
  w = {0, 0};  // no window at all: a value past its TTL is simply gone; fresh until then
  CHECK(e.engine->onHit(p, "user:42", "/p", 5, &w) == HitAction::kServe);
}

TEST_CASE("from_origin: a stale-if-error wait always refreshes (the value's window is its own)") {
  Env e;
  FillPolicy p = fromOrigin(e);
  const std::string stale = "old";
  e.miss(p, 1, "user:42", &stale);
  REQUIRE(e.store.lookups.size() == 1);
  CHECK(e.store.lookups[0].refresh);
  CHECK(e.store.lookups[0].fresh_above_ms == INT64_MAX);
}

TEST_CASE("from_origin: a miss stores with the origin's TTL and its validator") {
  Env e;
  FillPolicy p = fromOrigin(e);
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseWon);
  REQUIRE(e.origin.requests.size() == 1);
  CHECK(e.origin.requests[0].validator.empty());  // a miss has nothing to validate
  e.origin.completeWith(0, ok("v1", "max-age=30", "\"e1\""));
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].ttl_ms == 30'000 + 10'000);
  REQUIRE(e.store.commits[0].meta);
  CHECK(*e.store.commits[0].meta == "10000:0:E\"e1\"");  // the policy's windows, the ETag
  CHECK(e.store.commits[0].keys.meta.rfind("__corral:val:{user:42}:", 0) == 0);
  CHECK(e.c().origin_bytes == 2);
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, "v1");
}

TEST_CASE("from_origin: no-store and private are served, not stored") {
  for (const std::string cc : {"no-store", "private, max-age=60", "No-Store, max-age=60"}) {
    CAPTURE(cc);
    Env e;
    FillPolicy p = fromOrigin(e);
    e.miss(p, 1);
    e.miss(p, 2);
    e.store.answerLast(LKind::kLeaseWon);
    e.origin.completeWith(0, ok("secret", cc));
    CHECK(e.store.commits.empty());
    REQUIRE(e.store.releases.size() == 1);  // the lease goes back at once
    CHECK(e.c().not_stored == 1);
    REQUIRE(e.got.size() == 2);
    checkValue(e.got[0], 1, "secret");
    checkValue(e.got[1], 2, "secret");
  }
}

TEST_CASE("from_origin: a no-cache value is stale on every hit and revalidates") {
  Env e;
  FillPolicy p = fromOrigin(e);
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.completeWith(0, ok("v1", "no-cache", "\"e1\""));
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].ttl_ms == 10'000);  // the window only
  // Any hit of it is past its soft expiry: served, refreshed in the background, conditionally.
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 9'990) == HitAction::kServeStale);
  REQUIRE(e.store.lookups.size() == 2);
  CHECK(e.store.lookups[1].refresh);
  e.store.answerWon(1, "10000:0:E\"e1\"");
  REQUIRE(e.origin.requests.size() == 2);
  CHECK(e.origin.requests[1].validator == "E\"e1\"");
  e.origin.completeWith(1, notModified("no-cache"));
  REQUIRE(e.store.extends.size() == 1);
  CHECK(e.store.extends[0].ttl_ms == 10'000);
  CHECK(e.store.commits.size() == 1);  // no body written
}

TEST_CASE("from_origin: a 304 to a refresh extends the TTL, moves no body") {
  Env e;
  FillPolicy p = fromOrigin(e);
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 9'000) == HitAction::kServeStale);
  REQUIRE(e.store.lookups.size() == 1);
  e.store.answerWon(0, "10000:0:E\"e1\"");
  REQUIRE(e.origin.requests.size() == 1);
  CHECK(e.origin.requests[0].validator == "E\"e1\"");

  SUBCASE("304 with new caching headers: extended, counted") {
    e.origin.completeWith(0, notModified("max-age=45"));
    CHECK(e.store.commits.empty());
    REQUIRE(e.store.extends.size() == 1);
    CHECK(e.store.extends[0].ttl_ms == 45'000 + 10'000);
    CHECK(e.store.extends[0].token == e.store.lookups[0].token);
    CHECK(e.store.extends[0].meta == "10000:0:E\"e1\"");  // the 304 named no new ETag
    CHECK(e.c().revalidated == 0);                        // counted when Redis says it extended
    e.store.extends[0].done(true);
    CHECK(e.c().revalidated == 1);
    CHECK(e.c().origin_bytes == 0);
    CHECK(e.engine->inflight() == 0);
  }
  SUBCASE("304 with a new ETag and windows: the meta key takes them") {
    OriginResult r = notModified("max-age=45, stale-while-revalidate=20, stale-if-error=40");
    r.headers.etag = "\"e1b\"";
    e.origin.completeWith(0, r);
    REQUIRE(e.store.extends.size() == 1);
    CHECK(e.store.extends[0].ttl_ms == 45'000 + 40'000);
    CHECK(e.store.extends[0].meta == "20000:40000:E\"e1b\"");
  }
  SUBCASE("304 without headers: ttl.default") {
    e.origin.completeWith(0, notModified(""));
    REQUIRE(e.store.extends.size() == 1);
    CHECK(e.store.extends[0].ttl_ms == 60'000 + 10'000);
  }
  SUBCASE("the value changed in Redis meanwhile: the script refuses, nothing is counted") {
    e.origin.completeWith(0, notModified("max-age=45"));
    REQUIRE(e.store.extends.size() == 1);
    e.store.extends[0].done(false);
    CHECK(e.c().revalidated == 0);
  }
  SUBCASE("a client write through this corral revokes it: no extend, lease released") {
    e.engine->revoke("user:42");
    e.origin.completeWith(0, notModified("max-age=45"));
    CHECK(e.store.extends.empty());
    CHECK(e.store.releases.size() == 1);
  }
  SUBCASE("200 instead: a normal commit with the new validator") {
    e.origin.completeWith(0, ok("v2", "max-age=20", "\"e2\""));
    REQUIRE(e.store.commits.size() == 1);
    CHECK(e.store.commits[0].ttl_ms == 20'000 + 10'000);
    CHECK(*e.store.commits[0].meta == "10000:0:E\"e2\"");
    CHECK(e.store.extends.empty());
  }
}

TEST_CASE("from_origin: a refresh without a stored validator is a plain GET; a stray 304 fails") {
  Env e;
  FillPolicy p = fromOrigin(e);
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 9'000) == HitAction::kServeStale);
  e.store.answerWon(0, "");
  REQUIRE(e.origin.requests.size() == 1);
  CHECK(e.origin.requests[0].validator.empty());
  e.origin.completeWith(0, notModified("max-age=45"));
  CHECK(e.store.extends.empty());
  CHECK(e.store.releases.size() == 1);
}

TEST_CASE("without from_origin: validators are neither kept nor sent") {
  Env e;
  FillPolicy p = fromOrigin(e);
  p.ttl_from_origin = false;
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 9'000) == HitAction::kServeStale);
  e.store.answerWon(0, "10000:0:E\"e1\"");
  REQUIRE(e.origin.requests.size() == 1);
  CHECK(e.origin.requests[0].validator.empty());
  e.origin.completeWith(0, ok("v2", "no-store", "\"e2\""));
  REQUIRE(e.store.commits.size() == 1);
  CHECK_FALSE(e.store.commits[0].meta);
  CHECK(e.store.commits[0].ttl_ms == 60'000 + 10'000);
}

}  // namespace corral::policies::filltest
