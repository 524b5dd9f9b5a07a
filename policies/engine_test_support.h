// The engine's test fixture: compile a PolicyConfig, decide argument vectors with a fake clock
// and random source. Shared by engine_test.cc, engine_limits_test.cc and engine_fill_test.cc.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands/command_table.h"
#include "policies/engine.h"

namespace corral::policies::enginetest {

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

inline PolicySpec policy(std::string name, std::string match) {
  PolicySpec p;
  p.name = std::move(name);
  p.match = std::move(match);
  p.where = {"test.yaml", 10, 3};
  p.match_where = {"test.yaml", 11, 12};
  return p;
}

inline RateLimitSpec limit(std::string name, uint64_t count, int64_t period_ms, uint64_t burst) {
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
  GlobalLimits* global = nullptr;  // scope global limits' leases (nullptr: decided locally)
  bool replay = false;             // RequestContext::replay

  explicit Fixture(const PolicyConfig& cfg) {
    std::vector<config::ConfigError> errors;
    set = PolicySet::compile(cfg, reg, &errors);
    for (const auto& e : errors) MESSAGE(e.format());
    REQUIRE(set != nullptr);
  }

  Verdict run(std::vector<std::string_view> args) {
    RequestContext ctx;
    ctx.client = client;
    ctx.clock = &clock;
    ctx.random = &random;
    ctx.global = global;
    ctx.replay = replay;
    const commands::CommandInfo* cmd = commands::lookup(args);
    set->decide(cmd, args, ctx, reg, d);
    return d.verdict;
  }
};

}  // namespace corral::policies::enginetest
