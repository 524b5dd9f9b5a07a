// The policy engine (see engine.h for the flow). Everything here runs either on the main thread
// (compile) or on a worker for one request (decide); decide() reads only immutable state plus
// the Registry's atomics and the rate limiter's sharded buckets.
#include "policies/engine.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <tuple>
#include <utility>

#include "commands/command_table.h"
#include "proxy/codec/resp.h"

namespace corral::policies {

namespace {

using commands::CommandInfo;

constexpr size_t kMaxKeyInError = 64;

// A key (or any client bytes) for an error line: capped, non-printables as \xNN, quotes
// escaped, so a reply stays one line whatever the key holds.
void appendEscaped(std::string& out, std::string_view s) {
  const size_t n = std::min(s.size(), kMaxKeyInError);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out.append(buf);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > n) out.append("...");
}

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out.append(buf);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

// A JSON array of strings: ["a","b"].
void appendJsonStrings(std::string& out, const std::vector<std::string>& items) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    appendJsonString(out, items[i]);
  }
  out.push_back(']');
}

// Names of the config enums as the YAML spells them, indexed by the enumerator's value (the
// enums count from 0 in declaration order).
constexpr const char* kModeNames[] = {"enforce", "audit", "off"};
constexpr const char* kReadFromNames[] = {"primary", "replica", "prefer_replica"};
constexpr const char* kOnViolationNames[] = {"fix", "reject", "audit"};
constexpr const char* kUnmatchedNames[] = {"allow", "audit", "reject"};

template <typename Enum, size_t N>
const char* nameOf(const char* const (&names)[N], Enum v) {
  const auto i = static_cast<size_t>(v);
  return i < N ? names[i] : "?";
}

// "config|set" -> the table's entry for CONFIG SET; nullptr when unknown.
const CommandInfo* resolveCommand(const std::string& name) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t bar = name.find('|', start);
    parts.emplace_back(std::string_view(name).substr(start, bar - start));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  const CommandInfo* c = commands::lookup(parts);
  if (c == nullptr) return nullptr;
  // lookup() answers the container for an unknown subcommand: require the exact name.
  return c->name == name ? c : nullptr;
}

// Single-key reads whose reply tells a cache hit from a miss (nil or an empty collection).
bool isHitMissRead(const CommandInfo* cmd) {
  static const CommandInfo* const kReads[] = {
      resolveCommand("get"),    resolveCommand("getex"),   resolveCommand("getdel"),
      resolveCommand("hget"),   resolveCommand("hgetall"), resolveCommand("smembers"),
      resolveCommand("lrange"), resolveCommand("zrange"),  resolveCommand("json.get"),
  };
  for (const CommandInfo* c : kReads) {
    if (c == cmd && c != nullptr) return true;
  }
  return false;
}

// Appends "<len>:" for a bucket-key part.
void appendLength(std::string& out, size_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
  out.push_back(':');
}

// True when cmd is `listed` or a subcommand of it (deny "config" covers CONFIG SET).
bool sameOrChild(const CommandInfo* listed, const CommandInfo* cmd) {
  if (listed == cmd) return true;
  const std::string_view n = cmd->name;
  return n.size() > listed->name.size() && n[listed->name.size()] == '|' &&
         n.substr(0, listed->name.size()) == listed->name;
}

std::string whereText(const config::Where& w) {
  return w.file + ":" + std::to_string(w.line) + ":" + std::to_string(w.col);
}

// The key path errors name, as the loader wrote it ("policies[2]"); a config built in code has
// none, so its index stands in.
std::string pathOf(const std::string& path, const std::string& list, size_t i) {
  return !path.empty() ? path : list + "[" + std::to_string(i) + "]";
}

}  // namespace

