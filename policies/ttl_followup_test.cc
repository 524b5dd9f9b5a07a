// TTL governance of writes that cannot carry a TTL (follow-up PEXPIRE ... NX), keys without
// rules, jitter_client, error text and the reuse of a TtlDecision.
#include <doctest/doctest.h>

#include "policies/ttl.h"
#include "policies/ttl_test_support.h"

namespace corral::policies::ttltest {
namespace {

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
}  // namespace corral::policies::ttltest
