// Tests for TTL governance: every command form under fix / reject / audit, with a fake Random
// and a fixed wall clock. Key positions come from the real command table, as in the proxy.
#include "policies/ttl.h"

#include <doctest/doctest.h>

#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"

namespace corral::policies {
namespace {

using config::Millis;
using config::TtlOnViolation;
using config::TtlSpec;
using Verdict = TtlDecision::Verdict;
using Kind = TtlEvent::Kind;
using Args = std::vector<std::string>;

constexpr int64_t kNowMs = 1'700'000'000'000;  // a fixed wall clock (ms since the epoch)

class FakeRandom : public Random {
 public:
  explicit FakeRandom(double u) : u_(u) {}
  double uniform() override {
    ++calls;
    return u_;
  }
  int calls = 0;

 private:
  double u_;
};

// One decideTtl call as the engine makes it: keys from the command table, one rules entry per
// key (a single rules entry is used for every key).
struct Call {
  std::vector<std::string_view> args;
  std::vector<uint32_t> keys;
  std::vector<KeyTtlRules> rules;
  std::string command;
  TtlDecision d;

  Call(std::initializer_list<std::string_view> argv, std::vector<KeyTtlRules> r, double u = 0.0,
       int64_t now_ms = kNowMs)
      : args(argv) {
    for (char c : args[0]) {
      command.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    const commands::CommandInfo* info = commands::lookup(args);
    REQUIRE(info != nullptr);
    REQUIRE(commands::extractKeys(*info, args, keys));
    if (r.size() == 1) r.resize(keys.size(), r[0]);
    rules = std::move(r);
    REQUIRE(rules.size() == keys.size());
    FakeRandom rnd(u);
    decideTtl(TtlInput{command, args, keys, rules, now_ms}, rnd, d);
  }
};

KeyTtlRules rules(const TtlSpec& t) { return KeyTtlRules{&t, "users", false}; }
KeyTtlRules auditRules(const TtlSpec& t) { return KeyTtlRules{&t, "users", true}; }

TtlSpec withDefault(int64_t ms, TtlOnViolation v = TtlOnViolation::kFix, bool require = false) {
  TtlSpec t;
  t.default_ttl = Millis{ms};
  t.require = require;
  t.on_violation = v;
  return t;
}

TtlSpec bounds(std::optional<int64_t> min, std::optional<int64_t> max,
               TtlOnViolation v = TtlOnViolation::kFix) {
  TtlSpec t;
  if (min) t.min = Millis{*min};
  if (max) t.max = Millis{*max};
  t.on_violation = v;
  return t;
}

void checkForward(const TtlDecision& d) {
  CHECK(d.verdict == Verdict::kForward);
  CHECK(d.argvCopy().empty());
  CHECK(d.error.empty());
  CHECK(d.followups.empty());
  CHECK(d.events.empty());
}

void checkOneEvent(const TtlDecision& d, Kind kind, uint32_t key = 0) {
  REQUIRE(d.events.size() == 1);
  CHECK(d.events[0].kind == kind);
  CHECK(d.events[0].key == key);
}

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

TEST_CASE("ttl: type writes get PEXPIRE NX follow-ups on require only") {
  const TtlSpec req = withDefault(60000, TtlOnViolation::kFix, true);
  Call h({"HSET", "user:1", "f", "v"}, {rules(req)}, 0.5);
  CHECK(h.d.verdict == Verdict::kForward);
  CHECK(h.d.argvCopy().empty());
  REQUIRE(h.d.followups.size() == 1);
  CHECK(h.d.followups[0].key == 0);
  CHECK(h.d.followups[0].ttl_ms == 57000);
  checkOneEvent(h.d, Kind::kFixed);

  for (auto argv : {std::vector<std::string_view>{"SADD", "k", "m"},
                    {"LPUSH", "k", "a"},
                    {"RPUSH", "k", "a"},
                    {"ZADD", "k", "1", "m"},
                    {"XADD", "k", "*", "f", "v"},
                    {"SETRANGE", "k", "0", "v"},
                    {"INCR", "k"},
                    {"APPEND", "k", "v"},
                    {"PFADD", "k", "e"},
                    {"GEOADD", "k", "1", "2", "m"},
                    {"HINCRBY", "k", "f", "1"},
                    {"RESTORE", "k", "0", "payload"}}) {
    CAPTURE(argv[0]);
    const commands::CommandInfo* info = commands::lookup(argv);
    REQUIRE(info != nullptr);
    std::vector<uint32_t> keys;
    REQUIRE(commands::extractKeys(*info, argv, keys));
    REQUIRE(keys.size() == 1);
    std::string cmd(argv[0]);
    for (char& ch : cmd) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::vector<KeyTtlRules> rs{rules(req)};
    FakeRandom rnd(0.0);
    TtlDecision d;
    decideTtl(TtlInput{cmd, argv, keys, rs, kNowMs}, rnd, d);
    CHECK(d.verdict == Verdict::kForward);
    REQUIRE(d.followups.size() == 1);
    CHECK(d.followups[0].ttl_ms == 60000);
  }

  // Commands that only remove data, or only read, get nothing.
  checkForward(Call({"DEL", "user:1"}, {rules(req)}).d);
  checkForward(Call({"HDEL", "user:1", "f"}, {rules(req)}).d);
  checkForward(Call({"LPOP", "user:1"}, {rules(req)}).d);
  checkForward(Call({"GET", "user:1"}, {rules(req)}).d);
  checkForward(Call({"SORT", "user:1"}, {rules(req)}).d);

  // A default without `require`: type writes are left alone (SET-like writes are not).
  const TtlSpec def = withDefault(60000);
  checkForward(Call({"HSET", "user:1", "f", "v"}, {rules(def)}).d);

  // `require` without a default cannot be fixed: refused.
  TtlSpec nodef;
  nodef.require = true;
  Call r({"HSET", "user:1", "f", "v"}, {rules(nodef)});
  CHECK(r.d.verdict == Verdict::kReject);
  CHECK(r.d.error == "TTL users: key 'user:1' needs a TTL (ttl.require)");
  CHECK(r.d.followups.empty());

  const TtlSpec aud = withDefault(60000, TtlOnViolation::kAudit, true);
  Call a({"LPUSH", "k", "x"}, {rules(aud)});
  CHECK(a.d.followups.empty());
  checkOneEvent(a.d, Kind::kAudited);
}

TEST_CASE("ttl: move and store commands follow up on the destination only") {
  const TtlSpec req = withDefault(60000, TtlOnViolation::kFix, true);
  struct Case {
    std::vector<std::string_view> argv;
    uint32_t dest;
  };
  const Case cases[] = {
      {{"LMOVE", "src", "dst", "LEFT", "RIGHT"}, 1},
      {{"RPOPLPUSH", "src", "dst"}, 1},
      {{"SMOVE", "src", "dst", "m"}, 1},
      {{"COPY", "src", "dst"}, 1},
      {{"SUNIONSTORE", "dst", "a", "b"}, 0},
      {{"ZUNIONSTORE", "dst", "2", "a", "b"}, 0},
      {{"BITOP", "AND", "dst", "a", "b"}, 0},
      {{"SORT", "src", "STORE", "dst"}, 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.argv[0]);
    const commands::CommandInfo* info = commands::lookup(c.argv);
    REQUIRE(info != nullptr);
    std::vector<uint32_t> keys;
    REQUIRE(commands::extractKeys(*info, c.argv, keys));
    std::string cmd(c.argv[0]);
    for (char& ch : cmd) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::vector<KeyTtlRules> rs(keys.size(), rules(req));
    FakeRandom rnd(0.0);
    TtlDecision d;
    decideTtl(TtlInput{cmd, c.argv, keys, rs, kNowMs}, rnd, d);
    REQUIRE(d.followups.size() == 1);
    CHECK(d.followups[0].key == c.dest);
    CHECK(c.argv[keys[d.followups[0].key]] == "dst");
  }
}

TEST_CASE("ttl: SETNX, GETSET, MSET and MSETNX follow up per key whenever a default is set") {
  const TtlSpec def = withDefault(60000);  // no require
  Call nx({"SETNX", "k", "v"}, {rules(def)}, 0.5);
  CHECK(nx.d.verdict == Verdict::kForward);
  REQUIRE(nx.d.followups.size() == 1);
  CHECK(nx.d.followups[0].ttl_ms == 57000);
  checkOneEvent(nx.d, Kind::kFixed);
  CHECK(Call({"GETSET", "k", "v"}, {rules(def)}).d.followups.size() == 1);

  // Two different rules, a key without rules and an audited one.
  const TtlSpec shorter = withDefault(1000);
  Call m({"MSET", "a", "1", "b", "2", "c", "3", "d", "4"},
         {rules(def), rules(shorter), KeyTtlRules{}, auditRules(def)});
  CHECK(m.d.verdict == Verdict::kForward);
  CHECK(m.d.argvCopy().empty());
  REQUIRE(m.d.followups.size() == 2);
  CHECK(m.d.followups[0].key == 0);
  CHECK(m.d.followups[0].ttl_ms == 60000);
  CHECK(m.d.followups[1].key == 1);
  CHECK(m.d.followups[1].ttl_ms == 1000);
  REQUIRE(m.d.events.size() == 3);
  CHECK(m.d.events[0].kind == Kind::kFixed);
  CHECK(m.d.events[1].kind == Kind::kFixed);
  CHECK(m.d.events[2].kind == Kind::kAudited);
  CHECK(m.d.events[2].key == 3);

  // One key refused: the whole command is, with no follow-ups and no kFixed events left.
  const TtlSpec strict = withDefault(60000, TtlOnViolation::kReject, true);
  Call rej({"MSETNX", "a", "1", "b", "2", "c", "3"}, {rules(def), rules(strict), rules(strict)});
  CHECK(rej.d.verdict == Verdict::kReject);
  CHECK(rej.d.error == "TTL users: key 'b' needs a TTL (ttl.require)");  // the first refusal
  CHECK(rej.d.followups.empty());
  REQUIRE(rej.d.events.size() == 2);
  CHECK(rej.d.events[0].kind == Kind::kRejected);
  CHECK(rej.d.events[0].key == 1);
  CHECK(rej.d.events[1].key == 2);

  // An odd number of arguments is Redis' error.
  checkForward(Call({"MSET", "a", "1", "b"}, {rules(def)}).d);
}

TEST_CASE("ttl: keys without rules and audit-mode policies are never changed") {
  checkForward(Call({"SET", "k", "v"}, {KeyTtlRules{}}).d);
  checkForward(Call({"SET", "k", "v", "EX", "99999"}, {KeyTtlRules{}}).d);
  checkForward(Call({"PERSIST", "k"}, {KeyTtlRules{}}).d);
  checkForward(Call({"HSET", "k", "f", "v"}, {KeyTtlRules{}}).d);

  TtlSpec t = withDefault(60000, TtlOnViolation::kFix, true);
  t.min = Millis{10000};
  t.max = Millis{3600000};
  t.jitter_client = true;
  for (auto argv : {std::vector<std::string_view>{"SET", "k", "v"},
                    {"SET", "k", "v", "EX", "99999"},
                    {"EXPIRE", "k", "1"},
                    {"HSET", "k", "f", "v"},
                    {"GETEX", "k", "PERSIST"}}) {
    CAPTURE(argv[0]);
    std::vector<uint32_t> keys{1};
    std::string cmd(argv[0]);
    for (char& ch : cmd) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::vector<KeyTtlRules> rs{auditRules(t)};
    FakeRandom rnd(0.5);
    TtlDecision d;
    decideTtl(TtlInput{cmd, argv, keys, rs, kNowMs}, rnd, d);
    CHECK(d.verdict == Verdict::kForward);
    CHECK(d.argvCopy().empty());
    CHECK(d.followups.empty());
    checkOneEvent(d, Kind::kAudited);
  }
  // In range under audit with jitter_client: nothing at all (jitter is not a violation).
  Call in_range({"SET", "k", "v", "EX", "100"}, {auditRules(t)}, 0.5);
  checkForward(in_range.d);
}

TEST_CASE("ttl: jitter_client jitters client TTLs into the ms form without an event") {
  TtlSpec t = bounds(10000, 3600000);
  t.jitter_client = true;
  Call set({"SET", "k", "v", "EX", "100"}, {rules(t)}, 0.5);
  CHECK(set.d.verdict == Verdict::kRewrite);
  CHECK(set.d.argvCopy() == Args{"SET", "k", "v", "PX", "95000"});
  CHECK(set.d.events.empty());
  CHECK(Call({"SETEX", "k", "100", "v"}, {rules(t)}, 0.5).d.argvCopy() ==
        Args{"PSETEX", "k", "95000", "v"});
  CHECK(Call({"EXPIRE", "k", "100", "NX"}, {rules(t)}, 0.5).d.argvCopy() ==
        Args{"PEXPIRE", "k", "95000", "NX"});
  CHECK(Call({"EXPIREAT", "k", "1700000100"}, {rules(t)}, 0.5).d.argvCopy() ==
        Args{"PEXPIRE", "k", "95000"});
  CHECK(Call({"GETEX", "k", "EX", "100"}, {rules(t)}, 0.5).d.argvCopy() ==
        Args{"GETEX", "k", "PX", "95000"});

  // Clamped, then jittered: still a fix.
  Call both({"SET", "k", "v", "EX", "99999"}, {rules(t)}, 0.5);
  CHECK(both.d.argvCopy() == Args{"SET", "k", "v", "PX", "3420000"});
  checkOneEvent(both.d, Kind::kFixed);
  // Jitter never takes a TTL below min.
  CHECK(Call({"SET", "k", "v", "PX", "10200"}, {rules(t)}, 0.5).d.argvCopy() ==
        Args{"SET", "k", "v", "PX", "10000"});
  // ...and when that leaves the TTL as the client gave it, nothing is rewritten.
  checkForward(Call({"SET", "k", "v", "EX", "10"}, {rules(t)}, 0.5).d);
  // U = 0 leaves the TTL as it is: nothing to rewrite.
  checkForward(Call({"SET", "k", "v", "EX", "100"}, {rules(t)}, 0.0).d);
  // Without jitter_client a client TTL inside the bounds is never jittered.
  const TtlSpec plain = bounds(10000, 3600000);
  checkForward(Call({"SET", "k", "v", "EX", "100"}, {rules(plain)}, 0.5).d);
}

TEST_CASE("ttl: keys in error replies are escaped and capped") {
  const TtlSpec t = withDefault(60000, TtlOnViolation::kReject, true);
  const std::string_view odd("a'\\\x01\xff b", 7);
  Call c({"PERSIST", odd}, {rules(t)});
  CHECK(c.d.error ==
        "TTL users: PERSIST would leave key 'a\\x27\\x5c\\x01\\xff b' without a TTL "
        "(ttl.require)");
  const std::string long_key(100, 'k');
  Call l({"SET", long_key, "v"}, {rules(t)});
  CHECK(l.d.error == "TTL users: key '" + std::string(64, 'k') + "...' needs a TTL (ttl.require)");
}

TEST_CASE("ttl: a reused TtlDecision carries nothing over") {
  const TtlSpec t = withDefault(60000, TtlOnViolation::kReject, true);
  const TtlSpec fix = withDefault(60000);
  FakeRandom rnd(0.0);
  TtlDecision d;
  const std::vector<std::string_view> persist{"PERSIST", "k"};
  const std::vector<std::string_view> set{"SET", "k", "v"};
  const std::vector<std::string_view> get{"GET", "k"};
  const std::vector<uint32_t> keys{1};
  const std::vector<KeyTtlRules> rs{rules(t)};
  const std::vector<KeyTtlRules> rf{rules(fix)};
  decideTtl(TtlInput{"persist", persist, keys, rs, kNowMs}, rnd, d);
  CHECK(d.verdict == Verdict::kReject);
  decideTtl(TtlInput{"set", set, keys, rf, kNowMs}, rnd, d);
  CHECK(d.verdict == Verdict::kRewrite);
  CHECK(d.error.empty());
  CHECK(d.argvCopy() == Args{"SET", "k", "v", "PX", "60000"});
  CHECK(d.events.size() == 1);
  decideTtl(TtlInput{"get", get, keys, rf, kNowMs}, rnd, d);
  checkForward(d);
  CHECK(rnd.calls == 1);  // only the fix drew a random number
}

}  // namespace
}  // namespace corral::policies

namespace corral::policies {
namespace {

TEST_CASE("ttl: a rewrite that only appends says so (the proxy reuses the request's bytes)") {
  const TtlSpec def = withDefault(60000);
  Call set({"SET", "k", "v"}, {rules(def)});
  CHECK(set.d.verdict == TtlDecision::Verdict::kRewrite);
  CHECK(set.d.append_from == 3);
  CHECK(set.d.argvCopy() == Args{"SET", "k", "v", "PX", "60000"});
  const TtlSpec b = bounds(10000, 3600000);
  Call clamp({"SET", "k", "v", "EX", "99999"}, {rules(b)});
  CHECK(clamp.d.verdict == TtlDecision::Verdict::kRewrite);
  CHECK(clamp.d.append_from == 0);  // changed in place
  // A decision object reused for a second request starts from scratch.
  TtlDecision reused = std::move(clamp.d);
  FakeRandom rnd(0.0);
  std::vector<std::string_view> args{"SET", "k", "v"};
  std::vector<uint32_t> keys{1};
  std::vector<KeyTtlRules> r{rules(def)};
  decideTtl(TtlInput{"set", args, keys, r, kNowMs}, rnd, reused);
  CHECK(reused.append_from == 3);
  CHECK(reused.argvCopy() == Args{"SET", "k", "v", "PX", "60000"});
}

}  // namespace
}  // namespace corral::policies
