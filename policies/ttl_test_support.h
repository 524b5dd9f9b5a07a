// Helpers for the TTL tests: one decideTtl call as the engine makes it (keys from the real
// command table), a fake Random and a fixed wall clock.
#pragma once

#include <doctest/doctest.h>

#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands/command_table.h"
#include "policies/ttl.h"

namespace corral::policies::ttltest {

using config::Millis;
using config::TtlOnViolation;
using config::TtlSpec;
using Verdict = TtlDecision::Verdict;
using Kind = TtlEvent::Kind;
using Args = std::vector<std::string>;

constexpr int64_t kNowMs = 1'700'000'000'000;  // a fixed wall clock (ms since the epoch)

class FakeRandom : public Random {
 public:
  explicit FakeRandom(double u) : u_(u) {}
  double uniform() override {
    ++calls;
    return u_;
  }
  int calls = 0;

 private:
  double u_;
};

// One decideTtl call as the engine makes it: keys from the command table, one rules entry per
// key (a single rules entry is used for every key).
struct Call {
  std::vector<std::string_view> args;
  std::vector<uint32_t> keys;
  std::vector<KeyTtlRules> rules;
  std::string command;
  TtlDecision d;

  Call(std::initializer_list<std::string_view> argv, std::vector<KeyTtlRules> r, double u = 0.0,
       int64_t now_ms = kNowMs)
      : args(argv) {
    for (char c : args[0]) {
      command.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    const commands::CommandInfo* info = commands::lookup(args);
    REQUIRE(info != nullptr);
    REQUIRE(commands::extractKeys(*info, args, keys));
    if (r.size() == 1) r.resize(keys.size(), r[0]);
    rules = std::move(r);
    REQUIRE(rules.size() == keys.size());
    FakeRandom rnd(u);
    decideTtl(TtlInput{command, args, keys, rules, now_ms}, rnd, d);
  }
};

inline KeyTtlRules rules(const TtlSpec& t) { return KeyTtlRules{&t, "users", false}; }
inline KeyTtlRules auditRules(const TtlSpec& t) { return KeyTtlRules{&t, "users", true}; }

inline TtlSpec withDefault(int64_t ms, TtlOnViolation v = TtlOnViolation::kFix,
                           bool require = false) {
  TtlSpec t;
  t.default_ttl = Millis{ms};
  t.require = require;
  t.on_violation = v;
  return t;
}

inline TtlSpec bounds(std::optional<int64_t> min, std::optional<int64_t> max,
                      TtlOnViolation v = TtlOnViolation::kFix) {
  TtlSpec t;
  if (min) t.min = Millis{*min};
  if (max) t.max = Millis{*max};
  t.on_violation = v;
  return t;
}

inline void checkForward(const TtlDecision& d) {
  CHECK(d.verdict == Verdict::kForward);
  CHECK(d.argvCopy().empty());
  CHECK(d.error.empty());
  CHECK(d.followups.empty());
  CHECK(d.events.empty());
}

inline void checkOneEvent(const TtlDecision& d, Kind kind, uint32_t key = 0) {
  REQUIRE(d.events.size() == 1);
  CHECK(d.events[0].kind == kind);
  CHECK(d.events[0].key == key);
}

}  // namespace corral::policies::ttltest
