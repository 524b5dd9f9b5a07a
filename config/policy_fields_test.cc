// Every policy field: a file with all of them into exact values, and each rule with its error
// (policy_fields.cc).
#include <doctest/doctest.h>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

// Every section of docs/policies.md in one file, with two policies and every policy field written
// once.
constexpr const char* kPolicyExample = R"(listen: [127.0.0.1:6380]
workers: 1
upstream:
  primary: 127.0.0.1:6379
  replicas: [127.0.0.1:6381]
  read_from: primary
admin: {listen: 127.0.0.1:9121}
origins:
  users: {base_url: "http://127.0.0.1:8080", timeout: 300ms, max_in_flight: 64}
  catalog: {base_url: "HTTP://catalog.internal/api/v2/"}
global:
  unmatched_keys: audit
  commands: {deny: [FLUSHALL, FLUSHDB, KEYS, DEBUG], audit: [SCAN, config|set]}
  rate_limits:
    - {name: per_client, rate: 1000/s, key_by: [client, key]}
defaults: {ttl: {jitter: 10%}}
policies:
  - name: users
    match: "user:<id:int>"
    mode: enforce
    priority: 5
    naming: {max_key_bytes: 1KiB}
    ttl: {default: 10m, min: 1m, max: 1h, require: true, on_violation: fix, jitter: 0.2,
          jitter_client: true, from_origin: true}
    fill: {origin: users, path: "/v1/users/<id>", commands: [GET, mget], on_error: error,
           max_value_bytes: 1MiB, decode: {json-field: profile}}
    negative: {ttl: 30s}
    stampede: {single_flight: distributed, lock_ttl: 2s, wait: 500ms}
    freshness: {stale_while_revalidate: 30s, stale_if_error: 5m, early_refresh: xfetch,
                early_refresh_beta: 1.5}
    routing: {read_from: prefer_replica, read_your_writes: 2s}
    rate_limits:
      - name: user_writes
        rate: 5/250ms
        burst: 20
        commands: [SET, "@write", CLIENT|KILL]
        key_by: [client, "capture:id", policy, command]
        scope: local
        on_limit: shadow
  - {name: sessions, match: "glob:sess:*", mode: audit}
)";

