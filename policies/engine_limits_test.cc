// The engine's rate limits: bursts and retry_after, buckets keyed by client, key and capture,
// shadow and audit, and bucket keys that stay small whatever the client sends.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"
#include "policies/engine.h"
#include "policies/engine_test_support.h"
#include "policies/global_limits.h"
#include "policies/global_limits_test_support.h"

namespace corral::policies::enginetest {
namespace {

TEST_CASE("engine: a rate limit admits burst then refuses with retry_after_ms") {
  PolicyConfig cfg;
  auto p = policy("user", "user:<id:u64>");
  p.rate_limits.push_back(limit("user-reads", 10, 1000, 2));  // 10/s, burst 2
  p.rate_limits.back().commands = {"get"};
  cfg.policies.push_back(p);
  Fixture f(cfg);
  CHECK(f.run({"GET", "user:1"}) == Verdict::kForward);
  CHECK(f.run({"GET", "user:1"}) == Verdict::kForward);
  CHECK(f.run({"GET", "user:1"}) == Verdict::kReject);
  CHECK(f.d.error == "RATELIMITED user-reads retry_after_ms=100");
  // Only GET is limited.
  CHECK(f.run({"SET", "user:1", "v"}) == Verdict::kForward);
  // 100 ms later one request's worth is back.
  f.clock.mono_ns += 100'000'000;
  CHECK(f.run({"GET", "user:1"}) == Verdict::kForward);
  CHECK(f.run({"GET", "user:1"}) == Verdict::kReject);
  LimitCounters* c = f.reg.limit("user-reads");
  CHECK(c->admitted.get() == 3);
  CHECK(c->rejected.get() == 2);
}

TEST_CASE("engine: a global limit's first request waits with nothing spent, then is decided") {
  PolicyConfig cfg;
  auto p = policy("user", "user:<id:u64>");
  p.rate_limits.push_back(limit("local-first", 10, 1000, 2));  // checked before the global one
  auto g = limit("fleet", 100, 1000, 3);
  g.scope = config::LimitScope::kGlobal;
  p.rate_limits.push_back(g);
  cfg.policies.push_back(p);
  Fixture f(cfg);
  testing::FakeTimer timer;
  testing::FakeLimitStore store;
  GlobalLimits global(store, f.reg, f.clock, timer);
  f.global = &global;
  LimitCounters* local = f.reg.limit("local-first");
  LimitCounters* fleet = f.reg.limit("fleet");
  PolicyCounters* user = f.reg.policy("user");
  CHECK(f.run({"SET", "user:1", "v"}) == Verdict::kWait);
  f.replay = true;  // the proxy asks again (woken before the credits came, say)
  CHECK(f.run({"SET", "user:1", "v"}) == Verdict::kWait);
  CHECK(store.pending.size() == 1);
  // Nothing of the waiting request was spent or counted but the policy's request, once.
  CHECK(local->admitted.get() == 0);
  CHECK(fleet->admitted.get() == 0);
  store.deliver(f.clock.mono_ns);
  CHECK(f.run({"SET", "user:1", "v"}) == Verdict::kForward);
  CHECK(local->admitted.get() == 1);
  CHECK(fleet->admitted.get() == 1);
  CHECK(user->requests.get() == 1);
  f.replay = false;
  // The next one waits for its own take (a batch of one takes nothing ahead), of two credits.
  CHECK(f.run({"SET", "user:1", "v"}) == Verdict::kWait);
  REQUIRE(store.pending.size() == 1);
  CHECK(store.pending[0].want == 2);
  store.deliver(f.clock.mono_ns);
  f.replay = true;
  CHECK(f.run({"SET", "user:1", "v"}) == Verdict::kForward);
  f.replay = false;
  // The local limit (burst 2) refuses the third request; the global credit it held is kept.
  CHECK(f.run({"SET", "user:1", "v"}) == Verdict::kReject);
  CHECK(f.d.error.starts_with("RATELIMITED local-first "));
  CHECK(fleet->admitted.get() == 2);
  CHECK(user->requests.get() == 3);
  CHECK(fleet->rejected.get() == 0);
}

TEST_CASE("engine: rate limits keyed by client, key and capture; shadow and audit") {
  PolicyConfig cfg;
  auto p = policy("cart", "cart:<uid:u64>:<part:seg>");
  auto by_user = limit("per-user", 1, 1000, 1);
  config::KeyByPart cap;
  cap.kind = config::KeyByPart::Kind::kCapture;
  cap.capture = "uid";
  by_user.key_by = {cap};
  p.rate_limits.push_back(by_user);
  cfg.policies.push_back(p);
  auto g = limit("per-client", 1, 1000, 1);
  g.key_by = {config::KeyByPart{config::KeyByPart::Kind::kClient, ""}};
  g.on_limit = config::OnLimit::kShadow;
  cfg.global.rate_limits.push_back(g);
  Fixture f(cfg);
  CHECK(f.run({"GET", "cart:1:items"}) == Verdict::kForward);
  // Same uid, other part: the capture bucket is the same.
  CHECK(f.run({"GET", "cart:1:total"}) == Verdict::kReject);
  CHECK(f.d.error.starts_with("RATELIMITED per-user retry_after_ms="));
  CHECK(f.run({"GET", "cart:2:items"}) == Verdict::kForward);
  // The global limit is shadow: over it, but let through and counted.
  CHECK(f.reg.limit("per-client")->shadowed.get() == 2);
  CHECK(f.reg.limit("per-client")->rejected.get() == 0);
  f.client = "10.0.0.2";
  CHECK(f.run({"PING"}) == Verdict::kForward);
  CHECK(f.reg.limit("per-client")->admitted.get() == 2);

  // A policy in audit mode never refuses: its limits act as shadow.
  PolicyConfig audit_cfg;
  auto q = policy("q", "q:<id:u64>");
  q.mode = config::PolicyMode::kAudit;
  q.rate_limits.push_back(limit("q-limit", 1, 1000, 1));
  audit_cfg.policies.push_back(q);
  Fixture a(audit_cfg);
  CHECK(a.run({"GET", "q:1"}) == Verdict::kForward);
  CHECK(a.run({"GET", "q:1"}) == Verdict::kForward);
  CHECK(a.reg.limit("q-limit")->shadowed.get() == 1);
}

TEST_CASE("engine: long client names, keys and captures make bounded bucket keys") {
  PolicyConfig cfg;
  auto p = policy("blob", "blob:<name:rest>");
  p.max_key_bytes = 2 << 20;
  auto by_all = limit("per-all", 1, 1000, 1);
  config::KeyByPart cap;
  cap.kind = config::KeyByPart::Kind::kCapture;
  cap.capture = "name";
  by_all.key_by = {config::KeyByPart{config::KeyByPart::Kind::kClient, ""},
                   config::KeyByPart{config::KeyByPart::Kind::kKey, ""}, cap};
  p.rate_limits.push_back(by_all);
  cfg.policies.push_back(p);
  Fixture f(cfg);

  // A 1 MiB client name and key: each long part is kept as a length byte and a 16-byte digest.
  const std::string huge(1 << 20, 'x');
  f.client = huge + "a";
  const std::string key = "blob:" + huge;
  CHECK(f.run({"GET", key}) == Verdict::kForward);
  CHECK(f.reg.limiter().keyBytes() == 3 * 17);
  // The same long name and key: the same bucket (1/s, burst 1: refused).
  CHECK(f.run({"GET", key}) == Verdict::kReject);
  // Names that differ only past the first 64 bytes still get buckets of their own.
  f.client = huge + "b";
  CHECK(f.run({"GET", key}) == Verdict::kForward);
  CHECK(f.reg.limiter().buckets() == 2);
  CHECK(f.reg.limiter().keyBytes() == 2 * 3 * 17);

  // Short parts are kept as they are: a length byte each.
  f.client = "10.0.0.9";
  CHECK(f.run({"GET", "blob:k"}) == Verdict::kForward);
  CHECK(f.reg.limiter().keyBytes() == 2 * 3 * 17 + (1 + 8) + (1 + 6) + (1 + 1));
}

TEST_CASE("engine: bucket parts cannot run into each other") {
  // ("ab", "c") and ("a", "bc") are different buckets, and a short part holding bytes that look
  // like a digest is not one.
  PolicyConfig cfg;
  auto p = policy("kv", "kv:<a:seg>:<b:seg>");
  auto l = limit("pair", 1, 1000, 1);
  config::KeyByPart ca{config::KeyByPart::Kind::kCapture, "a"};
  config::KeyByPart cb{config::KeyByPart::Kind::kCapture, "b"};
  l.key_by = {ca, cb};
  p.rate_limits.push_back(l);
  cfg.policies.push_back(p);
  Fixture f(cfg);
  CHECK(f.run({"GET", "kv:ab:c"}) == Verdict::kForward);
  CHECK(f.run({"GET", "kv:a:bc"}) == Verdict::kForward);
  CHECK(f.run({"GET", "kv:ab:c"}) == Verdict::kReject);
  CHECK(f.reg.limiter().buckets() == 2);
}

}  // namespace
}  // namespace corral::policies::enginetest