namespace {

// One rate limit, for a policy (captures: its template's placeholder names) or global (captures
// null: capture:<name> needs a template). Errors go to *errors under `path`.
CompiledLimit compileLimit(const config::RateLimitSpec& ls, const std::string& path,
                           const std::vector<std::string>* captures, std::string_view match,
                           Registry& reg, std::vector<config::ConfigError>* errors) {
  CompiledLimit cl;
  cl.spec = &ls;
  cl.params = GcraParams::from(ls.count, std::chrono::nanoseconds(ls.period).count(), ls.burst);
  cl.counters = reg.limit(ls.name);
  cl.all_commands = ls.commands.empty();
  for (const std::string& name : ls.commands) {
    if (name == "@read") {
      cl.reads = true;
    } else if (name == "@write") {
      cl.writes = true;
    } else if (const CommandInfo* ci = resolveCommand(name)) {
      cl.commands.push_back(ci);
    } else {
      errors->push_back(
          config::configError(ls.where, path + ".commands", "unknown command '" + name + "'"));
    }
  }
  for (const config::KeyByPart& part : ls.key_by) {
    int idx = -1;
    cl.by_key |= part.kind == config::KeyByPart::Kind::kKey;
    cl.by_capture |= part.kind == config::KeyByPart::Kind::kCapture;
    if (part.kind == config::KeyByPart::Kind::kCapture) {
      if (captures == nullptr) {
        errors->push_back(config::configError(
            ls.where, path + ".key_by",
            "capture:" + part.capture + " needs a policy's template; use it in a policy's limit"));
      } else if (auto it = std::find(captures->begin(), captures->end(), part.capture);
                 it == captures->end()) {
        errors->push_back(config::configError(
            ls.where, path + ".key_by",
            "capture '" + part.capture + "' is not a placeholder of " + std::string(match)));
      } else {
        idx = static_cast<int>(it - captures->begin());
      }
    }
    cl.capture_index.push_back(idx);
  }
  return cl;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Registry

void PolicyCounters::countRead(std::string_view reply) {
  if (reply.size() > 1 && reply[0] == '$' && reply[1] != '-') {  // the common case: a value
    hits.add();
    return;
  }
  if (reply.empty() || reply[0] == '-' || reply[0] == '!') return;
  if (reply[0] == '_' || reply.starts_with("$-1") || reply.starts_with("*-1") ||
      reply.starts_with("*0\r") || reply.starts_with("%0\r") || reply.starts_with("~0\r")) {
    misses.add();
  } else {
    hits.add();
  }
}

PolicyCounters* Registry::policy(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& p : policies_) {
    if (p.name == name) return &p;
  }
  policies_.emplace_back();
  policies_.back().name = name;
  return &policies_.back();
}

LimitCounters* Registry::limit(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& l : limits_) {
    if (l.name == name) return &l;
  }
  limits_.emplace_back();
  limits_.back().name = name;
  limits_.back().id = static_cast<uint32_t>(limits_.size());
  return &limits_.back();
}

FillCounters* Registry::fill(const std::string& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, c] : fills_) {
    if (name == policy) return &c;
  }
  fills_.emplace_back(std::piecewise_construct, std::forward_as_tuple(policy),
                      std::forward_as_tuple());
  return &fills_.back().second;
}

void Registry::appendMetrics(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto head = [&out](const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
  };
  auto line = [&out](const char* name, std::string_view labels, uint64_t v) {
    out += name;
    out += '{';
    out += labels;
    out += "} ";
    out += std::to_string(v);
    out += '\n';
  };
  auto plabel = [](const std::string& policy, const char* extra_key, const char* extra) {
    std::string l = "policy=\"" + policy + "\"";
    if (extra_key != nullptr) l += std::string(",") + extra_key + "=\"" + extra + "\"";
    return l;
  };
  head("corral_policy_requests_total", "counter", "Requests with at least one key of the policy.");
  for (const auto& p : policies_)
    line("corral_policy_requests_total", plabel(p.name, nullptr, nullptr), p.requests.get());
  head("corral_policy_naming_violations_total", "counter",
       "Keys that broke the policy's template or length (rejected, or audited only).");
  for (const auto& p : policies_) {
    line("corral_policy_naming_violations_total", plabel(p.name, "action", "rejected"),
         p.naming_rejected.get());
    line("corral_policy_naming_violations_total", plabel(p.name, "action", "audited"),
         p.naming_audited.get());
  }
  head("corral_policy_ttl_total", "counter",
       "TTL rule outcomes: fixed (default added or clamped), rejected, audited.");
  for (const auto& p : policies_) {
    line("corral_policy_ttl_total", plabel(p.name, "action", "fixed"), p.ttl_fixed.get());
    line("corral_policy_ttl_total", plabel(p.name, "action", "rejected"), p.ttl_rejected.get());
    line("corral_policy_ttl_total", plabel(p.name, "action", "audited"), p.ttl_audited.get());
  }
  head("corral_policy_reads_total", "counter",
       "GET-like single-key reads of the policy's keys by result (keyspace hit ratio).");
  for (const auto& p : policies_) {
    line("corral_policy_reads_total", plabel(p.name, "result", "hit"), p.hits.get());
    line("corral_policy_reads_total", plabel(p.name, "result", "miss"), p.misses.get());
  }
  head("corral_ratelimit_requests_total", "counter",
       "Rate-limit checks by result: admitted, rejected (-RATELIMITED), shadowed (over, let "
       "through).");
  for (const auto& l : limits_) {
    const std::string lab = "limit=\"" + l.name + "\"";
    line("corral_ratelimit_requests_total", lab + ",result=\"admitted\"", l.admitted.get());
    line("corral_ratelimit_requests_total", lab + ",result=\"rejected\"", l.rejected.get());
    line("corral_ratelimit_requests_total", lab + ",result=\"shadowed\"", l.shadowed.get());
  }
  head("corral_ratelimit_buckets", "gauge", "Rate-limit buckets held in memory.");
  out += "corral_ratelimit_buckets " + std::to_string(limiter_.buckets()) + "\n";
  head("corral_fill_events_total", "counter",
       "Cache-aside fill events per policy: fills (origin calls attempted, including those "
       "refused at once by max_in_flight), fill_errors, coalesced "
       "waiters, lease_wins, lease_losses, stale_served, negative_hits, would_fill (audit), "
       "not_stored, refreshes, store_errors, wait_timeouts.");
  for (const auto& [name, c] : fills_) {
    const std::pair<const char*, const FillCount*> rows[] = {
        {"fills", &c.fills},
        {"fill_errors", &c.fill_errors},
        {"coalesced", &c.coalesced},
        {"lease_wins", &c.lease_wins},
        {"lease_losses", &c.lease_losses},
        {"stale_served", &c.stale_served},
        {"negative_hits", &c.negative_hits},
        {"would_fill", &c.would_fill},
        {"not_stored", &c.not_stored},
        {"refreshes", &c.refreshes},
        {"store_errors", &c.store_errors},
        {"wait_timeouts", &c.wait_timeouts},
    };
    for (const auto& [event, v] : rows) {
      line("corral_fill_events_total", plabel(name, "event", event), *v);
    }
  }
  head("corral_fill_origin_duration_seconds", "histogram",
       "Origin latency of fills (answers 200 and 404) per policy.");
  for (const auto& [name, c] : fills_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= FillCounters::kLatencyBuckets; ++i) {
      cumulative += c.latency_bucket[i];
      char le[32];
      if (i < FillCounters::kLatencyBuckets) {
        std::snprintf(le, sizeof le, "%g",
                      static_cast<double>(FillCounters::kLatencyBoundsMs[i]) / 1000.0);
      } else {
        std::snprintf(le, sizeof le, "+Inf");
      }
      line("corral_fill_origin_duration_seconds_bucket", plabel(name, "le", le), cumulative);
    }
    char sum[48];
    std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(c.latency_sum_us) / 1e6);
    out += "corral_fill_origin_duration_seconds_sum{policy=\"" + name + "\"} " + sum + "\n";
    line("corral_fill_origin_duration_seconds_count", plabel(name, nullptr, nullptr),
         c.latency_count);
  }
  head("corral_unmatched_keys_total", "counter",
       "Keys no policy covers, by action (global.unmatched_keys).");
  line("corral_unmatched_keys_total", "action=\"rejected\"", unmatched_rejected.get());
  line("corral_unmatched_keys_total", "action=\"audited\"", unmatched_audited.get());
  head("corral_commands_denied_total", "counter", "Commands refused by global.commands.deny.");
  out += "corral_commands_denied_total " + std::to_string(denied.get()) + "\n";
  head("corral_commands_audited_total", "counter", "Commands counted by global.commands.audit.");
  out += "corral_commands_audited_total " + std::to_string(command_audit.get()) + "\n";
  head("corral_ttl_followup_errors_total", "counter",
       "Follow-up PEXPIRE ... NX that Redis answered with an error.");
  out += "corral_ttl_followup_errors_total " + std::to_string(followup_errors.get()) + "\n";
  head("corral_ttl_followups_skipped_total", "counter",
       "Follow-up PEXPIREs not sent because the client's connection is in pipe mode.");
  out += "corral_ttl_followups_skipped_total " + std::to_string(followups_skipped.get()) + "\n";
}

