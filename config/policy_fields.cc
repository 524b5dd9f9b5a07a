// Every field of a policy, declared once: its key path, how it is parsed (and checked), how it
// is copied when defaults are merged, and whether `defaults:` may set it. Adding a policy field
// means one row here and one member in policy_config.h.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

namespace {

constexpr int64_t kMaxPriority = 1000000;
constexpr uint64_t kMaxKeyBytesLimit = 65536;

}  // namespace

const std::vector<Loader::PolicyField>& Loader::policyFields() {
  using N = const YAML::Node&;
  using P = const std::string&;
  using L = Loader&;
  using S = PolicySpec&;
  using C = const PolicySpec&;
  static const std::vector<PolicyField> kFields = {
      {"name",
       [](L l, S s, N k, N v, P p) { return l.uniqueName(k, v, p, &l.policy_names_, &s.name); },
       [](S d, C s) { d.name = s.name; },
       "is not allowed in defaults: each policy has its own name"},
      {"match",
       [](L l, S s, N k, N v, P p) {
         // The template itself is compiled (and its errors reported) by policies/.
         static constexpr const char* kRule = "must be a key template like \"user:<id:int>\"";
         const std::string* t = l.scalar(k, v, p, kRule);
         if (t == nullptr) return false;
         if (t->empty()) {
           l.failValue(k, v, p, kRule);
           return false;
         }
         s.match = *t;
         s.match_where = l.whereOf(v.Mark());
         return true;
       },
       [](S d, C s) {
         d.match = s.match;
         d.match_where = s.match_where;
       },
       "is not allowed in defaults: each policy has its own match"},
      {"mode",
       [](L l, S s, N k, N v, P p) {
         return l.choice(k, v, p,
                         {{"enforce", PolicyMode::kEnforce},
                          {"audit", PolicyMode::kAudit},
                          {"off", PolicyMode::kOff}},
                         &s.mode);
       },
       [](S d, C s) { d.mode = s.mode; }},
      {"priority",
       [](L l, S s, N k, N v, P p) {
         int64_t n = 0;
         if (!l.integerOk(k, v, p, -kMaxPriority, kMaxPriority, &n)) return false;
         s.priority = static_cast<int>(n);
         return true;
       },
       [](S d, C s) { d.priority = s.priority; }},
      {"rate_limits",
       [](L l, S s, N k, N v, P p) { return l.rateLimits(k, v, p, false, &s.rate_limits); },
       [](S d, C s) { d.rate_limits = s.rate_limits; },
       "is not allowed in defaults: limit names are unique, so a limit for every key belongs in "
       "global.rate_limits"},
      {"naming.max_key_bytes",
       [](L l, S s, N k, N v, P p) {
         uint64_t n = 0;
         if (!l.sizeOk(k, v, p, 1, kMaxKeyBytesLimit, &n)) return false;
         s.max_key_bytes = static_cast<uint32_t>(n);
         return true;
       },
       [](S d, C s) { d.max_key_bytes = s.max_key_bytes; }},
      {"ttl.default",
       [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.ttl.default_ttl); },
       [](S d, C s) { d.ttl.default_ttl = s.ttl.default_ttl; }},
      {"ttl.min", [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.ttl.min); },
       [](S d, C s) { d.ttl.min = s.ttl.min; }},
      {"ttl.max", [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.ttl.max); },
       [](S d, C s) { d.ttl.max = s.ttl.max; }},
      {"ttl.require", [](L l, S s, N k, N v, P p) { return l.boolean(k, v, p, &s.ttl.require); },
       [](S d, C s) { d.ttl.require = s.ttl.require; }},
      {"ttl.on_violation",
       [](L l, S s, N k, N v, P p) {
         return l.choice(k, v, p,
                         {{"fix", TtlOnViolation::kFix},
                          {"reject", TtlOnViolation::kReject},
                          {"audit", TtlOnViolation::kAudit}},
                         &s.ttl.on_violation);
       },
       [](S d, C s) { d.ttl.on_violation = s.ttl.on_violation; }},
      {"ttl.jitter", [](L l, S s, N k, N v, P p) { return l.jitter(k, v, p, &s.ttl.jitter); },
       [](S d, C s) { d.ttl.jitter = s.ttl.jitter; }},
      {"ttl.jitter_client",
       [](L l, S s, N k, N v, P p) { return l.boolean(k, v, p, &s.ttl.jitter_client); },
       [](S d, C s) { d.ttl.jitter_client = s.ttl.jitter_client; }},
      {"ttl.from_origin",
       [](L l, S s, N k, N v, P p) { return l.boolean(k, v, p, &s.ttl.from_origin); },
       [](S d, C s) { d.ttl.from_origin = s.ttl.from_origin; },
       "is not allowed in defaults: it needs fill, so it belongs to each fill policy"},
      {"fill.origin",
       [](L l, S s, N k, N v, P p) {
         // Whether origins has this entry is checked after the walk (checkLayer).
         const std::string* t = l.scalar(k, v, p, "must be the name of an entry of origins");
         if (t == nullptr) return false;
         if (!isValidName(*t)) {
           l.failValue(k, v, p, "must be the name of an entry of origins");
           return false;
         }
         s.fill.origin = *t;
         return true;
       },
       [](S d, C s) { d.fill.origin = s.fill.origin; }},
      {"fill.path",
       [](L l, S s, N k, N v, P p) {
         static constexpr const char* kRule = "must be a path starting with /, like /v1/users/<id>";
         const std::string* t = l.scalar(k, v, p, kRule);
         if (t == nullptr) return false;
         bool clean = std::all_of(t->begin(), t->end(), [](char c) {
           auto u = static_cast<unsigned char>(c);
           return u > 0x20 && u != 0x7f;
         });
         if (t->empty() || (*t)[0] != '/' || !clean) {
           l.failValue(k, v, p, kRule);
           return false;
         }
         s.fill.path = *t;
         return true;
       },
       [](S d, C s) { d.fill.path = s.fill.path; }},
      {"fill.commands",
       [](L l, S s, N k, N v, P p) { return l.fillCommands(k, v, p, &s.fill.commands); },
       [](S d, C s) { d.fill.commands = s.fill.commands; }},
      {"fill.decode",
       [](L l, S s, N k, N v, P p) {
         // raw, or {json-field: <name>}: one member of a JSON object body (policies/fill_decode.h).
         static constexpr const char* kRule = "must be raw or {json-field: <member name>}";
         if (v.IsScalar() && v.Scalar() == "raw") {
           s.fill.decode = FillDecodeKind::kRaw;
           s.fill.decode_field.clear();
           return true;
         }
         if (!v.IsMap() || v.size() != 1 || !v.begin()->first.IsScalar() ||
             v.begin()->first.Scalar() != "json-field" || !v.begin()->second.IsScalar() ||
             v.begin()->second.Scalar().empty()) {
           l.failValue(k, v, p, kRule);
           return false;
         }
         s.fill.decode = FillDecodeKind::kJsonField;
         s.fill.decode_field = v.begin()->second.Scalar();
         return true;
       },
       [](S d, C s) {
         d.fill.decode = s.fill.decode;
         d.fill.decode_field = s.fill.decode_field;
       }},
      {"fill.on_error",
       [](L l, S s, N k, N v, P p) {
         return l.choice(k, v, p, {{"nil", FillOnError::kNil}, {"error", FillOnError::kError}},
                         &s.fill.on_error);
       },
       [](S d, C s) { d.fill.on_error = s.fill.on_error; }},
      {"fill.max_value_bytes",
       [](L l, S s, N k, N v, P p) {
         uint64_t n = 0;
         if (!l.sizeOk(k, v, p, kMinByteLimit, std::numeric_limits<uint64_t>::max(), &n)) {
           return false;
         }
         s.fill.max_value_bytes = n;
         return true;
       },
       [](S d, C s) { d.fill.max_value_bytes = s.fill.max_value_bytes; }},
      {"negative.ttl",
       [](L l, S s, N k, N v, P p) {
         return l.duration(k, v, p, /*allow_zero=*/true, &s.negative_ttl);
       },
       [](S d, C s) { d.negative_ttl = s.negative_ttl; }},
      {"stampede.single_flight",
       [](L l, S s, N k, N v, P p) {
         return l.choiceOpt(k, v, p,
                            {{"off", SingleFlight::kOff},
                             {"local", SingleFlight::kLocal},
                             {"distributed", SingleFlight::kDistributed}},
                            &s.stampede.single_flight);
       },
       [](S d, C s) { d.stampede.single_flight = s.stampede.single_flight; }},
      {"stampede.lock_ttl",
       [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.stampede.lock_ttl); },
       [](S d, C s) { d.stampede.lock_ttl = s.stampede.lock_ttl; }},
      {"stampede.wait",
       [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.stampede.wait); },
       [](S d, C s) { d.stampede.wait = s.stampede.wait; }},
      {"freshness.stale_while_revalidate",
       [](L l, S s, N k, N v, P p) {
         return l.duration(k, v, p, /*allow_zero=*/true, &s.freshness.stale_while_revalidate);
       },
       [](S d, C s) { d.freshness.stale_while_revalidate = s.freshness.stale_while_revalidate; }},
      {"freshness.stale_if_error",
       [](L l, S s, N k, N v, P p) {
         return l.duration(k, v, p, /*allow_zero=*/true, &s.freshness.stale_if_error);
       },
       [](S d, C s) { d.freshness.stale_if_error = s.freshness.stale_if_error; }},
      {"freshness.early_refresh",
       [](L l, S s, N k, N v, P p) {
         return l.choice(k, v, p, {{"off", false}, {"xfetch", true}}, &s.freshness.xfetch);
       },
       [](S d, C s) { d.freshness.xfetch = s.freshness.xfetch; }},
      {"freshness.early_refresh_beta",
       [](L l, S s, N k, N v, P p) { return l.positiveNumber(k, v, p, &s.freshness.beta); },
       [](S d, C s) { d.freshness.beta = s.freshness.beta; }},
      {"routing.read_from",
       [](L l, S s, N k, N v, P p) {
         return l.choiceOpt(k, v, p,
                            {{"primary", PolicyReadFrom::kPrimary},
                             {"replica", PolicyReadFrom::kReplica},
                             {"prefer_replica", PolicyReadFrom::kPreferReplica}},
                            &s.routing.read_from);
       },
       [](S d, C s) { d.routing.read_from = s.routing.read_from; }},
      {"routing.read_your_writes",
       [](L l, S s, N k, N v, P p) {
         return l.duration(k, v, p, /*allow_zero=*/true, &s.routing.read_your_writes);
       },
       [](S d, C s) { d.routing.read_your_writes = s.routing.read_your_writes; }},
      {"near_cache.enabled",
       [](L l, S s, N k, N v, P p) { return l.boolean(k, v, p, &s.near_cache.enabled); },
       [](S d, C s) { d.near_cache.enabled = s.near_cache.enabled; }},
      {"near_cache.max_bytes",
       [](L l, S s, N k, N v, P p) {
         uint64_t n = 0;
         if (!l.sizeOk(k, v, p, kMinByteLimit, std::numeric_limits<uint64_t>::max(), &n)) {
           return false;
         }
         s.near_cache.max_bytes = n;
         s.near_cache.enabled = true;
         return true;
       },
       [](S d, C s) {
         d.near_cache.max_bytes = s.near_cache.max_bytes;
         d.near_cache.enabled = d.near_cache.enabled || s.near_cache.enabled;
       }},
      {"near_cache.max_age",
       [](L l, S s, N k, N v, P p) {
         s.near_cache.enabled = true;
         return l.duration(k, v, p, /*allow_zero=*/false, &s.near_cache.max_age);
       },
       [](S d, C s) {
         d.near_cache.max_age = s.near_cache.max_age;
         d.near_cache.enabled = d.near_cache.enabled || s.near_cache.enabled;
       }},
  };
  return kFields;
}

}  // namespace corral::config::detail