TEST_CASE("policies: a file with every policy field parses into exact values") {
  Config c = mustLoad(kPolicyExample);
  const PolicyConfig& pc = c.policy;
  CHECK(pc.files.empty());  // the main file is not listed

  REQUIRE(pc.origins.size() == 2);
  CHECK(pc.origins[0].name == "users");
  CHECK(pc.origins[0].base_url == "http://127.0.0.1:8080");
  CHECK(pc.origins[0].timeout == Millis{300});
  CHECK(pc.origins[0].max_in_flight == 64);
  CHECK(pc.origins[0].where.file == "t.yaml");
  CHECK(pc.origins[0].where.line == 9);
  CHECK(pc.origins[0].where.col == 10);
  CHECK(pc.origins[1].name == "catalog");
  CHECK(pc.origins[1].base_url == "http://catalog.internal/api/v2");  // scheme lowered, no '/'
  CHECK(pc.origins[1].timeout == Millis{1000});                       // defaults
  CHECK(pc.origins[1].max_in_flight == 64);

  CHECK(pc.global.unmatched_keys == UnmatchedKeys::kAudit);
  CHECK(pc.global.deny_commands ==
        std::vector<std::string>{"flushall", "flushdb", "keys", "debug"});
  CHECK(pc.global.audit_commands == std::vector<std::string>{"scan", "config|set"});
  REQUIRE(pc.global.rate_limits.size() == 1);
  const RateLimitSpec& g = pc.global.rate_limits[0];
  CHECK(g.name == "per_client");
  CHECK(g.count == 1000);
  CHECK(g.period == Millis{1000});
  CHECK(g.burst == 1000);  // default: the count
  CHECK(g.commands.empty());
  REQUIRE(g.key_by.size() == 2);
  CHECK(g.key_by[0].kind == KeyByPart::Kind::kClient);
  CHECK(g.key_by[1].kind == KeyByPart::Kind::kKey);
  CHECK(g.scope == LimitScope::kLocal);
  CHECK(g.on_limit == OnLimit::kReject);
  CHECK(g.where.line == 15);
  CHECK(g.where.col == 7);

  REQUIRE(pc.policies.size() == 2);
  const PolicySpec& u = pc.policies[0];
  CHECK(u.name == "users");
  CHECK(u.match == "user:<id:int>");
  CHECK(u.where.file == "t.yaml");
  CHECK(u.where.line == 18);
  CHECK(u.where.col == 5);
  CHECK(u.match_where.file == "t.yaml");
  CHECK(u.match_where.line == 19);
  CHECK(u.match_where.col == 12);
  CHECK(u.mode == PolicyMode::kEnforce);
  CHECK(u.priority == 5);
  CHECK(u.max_key_bytes == 1024);
  REQUIRE(u.ttl.default_ttl.has_value());
  CHECK(*u.ttl.default_ttl == Millis{600000});
  CHECK(u.ttl.min == Millis{60000});
  CHECK(u.ttl.max == Millis{3600000});
  CHECK(u.ttl.require);
  CHECK(u.ttl.on_violation == TtlOnViolation::kFix);
  CHECK(u.ttl.jitter == doctest::Approx(0.2));  // the policy's own, over the defaults' 10%
  CHECK(u.ttl.jitter_client);
  CHECK(u.ttl.from_origin);
  CHECK(u.fill.origin == "users");
  CHECK(u.fill.path == "/v1/users/<id>");
  CHECK(u.fill.commands == std::vector<std::string>{"get", "mget"});
  CHECK(u.fill.on_error == FillOnError::kError);
  CHECK(u.fill.max_value_bytes == uint64_t{1} << 20);
  CHECK(u.fill.decode == FillDecodeKind::kJsonField);
  CHECK(u.fill.decode_field == "profile");
  CHECK(u.negative_ttl == Millis{30000});
  CHECK(u.stampede.single_flight == SingleFlight::kDistributed);
  CHECK(u.stampede.lock_ttl == Millis{2000});
  CHECK(u.stampede.wait == Millis{500});
  CHECK(u.freshness.stale_while_revalidate == Millis{30000});
  CHECK(u.freshness.stale_if_error == Millis{300000});
  CHECK(u.freshness.xfetch);
  CHECK(u.freshness.beta == doctest::Approx(1.5));
  CHECK(u.routing.read_from == PolicyReadFrom::kPreferReplica);
  CHECK(u.routing.read_your_writes == Millis{2000});
  REQUIRE(u.rate_limits.size() == 1);
  const RateLimitSpec& l = u.rate_limits[0];
  CHECK(l.name == "user_writes");
  CHECK(l.count == 5);
  CHECK(l.period == Millis{250});
  CHECK(l.burst == 20);
  CHECK(l.commands == std::vector<std::string>{"set", "@write", "client|kill"});
  REQUIRE(l.key_by.size() == 4);
  CHECK(l.key_by[0].kind == KeyByPart::Kind::kClient);
  CHECK(l.key_by[1].kind == KeyByPart::Kind::kCapture);
  CHECK(l.key_by[1].capture == "id");
  CHECK(l.key_by[2].kind == KeyByPart::Kind::kPolicy);
  CHECK(l.key_by[3].kind == KeyByPart::Kind::kCommand);
  CHECK(l.scope == LimitScope::kLocal);
  CHECK(l.on_limit == OnLimit::kShadow);
  CHECK(l.where.line == 33);
  CHECK(l.where.col == 9);

  // The second policy: everything it does not write is a built-in default (or defaults:).
  const PolicySpec& s = pc.policies[1];
  const PolicySpec none;
  CHECK(s.name == "sessions");
  CHECK(s.match == "glob:sess:*");
  CHECK(s.where.line == 40);
  CHECK(s.where.col == 5);
  CHECK(s.match_where.col == 29);
  CHECK(s.mode == PolicyMode::kAudit);
  CHECK(s.priority == 0);
  CHECK(s.max_key_bytes == 512);
  CHECK_FALSE(s.ttl.default_ttl.has_value());
  CHECK_FALSE(s.ttl.min.has_value());
  CHECK_FALSE(s.ttl.max.has_value());
  CHECK_FALSE(s.ttl.require);
  CHECK(s.ttl.on_violation == TtlOnViolation::kFix);
  CHECK(s.ttl.jitter == doctest::Approx(0.1));
  CHECK_FALSE(s.ttl.jitter_client);
  CHECK_FALSE(s.ttl.from_origin);
  CHECK(s.fill.origin.empty());
  CHECK(s.fill.path.empty());
  CHECK(s.fill.commands == std::vector<std::string>{"get"});
  CHECK(s.fill.on_error == FillOnError::kNil);
  CHECK_FALSE(s.fill.max_value_bytes.has_value());
  CHECK(s.fill.decode == FillDecodeKind::kRaw);
  CHECK(s.fill.decode_field.empty());
  CHECK(s.negative_ttl == Millis{0});
  CHECK_FALSE(s.stampede.single_flight.has_value());
  CHECK_FALSE(s.stampede.lock_ttl.has_value());
  CHECK_FALSE(s.stampede.wait.has_value());
  CHECK(s.freshness.stale_while_revalidate == Millis{0});
  CHECK(s.freshness.stale_if_error == Millis{0});
  CHECK_FALSE(s.freshness.xfetch);
  CHECK(s.freshness.beta == doctest::Approx(none.freshness.beta));
  CHECK_FALSE(s.routing.read_from.has_value());
  CHECK(s.routing.read_your_writes == Millis{0});
  CHECK(s.rate_limits.empty());
}