// ---------------------------------------------------------------------------------------------
// PolicySet

PolicySet::PolicySet() = default;
PolicySet::~PolicySet() = default;

std::shared_ptr<const PolicySet> PolicySet::compile(const config::PolicyConfig& cfg, Registry& reg,
                                                    std::vector<config::ConfigError>* errors) {
  std::shared_ptr<PolicySet> set(new PolicySet());
  set->config_ = cfg;
  for (config::PolicySpec& p : set->config_.policies) {
    if (!p.fill.origin.empty()) {
      p.ttl.default_extra_ms =
          std::max(p.freshness.stale_while_revalidate.count(), p.freshness.stale_if_error.count());
    }
  }
  const config::PolicyConfig& c = set->config_;
  const size_t errors_before = errors->size();

  std::vector<Matcher::Entry> entries;
  entries.reserve(c.policies.size());
  std::vector<size_t> entry_policy;  // entry index -> policy index
  for (size_t i = 0; i < c.policies.size(); ++i) {
    const config::PolicySpec& p = c.policies[i];
    const std::string path = pathOf(p.path, "policies", i);
    std::string why;
    std::optional<Template> t = Template::compile(p.match, &why);
    if (!t) {
      errors->push_back(config::configError(p.match_where, path + ".match", why, p.match));
      continue;
    }
    CompiledPolicy cp;
    cp.spec = &p;
    cp.counters = reg.policy(p.name);
    const config::TtlSpec& ttl = p.ttl;
    cp.has_ttl_rules = ttl.default_ttl || ttl.min || ttl.max || ttl.require || ttl.jitter_client;
    if (!p.fill.origin.empty()) {
      const config::OriginSpec* origin = nullptr;
      for (const auto& o : c.origins) {
        if (o.name == p.fill.origin) origin = &o;
      }
      std::string missing;
      if (origin == nullptr) {
        errors->push_back(config::configError(
            p.where, path + ".fill.origin", "no origin named '" + p.fill.origin + "' in origins"));
      } else if (!ttl.default_ttl) {
        errors->push_back(
            config::configError(p.where, path + ".fill",
                                "a policy with fill needs ttl.default (the TTL of filled values)"));
      } else if (!fillPathValid(p.fill.path, t->captureNames(), &missing)) {
        errors->push_back(config::configError(
            p.where, path + ".fill.path", "<" + missing + "> is not a placeholder of " + p.match));
      } else {
        auto f = std::make_unique<FillPolicy>();
        f->name = p.name;
        f->origin_name = origin->name;
        f->origin_timeout_ms = origin->timeout.count();
        f->ttl_ms = ttl.default_ttl->count();
        f->jitter = ttl.jitter;
        f->negative_ttl_ms = p.negative_ttl.count();
        f->single_flight = p.stampede.single_flight.value_or(config::SingleFlight::kLocal);
        f->lock_ttl_ms =
            p.stampede.lock_ttl ? p.stampede.lock_ttl->count() : 2 * origin->timeout.count();
        f->wait_ms = p.stampede.wait ? p.stampede.wait->count() : f->lock_ttl_ms;
        f->swr_ms = p.freshness.stale_while_revalidate.count();
        f->sie_ms = p.freshness.stale_if_error.count();
        f->xfetch = p.freshness.xfetch;
        f->beta = p.freshness.beta;
        f->on_error = p.fill.on_error;
        f->max_value_bytes = p.fill.max_value_bytes.value_or(0);
        f->audit = p.mode == config::PolicyMode::kAudit;
        cp.fill_get = std::find(p.fill.commands.begin(), p.fill.commands.end(), "get") !=
                      p.fill.commands.end();
        cp.fill_mget = std::find(p.fill.commands.begin(), p.fill.commands.end(), "mget") !=
                       p.fill.commands.end();
        for (const std::string& fc : p.fill.commands) {
          if (fc != "get" && fc != "mget") {
            errors->push_back(
                config::configError(p.where, path + ".fill.commands",
                                    "filling on " + fc +
                                        " is not supported by this version of corral yet "
                                        "(GET and MGET are)"));
          }
        }
        cp.distributed = f->single_flight == config::SingleFlight::kDistributed;
        cp.fill = std::move(f);
      }
    }
    for (size_t j = 0; j < p.rate_limits.size(); ++j) {
      const config::RateLimitSpec& ls = p.rate_limits[j];
      cp.limits.push_back(compileLimit(ls, pathOf(ls.path, path + ".rate_limits", j),
                                       &t->captureNames(), p.match, reg, errors));
    }
    set->policies_.push_back(std::move(cp));
    entries.push_back(Matcher::Entry{std::move(*t), p.priority});
    entry_policy.push_back(i);
  }
  // Entries may have been skipped for bad templates: keep policies_ parallel to the entries.
  std::vector<Matcher::Clash> clashes;
  std::optional<Matcher> m = Matcher::build(std::move(entries), &clashes);
  for (const Matcher::Clash& cl : clashes) {
    const config::PolicySpec& a = c.policies[entry_policy[cl.a]];
    const config::PolicySpec& b = c.policies[entry_policy[cl.b]];
    errors->push_back(config::configError(
        b.match_where, pathOf(b.path, "policies", entry_policy[cl.b]) + ".match",
        "ambiguous: '" + b.match + "' and '" + a.match + "' (policy " + a.name + " at " +
            whereText(a.match_where) +
            ") can match the same key at equal precedence; give one of them a priority"));
  }
  for (size_t j = 0; j < c.global.rate_limits.size(); ++j) {
    const config::RateLimitSpec& ls = c.global.rate_limits[j];
    set->global_limits_.push_back(
        compileLimit(ls, pathOf(ls.path, "global.rate_limits", j), nullptr, {}, reg, errors));
  }
  const size_t ncmds = commands::allCommands().size();
  set->deny_top_.assign(ncmds, 0);
  set->audit_top_.assign(ncmds, 0);
  for (const std::string& name : c.global.deny_commands) {
    if (const CommandInfo* ci = resolveCommand(name)) {
      set->deny_.push_back(ci);
      if (const int64_t i = commands::topLevelIndex(ci); i >= 0)
        set->deny_top_[static_cast<size_t>(i)] = 1;
    }
  }
  for (const std::string& name : c.global.audit_commands) {
    if (const CommandInfo* ci = resolveCommand(name)) {
      set->audit_.push_back(ci);
      if (const int64_t i = commands::topLevelIndex(ci); i >= 0)
        set->audit_top_[static_cast<size_t>(i)] = 1;
    }
  }
  if (errors->size() != errors_before) return nullptr;
  set->matcher_ = std::move(m);
  set->trivial_ = c.policies.empty() && c.global.rate_limits.empty() &&
                  c.global.deny_commands.empty() && c.global.audit_commands.empty() &&
                  c.global.unmatched_keys == config::UnmatchedKeys::kAllow;
  return set;
}

