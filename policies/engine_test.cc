// The engine end to end on argument vectors: compile a PolicyConfig, decide requests with a
// fake clock and random, check verdicts, rewrites, follow-ups, routing hints and counters.
#include "policies/engine.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "commands/command_table.h"

namespace corral::policies {
namespace {

using config::PolicyConfig;
using config::PolicySpec;
using config::RateLimitSpec;
using Verdict = Decision::Verdict;

struct FakeClock final : Clock {
  int64_t mono_ns = 1'000'000'000;
  int64_t unix_ms = 1'700'000'000'000;
  int64_t monoNs() const override { return mono_ns; }
  int64_t unixMs() const override { return unix_ms; }
};

struct FakeRandom final : Random {
  double value = 0.0;
  double uniform() override { return value; }
};

PolicySpec policy(std::string name, std::string match) {
  PolicySpec p;
  p.name = std::move(name);
  p.match = std::move(match);
  p.where = {"test.yaml", 10, 3};
  p.match_where = {"test.yaml", 11, 12};
  return p;
}

RateLimitSpec limit(std::string name, uint64_t count, int64_t period_ms, uint64_t burst) {
  RateLimitSpec l;
  l.name = std::move(name);
  l.count = count;
  l.period = config::Millis(period_ms);
  l.burst = burst;
  l.where = {"test.yaml", 20, 5};
  return l;
}

// Compiles cfg (CHECK that it compiles) and decides requests.
struct Fixture {
  Registry reg;
  FakeClock clock;
  FakeRandom random;
  std::shared_ptr<const PolicySet> set;
  Decision d;
  std::string client = "10.0.0.1";

  explicit Fixture(const PolicyConfig& cfg) {
    std::vector<config::ConfigError> errors;
    set = PolicySet::compile(cfg, reg, &errors);
    for (const auto& e : errors) MESSAGE(e.format());
    REQUIRE(set != nullptr);
  }

