// TTL governance of writes: what corral does to a command's TTL under a policy's `ttl:` rules.
//
//   SET k v             --(default 60s, fix)-->   SET k v PX 57312            (jittered default)
//   SET k v EX 99999    --(max 1h, fix)-->        SET k v PX 3600000          (clamped)
//   EXPIRE k 5          --(min 10s, reject)-->    -TTL <policy>: ...
//   HSET k f v          --(require)-->            HSET k f v + PEXPIRE k <ttl> NX (hidden reply)
//   PERSIST k           --(require)-->            -TTL <policy>: ...
//
// Pure: no I/O. The caller gives each key's rules (or none) and gets a verdict: forward as is,
// forward rewritten args, or reject; plus follow-up PEXPIREs to send right behind the command.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"
#include "policies/clock.h"

namespace corral::policies {

// ttl * (1 - U(0, jitter)), rounded down, at least 1 ms (so the result never exceeds ttl).
int64_t jitterMs(int64_t ttl_ms, double jitter, Random& rnd);

// The TTL rules of one key's policy.
struct KeyTtlRules {
  const config::TtlSpec* ttl = nullptr;  // nullptr: the key has no TTL rules
  std::string_view policy;               // policy name, for error replies
  bool audit = false;                    // policy mode audit: decide and count, change nothing
};

struct TtlInput {
  std::string_view command;                // lower-case top-level name ("set", "expire", ...)
  std::span<const std::string_view> args;  // args[0] is the command name as the client sent it
  std::span<const uint32_t> keys;          // indexes of key args (from the command table)
  std::span<const KeyTtlRules> rules;      // parallel to keys
  int64_t now_unix_ms = 0;                 // for EXAT / PXAT / EXPIREAT / PEXPIREAT
};

// What happened to one key, for the policy's counters.
struct TtlEvent {
  enum class Kind : uint8_t {
    kFixed,     // default added or TTL clamped (or a follow-up PEXPIRE added)
    kRejected,  // the command is refused for this key
    kAudited,   // would have been fixed or rejected (audit mode or on_violation: audit)
  };
  uint32_t key = 0;  // position in TtlInput::keys
  Kind kind = Kind::kFixed;
};

struct TtlFollowup {
  uint32_t key = 0;    // position in TtlInput::keys
  int64_t ttl_ms = 0;  // PEXPIRE <key> <ttl_ms> NX
};

// Reused across requests by one worker: clear() keeps the capacity (no allocation per request
// once warm).
struct TtlDecision {
  enum class Verdict : uint8_t { kForward, kRewrite, kReject };
  Verdict verdict = Verdict::kForward;
  std::string error;  // kReject: "TTL <policy>: ..." (no leading '-', no CRLF)
  // kRewrite: the whole new argv is args[0, nargs). The strings past nargs are kept (with their
  // capacity) for the next rewrite, so a warm worker rewrites without allocating.
  std::vector<std::string> args;
  size_t nargs = 0;
  // kRewrite that only appended arguments (SET ... PX n): the original args are argv()[0,
  // append_from) unchanged, so the proxy can reuse the request's own bytes. 0 = not so.
  size_t append_from = 0;
  std::span<const std::string> argv() const { return {args.data(), nargs}; }
  std::vector<std::string> argvCopy() const { return {args.begin(), args.begin() + nargs}; }
  std::string& pushArg(std::string_view a) {
    if (nargs < args.size()) {
      args[nargs].assign(a);
    } else {
      args.emplace_back(a);
    }
    return args[nargs++];
  }
  std::vector<TtlFollowup> followups;
  std::vector<TtlEvent> events;
  void clear();
};

// Decides the TTL rules for one command. Commands that do not set or remove a TTL and do not
// create keys are forwarded untouched. Malformed TTL arguments (not a number, EX 0, unknown
// options) are left to Redis, which answers with its own error.
void decideTtl(const TtlInput& in, Random& rnd, TtlDecision& out);

}  // namespace corral::policies