bool PolicySet::commandListed(const std::vector<std::string>& names,
                              const std::vector<const CommandInfo*>& cmds, const CommandInfo* cmd,
                              std::string_view name) const {
  if (cmd != nullptr) {
    for (const CommandInfo* c : cmds) {
      if (sameOrChild(c, cmd)) return true;
    }
    return false;
  }
  // A command the table does not know (a module's): compare the names as written.
  for (const std::string& n : names) {
    if (commands::equalsIgnoreCase(n, name)) return true;
  }
  return false;
}

bool PolicySet::limitApplies(const CompiledLimit& l, const CommandInfo* cmd) const {
  if (l.all_commands) return true;
  if (cmd == nullptr) return false;
  if (l.writes && (cmd->flags & commands::kWrite)) return true;
  if (l.reads && (cmd->flags & commands::kRead) && !(cmd->flags & commands::kWrite)) return true;
  for (const CommandInfo* c : l.commands) {
    if (sameOrChild(c, cmd)) return true;
  }
  return false;
}

void PolicySet::bucketKey(const CompiledLimit& l, const CompiledPolicy* p, const CommandInfo* cmd,
                          std::string_view key, std::span<const Capture> caps,
                          const RequestContext& ctx, std::string& out) const {
  out.clear();
  const auto& parts = l.spec->key_by;
  for (size_t i = 0; i < parts.size(); ++i) {
    // Parts are separated by a byte that the lengths make unambiguous: "<len>:<bytes>".
    std::string_view v;
    switch (parts[i].kind) {
      case config::KeyByPart::Kind::kClient:
        v = ctx.client;
        break;
      case config::KeyByPart::Kind::kPolicy:
        v = p != nullptr ? std::string_view(p->spec->name) : std::string_view();
        break;
      case config::KeyByPart::Kind::kCommand:
        v = cmd != nullptr ? cmd->name : std::string_view();
        break;
      case config::KeyByPart::Kind::kKey:
        v = key;
        break;
      case config::KeyByPart::Kind::kCapture: {
        const int ci = l.capture_index[i];
        if (ci >= 0 && static_cast<size_t>(ci) < caps.size()) v = caps[ci].value;
        break;
      }
    }
    appendLength(out, v.size());
    out.append(v);
  }
}

