// Typed policy configuration: the `origins`, `global`, `defaults`, `policies` and
// `policy_files` sections of docs/policies.md, as the loader produces them.
//
//   corral.yaml (+ policy_files: files or dirs of *.yaml) --loader--> PolicyConfig
//       --policies::compile--> policies::PolicySet (matcher, limits, counters)
//
// Defaults (`defaults:`) are already merged into every PolicySpec here; the compiler never sees
// them. Every spec keeps the place it was written (file:line:col) so that the compiler's own
// errors (ambiguous templates, duplicate names) point at the YAML like the loader's do.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace corral::config {

using Millis = std::chrono::milliseconds;

// Where a value was written, for errors found after loading (by the policy compiler).
struct Where {
  std::string file;
  int line = 0;  // 1-based; 0 = unknown
  int col = 0;
};

enum class PolicyMode : uint8_t { kEnforce, kAudit, kOff };
enum class TtlOnViolation : uint8_t { kFix, kReject, kAudit };
enum class UnmatchedKeys : uint8_t { kAllow, kAudit, kReject };
// What happens to a command neither the built-in table nor the learnt overlay knows.
enum class UnknownCommands : uint8_t { kForward, kReject };
enum class OnLimit : uint8_t { kReject, kShadow };
enum class LimitScope : uint8_t { kLocal, kGlobal };
// scope global: what decides while the shared state in Redis cannot be reached.
enum class OnUnavailable : uint8_t { kLocalShare, kAllow, kDeny };
enum class SingleFlight : uint8_t { kOff, kLocal, kDistributed };
enum class FillOnError : uint8_t { kNil, kError };
// fill.decode: raw (the body as the value) or json-field (one member of a JSON object body).
enum class FillDecodeKind : uint8_t { kRaw, kJsonField };
// Same meaning as ReadFrom in config.h (declared there); repeated here to keep this header
// free-standing: primary | replica | prefer_replica.
enum class PolicyReadFrom : uint8_t { kPrimary, kReplica, kPreferReplica };

// One part of a rate limit's bucket key.
struct KeyByPart {
  enum class Kind : uint8_t { kClient, kPolicy, kCommand, kKey, kCapture };
  Kind kind = Kind::kClient;
  std::string capture;  // kCapture: placeholder name of the policy's template
};

// rate_limits[i]: {name, rate: "100/s", burst, commands, key_by, scope, on_unavailable,
// on_limit}.
struct RateLimitSpec {
  std::string name;     // unique across global and every policy
  uint64_t count = 0;   // rate = count per period ("100/s": 100 per 1000 ms); count >= 1
  Millis period{1000};  // > 0
  uint64_t burst = 0;   // requests admitted at once; 0 in YAML is an error; default = count
  // Lower-case command names ("get") and categories ("@read", "@write"); empty = every command.
  std::vector<std::string> commands;
  std::vector<KeyByPart> key_by;  // empty = one bucket for the whole limit
  LimitScope scope = LimitScope::kLocal;
  OnUnavailable on_unavailable = OnUnavailable::kLocalShare;  // scope global only
  OnLimit on_limit = OnLimit::kReject;
  Where where;  // of the limit's mapping
  std::string
      path;  // its key path, for errors: "global.rate_limits[0]", "policies[2].rate_limits[1]"
};

struct TtlSpec {
  std::optional<Millis> default_ttl;  // ttl.default
  std::optional<Millis> min;
  std::optional<Millis> max;
  bool require = false;
  TtlOnViolation on_violation = TtlOnViolation::kFix;
  double jitter = 0.10;  // fraction in [0, 1): ttl * (1 - U(0, jitter)); "10%" or 0.1
  bool jitter_client = false;
  // ttl.from_origin (fill policies): the origin's Cache-Control / Expires / Age set a filled
  // value's TTL, clamped to [min, max]; default applies when the answer has none.
  bool from_origin = false;
  // Not YAML: set by the policy compiler. Added to the (jittered) default TTL corral gives a
  // client write, so that a value a client writes to a fill policy with a freshness window
  // lives as long as a filled one (soft TTL + window) and is not refreshed at once.
  int64_t default_extra_ms = 0;
};

struct FillSpec {
  std::string origin;                        // "" = no fill
  std::string path;                          // e.g. "/v1/users/<id>"
  std::vector<std::string> commands{"get"};  // lower case
  FillOnError on_error = FillOnError::kNil;
  std::optional<uint64_t> max_value_bytes;       // larger origin bodies are served but not stored
  FillDecodeKind decode = FillDecodeKind::kRaw;  // fill.decode: raw | {json-field: <name>}
  std::string decode_field;                      // json-field: the member's name
};

struct StampedeSpec {
  std::optional<SingleFlight> single_flight;  // unset: local with fill, else off
  std::optional<Millis> lock_ttl;             // unset: 2 x origin timeout
  std::optional<Millis> wait;                 // unset: lock_ttl
};

struct FreshnessSpec {
  Millis stale_while_revalidate{0};
  Millis stale_if_error{0};
  bool xfetch = false;  // early_refresh: xfetch | off
  double beta = 1.0;    // early_refresh_beta
};

