// The engine end to end on argument vectors: command lists, naming, TTL rules, routing hints,
// compile errors, describeJson and metrics text.
#include "policies/engine.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"
#include "commands/overlay.h"
#include "policies/engine_test_support.h"

namespace corral::policies::enginetest {
namespace {

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

// Commands a newer server reports (commands/overlay.h), laid over the table for one test.
struct LearntCommands {
  std::unique_ptr<commands::Overlay> overlay;
  LearntCommands() {
    auto one = [](std::string name, int64_t arity, std::vector<std::string> flags, int64_t pos) {
      commands::CommandDesc d;
      d.name = std::move(name);
      d.arity = arity;
      d.flags = std::move(flags);
      d.has_key_specs = true;
      commands::KeySpecDesc k;
      k.begin = commands::KeySpecDesc::Begin::kIndex;
      k.index = pos;
      k.find = commands::KeySpecDesc::Find::kRange;
      d.key_specs.push_back(k);
      return d;
    };
    std::vector<commands::CommandDesc> cmds = {one("hexpire", -6, {"write", "denyoom", "fast"}, 1),
                                               one("httl", -5, {"readonly"}, 1)};
    // STREAMS-like keyword search: keys are the first half after the keyword.
    commands::CommandDesc x = one("xreadx", -4, {"readonly", "movablekeys"}, 1);
    x.key_specs[0].begin = commands::KeySpecDesc::Begin::kKeyword;
    x.key_specs[0].keyword = "STREAMS";
    x.key_specs[0].startfrom = 1;
    x.key_specs[0].lastkey = -1;
    x.key_specs[0].limit = 2;
    cmds.push_back(x);
    commands::CommandDesc object = one("object", -2, {}, 1);
    object.key_specs.clear();
    object.subcommands.push_back(one("object|newthing", 3, {"readonly"}, 2));
    cmds.push_back(object);
    commands::Overlay::Report report;
    overlay = commands::Overlay::build(cmds, &report);
    REQUIRE(report.learnt == 4);
    commands::setOverlay(overlay.get());
  }
  ~LearntCommands() { commands::setOverlay(nullptr); }
  LearntCommands(const LearntCommands&) = delete;
  LearntCommands& operator=(const LearntCommands&) = delete;
};

TEST_CASE("engine: commands learnt from the server meet the key policies and command lists") {
  LearntCommands learnt;
  PolicyConfig cfg = namingConfig();
  cfg.global.unmatched_keys = config::UnmatchedKeys::kReject;
  cfg.global.deny_commands = {"httl", "object"};
  auto writes = limit("writes", 1, 1000, 1);
  writes.commands = {"@write"};
  cfg.global.rate_limits.push_back(writes);
  Fixture f(cfg);
  CHECK(f.run({"HEXPIRE", "other:1", "100", "FIELDS", "1", "f"}) == Verdict::kReject);
  CHECK(f.d.error == "KEYNAME key 'other:1' matches no policy (global.unmatched_keys: reject)");
  CHECK(f.run({"hexpire", "user:x", "100", "FIELDS", "1", "f"}) == Verdict::kReject);
  CHECK(f.d.error == "KEYNAME user: key 'user:x' does not match user:<id:u64>");
  CHECK(f.run({"HEXPIRE", "user:1", "100", "FIELDS", "1", "f"}) == Verdict::kForward);
  REQUIRE(f.d.keys.size() == 1);
  CHECK(f.d.keys[0] == 1);
  // A learnt write counts against @write limits like any write.
  CHECK(f.run({"HEXPIRE", "user:1", "100", "FIELDS", "1", "f"}) == Verdict::kReject);
  CHECK(f.d.error.starts_with("RATELIMITED writes"));
  // Every key a keyword search finds is checked.
  CHECK(f.run({"XREADX", "STREAMS", "user:1", "user:2", "0", "0"}) == Verdict::kForward);
  CHECK(f.run({"XREADX", "STREAMS", "user:1", "stray", "0", "0"}) == Verdict::kReject);
  CHECK(f.d.error == "KEYNAME key 'stray' matches no policy (global.unmatched_keys: reject)");
  // Deny lists name learnt commands, and a listed container covers its learnt subcommands.
  CHECK(f.run({"HTTL", "user:1", "FIELDS", "1", "f"}) == Verdict::kReject);
  CHECK(f.d.error == "DENIED command 'httl' is denied by global.commands.deny");
  CHECK(f.run({"OBJECT", "NEWTHING", "user:1"}) == Verdict::kReject);
  CHECK(f.d.error == "DENIED command 'object|newthing' is denied by global.commands.deny");
}

TEST_CASE("engine: a learnt command is not a name rate limits or fills may resolve") {
  // Config must compile the same before the overlay is laid (startup) as after (a reload).
  LearntCommands learnt;
  PolicyConfig cfg;
  auto l = limit("l", 1, 1000, 1);
  l.commands = {"hexpire"};
  cfg.global.rate_limits.push_back(l);
  std::vector<config::ConfigError> errors;
  Registry reg;
  CHECK(PolicySet::compile(cfg, reg, &errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].format().find("unknown command 'hexpire'") != std::string::npos);
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

TEST_CASE("engine: a read's reply counts as a hit or a miss") {
  PolicyCounters c;
  const char* const hits[] = {"$1\r\nv\r\n", "$0\r\n\r\n", "*1\r\n$1\r\na\r\n",
                              "%1\r\n",      ":1\r\n",     "+OK\r\n"};
  const char* const misses[] = {"$-1\r\n", "*-1\r\n", "_\r\n", "*0\r\n", "%0\r\n", "~0\r\n"};
  const char* const neither[] = {"-ERR x\r\n", "!3\r\nerr\r\n", ""};
  for (const char* r : hits) c.countRead(r);
  CHECK(c.hits.get() == 6);
  CHECK(c.misses.get() == 0);
  for (const char* r : misses) c.countRead(r);
  CHECK(c.hits.get() == 6);
  CHECK(c.misses.get() == 6);
  for (const char* r : neither) c.countRead(r);
  CHECK(c.hits.get() == 6);
  CHECK(c.misses.get() == 6);
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
  // Near cache families list only the policies a worker made a near store for.
  CHECK(m.find("corral_policy_near_total{") == std::string::npos);
  PolicyCounters* c = f.reg.policy("user");
  c->near_used = true;
  c->near_hits.add(9);
  c->near_misses.add(3);
  c->near_evictions.add(2);
  c->near_bytes += 1500;
  m.clear();
  f.reg.appendMetrics(m);
  CHECK(m.find("corral_policy_near_total{policy=\"user\",event=\"hit\"} 9\n") != std::string::npos);
  CHECK(m.find("corral_policy_near_total{policy=\"user\",event=\"miss\"} 3\n") !=
        std::string::npos);
  CHECK(m.find("corral_policy_near_total{policy=\"user\",event=\"invalidation\"} 0\n") !=
        std::string::npos);
  CHECK(m.find("corral_policy_near_total{policy=\"user\",event=\"eviction\"} 2\n") !=
        std::string::npos);
  CHECK(m.find("corral_policy_near_bytes{policy=\"user\"} 1500\n") != std::string::npos);
  CHECK(m.find("corral_policy_near_hit_ratio{policy=\"user\"} 0.7500\n") != std::string::npos);
}

}  // namespace
}  // namespace corral::policies::enginetest
