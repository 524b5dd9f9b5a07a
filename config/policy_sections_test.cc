// origins, global, rate limits and names (policy_sections.cc).
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

TEST_CASE("policies: no policy sections at all gives an empty PolicyConfig") {
  Config c = mustLoad(kPrimary);
  CHECK(c.policy.origins.empty());
  CHECK(c.policy.global.unmatched_keys == UnmatchedKeys::kAllow);
  CHECK(c.policy.global.deny_commands.empty());
  CHECK(c.policy.global.audit_commands.empty());
  CHECK(c.policy.global.rate_limits.empty());
  CHECK(c.policy.policies.empty());
  CHECK(c.policy.files.empty());
  // Empty sections are allowed where they are mappings.
  Config e = mustLoad(
      std::string("origins:\nglobal:\ndefaults:\npolicies: []\npolicy_files: []\n") + kPrimary);
  CHECK(e.policy.policies.empty());
}

TEST_CASE("rate limits: rate forms, burst, commands, key_by") {
  struct Case {
    const char* in;
    uint64_t count;
    int64_t period_ms;
  };
  for (const Case& c :
       {Case{"100/s", 100, 1000}, Case{"6000/m", 6000, 60000}, Case{"5/250ms", 5, 250},
        Case{"1000/h", 1000, 3600000}, Case{"1/ms", 1, 1}, Case{"10/5s", 10, 5000},
        Case{"1/24h", 1, 86400000}, Case{"1000000/s", 1000000, 1000}}) {
    const std::string in = c.in;
    CAPTURE(in);
    Config cfg = mustLoad("global: {rate_limits: [{name: l, rate: '" + in + "'}]}\n" + kPrimary);
    const RateLimitSpec& l = cfg.policy.global.rate_limits[0];
    CHECK(l.count == c.count);
    CHECK(l.period == Millis{c.period_ms});
    CHECK(l.burst == c.count);
  }
  struct Bad {
    const char* in;
    const char* why;
  };
  for (const Bad& b :
       {Bad{"100", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"100/sec", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"/s", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"1.5/s", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"100 / s", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"5/250", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"-1/s", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"0/s", "must allow at least 1 request per period"},
        Bad{"5/0ms", "period must be greater than 0"}, Bad{"1/25h", "period must be at most 24h"},
        Bad{"1000001/s", "must be at most 1000000 per second"},
        Bad{"2000000000/h", "count must be at most 1000000000"},
        Bad{"99999999999999999999/s", "count is too large"}}) {
    const std::string in = b.in;
    CAPTURE(in);
    CHECK(errorsOf("global: {rate_limits: [{name: l, rate: '" + in + "'}]}\n" + kPrimary) ==
          std::vector<std::string>{"t.yaml:1:40: global.rate_limits[0].rate: " +
                                   std::string(b.why) + " (got " + in + ")"});
  }

  const std::string p = kPrimary;
  // lim(x): a policy limit whose extra fields x start at line 2, column 60.
  auto lim = [&](const std::string& fields) {
    return "policies:\n  - {name: a, match: a, rate_limits: [{name: l, rate: 1/s, " + fields +
           "}]}\n" + p;
  };
  const std::vector<ErrorCase> cases = {
      {lim("burst: 0"),
       {"t.yaml:2:67: policies[0].rate_limits[0].burst: must be an integer from 1 to "
        "1000000000 (got 0)"}},
      {lim("commands: GET"),
       {"t.yaml:2:70: policies[0].rate_limits[0].commands: must be a list of command names "
        "(GET, CONFIG|SET) or @read, @write (got GET)"}},
      {lim("commands: ['config set', '@admin', '|get', GET, get]"),
       {"t.yaml:2:71: policies[0].rate_limits[0].commands[0]: must be a command name like GET "
        "or CONFIG|SET, or @read or @write (got config set)",
        "t.yaml:2:85: policies[0].rate_limits[0].commands[1]: must be a command name like GET "
        "or CONFIG|SET, or @read or @write (got @admin)",
        "t.yaml:2:95: policies[0].rate_limits[0].commands[2]: must be a command name like GET "
        "or CONFIG|SET, or @read or @write (got |get)",
        "t.yaml:2:108: policies[0].rate_limits[0].commands[4]: duplicate of "
        "policies[0].rate_limits[0].commands[3] (got get)"}},
      {lim("key_by: [client, ip, 'capture:1d', client]"),
       {"t.yaml:2:77: policies[0].rate_limits[0].key_by[1]: must be one of client, policy, "
        "command, key or capture:<name> (got ip)",
        "t.yaml:2:81: policies[0].rate_limits[0].key_by[2]: capture needs a placeholder name of "
        "the template, like capture:id (got capture:1d)",
        "t.yaml:2:95: policies[0].rate_limits[0].key_by[3]: duplicate of "
        "policies[0].rate_limits[0].key_by[0] (got client)"}},
      {lim("key_by: client"),
       {"t.yaml:2:68: policies[0].rate_limits[0].key_by: must be a list of client, policy, "
        "command, key or capture:<name> (got client)"}},
      {lim("on_unavailable: local_share"),
       {"t.yaml:2:60: policies[0].rate_limits[0].on_unavailable: applies to scope global only "
        "(a local limit needs no shared state)"}},
      {lim("scope: global, on_unavailable: wait"),
       {"t.yaml:2:91: policies[0].rate_limits[0].on_unavailable: must be one of local_share, "
        "allow, deny (got wait)"}},
      {lim("scope: region"),
       {"t.yaml:2:67: policies[0].rate_limits[0].scope: must be one of local, global (got "
        "region)"}},
      {lim("on_limit: drop"),
       {"t.yaml:2:70: policies[0].rate_limits[0].on_limit: must be one of reject, shadow (got "
        "drop)"}},
      {lim("brust: 5"),
       {"t.yaml:2:60: policies[0].rate_limits[0].brust: unknown key (did you mean burst?)"}},
      {lim("key: client"), {"t.yaml:2:60: policies[0].rate_limits[0].key: unknown key"}},
      {"policies: [{name: a, match: a, rate_limits: [{burst: 2}]}]\n" + p,
       {"t.yaml:1:46: policies[0].rate_limits[0].name: is required",
        "t.yaml:1:46: policies[0].rate_limits[0].rate: is required, like 100/s"}},
      {"policies: [{name: a, match: a, rate_limits: [l]}]\n" + p,
       {"t.yaml:1:46: policies[0].rate_limits[0]: must be a mapping like {name: per_client, "
        "rate: 100/s} (got l)"}},
      {"policies: [{name: a, match: a, rate_limits: }]\n" + p,
       {"t.yaml:1:32: policies[0].rate_limits: must be a list of rate limits (got nothing)"}},
      // Global limits: no captures, since no template is known there.
      {"global: {rate_limits: [{name: g, rate: 1/s, key_by: [key, 'capture:id']}]}\n" + p,
       {"t.yaml:1:59: global.rate_limits[0].key_by[1]: captures come from a policy's template, "
        "so global.rate_limits cannot use them; use client, policy, command or key (got "
        "capture:id)"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
}

TEST_CASE("names are unique: policies across all of them, limits across global and policies") {
  const std::string p = kPrimary;
  CHECK(errorsOf("policies:\n"
                 "  - {name: users, match: a}\n"
                 "  - {name: users, match: b}\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:3:12: policies[1].name: duplicate of policies[0].name at t.yaml:2:12 (got "
            "users)"});
  CHECK(errorsOf("global: {rate_limits: [{name: l1, rate: 1/s}]}\n"
                 "policies:\n"
                 "  - {name: a, match: a, rate_limits: [{name: l2, rate: 1/s}]}\n"
                 "  - {name: b, match: b, rate_limits: [{name: l1, rate: 1/s}, {name: l2, rate: "
                 "1/s}]}\n" +
                 p) ==
        std::vector<std::string>{"t.yaml:4:46: policies[1].rate_limits[0].name: duplicate of "
                                 "global.rate_limits[0].name at t.yaml:1:31 (got l1)",
                                 "t.yaml:4:69: policies[1].rate_limits[1].name: duplicate of "
                                 "policies[0].rate_limits[0].name at t.yaml:3:46 (got l2)"});
}

TEST_CASE("origins and global: every rule, with its exact error") {
  const std::string p = kPrimary;
  const std::vector<ErrorCase> cases = {
      {"origins: [a]\n" + p,
       {"t.yaml:1:10: origins: must be a mapping of origin names to {base_url, timeout, "
        "max_in_flight, headers, retry, breaker} (got a list)"}},
      {"origins: {a: {timeout: 1s}}\n" + p,
       {"t.yaml:1:14: origins.a.base_url: is required, like "
        "http://127.0.0.1:8080"}},
      {"origins: {a: 'http://h'}\n" + p,
       {"t.yaml:1:14: origins.a: must be a mapping like {base_url: \"http://127.0.0.1:8080\", "
        "timeout: 1s} (got http://h)"}},
      {"origins: {'a b': {base_url: 'http://h'}}\n" + p,
       {"t.yaml:1:11: origins.a b: origin names must be 1 to 128 characters of A-Z a-z 0-9 _ . "
        ": - (got a b)"}},
      {"origins: {a: {base_url: 'ftp://h'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: must be an http:// or https:// URL like "
        "http://127.0.0.1:8080 (got ftp://h)"}},
      {"origins: {a: {base_url: 'h:80'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: must be an http:// or https:// URL like "
        "http://127.0.0.1:8080 (got "
        "h:80)"}},
      {"origins: {a: {base_url: 'ftp://h'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: must be an http:// or https:// URL like "
        "http://127.0.0.1:8080 (got "
        "ftp://h)"}},
      {"origins: {a: {base_url: 'http://h:0'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: port must be a number from 1 to 65535 (got "
        "http://h:0)"}},
      {"origins: {a: {base_url: 'http://'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: needs a host, as in http://host:port (got http://)"}},
      {"origins: {a: {base_url: 'http://u:p@h'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: user info (user@host) is not supported in origin URLs "
        "(got http://u:p@h)"}},
      {"origins: {a: {base_url: 'http://h/x?y=1'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: query strings and fragments are not supported in "
        "origin URLs (got http://h/x?y=1)"}},
      {"origins: {a: {base_url: 'http://h/a b'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: must not contain spaces or control characters (got "
        "http://h/a b)"}},
      {"origins: {a: {base_url: 'http://h', timeout: 0}}\n" + p,
       {"t.yaml:1:46: origins.a.timeout: must be greater than 0 (got 0)"}},
      {"origins: {a: {base_url: 'http://h', max_in_flight: 0}}\n" + p,
       {"t.yaml:1:52: origins.a.max_in_flight: must be an integer from 1 to 1000000 (got 0)"}},
      {"origins: {a: {base_url: 'http://h', timout: 1s}}\n" + p,
       {"t.yaml:1:37: origins.a.timout: unknown key (did you mean timeout?)"}},
      {"origins: {a: {base_url: 'http://h'}, a: {base_url: 'http://g'}}\n" + p,
       {"t.yaml:1:38: origins.a: duplicate key (first set at line 1)"}},
      // global
      {"global: {unmatched_keys: deny}\n" + p,
       {"t.yaml:1:26: global.unmatched_keys: must be one of allow, audit, reject (got deny)"}},
      {"global: {unknown_commands: drop}\n" + p,
       {"t.yaml:1:28: global.unknown_commands: must be one of forward, reject (got drop)"}},
      {"global: {unknown_command: reject}\n" + p,
       {"t.yaml:1:10: global.unknown_command: unknown key (did you mean unknown_commands?)"}},
      {"global: {commands: {deny: FLUSHALL}}\n" + p,
       {"t.yaml:1:27: global.commands.deny: must be a list of command names like GET or "
        "CONFIG|SET (got FLUSHALL)"}},
      {"global: {commands: {deny: ['@write', 'config set']}}\n" + p,
       {"t.yaml:1:28: global.commands.deny[0]: must be a command name like GET or CONFIG|SET "
        "(got @write)",
        "t.yaml:1:38: global.commands.deny[1]: must be a command name like GET or CONFIG|SET "
        "(got config set)"}},
      {"global: {commands: {deny: [KEYS], audit: [SCAN, keys]}}\n" + p,
       {"t.yaml:1:49: global.commands.audit[1]: is also denied by global.commands.deny[0]; a "
        "command is denied or audited (got keys)"}},
      {"global: {commands: {aduit: [GET], allow: [GET]}}\n" + p,
       {"t.yaml:1:21: global.commands.aduit: unknown key (did you mean audit?)",
        "t.yaml:1:35: global.commands.allow: unknown key"}},
      {"global: {rate_limit: []}\n" + p,
       {"t.yaml:1:10: global.rate_limit: unknown key (did you mean rate_limits?)"}},
      {"global: {rate_limits: {}}\n" + p,
       {"t.yaml:1:23: global.rate_limits: must be a list of rate limits (got a mapping)"}},
      // global.fill_secret: the value is a secret, only its length is shown.
      {"global: {fill_secret: short}\n" + p,
       {"t.yaml:1:23: global.fill_secret: must be at least 16 bytes; use 32 random characters, "
        "the same on every corral (got 5 bytes)"}},
      {"global: {fill_secret: [a]}\n" + p,
       {"t.yaml:1:23: global.fill_secret: must be a string (got a list)"}},
      {"global: {fill_secret_env: 'not a name'}\n" + p,
       {"t.yaml:1:27: global.fill_secret_env: must be the name of an environment variable, like "
        "CORRAL_FILL_SECRET (got not a name)"}},
      {"global: {fill_secret_env: CORRAL_TEST_NO_SUCH_VARIABLE}\n" + p,
       {"t.yaml:1:27: global.fill_secret_env: environment variable "
        "CORRAL_TEST_NO_SUCH_VARIABLE is not set"}},
      {"global: {fill_secret: 0123456789abcdef, fill_secret_env: CORRAL_TEST_FILL_SECRET}\n" + p,
       {"t.yaml:1:58: global.fill_secret_env: cannot be used together with fill_secret"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
}

TEST_CASE("global.unknown_commands: as written, else reject exactly when policies are strict") {
  const std::string p = kPrimary;
  Config none = mustLoad(p);
  CHECK_FALSE(none.policy.global.unknown_commands.has_value());
  CHECK(effectiveUnknownCommands(none.policy) == UnknownCommands::kForward);
  CHECK(effectiveUnknownCommands(mustLoad("global: {unknown_commands: reject}\n" + p).policy) ==
        UnknownCommands::kReject);
  CHECK(effectiveUnknownCommands(mustLoad("global: {unknown_commands: forward}\n" + p).policy) ==
        UnknownCommands::kForward);
  // Strict: keys no policy covers are refused, or a policy enforces its rules.
  CHECK(effectiveUnknownCommands(mustLoad("global: {unmatched_keys: reject}\n" + p).policy) ==
        UnknownCommands::kReject);
  CHECK(effectiveUnknownCommands(mustLoad("global: {unmatched_keys: audit}\n" + p).policy) ==
        UnknownCommands::kForward);
  const std::string enforce = "policies: [{name: u, match: 'user:<id>'}]\n";
  const std::string audit = "policies: [{name: u, match: 'user:<id>', mode: audit}]\n";
  const std::string off = "policies: [{name: u, match: 'user:<id>', mode: 'off'}]\n";
  CHECK(effectiveUnknownCommands(mustLoad(enforce + p).policy) == UnknownCommands::kReject);
  CHECK(effectiveUnknownCommands(mustLoad(audit + p).policy) == UnknownCommands::kForward);
  CHECK(effectiveUnknownCommands(mustLoad(off + p).policy) == UnknownCommands::kForward);
  // Written out, it wins over the default either way.
  CHECK(effectiveUnknownCommands(
            mustLoad("global: {unmatched_keys: reject, unknown_commands: forward}\n" + p).policy) ==
        UnknownCommands::kForward);
  CHECK(effectiveUnknownCommands(
            mustLoad("global: {unknown_commands: forward}\n" + enforce + p).policy) ==
        UnknownCommands::kForward);
}

TEST_CASE("global: fill_secret, or fill_secret_env read at load") {
  Config c = mustLoad(std::string("global: {fill_secret: 0123456789abcdef0123}\n") + kPrimary);
  CHECK(c.policy.global.fill_secret == "0123456789abcdef0123");
  ::setenv("CORRAL_TEST_FILL_SECRET", "from-the-environment-0123", 1);
  Config e =
      mustLoad(std::string("global: {fill_secret_env: CORRAL_TEST_FILL_SECRET}\n") + kPrimary);
  CHECK(e.policy.global.fill_secret == "from-the-environment-0123");
  ::setenv("CORRAL_TEST_FILL_SECRET", "", 1);
  CHECK(errorsOf(std::string("global: {fill_secret_env: CORRAL_TEST_FILL_SECRET}\n") + kPrimary) ==
        std::vector<std::string>{
            "t.yaml:1:27: global.fill_secret_env: environment variable CORRAL_TEST_FILL_SECRET "
            "is empty"});
  ::setenv("CORRAL_TEST_FILL_SECRET", "too-short", 1);
  CHECK(errorsOf(std::string("global: {fill_secret_env: CORRAL_TEST_FILL_SECRET}\n") + kPrimary) ==
        std::vector<std::string>{"t.yaml:1:27: global.fill_secret_env: must be at least 16 bytes; "
                                 "use 32 random characters, the same on every corral (got 9 "
                                 "bytes)"});
  ::unsetenv("CORRAL_TEST_FILL_SECRET");
  // Unset: no secret (the policy compiler then refuses single_flight: distributed).
  CHECK(mustLoad(kPrimary).policy.global.fill_secret.empty());
}

}  // namespace
}  // namespace corral::config
