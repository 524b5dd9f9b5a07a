// The engine's plans for hash fills (fill.commands: hgetall, hget), fill.decode settings and
// the compile errors of shapes that cannot work together.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "policies/engine.h"
#include "policies/engine_test_support.h"

namespace corral::policies::enginetest {
namespace {

PolicyConfig hashConfig(std::vector<std::string> commands) {
  PolicyConfig cfg;
  config::OriginSpec o;
  o.name = "users";
  o.base_url = "http://127.0.0.1:8080";
  cfg.origins.push_back(o);
  auto p = policy("user", "user:<id:u64>");
  p.ttl.default_ttl = config::Millis(60000);
  p.fill.origin = "users";
  p.fill.path = "/v1/users/<id>";
  p.fill.commands = std::move(commands);
  cfg.policies.push_back(p);
  return cfg;
}

std::vector<std::string> compileErrors(const PolicyConfig& cfg) {
  Registry reg;
  std::vector<config::ConfigError> errors;
  CHECK(PolicySet::compile(cfg, reg, &errors) == nullptr);
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.path + ": " + e.message);
  return out;
}

TEST_CASE("engine: HGETALL and HGET of a hash policy plan a hash fill") {
  Fixture f(hashConfig({"hgetall", "hget"}));
  CHECK(f.run({"HGETALL", "user:7"}) == Verdict::kForward);
  REQUIRE(f.d.fill.policy != nullptr);
  CHECK(f.d.fill.read == FillPlan::Read::kHgetall);
  CHECK(f.d.fill.key == "user:7");
  CHECK(f.d.fill.path == "/v1/users/7");
  CHECK(f.d.fill.policy->decode.kind == FillDecode::Kind::kHash);
  CHECK_FALSE(f.d.fill.with_pttl);
  CHECK(f.d.fill.request.empty());

  CHECK(f.run({"HGET", "user:8", "name"}) == Verdict::kForward);
  REQUIRE(f.d.fill.policy != nullptr);
  CHECK(f.d.fill.read == FillPlan::Read::kHget);
  CHECK(f.d.fill.key == "user:8");
  CHECK(f.d.fill.field == "name");

  // The next request starts clean: a GET of this policy plans nothing (it fills hashes).
  CHECK(f.run({"GET", "user:9"}) == Verdict::kForward);
  CHECK(f.d.fill.empty());
  CHECK(f.d.fill.read == FillPlan::Read::kGet);
  CHECK(f.d.fill.field.empty());
  // HGET with a wrong arity is Redis's to refuse: no plan.
  CHECK(f.run({"HGET", "user:8"}) == Verdict::kForward);
  CHECK(f.d.fill.empty());
  // Other hash reads do not fill; writes revoke.
  CHECK(f.run({"HMGET", "user:8", "a"}) == Verdict::kForward);
  CHECK(f.d.fill.empty());
  f.run({"HSET", "user:8", "a", "1"});
  CHECK(f.d.revoke == std::vector<std::string_view>{"user:8"});
  f.run({"DEL", "user:8"});
  CHECK(f.d.revoke == std::vector<std::string_view>{"user:8"});
}

TEST_CASE("engine: HGET alone, HGETALL alone") {
  Fixture only_hget(hashConfig({"hget"}));
  CHECK(only_hget.run({"HGETALL", "user:1"}) == Verdict::kForward);
  CHECK(only_hget.d.fill.empty());
  CHECK(only_hget.run({"HGET", "user:1", "f"}) == Verdict::kForward);
  CHECK(only_hget.d.fill.read == FillPlan::Read::kHget);
  Fixture only_all(hashConfig({"hgetall"}));
  CHECK(only_all.run({"HGET", "user:1", "f"}) == Verdict::kForward);
  CHECK(only_all.d.fill.empty());
}

TEST_CASE("engine: fill.decode json-field reaches the fill policy") {
  PolicyConfig cfg = hashConfig({"get"});
  cfg.policies[0].fill.decode = config::FillDecodeKind::kJsonField;
  cfg.policies[0].fill.decode_field = "price";
  Fixture f(cfg);
  CHECK(f.run({"GET", "user:7"}) == Verdict::kForward);
  REQUIRE(f.d.fill.policy != nullptr);
  CHECK(f.d.fill.read == FillPlan::Read::kGet);
  CHECK(f.d.fill.policy->decode.kind == FillDecode::Kind::kJsonField);
  CHECK(f.d.fill.policy->decode.field == "price");
  Fixture raw(hashConfig({"get"}));
  CHECK(raw.run({"GET", "user:7"}) == Verdict::kForward);
  CHECK(raw.d.fill.policy->decode.kind == FillDecode::Kind::kRaw);
}

TEST_CASE("engine: hash fills refuse string commands, decode and freshness") {
  CHECK(compileErrors(hashConfig({"hgetall", "get"})) ==
        std::vector<std::string>{"policies[0].fill.commands: mixes get with HGETALL/HGET: a "
                                 "policy's keys hold strings or hashes, not both"});
  CHECK(compileErrors(hashConfig({"mget", "hget"})) ==
        std::vector<std::string>{"policies[0].fill.commands: mixes mget with HGETALL/HGET: a "
                                 "policy's keys hold strings or hashes, not both"});
  PolicyConfig decode = hashConfig({"hgetall"});
  decode.policies[0].fill.decode = config::FillDecodeKind::kJsonField;
  decode.policies[0].fill.decode_field = "x";
  CHECK(compileErrors(decode) ==
        std::vector<std::string>{"policies[0].fill.decode: does not apply to HGETALL/HGET "
                                 "fills (the JSON object body is the hash)"});
  PolicyConfig fresh = hashConfig({"hgetall"});
  fresh.policies[0].freshness.stale_if_error = config::Millis(1000);
  const std::string want =
      "policies[0].freshness: stale_while_revalidate, stale_if_error and early_refresh are not "
      "supported with HGETALL/HGET fills yet";
  CHECK(compileErrors(fresh) == std::vector<std::string>{want});
  fresh.policies[0].freshness.stale_if_error = config::Millis(0);
  fresh.policies[0].freshness.xfetch = true;
  CHECK(compileErrors(fresh) == std::vector<std::string>{want});
}

TEST_CASE("engine: hash fills refuse ttl.from_origin; string fills take it") {
  PolicyConfig hash = hashConfig({"hget", "hgetall"});
  hash.policies[0].ttl.from_origin = true;
  CHECK(compileErrors(hash) ==
        std::vector<std::string>{"policies[0].ttl.from_origin: is not supported with HGETALL/HGET "
                                 "fills yet (the TTL of a hash fill is ttl.default)"});
  PolicyConfig str = hashConfig({"get"});
  str.policies[0].ttl.from_origin = true;
  Registry reg;
  std::vector<config::ConfigError> errors;
  CHECK(PolicySet::compile(str, reg, &errors) != nullptr);
  CHECK(errors.empty());
}

}  // namespace
}  // namespace corral::policies::enginetest