bool PolicySet::checkLimit(const CompiledLimit& l, bool shadow, std::string& bucket,
                           const RequestContext& ctx, Registry& reg, Decision& out) const {
  if (ctx.replay) return true;  // admitted the first time
  const GcraVerdict v = reg.limiter().admit(l.counters->id, bucket, ctx.clock->monoNs(), l.params);
  if (v.allowed) {
    l.counters->admitted.add();
    return true;
  }
  if (shadow || l.spec->on_limit == config::OnLimit::kShadow) {
    l.counters->shadowed.add();
    if (out.audit.empty()) {
      out.audit = "rate limit ";
      out.audit += l.spec->name;
      out.audit += " is over (shadow): request let through";
    }
    return true;
  }
  l.counters->rejected.add();
  out.verdict = Decision::Verdict::kReject;
  out.error = "RATELIMITED ";
  out.error += l.spec->name;
  out.error += " retry_after_ms=";
  out.error += std::to_string(std::max<int64_t>(1, (v.retry_after_ns + 999999) / 1000000));
  return false;
}

void PolicySet::decide(const CommandInfo* cmd, std::span<const std::string_view> args,
                       const RequestContext& ctx, Registry& reg, Decision& out) const {
  out.clear();
  const config::GlobalSpec& g = config_.global;
  const bool count = !ctx.replay;
  // A top-level command is on a list exactly when its bit is set; subcommands and commands the
  // table does not know take the slow path.
  const int64_t top = cmd != nullptr ? commands::topLevelIndex(cmd) : -1;
  const bool denied =
      top >= 0 ? deny_top_[static_cast<size_t>(top)] != 0
               : !g.deny_commands.empty() && commandListed(g.deny_commands, deny_, cmd, args[0]);
  const bool audited =
      top >= 0 ? audit_top_[static_cast<size_t>(top)] != 0
               : !g.audit_commands.empty() && commandListed(g.audit_commands, audit_, cmd, args[0]);
  auto bump = [count](AtomicCounter& c) {
    if (count) c.add();
  };
  // 1. Command rules.
  if (denied) {
    bump(reg.denied);
    out.verdict = Decision::Verdict::kReject;
    out.error = "DENIED command '";
    if (cmd != nullptr) {
      out.error.append(cmd->name);
    } else {
      appendEscaped(out.error, args[0]);
    }
    out.error += "' is denied by global.commands.deny";
    return;
  }
  if (audited) {
    bump(reg.command_audit);
    if (out.audit.empty()) {
      out.audit = "command '";
      appendEscaped(out.audit, args[0]);
      out.audit += "' (global.commands.audit)";
    }
  }

  // 2. Keys and their policies.
  out.keys.clear();
  out.key_policy.clear();
  if (cmd != nullptr && !(cmd->flags & (commands::kNoKey | commands::kPubSub)) &&
      commands::arityOk(*cmd, args.size())) {
    if (!commands::extractKeys(*cmd, args, out.keys)) out.keys.clear();  // Redis will refuse it
  }
  const bool have_policies = matcher_.has_value() && !policies_.empty();
  for (uint32_t idx : out.keys) {
    const std::string_view key = args[idx];
    if (key.starts_with(kInternalPrefix)) [[unlikely]] {
      // Leases and negative entries of fills: corral's own, never a client's to read or write.
      out.verdict = Decision::Verdict::kReject;
      out.error = "KEYNAME key '";
      appendEscaped(out.error, key);
      out.error += "' is in corral's reserved prefix ";
      out.error += kInternalPrefix;
      return;
    }
    const CompiledPolicy* p = nullptr;
    bool violation = false;
    if (have_policies) {
      const MatchResult r = matcher_->match(key, nullptr);
      if (r.entry >= 0) {
        p = &policies_[static_cast<size_t>(r.entry)];
        violation = r.violation;
      }
    }
    if (p == nullptr) {
      out.key_policy.push_back(nullptr);
      if (g.unmatched_keys == config::UnmatchedKeys::kReject) {
        bump(reg.unmatched_rejected);
        out.verdict = Decision::Verdict::kReject;
        out.error = "KEYNAME key '";
        appendEscaped(out.error, key);
        out.error += "' matches no policy (global.unmatched_keys: reject)";
        return;
      }
      if (g.unmatched_keys == config::UnmatchedKeys::kAudit) {
        bump(reg.unmatched_audited);
        if (out.audit.empty()) {
          out.audit = "key '";
          appendEscaped(out.audit, key);
          out.audit += "' matches no policy (global.unmatched_keys: audit)";
        }
      }
      continue;
    }
    const config::PolicySpec& spec = *p->spec;
    if (spec.mode == config::PolicyMode::kOff) {
      out.key_policy.push_back(nullptr);
      continue;
    }
    out.key_policy.push_back(p);
    const bool too_long = key.size() > spec.max_key_bytes;
    if (violation || too_long) {
      if (spec.mode == config::PolicyMode::kAudit) {
        bump(p->counters->naming_audited);
        if (out.audit.empty()) {
          out.audit = "policy ";
          out.audit += spec.name;
          out.audit += " (mode audit) would refuse key '";
          appendEscaped(out.audit, key);
          out.audit += too_long ? "': longer than naming.max_key_bytes" : "': does not match ";
          if (!too_long) out.audit += spec.match;
        }
        continue;
      }
      bump(p->counters->naming_rejected);
      out.verdict = Decision::Verdict::kReject;
      out.error = "KEYNAME ";
      out.error += spec.name;
      out.error += ": key '";
      appendEscaped(out.error, key);
      if (too_long) {
        out.error += "' is longer than naming.max_key_bytes (";
        out.error += std::to_string(spec.max_key_bytes);
        out.error += ")";
      } else {
        out.error += "' does not match ";
        out.error += spec.match;
      }
      return;
    }
  }
  // Each policy counts a request once, however many of its keys the request has.
  for (size_t i = 0; i < out.key_policy.size(); ++i) {
    const CompiledPolicy* p = out.key_policy[i];
    if (p == nullptr) continue;
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = out.key_policy[j] == p;
    if (!seen) bump(p->counters->requests);
  }

  // 3. Rate limits: global ones, then each policy's.
  for (const CompiledLimit& l : global_limits_) {
    if (!limitApplies(l, cmd)) continue;
    const CompiledPolicy* first = out.key_policy.empty() ? nullptr : out.key_policy[0];
    if (l.by_key && !out.keys.empty()) {
      for (size_t k = 0; k < out.keys.size(); ++k) {
        bucketKey(l, out.key_policy[k], cmd, args[out.keys[k]], {}, ctx, out.bucket);
        if (!checkLimit(l, false, out.bucket, ctx, reg, out)) return;
      }
    } else {
      bucketKey(l, first, cmd, {}, {}, ctx, out.bucket);
      if (!checkLimit(l, false, out.bucket, ctx, reg, out)) return;
    }
  }
  for (size_t i = 0; i < out.key_policy.size(); ++i) {
    const CompiledPolicy* p = out.key_policy[i];
    if (p == nullptr || p->limits.empty()) continue;
    const bool audit = p->spec->mode == config::PolicyMode::kAudit;
    for (const CompiledLimit& l : p->limits) {
      if (!limitApplies(l, cmd)) continue;
      if (!l.by_key && !l.by_capture) {
        // Once per request: only at the policy's first key.
        bool first_of_policy = true;
        for (size_t j = 0; j < i && first_of_policy; ++j) first_of_policy = out.key_policy[j] != p;
        if (!first_of_policy) continue;
        bucketKey(l, p, cmd, {}, {}, ctx, out.bucket);
      } else {
        const std::string_view key = args[out.keys[i]];
        out.caps.clear();
        if (l.by_capture) matcher_->match(key, &out.caps);
        bucketKey(l, p, cmd, key, out.caps, ctx, out.bucket);
      }
      if (!checkLimit(l, audit, out.bucket, ctx, reg, out)) return;
    }
  }

  // 4. TTL rules (writes only; decideTtl leaves every other command alone).
  if (cmd != nullptr && (cmd->flags & commands::kWrite)) {
    bool any = false;
    out.ttl_rules.clear();
    for (const CompiledPolicy* p : out.key_policy) {
      KeyTtlRules r;
      if (p != nullptr && p->has_ttl_rules) {
        r.ttl = &p->spec->ttl;
        r.policy = p->spec->name;
        r.audit = p->spec->mode == config::PolicyMode::kAudit;
        any = true;
      }
      out.ttl_rules.push_back(r);
    }
    if (any) {
      out.ttl.clear();
      TtlInput in;
      in.command = cmd->name;
      in.args = args;
      in.keys = out.keys;
      in.rules = out.ttl_rules;
      in.now_unix_ms = ctx.clock->unixMs();
      decideTtl(in, *ctx.random, out.ttl);
      for (const TtlEvent& e : out.ttl.events) {
        const CompiledPolicy* p = out.key_policy[e.key];
        if (p == nullptr) continue;
        switch (e.kind) {
          case TtlEvent::Kind::kFixed:
            bump(p->counters->ttl_fixed);
            break;
          case TtlEvent::Kind::kRejected:
            bump(p->counters->ttl_rejected);
            break;
          case TtlEvent::Kind::kAudited:
            bump(p->counters->ttl_audited);
            if (out.audit.empty()) {
              out.audit = "policy ";
              out.audit += p->spec->name;
              out.audit += " would fix or refuse the TTL of key '";
              appendEscaped(out.audit, args[out.keys[e.key]]);
              out.audit += "' (audit)";
            }
            break;
        }
      }
      if (out.ttl.verdict == TtlDecision::Verdict::kReject) {
        out.verdict = Decision::Verdict::kReject;
        out.error.swap(out.ttl.error);
        return;
      }
      if (out.ttl.verdict == TtlDecision::Verdict::kRewrite) {
        out.verdict = Decision::Verdict::kRewrite;
        const auto argv = out.ttl.argv();
        out.args.assign(argv.begin(), argv.end());
        out.append_from = out.ttl.append_from;
      }
      for (const TtlFollowup& f : out.ttl.followups) {
        char num[24];
        const auto r = std::to_chars(num, num + sizeof num, f.ttl_ms);
        out.ttl_followups.add({"PEXPIRE", args[out.keys[f.key]],
                               std::string_view(num, static_cast<size_t>(r.ptr - num)), "NX"});
      }
    }
  }

  // 5. Routing and accounting, from the first key's policy.
  if (!out.key_policy.empty() && out.key_policy[0] != nullptr) {
    const CompiledPolicy* p = out.key_policy[0];
    const config::RoutingSpec& r = p->spec->routing;
    const bool read_only =
        cmd != nullptr && (cmd->flags & commands::kRead) && !(cmd->flags & commands::kWrite);
    if (read_only && r.read_from) {
      out.has_read_from = true;
      out.read_from = *r.read_from;
    }
    if (r.read_your_writes.count() > 0) {
      out.read_your_writes_ms = r.read_your_writes.count();
      out.ryw_key = args[out.keys[0]];
    }
    if (out.keys.size() == 1 && isHitMissRead(cmd)) out.hitmiss = p->counters;
    if (p->fill != nullptr && p->fill_get && out.keys.size() == 1 && cmd->name == "get") {
      FillPlan& f = out.fill;
      f.policy = p->fill.get();
      f.key.assign(args[out.keys[0]]);
      fillPath(*p, f.key, out, f.path);
      f.with_pttl = p->fill->window_ms() > 0 || p->fill->xfetch;
      if (f.with_pttl) {
        // One atomic read of the value and its remaining TTL (freshness needs both).
        codec::appendArrayHeader(f.request, 4);
        codec::appendBulk(f.request, "EVAL");
        codec::appendBulk(f.request, kGetWithPttlScript);
        codec::appendBulk(f.request, "1");
        codec::appendBulk(f.request, f.key);
      }
    }
  }
  // MGET of keys whose policies fill on MGET: each missing one is filled on its own.
  if (cmd != nullptr && cmd->name == "mget") [[unlikely]] {
    for (size_t i = 0; i < out.key_policy.size(); ++i) {
      const CompiledPolicy* p = out.key_policy[i];
      if (p == nullptr || p->fill == nullptr || !p->fill_mget) continue;
      FillPlan::Item& m = out.fill.addItem();
      m.pos = static_cast<uint32_t>(i);
      m.policy = p->fill.get();
      m.key.assign(args[out.keys[i]]);
      fillPath(*p, m.key, out, m.path);
    }
  }
  // 6. Writes of keys that fills may be filling: revoke those fills (stale-set protection).
  // Scripts and functions may write any key they are given (only the _RO forms cannot).
  const bool may_write =
      cmd != nullptr && ((cmd->flags & commands::kWrite) ||
                         ((cmd->flags & commands::kScript) && !cmd->name.ends_with("_ro")));
  if (may_write) {
    for (size_t i = 0; i < out.key_policy.size(); ++i) {
      const CompiledPolicy* p = out.key_policy[i];
      if (p != nullptr && p->fill != nullptr && !p->fill->audit) {
        const std::string_view key = args[out.keys[i]];
        out.revoke.push_back(key);
        if (p->distributed) {
          out.scratch.clear();
          appendLeaseKey(out.scratch, key);
          out.lease_deletes.add({"DEL", out.scratch});
        }
      }
    }
  }
}

