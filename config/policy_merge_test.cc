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

}  // namespace
}  // namespace corral::config
