// PolicySet::compile: config -> an immutable set (templates, matcher, limits, fill settings,
// command lists), every error as file:line:col. Runs on the main thread, off the request path.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "commands/command_table.h"
#include "policies/engine.h"
#include "policies/engine_internal.h"

namespace corral::policies {

using commands::CommandInfo;

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
  // Built-in commands only: a command learnt from the server (commands/overlay.h) is known only
  // after connecting, and a config must compile the same at startup as on a reload. Lists of
  // names (global.commands) still match learnt commands by name (engine_decide.cc).
  if (c == nullptr || c->id == commands::kLearntId) return nullptr;
  // lookup() answers the container for an unknown subcommand: require the exact name.
  return c->name == name ? c : nullptr;
}

bool sameOrChild(const CommandInfo* listed, const CommandInfo* cmd) {
  if (listed == cmd) return true;
  const std::string_view n = cmd->name;
  return n.size() > listed->name.size() && n[listed->name.size()] == '|' &&
         n.substr(0, listed->name.size()) == listed->name;
}

bool limitMatchesCommand(const CompiledLimit& l, const CommandInfo* cmd) {
  if (l.all_commands) return true;
  if (cmd == nullptr) return false;
  if (l.writes && (cmd->flags & commands::kWrite)) return true;
  if (l.reads && commands::readsOnly(cmd)) return true;
  for (const CommandInfo* c : l.commands) {
    if (sameOrChild(c, cmd)) return true;
  }
  return false;
}

std::string whereText(const config::Where& w) {
  return w.file + ":" + std::to_string(w.line) + ":" + std::to_string(w.col);
}

namespace {

// The key path errors name, as the loader wrote it ("policies[2]"); a config built in code has
// none, so its index stands in.
std::string pathOf(const std::string& path, const std::string& list, size_t i) {
  return !path.empty() ? path : list + "[" + std::to_string(i) + "]";
}

// One rate limit, for a policy (captures: its template's placeholder names) or global (captures
// null: capture:<name> needs a template). Errors go to *errors under `path`.
CompiledLimit compileLimit(const config::RateLimitSpec& ls, const std::string& path,
                           const std::vector<std::string>* captures, std::string_view match,
                           Registry& reg, std::vector<config::ConfigError>* errors) {
  CompiledLimit cl;
  cl.spec = &ls;
  cl.params = GcraParams::from(ls.count, std::chrono::nanoseconds(ls.period).count(), ls.burst);
  cl.counters = reg.limit(ls.name);
  cl.global = ls.scope == config::LimitScope::kGlobal;
  if (cl.global) cl.counters->global.store(true, std::memory_order_relaxed);
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
  if (ls.key_by.size() > RateLimiter::kMaxParts) {
    errors->push_back(
        config::configError(ls.where, path + ".key_by",
                            "more than " + std::to_string(RateLimiter::kMaxParts) + " parts"));
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
  cl.by_client_only =
      ls.key_by.size() == 1 && ls.key_by[0].kind == config::KeyByPart::Kind::kClient;
  // Applicability per top-level command, so that decide() needs one load per limit.
  const auto all = commands::allCommands();
  cl.applies_top.assign(all.size(), 0);
  for (size_t i = 0; i < all.size(); ++i) {
    cl.applies_top[i] = limitMatchesCommand(cl, &all[i]) ? 1 : 0;
  }
  return cl;
}

}  // namespace

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