void PolicySet::fillPath(const CompiledPolicy& p, std::string_view key, Decision& out,
                         std::string& path) const {
  out.caps.clear();
  matcher_->match(key, &out.caps);
  path = buildFillPath(p.spec->fill.path, out.caps).value_or(std::string());
}

std::string PolicySet::describeJson() const {
  std::string o;
  o += "{\"global\":{\"unmatched_keys\":\"";
  o += nameOf(kUnmatchedNames, config_.global.unmatched_keys);
  o += "\",\"commands\":{\"deny\":";
  appendJsonStrings(o, config_.global.deny_commands);
  o += ",\"audit\":";
  appendJsonStrings(o, config_.global.audit_commands);
  o += "},\"rate_limits\":[";
  auto limit_json = [&o](const config::RateLimitSpec& l) {
    o += "{\"name\":";
    appendJsonString(o, l.name);
    o += ",\"rate\":\"" + std::to_string(l.count) + "/" + std::to_string(l.period.count()) + "ms\"";
    o += ",\"burst\":" + std::to_string(l.burst);
    o += ",\"on_limit\":\"";
    o += l.on_limit == config::OnLimit::kReject ? "reject" : "shadow";
    o += "\",\"commands\":";
    appendJsonStrings(o, l.commands);
    o += ",\"key_by\":[";
    for (size_t i = 0; i < l.key_by.size(); ++i) {
      if (i) o += ',';
      switch (l.key_by[i].kind) {
        case config::KeyByPart::Kind::kClient:
          o += "\"client\"";
          break;
        case config::KeyByPart::Kind::kPolicy:
          o += "\"policy\"";
          break;
        case config::KeyByPart::Kind::kCommand:
          o += "\"command\"";
          break;
        case config::KeyByPart::Kind::kKey:
          o += "\"key\"";
          break;
        case config::KeyByPart::Kind::kCapture:
          appendJsonString(o, "capture:" + l.key_by[i].capture);
          break;
      }
    }
    o += "]}";
  };
  for (size_t i = 0; i < config_.global.rate_limits.size(); ++i) {
    if (i) o += ',';
    limit_json(config_.global.rate_limits[i]);
  }
  o += "]},\"policies\":[";
  for (size_t i = 0; i < policies_.size(); ++i) {
    const config::PolicySpec& p = *policies_[i].spec;
    if (i) o += ',';
    o += "{\"name\":";
    appendJsonString(o, p.name);
    o += ",\"match\":";
    appendJsonString(o, p.match);
    o += ",\"literal_prefix\":";
    appendJsonString(o, matcher_ ? matcher_->tmpl(i).literalPrefix() : std::string_view());
    o += ",\"mode\":\"";
    o += nameOf(kModeNames, p.mode);
    o += "\",\"priority\":" + std::to_string(p.priority);
    o += ",\"source\":";
    appendJsonString(o, whereText(p.where));
    o += ",\"naming\":{\"max_key_bytes\":" + std::to_string(p.max_key_bytes) + "}";
    o += ",\"ttl\":{";
    auto opt_ms = [&o](const char* name, const std::optional<config::Millis>& v) {
      o += '"';
      o += name;
      o += "\":";
      o += v ? std::to_string(v->count()) : std::string("null");
      o += ',';
    };
    opt_ms("default_ms", p.ttl.default_ttl);
    opt_ms("min_ms", p.ttl.min);
    opt_ms("max_ms", p.ttl.max);
    o += "\"require\":";
    o += p.ttl.require ? "true" : "false";
    o += ",\"on_violation\":\"";
    o += nameOf(kOnViolationNames, p.ttl.on_violation);
    o += "\",\"jitter\":" + std::to_string(p.ttl.jitter);
    o += ",\"jitter_client\":";
    o += p.ttl.jitter_client ? "true" : "false";
    o += "},\"routing\":{\"read_from\":";
    if (p.routing.read_from) {
      o += '"';
      o += nameOf(kReadFromNames, *p.routing.read_from);
      o += '"';
    } else {
      o += "null";
    }
    o += ",\"read_your_writes_ms\":" + std::to_string(p.routing.read_your_writes.count());
    o += "},\"rate_limits\":[";
    for (size_t j = 0; j < p.rate_limits.size(); ++j) {
      if (j) o += ',';
      limit_json(p.rate_limits[j]);
    }
    o += "]}";
  }
  o += "],\"files\":";
  appendJsonStrings(o, config_.files);
  o += "}";
  return o;
}

}  // namespace corral::policies