TEST_CASE("policies: near_cache is off unless a field of it is written") {
  Config c = mustLoad(
      "policies:\n"
      "  - {name: a, match: \"a:<id>\", near_cache: {max_age: 5s, max_bytes: 1MiB}}\n"
      "  - {name: b, match: \"b:<id>\", near_cache: {enabled: true}}\n"
      "  - {name: c, match: \"c:<id>\"}\n" +
      std::string(kPrimary));
  const std::vector<PolicySpec>& ps = c.policy.policies;
  REQUIRE(ps.size() == 3);
  CHECK(ps[0].near_cache.enabled);
  CHECK(ps[0].near_cache.max_age == Millis{5000});
  CHECK(ps[0].near_cache.max_bytes == uint64_t{1} << 20);
  CHECK(ps[1].near_cache.enabled);
  CHECK(ps[1].near_cache.max_age == Millis{10000});  // the defaults
  CHECK(ps[1].near_cache.max_bytes == uint64_t{64} << 20);
  CHECK_FALSE(ps[2].near_cache.enabled);
  CHECK(c.policy.global.near_cache_max_bytes == uint64_t{256} << 20);  // the default
  Config g = mustLoad("global: {near_cache: {max_bytes: 32MiB}}\n" + std::string(kPrimary));
  CHECK(g.policy.global.near_cache_max_bytes == uint64_t{32} << 20);
  checkErrorCases({
      {"global: {near_cache: {max_bytes: 10}}\n" + std::string(kPrimary),
       {"t.yaml:1:34: global.near_cache.max_bytes: must be at least 1KiB (is a unit missing?) "
        "(got 10)"}},
      {"global: {near_cache: {max_size: 1MiB}}\n" + std::string(kPrimary),
       {"t.yaml:1:23: global.near_cache.max_size: unknown key"}},
  });
}

