// The engine's rate limits: bursts and retry_after, buckets keyed by client, key and capture,
// shadow and audit, and bucket keys that stay small whatever the client sends.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"
#include "policies/engine.h"
#include "policies/engine_test_support.h"

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
  // A replayed request takes no token.
  f.clock.mono_ns += 100'000'000;
  CHECK(f.run({"GET", "user:1"}, true) == Verdict::kForward);
  CHECK(f.run({"GET", "user:1"}) == Verdict::kForward);
  CHECK(f.run({"GET", "user:1"}) == Verdict::kReject);
  LimitCounters* c = f.reg.limit("user-reads");
  CHECK(c->admitted.get() == 3);
  CHECK(c->rejected.get() == 2);
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

}  // namespace
}  // namespace corral::policies::enginetest