// near_cache: replies of the policy's GETs kept in each worker's memory, dropped when Redis
// says the key changed (CLIENT TRACKING). Off unless a near_cache field is written.
struct NearCacheSpec {
  bool enabled = false;
  uint64_t max_bytes = 64ull << 20;  // per worker
  Millis max_age{10000};             // an entry lives at most this long (and never past its TTL)
};

struct RoutingSpec {
  std::optional<PolicyReadFrom> read_from;  // unset: upstream.read_from
  Millis read_your_writes{0};
};

// One entry of `policies:` (inline or from a policy file), defaults merged in.
struct PolicySpec {
  std::string name;
  std::string match;  // template text, or "glob:..." as written
  PolicyMode mode = PolicyMode::kEnforce;
  int priority = 0;              // higher wins over the longest-literal-prefix rule
  uint32_t max_key_bytes = 512;  // naming.max_key_bytes
  TtlSpec ttl;
  FillSpec fill;
  Millis negative_ttl{0};  // negative.ttl
  StampedeSpec stampede;
  FreshnessSpec freshness;
  RoutingSpec routing;
  NearCacheSpec near_cache;
  std::vector<RateLimitSpec> rate_limits;
  Where where;        // of the policy's mapping
  Where match_where;  // of its `match` value
  // Its key path, for errors: "policies[2]", the index within the file it was written in (the
  // error's file tells which). Later checks (the policy compiler) append to it, so their errors
  // name keys exactly as the loader's do: "policies[2].match".
  std::string path;
};

// origins.<name>.headers.<Header>: a literal, {env: NAME} (read at load) or {file: /path} (read
// at load, then again whenever the file changes). Values are secrets: never logged or shown.
struct OriginHeader {
  enum class Source : uint8_t { kLiteral, kEnv, kFile };
  std::string name;  // as written ("Authorization")
  Source source = Source::kLiteral;
  std::string value;  // kLiteral, kEnv: the value; kFile: the file's content at load (trimmed)
  std::string file;   // kFile
};

// origins.<name>.retry: retries of failed fill requests (connect errors, timeouts, 5xx, 429).
struct OriginRetrySpec {
  bool enabled = false;         // the key was written
  uint32_t attempts = 3;        // requests per fill at most, the first included
  double budget = 0.1;          // retries <= budget x requests of the last 10 s ...
  uint32_t min_per_second = 3;  // ... + this many per second of that window
  Millis backoff_base{20};      // backoff: 20ms..500ms, doubling, jittered
  Millis backoff_max{500};
  Millis per_try_timeout{0};  // one request; 0 = the origin's timeout (which bounds the fill)
};

// origins.<name>.breaker: a circuit breaker shared by the process's workers.
struct OriginBreakerSpec {
  bool enabled = false;           // the key was written
  uint32_t failures = 5;          // consecutive failed requests that open it
  Millis open_for{5000};          // then no request for this long ...
  uint32_t half_open_probes = 1;  // ... then this many probes; all succeed: closed
};

struct OriginSpec {
  std::string name;
  std::string base_url;  // http[s]://host[:port][/prefix]
  std::string ca_file;   // https: the CAs that may sign the origin's certificate ("" = system)
  Millis timeout{1000};  // a fill's whole time at the origin, retries included
  uint32_t max_in_flight = 64;
  std::vector<OriginHeader> headers;  // sent with every request, after the defaults they replace
  OriginRetrySpec retry;
  OriginBreakerSpec breaker;
  Where where;
};

// `global:` section.
struct GlobalSpec {
  UnmatchedKeys unmatched_keys = UnmatchedKeys::kAllow;
  // unknown_commands as written; unset means the default of effectiveUnknownCommands().
  std::optional<UnknownCommands> unknown_commands;
  std::vector<std::string> deny_commands;   // commands.deny, lower case
  std::vector<std::string> audit_commands;  // commands.audit, lower case
  std::vector<RateLimitSpec> rate_limits;
  // fill_secret, or the value of the variable fill_secret_env names, read at load: the key of
  // the digests in fills' internal key names (policies/fill.h). "" when neither is set.
  std::string fill_secret;
  // near_cache.max_bytes: what the near caches of all policies hold together in the process
  // (each worker gets its share), on top of each policy's own near_cache.max_bytes.
  uint64_t near_cache_max_bytes = 256ull << 20;
};

// Everything a policy reload replaces, in one value.
struct PolicyConfig {
  std::vector<OriginSpec> origins;
  GlobalSpec global;
  // Inline ones first, then each policy_files entry in order (a directory's files by name).
  std::vector<PolicySpec> policies;
  // Files read for this config (the expanded policy_files), watched for changes.
  std::vector<std::string> files;
  // Directories that policy_files names, watched for files that appear in them (also when
  // they held no *.yaml at load).
  std::vector<std::string> dirs;
};

// global.unknown_commands in force: as written, else `reject` when the policies are strict
// (unmatched_keys: reject, or any policy in mode enforce: a command whose keys corral cannot see
// would escape them), else `forward`.
inline UnknownCommands effectiveUnknownCommands(const PolicyConfig& c) {
  if (c.global.unknown_commands) return *c.global.unknown_commands;
  if (c.global.unmatched_keys == UnmatchedKeys::kReject) return UnknownCommands::kReject;
  for (const PolicySpec& p : c.policies) {
    if (p.mode == PolicyMode::kEnforce) return UnknownCommands::kReject;
  }
  return UnknownCommands::kForward;
}

}  // namespace corral::config
