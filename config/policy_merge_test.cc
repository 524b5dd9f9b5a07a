// defaults merged into policies, and rules between fields (policy_merge.cc).
#include <doctest/doctest.h>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

TEST_CASE(
    "defaults merge into every policy: nested mappings key by key, policy wins, lists "
    "replace") {
  Config c = mustLoad(std::string(R"(origins: {o: {base_url: "http://o:80"}}
defaults:
  mode: audit
  priority: 3
  ttl: {default: 5m, max: 1h, jitter: 25%}
  fill: {origin: o, path: /d, commands: [GET, MGET]}
  routing: {read_your_writes: 1s}
policies:
  - {name: a, match: "a:<id>"}
  - name: b
    match: "b:<id>"
    mode: enforce
    ttl: {default: 1m, jitter_client: true}
    fill: {commands: [HGETALL]}
    routing: {read_your_writes: 0}
)") + kPrimary);
  REQUIRE(c.policy.policies.size() == 2);
  const PolicySpec& a = c.policy.policies[0];
  CHECK(a.mode == PolicyMode::kAudit);
  CHECK(a.priority == 3);
  CHECK(a.ttl.default_ttl == Millis{300000});
  CHECK(a.ttl.max == Millis{3600000});
  CHECK(a.ttl.jitter == doctest::Approx(0.25));
  CHECK(a.fill.origin == "o");
  CHECK(a.fill.path == "/d");
  CHECK(a.fill.commands == std::vector<std::string>{"get", "mget"});
  CHECK(a.routing.read_your_writes == Millis{1000});
  CHECK(a.where.line == 9);  // the policy's own position, not the defaults'

  const PolicySpec& b = c.policy.policies[1];
  CHECK(b.mode == PolicyMode::kEnforce);                          // policy wins
  CHECK(b.priority == 3);                                         // from defaults
  CHECK(b.ttl.default_ttl == Millis{60000});                      // policy wins inside ttl
  CHECK(b.ttl.max == Millis{3600000});                            // ... the rest of ttl merges
  CHECK(b.ttl.jitter == doctest::Approx(0.25));                   // ... from defaults
  CHECK(b.ttl.jitter_client);                                     // policy only
  CHECK(b.fill.origin == "o");                                    // fill merges too
  CHECK(b.fill.commands == std::vector<std::string>{"hgetall"});  // lists replace
  CHECK(b.routing.read_your_writes == Millis{0});                 // an explicit 0 wins too
}

TEST_CASE("defaults: errors are reported once, at their own position") {
  const std::string p = kPrimary;
  // Two policies inherit the bad jitter; it is reported once, under defaults.
  CHECK(errorsOf("defaults: {ttl: {jitter: 100%, min: 1h, max: 1m}}\n"
                 "policies: [{name: a, match: a}, {name: b, match: b}]\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:1:26: defaults.ttl.jitter: must be less than 100% (as a fraction, less than "
            "1) (got 100%)",
            "t.yaml:1:46: defaults.ttl.max: must not be less than ttl.min (1h) (got 1m)"});
  // A policy that breaks a rule with a value from defaults is told where that value came from.
  CHECK(errorsOf("defaults: {ttl: {max: 1m}}\n"
                 "policies: [{name: a, match: a, ttl: {min: 1h}}]\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:2:43: policies[0].ttl.min: must not be more than ttl.max (1m from "
            "defaults.ttl.max at t.yaml:1:23) (got 1h)"});
  // Fields that only a policy has are refused in defaults.
  CHECK(errorsOf("defaults: {name: x, match: y, priority: 1,\n"
                 "           rate_limits: [{name: l, rate: 1/s}]}\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:1:12: defaults.name: is not allowed in defaults: each policy has its own name",
            "t.yaml:1:21: defaults.match: is not allowed in defaults: each policy has its own "
            "match",
            "t.yaml:2:12: defaults.rate_limits: is not allowed in defaults: limit names are "
            "unique, so a limit for every key belongs in global.rate_limits"});
  CHECK(errorsOf("defaults: {ttl: {from_origin: true}}\n" + p) ==
        std::vector<std::string>{"t.yaml:1:18: defaults.ttl.from_origin: is not allowed in "
                                 "defaults: it needs fill, so it belongs to each fill policy"});
  CHECK(errorsOf("defaults: [ttl]\n" + p) ==
        std::vector<std::string>{"t.yaml:1:11: defaults: must be a mapping of policy fields, like "
                                 "{ttl: {jitter: 10%}} (got a list)"});
  CHECK(errorsOf("defaults: {tll: {}}\n" + p) ==
        std::vector<std::string>{"t.yaml:1:12: defaults.tll: unknown key (did you mean ttl?)"});
  // ttl.require from defaults: every policy without a default is told, at the policy.
  CHECK(errorsOf("defaults: {ttl: {require: true}}\n"
                 "policies:\n"
                 "  - {name: a, match: a, ttl: {default: 1m}}\n"
                 "  - {name: b, match: b}\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:4:5: policies[1]: ttl.require with on_violation fix needs ttl.default"});
}

TEST_CASE("with errors, LoadResult::policy keeps what the policy compiler can still check") {
  LoadResult r = loadConfigText(std::string(R"(origins: {o: {base_url: "http://o:80"}}
global:
  unmatched_keys: reject
  rate_limits:
    - {name: g1, rate: 10/s}
    - {name: g2, rate: fast}
    - {name: g3, rate: 1/s, commands: [GET]}
defaults: {ttl: {jitter: 5%}}
policies:
  - {name: clean, match: "c:<id:u64>", ttl: {default: 1m}, fill: {origin: o, path: "/c/<id>"},
     rate_limits: [{name: l1, rate: 1/s, key_by: ["capture:id"]}]}
  - {name: bad_ttl, match: "t:<id:u46>", priority: 2, ttl: {default: 5 parsecs}}
  - {name: no_origin, match: "n:<id>", fill: {origin: nope, path: /n}}
  - {name: bad_priority, match: "p:<id>", priority: high}
  - {match: "nameless:<id>"}
  - {name: bad_limit, match: "l:<id>", rate_limits: [{name: l2, rate: 0/s}]}
)") + kPrimary,
                                "t.yaml");
  REQUIRE_FALSE(r.config.has_value());
  CHECK(r.errors.size() == 6);
  const PolicyConfig& p = r.policy;
  CHECK(p.global.unmatched_keys == UnmatchedKeys::kReject);
  REQUIRE(p.origins.size() == 1);
  // g2 has an error: dropped alone; the others keep their loader paths.
  REQUIRE(p.global.rate_limits.size() == 2);
  CHECK(p.global.rate_limits[0].name == "g1");
  CHECK(p.global.rate_limits[0].path == "global.rate_limits[0]");
  CHECK(p.global.rate_limits[1].name == "g3");
  CHECK(p.global.rate_limits[1].path == "global.rate_limits[2]");
  std::vector<std::string> names;
  for (const PolicySpec& s : p.policies) names.push_back(s.name);
  // bad_priority and the nameless one cannot be placed among the others: left out.
  CHECK(names == std::vector<std::string>{"clean", "bad_ttl", "no_origin", "bad_limit"});
  // A policy without errors is whole, defaults merged.
  const PolicySpec& clean = p.policies[0];
  CHECK(clean.path == "policies[0]");
  CHECK(clean.fill.origin == "o");
  CHECK(clean.ttl.jitter == doctest::Approx(0.05));
  REQUIRE(clean.rate_limits.size() == 1);
  CHECK(clean.rate_limits[0].path == "policies[0].rate_limits[0]");
  // A policy with errors is only its template: no fill, TTL or limits to report twice.
  const PolicySpec& bad_ttl = p.policies[1];
  CHECK(bad_ttl.path == "policies[1]");
  CHECK(bad_ttl.match == "t:<id:u46>");
  CHECK(bad_ttl.priority == 2);
  CHECK(bad_ttl.match_where.line == 12);
  CHECK_FALSE(bad_ttl.ttl.default_ttl.has_value());
  CHECK(p.policies[2].fill.origin.empty());
  CHECK(p.policies[3].rate_limits.empty());

  // A bad layer of defaults makes every policy that inherits it template-only.
  LoadResult d = loadConfigText(std::string("defaults: {mode: audit, ttl: {default: soon}}\n"
                                            "policies: [{name: a, match: \"a:<id>\"}]\n") +
                                    kPrimary,
                                "t.yaml");
  REQUIRE(d.policy.policies.size() == 1);
  CHECK(d.policy.policies[0].name == "a");
  CHECK(d.policy.policies[0].mode == PolicyMode::kEnforce);  // not audit: nothing merged

  // Without errors it is the config's own.
  LoadResult ok = loadConfigText(
      std::string("policies: [{name: a, match: \"a:<id>\"}]\n") + kPrimary, "t.yaml");
  REQUIRE(ok.config.has_value());
  REQUIRE(ok.policy.policies.size() == 1);
  CHECK(ok.policy.policies[0].path == "policies[0]");
  CHECK(ok.config->policy.policies[0].path == "policies[0]");
}

}  // namespace
}  // namespace corral::config