TEST_CASE("policy fields: every rule, with its exact error") {
  const std::string p = kPrimary;
  // pol(x): one policy whose extra fields x start at line 2, column 32.
  auto pol = [&](const std::string& fields) {
    return "policies:\n  - {name: a, match: \"a:<id>\", " + fields + "}\n" + p;
  };
  const std::string orig = "origins: {o: {base_url: \"http://h:1\"}}\n";
  const std::vector<ErrorCase> cases = {
      // policies itself
      {"policies:\n" + p, {"t.yaml:1:1: policies: must be a list of policies (got nothing)"}},
      {"policies: {a: 1}\n" + p,
       {"t.yaml:1:11: policies: must be a list of policies (got a mapping)"}},
      {"policies: [x]\n" + p,
       {"t.yaml:1:12: policies[0]: must be a mapping like {name: users, match: "
        "\"user:<id:int>\"} (got x)"}},
      // name, match
      {"policies: [{match: a}]\n" + p, {"t.yaml:1:12: policies[0].name: is required"}},
      {"policies: [{name: a}]\n" + p,
       {"t.yaml:1:12: policies[0].match: is required, like \"user:<id:int>\""}},
      {"policies: [{name: 'a b', match: a}]\n" + p,
       {"t.yaml:1:19: policies[0].name: must be 1 to 128 characters of A-Z a-z 0-9 _ . : - "
        "(got a b)"}},
      {"policies: [{name: " + std::string(129, 'n') + ", match: a}]\n" + p,
       {"t.yaml:1:19: policies[0].name: must be 1 to 128 characters of A-Z a-z 0-9 _ . : - "
        "(got " +
        std::string(80, 'n') + "...)"}},
      {"policies: [{name: a, match: ''}]\n" + p,
       {"t.yaml:1:29: policies[0].match: must be a key template like \"user:<id:int>\" (got "
        "\"\")"}},
      {"policies: [{name: a, match: [x]}]\n" + p,
       {"t.yaml:1:29: policies[0].match: must be a key template like \"user:<id:int>\" (got a "
        "list)"}},
      // mode, priority, naming
      {pol("mode: strict"),
       {"t.yaml:2:38: policies[0].mode: must be one of enforce, audit, off (got strict)"}},
      {pol("priority: 1.5"),
       {"t.yaml:2:42: policies[0].priority: must be an integer from -1000000 to 1000000 (got "
        "1.5)"}},
      {pol("naming: {max_key_bytes: 0}"),
       {"t.yaml:2:56: policies[0].naming.max_key_bytes: must be at least 1 (got 0)"}},
      {pol("naming: {max_key_bytes: 65537}"),
       {"t.yaml:2:56: policies[0].naming.max_key_bytes: must be at most 65536 bytes (got "
        "65537)"}},
      {pol("naming: 5"), {"t.yaml:2:40: policies[0].naming: must be a mapping (got 5)"}},
      // ttl
      {pol("ttl: {default: 0}"),
       {"t.yaml:2:47: policies[0].ttl.default: must be greater than 0 (got 0)"}},
      {pol("ttl: {min: 5}"),
       {"t.yaml:2:43: policies[0].ttl.min: must have a unit (ms, s, m, h or d), like 250ms or 5s "
        "(got 5)"}},
      {pol("ttl: {require: yes}"),
       {"t.yaml:2:47: policies[0].ttl.require: must be true or false (got yes)"}},
      {pol("ttl: {jitter_client: 1}"),
       {"t.yaml:2:53: policies[0].ttl.jitter_client: must be true or false (got 1)"}},
      {pol("ttl: {from_origin: yes please}"),
       {"t.yaml:2:51: policies[0].ttl.from_origin: must be true or false (got yes please)"}},
      {pol("ttl: {on_violation: clamp}"),
       {"t.yaml:2:52: policies[0].ttl.on_violation: must be one of fix, reject, audit (got "
        "clamp)"}},
      {pol("ttl: {min: 1h, max: 1m}"),
       {"t.yaml:2:52: policies[0].ttl.max: must not be less than ttl.min (1h) (got 1m)"}},
      {pol("ttl: {default: 1s, min: 1m}"),
       {"t.yaml:2:47: policies[0].ttl.default: must not be less than ttl.min (1m) (got 1s)"}},
      {pol("ttl: {default: 2h, max: 1h}"),
       {"t.yaml:2:47: policies[0].ttl.default: must not be more than ttl.max (1h) (got 2h)"}},
      {pol("ttl: {require: true}"),
       {"t.yaml:2:47: policies[0]: ttl.require with on_violation fix needs ttl.default"}},
      // fill
      {pol("fill: {origin: nope, path: /x}"),
       {"t.yaml:2:47: policies[0].fill.origin: must name an entry of origins (got nope)"}},
      {orig + pol("fill: {origin: o}"),
       {"t.yaml:3:47: policies[0].fill.path: is required with fill.origin"}},
      {orig + pol("fill: {origin: o, path: v1/<id>}"),
       {"t.yaml:3:56: policies[0].fill.path: must be a path starting with /, like "
        "/v1/users/<id> (got v1/<id>)"}},
      {pol("fill: {path: /x}"), {"t.yaml:2:45: policies[0].fill.path: needs fill.origin (got /x)"}},
      {orig + pol("fill: {origin: o, path: /x, commands: [GET, SET]}"),
       {"t.yaml:3:76: policies[0].fill.commands[1]: must be one of GET, MGET, GETEX, HGETALL, "
        "HGET (got SET)"}},
      {orig + pol("fill: {origin: o, path: /x, decode: json}"),
       {"t.yaml:3:68: policies[0].fill.decode: must be raw or {json-field: <member name>} (got "
        "json)"}},
      {orig + pol("fill: {origin: o, path: /x, decode: {json-field: a, x: b}}"),
       {"t.yaml:3:68: policies[0].fill.decode: must be raw or {json-field: <member name>} (got "
        "a mapping)"}},
      {orig + pol("fill: {origin: o, path: /x, commands: []}"),
       {"t.yaml:3:70: policies[0].fill.commands: must list at least one command (got [])"}},
      {orig + pol("fill: {origin: o, path: /x, commands: [get, GET]}"),
       {"t.yaml:3:76: policies[0].fill.commands[1]: duplicate of policies[0].fill.commands[0] "
        "(got GET)"}},
      {orig + pol("fill: {origin: o, path: /x, on_error: fail}"),
       {"t.yaml:3:70: policies[0].fill.on_error: must be one of nil, error (got fail)"}},
      {orig + pol("fill: {origin: o, path: /x, max_value_bytes: 100}"),
       {"t.yaml:3:77: policies[0].fill.max_value_bytes: must be at least 1KiB (is a unit "
        "missing?) (got 100)"}},
      // negative, stampede, freshness, routing
      {pol("negative: {ttl: -1s}"),
       {"t.yaml:2:48: policies[0].negative.ttl: must not be negative (got -1s)"}},
      {pol("stampede: {single_flight: global}"),
       {"t.yaml:2:58: policies[0].stampede.single_flight: must be one of off, local, "
        "distributed (got global)"}},
      {pol("stampede: {lock_ttl: 0}"),
       {"t.yaml:2:53: policies[0].stampede.lock_ttl: must be greater than 0 (got 0)"}},
      {pol("stampede: {wait: 1.5ms}"),
       {"t.yaml:2:49: policies[0].stampede.wait: must be a whole number of milliseconds (corral "
        "keeps no finer durations) (got 1.5ms)"}},
      {pol("freshness: {stale_if_error: 5}"),
       {"t.yaml:2:60: policies[0].freshness.stale_if_error: must have a unit (ms, s, m, h or d), "
        "like 250ms or 5s (got 5)"}},
      {pol("freshness: {early_refresh: on}"),
       {"t.yaml:2:59: policies[0].freshness.early_refresh: must be one of off, xfetch (got on)"}},
      {pol("freshness: {early_refresh_beta: 0}"),
       {"t.yaml:2:64: policies[0].freshness.early_refresh_beta: must be a number greater than "
        "0, like 1.0 (got 0)"}},
      {pol("freshness: {early_refresh_beta: -1}"),
       {"t.yaml:2:64: policies[0].freshness.early_refresh_beta: must be a number greater than "
        "0, like 1.0 (got -1)"}},
      {pol("routing: {read_from: any}"),
       {"t.yaml:2:53: policies[0].routing.read_from: must be one of primary, replica, "
        "prefer_replica (got any)"}},
      {pol("routing: {read_from: replica}"),
       {"t.yaml:2:53: policies[0].routing.read_from: needs at least one upstream.replicas "
        "entry (got replica)"}},
      {pol("routing: {read_your_writes: 1w}"),
       {"t.yaml:2:60: policies[0].routing.read_your_writes: must be a duration like 250ms, 1.5s "
        "or 5m (got 1w)"}},
      // unknown keys, in a policy and in its sections
      {pol("tll: {}"), {"t.yaml:2:32: policies[0].tll: unknown key (did you mean ttl?)"}},
      {pol("ttl: {defualt: 1s}"),
       {"t.yaml:2:38: policies[0].ttl.defualt: unknown key (did you mean default?)"}},
      {pol("fill: {origins: o}"),
       {"t.yaml:2:39: policies[0].fill.origins: unknown key (did you mean origin?)"}},
      {pol("cache: true"), {"t.yaml:2:32: policies[0].cache: unknown key"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
}

}  // namespace
}  // namespace corral::config