  // How fills name their leases and negative entries: the deployment's secret, else this
  // process's own random one (policies/fill.h).
  const FillKeyNames names = c.global.fill_secret.empty() ? FillKeyNames::processDefault()
                                                          : FillKeyNames(c.global.fill_secret);
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
    cp.audit = p.mode == config::PolicyMode::kAudit;
    cp.off = p.mode == config::PolicyMode::kOff;
    cp.max_key_bytes = p.max_key_bytes;
    if (ttl.from_origin && p.fill.origin.empty()) {
      errors->push_back(config::configError(
          p.where, path + ".ttl.from_origin",
          "needs fill: the TTL comes from the answers of the policy's fill origin"));
    }
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
        f->ttl_from_origin = ttl.from_origin;
        f->ttl_min_ms = ttl.min ? ttl.min->count() : 0;
        f->ttl_max_ms = ttl.max ? ttl.max->count() : 0;
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
        const auto fills_on = [&](std::string_view name) {
          return std::find(p.fill.commands.begin(), p.fill.commands.end(), name) !=
                 p.fill.commands.end();
        };
        cp.fill_get = fills_on("get");
        cp.fill_mget = fills_on("mget");
        cp.fill_hgetall = fills_on("hgetall");
        cp.fill_hget = fills_on("hget");
        if (fills_on("getex")) {
          errors->push_back(config::configError(
              p.where, path + ".fill.commands",
              "filling on getex is not supported by this version of corral yet (GET, MGET, "
              "HGETALL and HGET are)"));
        }
        compileFillShape(p, path, cp.fill_hgetall || cp.fill_hget, *f, errors);
        cp.distributed = f->single_flight == config::SingleFlight::kDistributed;
        f->names = names;
        if (cp.distributed && c.global.fill_secret.empty()) {
          // Without a shared secret every corral would name a key's lease its own way: no
          // single-flight across sidecars, and a write through one could not revoke another's
          // fill. A random secret per process is fine for local fills, not for these.
          errors->push_back(config::configError(
              p.where, path + ".stampede.single_flight",
              "distributed needs global.fill_secret or global.fill_secret_env, one secret shared "
              "by every corral of the deployment"));
        }
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
  const auto all = commands::allCommands();
  set->commands_base_ = reinterpret_cast<uintptr_t>(all.data());
  set->commands_count_ = all.size();
  set->commands_.resize(all.size());
  for (size_t i = 0; i < all.size(); ++i) set->commands_[i].traits = commandTraits(all[i]);
  for (const std::string& name : c.global.deny_commands) {
    if (const CommandInfo* ci = resolveCommand(name)) {
      set->deny_.push_back(ci);
      if (const int64_t i = commands::topLevelIndex(ci); i >= 0)
        set->commands_[static_cast<size_t>(i)].denied = true;
    }
  }
  for (const std::string& name : c.global.audit_commands) {
    if (const CommandInfo* ci = resolveCommand(name)) {
      set->audit_.push_back(ci);
      if (const int64_t i = commands::topLevelIndex(ci); i >= 0)
        set->commands_[static_cast<size_t>(i)].audited = true;
    }
  }
  if (errors->size() != errors_before) return nullptr;
  set->matcher_ = std::move(m);
  set->any_limits_ = !set->global_limits_.empty();
  auto anyGlobal = [](const std::vector<CompiledLimit>& ls) {
    return std::any_of(ls.begin(), ls.end(), [](const CompiledLimit& l) { return l.global; });
  };
  auto anyLocal = [](const std::vector<CompiledLimit>& ls) {
    return std::any_of(ls.begin(), ls.end(), [](const CompiledLimit& l) { return !l.global; });
  };
  set->any_global_limits_ = anyGlobal(set->global_limits_);
  set->any_local_limits_ = anyLocal(set->global_limits_);
  for (const CompiledPolicy& cp : set->policies_) {
    const config::PolicySpec& p = *cp.spec;
    if (p.mode == config::PolicyMode::kOff) continue;  // decide() never sees its keys' policy
    set->any_limits_ |= !cp.limits.empty();
    set->any_global_limits_ |= anyGlobal(cp.limits);
    set->any_local_limits_ |= anyLocal(cp.limits);
    set->any_ttl_rules_ |= cp.has_ttl_rules;
    set->any_fills_ |= cp.fill != nullptr;
    set->any_hash_fills_ |= cp.fill != nullptr && (cp.fill_hgetall || cp.fill_hget);
    set->any_routing_ |= p.routing.read_from.has_value() || p.routing.read_your_writes.count() > 0;
  }
  set->unknown_commands_ = config::effectiveUnknownCommands(c);
  set->trivial_ = c.policies.empty() && c.global.rate_limits.empty() &&
                  c.global.deny_commands.empty() && c.global.audit_commands.empty() &&
                  c.global.unmatched_keys == config::UnmatchedKeys::kAllow;
  return set;
}

}  // namespace corral::policies
