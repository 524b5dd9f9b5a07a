// TTL governance of the commands that set or remove a TTL (SET and its options, SETEX, GETEX,
// EXPIRE and its forms, PERSIST) under fix / reject / audit.
#include "policies/ttl.h"

#include <doctest/doctest.h>

#include "policies/ttl_test_support.h"

namespace corral::policies::ttltest {
namespace {

TEST_CASE("ttl: jitterMs stays in [ttl * (1 - jitter), ttl] and is at least 1") {
  FakeRandom zero(0.0);
  FakeRandom half(0.5);
  FakeRandom almost(0.9999999);
  CHECK(jitterMs(60000, 0.1, zero) == 60000);
  CHECK(jitterMs(60000, 0.1, half) == 57000);
  CHECK(jitterMs(60000, 0.5, half) == 45000);
  CHECK(jitterMs(60000, 0.1, almost) == 54000);  // floor(54000.006)
  CHECK(jitterMs(1001, 0.1, half) == 950);       // floor(950.95)
  CHECK(jitterMs(60000, 0.0, almost) == 60000);
  CHECK(jitterMs(1, 0.1, almost) == 1);
  CHECK(jitterMs(10, 0.99, almost) == 1);  // floor(0.1) -> at least 1
  CHECK(jitterMs(0, 0.1, zero) == 1);
  CHECK(jitterMs(int64_t{1} << 60, 0.0, zero) == int64_t{1} << 60);
}

TEST_CASE("ttl: SET without a TTL gets PX <jittered default> under fix") {
  const TtlSpec t = withDefault(60000);
  Call c({"SET", "user:1", "v"}, {rules(t)}, 0.5);
  CHECK(c.d.verdict == Verdict::kRewrite);
  CHECK(c.d.argvCopy() == Args{"SET", "user:1", "v", "PX", "57000"});
  CHECK(c.d.followups.empty());
  checkOneEvent(c.d, Kind::kFixed);

  // Other options stay where they are; PX goes at the end.
  Call nx({"set", "user:1", "v", "nx", "GET"}, {rules(t)});
  CHECK(nx.d.argvCopy() == Args{"set", "user:1", "v", "nx", "GET", "PX", "60000"});

  // The same with `require`.
  const TtlSpec req = withDefault(60000, TtlOnViolation::kFix, true);
  Call r({"SET", "user:1", "v"}, {rules(req)}, 0.9999999);
  CHECK(r.d.argvCopy() == Args{"SET", "user:1", "v", "PX", "54000"});
}

TEST_CASE("ttl: SET without a TTL under reject, audit, and require without a default") {
  SUBCASE("require + reject") {
    const TtlSpec t = withDefault(60000, TtlOnViolation::kReject, true);
    Call c({"SET", "user:1", "v"}, {rules(t)});
    CHECK(c.d.verdict == Verdict::kReject);
    CHECK(c.d.error == "TTL users: key 'user:1' needs a TTL (ttl.require)");
    CHECK(c.d.argvCopy().empty());
    checkOneEvent(c.d, Kind::kRejected);
  }
  SUBCASE("require without a default under fix is a rejection") {
    TtlSpec t;
    t.require = true;
    Call c({"SET", "user:1", "v"}, {rules(t)});
    CHECK(c.d.verdict == Verdict::kReject);
    CHECK(c.d.error == "TTL users: key 'user:1' needs a TTL (ttl.require)");
  }
  SUBCASE("a default without require under reject: a TTL is optional") {
    const TtlSpec t = withDefault(60000, TtlOnViolation::kReject);
    checkForward(Call({"SET", "user:1", "v"}, {rules(t)}).d);
  }
  SUBCASE("on_violation audit") {
    const TtlSpec t = withDefault(60000, TtlOnViolation::kAudit, true);
    Call c({"SET", "user:1", "v"}, {rules(t)});
    CHECK(c.d.verdict == Verdict::kForward);
    CHECK(c.d.argvCopy().empty());
    checkOneEvent(c.d, Kind::kAudited);
  }
  SUBCASE("no default, no require: nothing to do") {
    const TtlSpec t = bounds(1000, 5000);
    checkForward(Call({"SET", "user:1", "v"}, {rules(t)}).d);
  }
}

TEST_CASE("ttl: SET KEEPTTL, syntax errors and malformed numbers are left alone") {
  const TtlSpec t = withDefault(60000, TtlOnViolation::kFix, true);
  const TtlSpec b = bounds(10000, 3600000);
  checkForward(Call({"SET", "k", "v", "KEEPTTL"}, {rules(t)}).d);
  checkForward(Call({"SET", "k", "v", "NX", "XX"}, {rules(t)}).d);
  checkForward(Call({"SET", "k", "v", "BOGUS"}, {rules(t)}).d);
  checkForward(Call({"SET", "k", "v", "EX"}, {rules(t)}).d);  // option without value
  checkForward(Call({"SET", "k", "v", "EX", "5", "PX", "9"}, {rules(b)}).d);  // mixed options
  checkForward(Call({"SET", "k", "v", "EX", "5", "KEEPTTL"}, {rules(b)}).d);
  for (std::string_view bad : {"abc", "10.5", "+5", "007", "-0", "", " 5", "5 ",
                               "99999999999999999999", "9223372036854775807"}) {
    CAPTURE(bad);
    checkForward(Call({"SET", "k", "v", "EX", bad}, {rules(b)}).d);
  }
  // PX near INT64_MAX overflows when Redis adds its clock: Redis refuses it, so do we.
  checkForward(Call({"SET", "k", "v", "PX", "9223372036854775000"}, {rules(b)}).d);
  // EX 0 and negative values are Redis' "invalid expire time".
  checkForward(Call({"SET", "k", "v", "EX", "0"}, {rules(b)}).d);
  checkForward(Call({"SET", "k", "v", "PX", "-5"}, {rules(b)}).d);
}

TEST_CASE("ttl: SET EX|PX|EXAT|PXAT outside [min, max] is clamped to PX under fix") {
  const TtlSpec t = bounds(10000, 3600000);
  Call ex({"SET", "k", "v", "EX", "99999"}, {rules(t)}, 0.5);
  CHECK(ex.d.verdict == Verdict::kRewrite);
  // Clamped down to max, then jittered like a TTL corral chose (10% x U=0.5): max still holds.
  CHECK(ex.d.argvCopy() == Args{"SET", "k", "v", "PX", "3420000"});
  checkOneEvent(ex.d, Kind::kFixed);

  Call px({"set", "k", "v", "px", "50", "NX"}, {rules(t)});
  CHECK(px.d.argvCopy() == Args{"set", "k", "v", "PX", "10000", "NX"});

  Call exat({"SET", "k", "v", "EXAT", "1700000005", "GET"}, {rules(t)});  // 5 s from now
  CHECK(exat.d.argvCopy() == Args{"SET", "k", "v", "PX", "10000", "GET"});

  Call pxat({"SET", "k", "v", "PXAT", "1700007200000"}, {rules(t)});  // 2 h from now
  CHECK(pxat.d.argvCopy() == Args{"SET", "k", "v", "PX", "3600000"});

  // A repeated option: Redis uses the last; every occurrence is rewritten to stay consistent.
  Call rep({"SET", "k", "v", "EX", "20", "ex", "99999"}, {rules(t)});
  CHECK(rep.d.argvCopy() == Args{"SET", "k", "v", "PX", "3600000", "PX", "3600000"});

  // Inside the bounds, and an absolute time in the past (the key is deleted): untouched.
  checkForward(Call({"SET", "k", "v", "EX", "60"}, {rules(t)}).d);
  checkForward(Call({"SET", "k", "v", "PX", "10000"}, {rules(t)}).d);
  checkForward(Call({"SET", "k", "v", "EX", "3600"}, {rules(t)}).d);
  checkForward(Call({"SET", "k", "v", "PXAT", "1699999999000"}, {rules(t)}).d);
  checkForward(Call({"SET", "k", "v", "EXAT", "1700000000"}, {rules(t)}).d);  // now: 0 left
}

TEST_CASE("ttl: an out-of-bounds TTL under reject and audit") {
  const TtlSpec both = bounds(10000, 3600000, TtlOnViolation::kReject);
  Call hi({"SET", "k", "v", "EX", "99999"}, {rules(both)});
  CHECK(hi.d.verdict == Verdict::kReject);
  CHECK(hi.d.error == "TTL users: ttl 99999000ms of key 'k' is outside [10000ms, 3600000ms]");
  checkOneEvent(hi.d, Kind::kRejected);

  const TtlSpec min_only = bounds(10000, std::nullopt, TtlOnViolation::kReject);
  Call lo({"EXPIRE", "k", "5"}, {rules(min_only)});
  CHECK(lo.d.verdict == Verdict::kReject);
  CHECK(lo.d.error == "TTL users: ttl 5000ms of key 'k' is outside [10000ms, -]");

  const TtlSpec max_only = bounds(std::nullopt, 60000, TtlOnViolation::kReject);
  Call mx({"PSETEX", "k", "60001", "v"}, {rules(max_only)});
  CHECK(mx.d.error == "TTL users: ttl 60001ms of key 'k' is outside [-, 60000ms]");

  const TtlSpec audit = bounds(10000, 3600000, TtlOnViolation::kAudit);
  Call a({"SET", "k", "v", "EX", "99999"}, {rules(audit)});
  CHECK(a.d.verdict == Verdict::kForward);
  CHECK(a.d.argvCopy().empty());
  checkOneEvent(a.d, Kind::kAudited);
}

TEST_CASE("ttl: SETEX keeps whole seconds inside the bounds, else becomes PSETEX") {
  const TtlSpec t = bounds(1500, 3600500);
  Call hi({"SETEX", "k", "99999", "v"}, {rules(t)});
  CHECK(hi.d.argvCopy() == Args{"SETEX", "k", "3600", "v"});  // floor(3600.5 s)
  checkOneEvent(hi.d, Kind::kFixed);
  Call lo({"setex", "k", "1", "v"}, {rules(t)});
  CHECK(lo.d.argvCopy() == Args{"setex", "k", "2", "v"});  // ceil(1.5 s)

  const TtlSpec narrow = bounds(1500, 1800);  // no whole second fits
  CHECK(Call({"SETEX", "k", "1", "v"}, {rules(narrow)}).d.argvCopy() ==
        Args{"PSETEX", "k", "1500", "v"});
  CHECK(Call({"SETEX", "k", "5", "v"}, {rules(narrow)}).d.argvCopy() ==
        Args{"PSETEX", "k", "1800", "v"});
  const TtlSpec sub_second = bounds(std::nullopt, 500);
  CHECK(Call({"SETEX", "k", "5", "v"}, {rules(sub_second)}).d.argvCopy() ==
        Args{"PSETEX", "k", "500", "v"});

  checkForward(Call({"SETEX", "k", "60", "v"}, {rules(t)}).d);
  checkForward(Call({"SETEX", "k", "0", "v"}, {rules(t)}).d);
  checkForward(Call({"SETEX", "k", "x", "v"}, {rules(t)}).d);

  const TtlSpec r = bounds(1500, 3600500, TtlOnViolation::kReject);
  CHECK(Call({"SETEX", "k", "1", "v"}, {rules(r)}).d.error ==
        "TTL users: ttl 1000ms of key 'k' is outside [1500ms, 3600500ms]");
  const TtlSpec a = bounds(1500, 3600500, TtlOnViolation::kAudit);
  Call audited({"SETEX", "k", "1", "v"}, {rules(a)});
  CHECK(audited.d.verdict == Verdict::kForward);
  checkOneEvent(audited.d, Kind::kAudited);
}

TEST_CASE("ttl: PSETEX is clamped in milliseconds") {
  const TtlSpec t = bounds(1000, 60000);
  Call lo({"PSETEX", "k", "100", "v"}, {rules(t)});
  CHECK(lo.d.verdict == Verdict::kRewrite);
  CHECK(lo.d.argvCopy() == Args{"PSETEX", "k", "1000", "v"});
  CHECK(Call({"PSETEX", "k", "60001", "v"}, {rules(t)}).d.argvCopy() ==
        Args{"PSETEX", "k", "60000", "v"});
  checkForward(Call({"PSETEX", "k", "60000", "v"}, {rules(t)}).d);
}

TEST_CASE("ttl: GETEX options are clamped to PX; GETEX PERSIST on require is refused") {
  const TtlSpec t = bounds(10000, 3600000);
  CHECK(Call({"GETEX", "k", "EX", "99999"}, {rules(t)}).d.argvCopy() ==
        Args{"GETEX", "k", "PX", "3600000"});
  CHECK(Call({"GETEX", "k", "px", "5"}, {rules(t)}).d.argvCopy() ==
        Args{"GETEX", "k", "PX", "10000"});
  CHECK(Call({"GETEX", "k", "EXAT", "1700000001"}, {rules(t)}).d.argvCopy() ==
        Args{"GETEX", "k", "PX", "10000"});
  CHECK(Call({"GETEX", "k", "PXAT", "1700099999999"}, {rules(t)}).d.argvCopy() ==
        Args{"GETEX", "k", "PX", "3600000"});
  checkForward(Call({"GETEX", "k"}, {rules(t)}).d);
  checkForward(Call({"GETEX", "k", "EX", "60"}, {rules(t)}).d);
  checkForward(Call({"GETEX", "k", "EX", "0"}, {rules(t)}).d);
  checkForward(Call({"GETEX", "k", "KEEPTTL"}, {rules(t)}).d);  // not a GETEX option
  checkForward(Call({"GETEX", "k", "PERSIST"}, {rules(t)}).d);  // no `require`

  TtlSpec req = withDefault(60000, TtlOnViolation::kFix, true);
  Call p({"GETEX", "k", "persist"}, {rules(req)});
  CHECK(p.d.verdict == Verdict::kReject);
  CHECK(p.d.error == "TTL users: PERSIST would leave key 'k' without a TTL (ttl.require)");
  checkOneEvent(p.d, Kind::kRejected);
  checkForward(Call({"GETEX", "k", "PERSIST", "EX", "5"}, {rules(req)}).d);  // syntax error
}

TEST_CASE("ttl: EXPIRE and PEXPIRE are clamped in their unit, flags kept") {
  const TtlSpec t = bounds(10000, 3600000);
  Call lo({"EXPIRE", "k", "5"}, {rules(t)});
  CHECK(lo.d.verdict == Verdict::kRewrite);
  CHECK(lo.d.argvCopy() == Args{"EXPIRE", "k", "10"});
  checkOneEvent(lo.d, Kind::kFixed);
  CHECK(Call({"expire", "k", "99999", "nx"}, {rules(t)}).d.argvCopy() ==
        Args{"expire", "k", "3600", "nx"});
  CHECK(Call({"PEXPIRE", "k", "10", "GT"}, {rules(t)}).d.argvCopy() ==
        Args{"PEXPIRE", "k", "10000", "GT"});
  CHECK(Call({"PEXPIRE", "k", "3600001", "XX"}, {rules(t)}).d.argvCopy() ==
        Args{"PEXPIRE", "k", "3600000", "XX"});

  const TtlSpec narrow = bounds(10500, 10900);  // no whole second: switch to PEXPIRE
  CHECK(Call({"EXPIRE", "k", "5", "LT"}, {rules(narrow)}).d.argvCopy() ==
        Args{"PEXPIRE", "k", "10500", "LT"});

  // Zero or negative deletes the key; malformed numbers and options are Redis' to refuse.
  checkForward(Call({"EXPIRE", "k", "0"}, {rules(t)}).d);
  checkForward(Call({"EXPIRE", "k", "-1"}, {rules(t)}).d);
  checkForward(Call({"PEXPIRE", "k", "-100"}, {rules(t)}).d);
  checkForward(Call({"EXPIRE", "k", "5s"}, {rules(t)}).d);
  checkForward(Call({"EXPIRE", "k", "5", "SOON"}, {rules(t)}).d);
  checkForward(
      Call({"EXPIRE", "k", "9223372036854775"}, {rules(t)}).d);  // overflows with the clock added
  checkForward(Call({"EXPIRE", "k", "60"}, {rules(t)}).d);
}

TEST_CASE("ttl: EXPIREAT and PEXPIREAT become PEXPIRE with the ms remaining") {
  const TtlSpec t = bounds(10000, 3600000);
  Call lo({"EXPIREAT", "k", "1700000005"}, {rules(t)});
  CHECK(lo.d.argvCopy() == Args{"PEXPIRE", "k", "10000"});
  checkOneEvent(lo.d, Kind::kFixed);
  CHECK(Call({"PEXPIREAT", "k", "1700099999999", "XX"}, {rules(t)}).d.argvCopy() ==
        Args{"PEXPIRE", "k", "3600000", "XX"});
  CHECK(Call({"pexpireat", "k", "1700000000001", "GT"}, {rules(t)}).d.argvCopy() ==
        Args{"PEXPIRE", "k", "10000", "GT"});
  // In range, in the past (a delete) and now itself: untouched.
  checkForward(Call({"EXPIREAT", "k", "1700000060"}, {rules(t)}).d);
  checkForward(Call({"EXPIREAT", "k", "1600000000"}, {rules(t)}).d);
  checkForward(Call({"PEXPIREAT", "k", "1700000000000"}, {rules(t)}).d);
  checkForward(Call({"EXPIREAT", "k", "-5"}, {rules(t)}).d);
  // The same absolute time decides differently at another now.
  checkForward(Call({"EXPIREAT", "k", "1700000005"}, {rules(t)}, 0.0, 1699999990000).d);

  const TtlSpec r = bounds(10000, 3600000, TtlOnViolation::kReject);
  CHECK(Call({"PEXPIREAT", "k", "1700000000500"}, {rules(r)}).d.error ==
        "TTL users: ttl 500ms of key 'k' is outside [10000ms, 3600000ms]");
}

TEST_CASE("ttl: PERSIST on require is refused unless audited") {
  const TtlSpec fix = withDefault(60000, TtlOnViolation::kFix, true);
  Call c({"PERSIST", "user:1"}, {rules(fix)});
  CHECK(c.d.verdict == Verdict::kReject);
  CHECK(c.d.error == "TTL users: PERSIST would leave key 'user:1' without a TTL (ttl.require)");
  checkOneEvent(c.d, Kind::kRejected);

  const TtlSpec rej = withDefault(60000, TtlOnViolation::kReject, true);
  CHECK(Call({"PERSIST", "k"}, {rules(rej)}).d.verdict == Verdict::kReject);

  const TtlSpec aud = withDefault(60000, TtlOnViolation::kAudit, true);
  Call a({"PERSIST", "k"}, {rules(aud)});
  CHECK(a.d.verdict == Verdict::kForward);
  checkOneEvent(a.d, Kind::kAudited);

  Call ap({"PERSIST", "k"}, {auditRules(fix)});
  CHECK(ap.d.verdict == Verdict::kForward);
  checkOneEvent(ap.d, Kind::kAudited);

  const TtlSpec no_require = withDefault(60000);
  checkForward(Call({"PERSIST", "k"}, {rules(no_require)}).d);
}

}  // namespace
}  // namespace corral::policies::ttltest
