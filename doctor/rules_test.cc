// rules.h: the eviction rule over every mix and policy family, and each threshold on both sides.
#include "doctor/rules.h"

#include <doctest/doctest.h>

using namespace corral::doctor;
using corral::config::PolicySpec;

namespace {

PolicySpec policy(const char* name) {
  PolicySpec p;
  p.name = name;
  p.match = std::string(name) + ":<id>";
  return p;
}

}  // namespace

TEST_CASE("kindOf and mixOf: fill, ttl.default or ttl.require make a cache; mode off is left out") {
  PolicySpec queue = policy("queue");
  PolicySpec filled = policy("users");
  filled.fill.origin = "api";
  PolicySpec expiring = policy("sessions");
  expiring.ttl.default_ttl = corral::config::Millis(60000);
  PolicySpec required = policy("tokens");
  required.ttl.require = true;
  PolicySpec bounded = policy("locks");  // ttl.max alone: clients choose, none required
  bounded.ttl.max = corral::config::Millis(30000);
  PolicySpec off = policy("old");
  off.mode = corral::config::PolicyMode::kOff;
  CHECK(kindOf(queue) == KeyKind::kDurable);
  CHECK(kindOf(filled) == KeyKind::kCache);
  CHECK(kindOf(expiring) == KeyKind::kCache);
  CHECK(kindOf(required) == KeyKind::kCache);
  CHECK(kindOf(bounded) == KeyKind::kDurable);
  const PolicyMix mix = mixOf({queue, filled, expiring, required, bounded, off});
  CHECK(mix.cache == std::vector<std::string>{"users", "sessions", "tokens"});
  CHECK(mix.durable == std::vector<std::string>{"queue", "locks"});
  CHECK(mix.cache_without_required_ttl == std::vector<std::string>{"users", "sessions"});
}

TEST_CASE("judgeEviction: every mix against every family") {
  PolicyMix caches;
  caches.cache = {"users"};
  caches.cache_without_required_ttl = {"users"};
  PolicyMix caches_ttl;
  caches_ttl.cache = {"users"};
  PolicyMix durables;
  durables.durable = {"jobs"};
  PolicyMix mixed_ttl;
  mixed_ttl.cache = {"users"};
  mixed_ttl.durable = {"jobs"};
  PolicyMix mixed = mixed_ttl;
  mixed.cache_without_required_ttl = {"users"};
  struct Row {
    const PolicyMix* mix;
    const char* policy;
    Severity want;
  };
  const PolicyMix none;
  const Row rows[] = {
      {&none, "noeviction", Severity::kOk},
      {&none, "allkeys-lru", Severity::kOk},
      {&caches, "allkeys-lru", Severity::kOk},
      {&caches, "allkeys-lfu", Severity::kOk},
      {&caches, "allkeys-random", Severity::kWarning},
      {&caches, "volatile-lru", Severity::kWarning},
      {&caches_ttl, "volatile-lru", Severity::kWarning},
      {&caches, "noeviction", Severity::kError},
      {&durables, "noeviction", Severity::kOk},
      {&durables, "volatile-lru", Severity::kWarning},
      {&durables, "allkeys-lru", Severity::kError},
      {&durables, "allkeys-random", Severity::kError},
      {&mixed_ttl, "volatile-lru", Severity::kOk},
      {&mixed_ttl, "volatile-ttl", Severity::kOk},
      {&mixed, "volatile-lfu", Severity::kWarning},
      {&mixed_ttl, "noeviction", Severity::kWarning},
      {&mixed_ttl, "allkeys-lfu", Severity::kError},
  };
  for (const Row& r : rows) {
    CAPTURE(r.policy);
    const Finding f = judgeEviction(*r.mix, r.policy);
    CHECK(f.check == "eviction_policy");
    CHECK(f.severity == r.want);
    CHECK(f.seen.find(r.policy) != std::string::npos);
    CHECK(f.action.empty() == (r.want == Severity::kOk));
  }
  // The evidence names the policies it rests on.
  const Finding f = judgeEviction(mixed, "volatile-lfu");
  CHECK(f.seen.find("users") != std::string::npos);
  CHECK(f.seen.find("jobs") != std::string::npos);
}

TEST_CASE("thresholds: maxmemory, memory use, fragmentation floor, hit ratio floor, latency") {
  CHECK(judgeMaxmemory(0).severity == Severity::kError);
  CHECK(judgeMaxmemory(1 << 20).severity == Severity::kOk);
  CHECK(judgeMaxmemory(1 << 20).seen == "maxmemory 1 MiB");
  CHECK(judgeMemoryUse(80, 100).severity == Severity::kOk);
  CHECK(judgeMemoryUse(81, 100).severity == Severity::kWarning);
  CHECK(judgeMemoryUse(96, 100).severity == Severity::kError);
  CHECK(judgeFragmentation(5.0, kFragmentationFloorBytes - 1).severity == Severity::kOk);
  CHECK(judgeFragmentation(1.6, kFragmentationFloorBytes).severity == Severity::kWarning);
  CHECK(judgeFragmentation(1.5, kFragmentationFloorBytes).severity == Severity::kOk);
  CHECK(judgeHitRatio(0, 999).severity == Severity::kOk);  // too few lookups to judge
  CHECK(judgeHitRatio(899, 101).severity == Severity::kWarning);
  CHECK(judgeHitRatio(900, 100).severity == Severity::kOk);
  CHECK(judgeLatency({100, 200, 300}).severity == Severity::kOk);
  CHECK(judgeLatency({6000, 7000, 100}).severity == Severity::kWarning);
  CHECK(judgeLatency({100, 200, 300}).seen.find("median 0.2 ms, max 0.3 ms") != std::string::npos);
}

TEST_CASE("judgeRates: evicting with durable policies is an error, with caches only a warning") {
  PolicyMix caches;
  caches.cache = {"users"};
  PolicyMix durables;
  durables.durable = {"jobs"};
  CHECK(judgeRates(0, 5, 1.0, 0, durables).severity == Severity::kOk);
  CHECK(judgeRates(2, 0, 1.0, 10, caches).severity == Severity::kWarning);
  CHECK(judgeRates(2, 0, 1.0, 10, durables).severity == Severity::kError);
  CHECK(judgeRates(2.5, 1, 1.0, 10, caches).seen.find("evicted 2.5/s, expired 1/s") !=
        std::string::npos);
}
