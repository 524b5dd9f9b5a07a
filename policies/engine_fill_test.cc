// The engine's fill planning: fill settings with their defaults, the fill plan of GET and MGET,
// revocations and lease deletions of writes, reserved keys and fill compile errors.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"
#include "policies/engine.h"
#include "policies/engine_test_support.h"

namespace corral::policies::enginetest {
namespace {

constexpr std::string_view kSecret = "a-deployment-secret-0123456789";

PolicyConfig fillConfig() {
  PolicyConfig cfg;
  cfg.global.fill_secret = kSecret;
  config::OriginSpec o;
  o.name = "users";
  o.base_url = "http://127.0.0.1:8080";
  o.timeout = config::Millis(300);
  cfg.origins.push_back(o);
  auto p = policy("user", "user:<id:u64>:<part:enum(card|full)>");
  p.ttl.default_ttl = config::Millis(60000);
  p.fill.origin = "users";
  p.fill.path = "/v1/users/<id>?view=<part>";
  p.negative_ttl = config::Millis(5000);
  p.stampede.single_flight = config::SingleFlight::kDistributed;
  cfg.policies.push_back(p);
  return cfg;
}

TEST_CASE("engine: fill policies resolve their defaults and mark GETs") {
  Fixture f(fillConfig());
  CHECK(f.run({"GET", "user:7:card"}) == Verdict::kForward);
  const FillPlan& plan = f.d.fill;
  REQUIRE(plan.policy != nullptr);
  CHECK(plan.policy->origin_name == "users");
  CHECK(plan.policy->ttl_ms == 60000);
  CHECK(plan.policy->negative_ttl_ms == 5000);
  CHECK(plan.policy->single_flight == config::SingleFlight::kDistributed);
  CHECK(plan.policy->lock_ttl_ms == 600);  // 2 x origin timeout
  CHECK(plan.policy->wait_ms == 600);      // = lock_ttl
  CHECK(plan.key == "user:7:card");
  CHECK(plan.path == "/v1/users/7?view=card");
  CHECK_FALSE(plan.with_pttl);
  CHECK(plan.request.empty());
  CHECK(plan.items().empty());
  CHECK(f.d.revoke.empty());
  CHECK(f.d.lease_deletes.empty());
  // Only GET fills (fill.commands defaults to [GET]); MGET does not.
  CHECK(f.run({"MGET", "user:7:card"}) == Verdict::kForward);
  CHECK(f.d.fill.empty());
  // A write revokes fills of its keys; distributed: the lease is deleted too.
  CHECK(f.run({"SET", "user:7:card", "v"}) == Verdict::kRewrite);
  CHECK(f.d.revoke == std::vector<std::string_view>{"user:7:card"});
  REQUIRE(f.d.lease_deletes.size() == 1);
  const std::string lease = FillKeyNames(kSecret).keys("user:7:card").lease;
  CHECK(f.d.lease_deletes.command(0) ==
        "*2\r\n$3\r\nDEL\r\n$" + std::to_string(lease.size()) + "\r\n" + lease + "\r\n");
  CHECK(f.d.fill.empty());
  CHECK(f.run({"DEL", "user:7:card", "other"}) == Verdict::kForward);
  CHECK(f.d.revoke.size() == 1);
  CHECK(f.d.lease_deletes.size() == 1);
}

TEST_CASE("engine: corral's internal keys are out of reach") {
  Fixture f(fillConfig());
  CHECK(f.run({"GET", "__corral:lease:{user:1:card}"}) == Verdict::kReject);
  CHECK(f.d.error ==
        "KEYNAME key '__corral:lease:{user:1:card}' is in corral's reserved prefix __corral:");
  CHECK(f.run({"DEL", "a", "__corral:neg:{a}"}) == Verdict::kReject);
  CHECK(f.run({"GET", "__corral"}) == Verdict::kForward);  // not the prefix
}

TEST_CASE("engine: fill compile errors") {
  Registry reg;
  std::vector<config::ConfigError> errors;
  PolicyConfig no_origin = fillConfig();
  no_origin.policies[0].fill.origin = "nope";
  CHECK(PolicySet::compile(no_origin, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].format() ==
        "test.yaml:10:3: policies[0].fill.origin: no origin named 'nope' in origins");

  errors.clear();
  PolicyConfig no_ttl = fillConfig();
  no_ttl.policies[0].ttl.default_ttl.reset();
  CHECK(PolicySet::compile(no_ttl, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "a policy with fill needs ttl.default (the TTL of filled values)");

  errors.clear();
  PolicyConfig bad_path = fillConfig();
  bad_path.policies[0].fill.path = "/v1/users/<uid>";
  CHECK(PolicySet::compile(bad_path, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "<uid> is not a placeholder of user:<id:u64>:<part:enum(card|full)>");
}

TEST_CASE("engine: ttl.from_origin and its clamps reach the fill policy; it needs fill") {
  PolicyConfig cfg = fillConfig();
  cfg.policies[0].ttl.from_origin = true;
  cfg.policies[0].ttl.min = config::Millis(2000);
  cfg.policies[0].ttl.max = config::Millis(300000);
  {
    Fixture f(cfg);
    CHECK(f.run({"GET", "user:7:card"}) == Verdict::kForward);
    REQUIRE(f.d.fill.policy != nullptr);
    CHECK(f.d.fill.policy->ttl_from_origin);
    CHECK(f.d.fill.policy->ttl_min_ms == 2000);
    CHECK(f.d.fill.policy->ttl_max_ms == 300000);
    CHECK(f.d.fill.policy->ttl_ms == 60000);
    // The hit reads the value's windows beside it: EVAL <script> 2 <key> <meta key>.
    CHECK(f.d.fill.with_pttl);
    const std::string meta = FillKeyNames(kSecret).keys("user:7:card").meta;
    CHECK(meta.rfind("__corral:val:{user:7:card}:", 0) == 0);
    const std::string script(kGetWithPttlWindowsScript);
    CHECK(f.d.fill.request == "*5\r\n$4\r\nEVAL\r\n$" + std::to_string(script.size()) + "\r\n" +
                                  script + "\r\n$1\r\n2\r\n$11\r\nuser:7:card\r\n$" +
                                  std::to_string(meta.size()) + "\r\n" + meta + "\r\n");
    // A client write deletes the lease and the meta key (its validator is not the client's).
    CHECK(f.run({"SET", "user:7:card", "v"}) == Verdict::kRewrite);
    REQUIRE(f.d.lease_deletes.size() == 2);
    CHECK(f.d.lease_deletes.command(1) ==
          "*2\r\n$3\r\nDEL\r\n$" + std::to_string(meta.size()) + "\r\n" + meta + "\r\n");
  }
  Registry reg;
  std::vector<config::ConfigError> errors;
  cfg.policies[0].fill.origin.clear();
  CHECK(PolicySet::compile(cfg, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].format() ==
        "test.yaml:10:3: policies[0].ttl.from_origin: needs fill: the TTL comes from the answers "
        "of the policy's fill origin");
}

TEST_CASE("engine: a client SET under a fill policy with a freshness window gets the window") {
  PolicyConfig cfg = fillConfig();
  cfg.policies[0].ttl.jitter = 0;
  cfg.policies[0].freshness.stale_while_revalidate = config::Millis(30000);
  cfg.policies[0].freshness.stale_if_error = config::Millis(10000);
  Fixture f(cfg);
  CHECK(f.run({"SET", "user:1:full", "v"}) == Verdict::kRewrite);
  CHECK(f.d.args == std::vector<std::string_view>{"SET", "user:1:full", "v", "PX", "90000"});
  CHECK(f.run({"GET", "user:1:full"}) == Verdict::kForward);
  // Freshness needs the PTTL: the plan carries the request to send instead of the GET.
  CHECK(f.d.fill.with_pttl);
  const std::string script(kGetWithPttlScript);
  CHECK(f.d.fill.request == "*4\r\n$4\r\nEVAL\r\n$" + std::to_string(script.size()) + "\r\n" +
                                script + "\r\n$1\r\n1\r\n$11\r\nuser:1:full\r\n");
  // EVAL naming the key revokes its fills; EVAL_RO cannot write and does not.
  CHECK(f.run({"EVAL", "return 1", "1", "user:1:full"}) == Verdict::kForward);
  CHECK(f.d.revoke.size() == 1);
  CHECK(f.run({"EVAL_RO", "return 1", "1", "user:1:full"}) == Verdict::kForward);
  CHECK(f.d.revoke.empty());
}

TEST_CASE("engine: MGET lists the keys whose policies fill on MGET") {
  PolicyConfig cfg = fillConfig();
  Fixture get_only(cfg);
  CHECK(get_only.run({"MGET", "user:1:card", "user:2:full"}) == Verdict::kForward);
  CHECK(get_only.d.fill.empty());
  cfg.policies[0].fill.commands = {"get", "mget"};
  Fixture f(cfg);
  CHECK(f.run({"MGET", "x", "user:1:card", "user:2:full"}) == Verdict::kForward);
  CHECK(f.d.fill.policy == nullptr);
  const auto items = f.d.fill.items();
  REQUIRE(items.size() == 2);
  CHECK(items[0].pos == 1);
  CHECK(items[0].key == "user:1:card");
  CHECK(items[0].path == "/v1/users/1?view=card");
  CHECK(items[1].pos == 2);
  CHECK(items[1].path == "/v1/users/2?view=full");
  CHECK(f.run({"GET", "user:1:card"}) == Verdict::kForward);
  CHECK(f.d.fill.items().empty());
  CHECK(f.d.fill.policy != nullptr);
  // The items' strings are reused by the next MGET.
  CHECK(f.run({"MGET", "user:3:full"}) == Verdict::kForward);
  REQUIRE(f.d.fill.items().size() == 1);
  CHECK(f.d.fill.items()[0].key == "user:3:full");
  CHECK(f.d.fill.items()[0].path == "/v1/users/3?view=full");
}

TEST_CASE("engine: fill.commands GETEX is refused") {
  PolicyConfig cfg = fillConfig();
  cfg.policies[0].fill.commands = {"get", "getex"};
  Registry reg;
  std::vector<config::ConfigError> errors;
  CHECK(PolicySet::compile(cfg, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message ==
        "filling on getex is not supported by this version of corral yet (GET, MGET, HGETALL "
        "and HGET are)");
}

TEST_CASE("engine: a reused Decision carries nothing over") {
  PolicyConfig cfg = fillConfig();
  cfg.policies[0].ttl.require = true;
  cfg.policies[0].freshness.stale_while_revalidate = config::Millis(1000);
  cfg.policies[0].fill.commands = {"get", "mget"};
  auto audited = policy("aud", "aud:<id:u64>");
  audited.mode = config::PolicyMode::kAudit;
  audited.max_key_bytes = 5;
  cfg.policies.push_back(audited);
  auto plain = policy("prof", "prof:<id:u64>");  // TTL rules, no fill
  plain.ttl.default_ttl = config::Millis(1000);
  plain.ttl.require = true;
  cfg.policies.push_back(plain);
  Fixture f(cfg);
  auto checkClean = [&f] {
    CHECK(f.d.verdict == Verdict::kForward);
    CHECK(f.d.error.empty());
    CHECK(f.d.args.empty());
    CHECK(f.d.append_from == 0);
    CHECK(f.d.ttl_followups.empty());
    CHECK(f.d.lease_deletes.empty());
    CHECK(f.d.revoke.empty());
    CHECK(f.d.fill.empty());
    CHECK(f.d.fill.key.empty());
    CHECK(f.d.fill.request.empty());
    CHECK(f.d.audit.empty());
  };
  const std::vector<std::vector<std::string_view>> requests = {
      {"GET", "nope"},                         // unmatched: allowed, nothing
      {"GET", "user:1:nope"},                  // naming violation: refused
      {"SET", "user:1:card", "v"},             // rewritten (PX), revokes, deletes the lease
      {"HSET", "user:1:card", "f", "v"},       // follow-up PEXPIRE, revokes
      {"HSET", "prof:1", "f", "v"},            // follow-up PEXPIRE only
      {"GET", "user:1:card"},                  // fill plan with GET+PTTL
      {"MGET", "user:1:card", "user:2:full"},  // MGET items
      {"GET", "aud:123456"},                   // audit line
  };
  for (const auto& req : requests) {
    f.run(req);
    CHECK(f.run({"PING"}) == Verdict::kForward);
    checkClean();
  }
}

TEST_CASE("engine: a fill's origin path keeps the key from moving it (defect 12a)") {
  PolicyConfig cfg = fillConfig();
  auto items = policy("item", "item:<id:seg>");
  items.ttl.default_ttl = config::Millis(1000);
  items.fill.origin = "users";
  items.fill.path = "/v1/items/<id>";
  items.fill.commands = {"get", "mget"};
  cfg.policies.push_back(items);
  Fixture f(cfg);
  CHECK(f.run({"GET", "item:.."}) == Verdict::kForward);
  CHECK(f.d.fill.path == "/v1/items/%2E%2E");
  CHECK(f.run({"GET", "item:."}) == Verdict::kForward);
  CHECK(f.d.fill.path == "/v1/items/%2E");
  CHECK(f.run({"MGET", "item:..", "item:a/b"}) == Verdict::kForward);
  REQUIRE(f.d.fill.items().size() == 2);
  CHECK(f.d.fill.items()[0].path == "/v1/items/%2E%2E");
  CHECK(f.d.fill.items()[1].path == "/v1/items/a%2Fb");
}

TEST_CASE("engine: distributed fills need the deployment's secret; others use the process's") {
  PolicyConfig cfg = fillConfig();
  cfg.global.fill_secret.clear();
  Registry reg;
  std::vector<config::ConfigError> errors;
  CHECK(PolicySet::compile(cfg, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].format() ==
        "test.yaml:10:3: policies[0].stampede.single_flight: distributed needs global.fill_secret "
        "or global.fill_secret_env, one secret shared by every corral of the deployment");

  // A local fill policy compiles without one: its names are this process's.
  cfg.policies[0].stampede.single_flight = config::SingleFlight::kLocal;
  Fixture local(cfg);
  CHECK(local.run({"GET", "user:7:card"}) == Verdict::kForward);
  REQUIRE(local.d.fill.policy != nullptr);
  CHECK(local.d.fill.policy->names.keys("user:7:card").lease ==
        FillKeyNames::processDefault().keys("user:7:card").lease);

  // With the secret, a write's lease deletion names the lease under it.
  Fixture f(fillConfig());
  CHECK(f.run({"DEL", "user:7:card"}) == Verdict::kForward);
  REQUIRE(f.d.lease_deletes.size() == 1);
  const std::string lease = FillKeyNames(kSecret).keys("user:7:card").lease;
  CHECK(f.d.lease_deletes.command(0).find(lease) != std::string_view::npos);
  CHECK(f.d.lease_deletes.command(0).find(
            FillKeyNames::processDefault().keys("user:7:card").lease) == std::string_view::npos);
}

}  // namespace
}  // namespace corral::policies::enginetest