  Verdict run(std::vector<std::string_view> args, bool replay = false) {
    RequestContext ctx;
    ctx.client = client;
    ctx.clock = &clock;
    ctx.random = &random;
    ctx.replay = replay;
    const commands::CommandInfo* cmd = commands::lookup(args);
    set->decide(cmd, args, ctx, reg, d);
    return d.verdict;
  }
};

PolicyConfig namingConfig() {
  PolicyConfig cfg;
  cfg.policies.push_back(policy("user", "user:<id:u64>"));
  auto sess = policy("sess", "sess:<sid:hex{32,64}>");
  sess.mode = config::PolicyMode::kAudit;
  cfg.policies.push_back(sess);
  auto off = policy("legacy", "legacy:<rest:rest>");
  off.mode = config::PolicyMode::kOff;
  cfg.policies.push_back(off);
  return cfg;
}

TEST_CASE("engine: an empty config is trivial and forwards everything") {
  Fixture f(PolicyConfig{});
  CHECK(f.set->trivial());
  CHECK(f.run({"SET", "anything", "v"}) == Verdict::kForward);
  CHECK(f.d.ttl_followups.empty());
}

TEST_CASE("engine: naming violations are refused in enforce and counted in audit") {
  Fixture f(namingConfig());
  CHECK_FALSE(f.set->trivial());
  CHECK(f.run({"GET", "user:42"}) == Verdict::kForward);
  CHECK(f.d.audit.empty());
  CHECK(f.run({"GET", "user:abc"}) == Verdict::kReject);
  CHECK(f.d.error == "KEYNAME user: key 'user:abc' does not match user:<id:u64>");
  // Every key of a multi-key command is checked: the second one breaks the template.
  CHECK(f.run({"MGET", "user:1", "user:x1"}) == Verdict::kReject);
  CHECK(f.d.error == "KEYNAME user: key 'user:x1' does not match user:<id:u64>");
  CHECK(f.run({"DEL", "user:1", "user:2"}) == Verdict::kForward);
  PolicyCounters* user = f.reg.policy("user");
  CHECK(user->naming_rejected.get() == 2);
  CHECK(user->requests.get() == 2);  // GET user:42 and DEL (once for two keys)

  // audit: forwarded unchanged, counted.
  CHECK(f.run({"GET", "sess:nothex"}) == Verdict::kForward);
  CHECK(f.reg.policy("sess")->naming_audited.get() == 1);
  CHECK(f.d.audit ==
        "policy sess (mode audit) would refuse key 'sess:nothex': does not match "
        "sess:<sid:hex{32,64}>");
  CHECK(f.reg.policy("sess")->naming_rejected.get() == 0);
  // off: nothing at all.
  CHECK(f.run({"GET", "legacy:whatever"}) == Verdict::kForward);
  CHECK(f.reg.policy("legacy")->requests.get() == 0);
  // Unmatched keys are allowed by default.
  CHECK(f.run({"GET", "other"}) == Verdict::kForward);
  // Control bytes in a key are escaped so the error stays one line.
  CHECK(f.run({"GET", std::string_view("user:\r\n", 7)}) == Verdict::kReject);
  CHECK(f.d.error == "KEYNAME user: key 'user:\\x0d\\x0a' does not match user:<id:u64>");
}

TEST_CASE("engine: naming.max_key_bytes") {
  PolicyConfig cfg;
  auto p = policy("blob", "blob:<rest:rest>");
  p.max_key_bytes = 10;
  cfg.policies.push_back(p);
  Fixture f(cfg);
  CHECK(f.run({"GET", "blob:12345"}) == Verdict::kForward);
  CHECK(f.run({"GET", "blob:123456"}) == Verdict::kReject);
  CHECK(f.d.error == "KEYNAME blob: key 'blob:123456' is longer than naming.max_key_bytes (10)");
}

TEST_CASE("engine: global.unmatched_keys allow, audit, reject") {
  PolicyConfig cfg = namingConfig();
  cfg.global.unmatched_keys = config::UnmatchedKeys::kReject;
  {
    Fixture f(cfg);
    CHECK(f.run({"SET", "stray", "v"}) == Verdict::kReject);
    CHECK(f.d.error == "KEYNAME key 'stray' matches no policy (global.unmatched_keys: reject)");
    CHECK(f.reg.unmatched_rejected.get() == 1);
    CHECK(f.run({"PING"}) == Verdict::kForward);  // no keys, nothing to check
  }
  cfg.global.unmatched_keys = config::UnmatchedKeys::kAudit;
  {
    Fixture f(cfg);
    CHECK(f.run({"SET", "stray", "v"}) == Verdict::kForward);
    CHECK(f.reg.unmatched_audited.get() == 1);
  }
}

TEST_CASE("engine: global.commands deny and audit") {
  PolicyConfig cfg;
  cfg.global.deny_commands = {"flushall", "config|set", "debug"};
  cfg.global.audit_commands = {"keys"};
  Fixture f(cfg);
  CHECK(f.run({"flushall"}) == Verdict::kReject);
  CHECK(f.d.error == "DENIED command 'flushall' is denied by global.commands.deny");
  CHECK(f.run({"CONFIG", "SET", "maxmemory", "1"}) == Verdict::kReject);
  CHECK(f.d.error == "DENIED command 'config|set' is denied by global.commands.deny");
  CHECK(f.run({"CONFIG", "GET", "maxmemory"}) == Verdict::kForward);
  CHECK(f.run({"DEBUG", "SLEEP", "0"}) == Verdict::kReject);  // a subcommand of a denied one
  CHECK(f.reg.denied.get() == 3);
  CHECK(f.run({"KEYS", "*"}) == Verdict::kForward);
  CHECK(f.reg.command_audit.get() == 1);
}

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

TEST_CASE("engine: TTL rules rewrite SET, add follow-ups and refuse") {
  PolicyConfig cfg;
  auto cache = policy("cache", "cache:<id:u64>");
  cache.ttl.default_ttl = config::Millis(60000);
  cache.ttl.max = config::Millis(3600000);
  cache.ttl.jitter = 0.1;
  cfg.policies.push_back(cache);
  auto sess = policy("sess", "sess:<id:u64>");
  sess.ttl.default_ttl = config::Millis(1000);
  sess.ttl.require = true;
  sess.ttl.on_violation = config::TtlOnViolation::kReject;
  cfg.policies.push_back(sess);
  Fixture f(cfg);
  f.random.value = 0.5;  // jitter takes 5%: 57000 ms
  CHECK(f.run({"SET", "cache:1", "v"}) == Verdict::kRewrite);
  CHECK(f.d.args == std::vector<std::string_view>{"SET", "cache:1", "v", "PX", "57000"});
  CHECK(f.reg.policy("cache")->ttl_fixed.get() == 1);
  CHECK(f.run({"SET", "cache:1", "v", "EX", "99999"}) == Verdict::kRewrite);
  // clamped to max, then jittered (5%): 3420000
  CHECK(f.d.args == std::vector<std::string_view>{"SET", "cache:1", "v", "PX", "3420000"});
  CHECK(f.run({"GET", "cache:1"}) == Verdict::kForward);
  CHECK(f.d.hitmiss == f.reg.policy("cache"));

  // require + reject: PERSIST and a SET without TTL are refused.
  CHECK(f.run({"PERSIST", "sess:1"}) == Verdict::kReject);
  CHECK(f.d.error.starts_with("TTL sess: "));
  CHECK(f.run({"SET", "sess:1", "v"}) == Verdict::kReject);
  CHECK(f.reg.policy("sess")->ttl_rejected.get() == 2);
}

TEST_CASE("engine: type writes on a require policy get a follow-up PEXPIRE") {
  PolicyConfig cfg;
  auto p = policy("profile", "profile:<id:u64>");
  p.ttl.default_ttl = config::Millis(10000);
  p.ttl.require = true;
  p.ttl.jitter = 0;
  cfg.policies.push_back(p);
  Fixture f(cfg);
  CHECK(f.run({"HSET", "profile:7", "name", "ada"}) == Verdict::kForward);
  // Ready to send: RESP bytes of PEXPIRE <key> <ms> NX.
  REQUIRE(f.d.ttl_followups.size() == 1);
  CHECK(f.d.ttl_followups.command(0) ==
        "*4\r\n$7\r\nPEXPIRE\r\n$9\r\nprofile:7\r\n$5\r\n10000\r\n$2\r\nNX\r\n");
  CHECK(f.d.lease_deletes.empty());
  CHECK(f.run({"HDEL", "profile:7", "name"}) == Verdict::kForward);
  CHECK(f.d.ttl_followups.empty());
}

TEST_CASE("engine: routing hints and read-your-writes window") {
  PolicyConfig cfg;
  auto p = policy("feed", "feed:<id:u64>");
  p.routing.read_from = config::PolicyReadFrom::kReplica;
  p.routing.read_your_writes = config::Millis(2000);
  cfg.policies.push_back(p);
  Fixture f(cfg);
  f.run({"GET", "feed:1"});
  CHECK(f.d.has_read_from);
  CHECK(f.d.read_from == config::PolicyReadFrom::kReplica);
  CHECK(f.d.read_your_writes_ms == 2000);
  CHECK(f.d.ryw_key == "feed:1");
  f.run({"SET", "feed:1", "x"});
  CHECK_FALSE(f.d.has_read_from);  // writes always go to the primary
  CHECK(f.d.read_your_writes_ms == 2000);
  f.run({"GET", "other"});
  CHECK_FALSE(f.d.has_read_from);
}

TEST_CASE("engine: compile errors carry file:line:col") {
  Registry reg;
  std::vector<config::ConfigError> errors;
  PolicyConfig bad;
  bad.policies.push_back(policy("a", "user:<id:u46>"));
  CHECK(PolicySet::compile(bad, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  // Key paths as the loader writes them; a config built in code has none, so the index stands in.
  CHECK(errors[0].format().starts_with("test.yaml:11:12: policies[0].match: "));
  CHECK(errors[0].format().ends_with(" (got user:<id:u46>)"));

  errors.clear();
  PolicyConfig amb;
  amb.policies.push_back(policy("a", "user:<id:u64>"));
  amb.policies.push_back(policy("b", "user:<name:seg>"));
  amb.policies.back().match_where = {"other.yaml", 4, 10};
  amb.policies.back().path = "policies[3]";  // the loader's path wins over the index
  CHECK(PolicySet::compile(amb, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].format() ==
        "other.yaml:4:10: policies[3].match: ambiguous: 'user:<name:seg>' and 'user:<id:u64>' "
        "(policy a at test.yaml:11:12) can match the same key at equal precedence; give one of "
        "them a priority");
  // A priority settles it.
  errors.clear();
  amb.policies.back().priority = 1;
  CHECK(PolicySet::compile(amb, reg, &errors) != nullptr);
  CHECK(errors.empty());

  errors.clear();
  PolicyConfig cap;
  cap.policies.push_back(policy("c", "cart:<uid:u64>"));
  auto l = limit("l", 1, 1000, 1);
  l.key_by = {config::KeyByPart{config::KeyByPart::Kind::kCapture, "user"}};
  l.commands = {"nosuchcommand"};
  cap.policies.back().rate_limits.push_back(l);
  CHECK(PolicySet::compile(cap, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].format() ==
        "test.yaml:20:5: policies[0].rate_limits[0].commands: unknown command 'nosuchcommand'");
  CHECK(errors[1].format() ==
        "test.yaml:20:5: policies[0].rate_limits[0].key_by: capture 'user' is not a placeholder of "
        "cart:<uid:u64>");
}

TEST_CASE("engine: describeJson lists what is in force") {
  PolicyConfig cfg = namingConfig();
  cfg.global.deny_commands = {"flushall"};
  cfg.files = {"/etc/corral/policies/a.yaml"};
  Fixture f(cfg);
  const std::string j = f.set->describeJson();
  CHECK(j.find("\"name\":\"user\",\"match\":\"user:<id:u64>\",\"literal_prefix\":\"user:\"") !=
        std::string::npos);
  CHECK(j.find("\"mode\":\"audit\"") != std::string::npos);
  CHECK(j.find("\"deny\":[\"flushall\"]") != std::string::npos);
  CHECK(j.find("\"files\":[\"/etc/corral/policies/a.yaml\"]") != std::string::npos);
}

TEST_CASE("engine: metrics text names every policy and limit") {
  PolicyConfig cfg;
  auto p = policy("user", "user:<id:u64>");
  p.rate_limits.push_back(limit("l1", 1, 1000, 1));
  cfg.policies.push_back(p);
  Fixture f(cfg);
  f.run({"GET", "user:x"});
  f.run({"GET", "user:1"});
  f.run({"GET", "user:1"});
  std::string m;
  f.reg.appendMetrics(m);
  CHECK(m.find("corral_policy_naming_violations_total{policy=\"user\",action=\"rejected\"} 1\n") !=
        std::string::npos);
  CHECK(m.find("corral_ratelimit_requests_total{limit=\"l1\",result=\"rejected\"} 1\n") !=
        std::string::npos);
  CHECK(m.find("corral_ratelimit_requests_total{limit=\"l1\",result=\"admitted\"} 1\n") !=
        std::string::npos);
}

}  // namespace
}  // namespace corral::policies

namespace corral::policies {
namespace {

PolicyConfig fillConfig() {
  PolicyConfig cfg;
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
  const std::string lease = fillKeys("user:7:card").lease;
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

}  // namespace
}  // namespace corral::policies

namespace corral::policies {
namespace {

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

}  // namespace
}  // namespace corral::policies

namespace corral::policies {
namespace {

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

}  // namespace
}  // namespace corral::policies

namespace corral::policies {
namespace {

TEST_CASE("engine: fill.commands beyond GET and MGET are refused") {
  PolicyConfig cfg = fillConfig();
  cfg.policies[0].fill.commands = {"get", "hgetall"};
  Registry reg;
  std::vector<config::ConfigError> errors;
  CHECK(PolicySet::compile(cfg, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message ==
        "filling on hgetall is not supported by this version of corral yet (GET and MGET are)");
}

}  // namespace
}  // namespace corral::policies
