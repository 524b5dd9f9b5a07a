// PolicySet::decide and its phases; the flow is drawn in engine.h. Runs on a worker for one
// request: reads only immutable state, the Registry's atomics and (phase 3) the rate limiter's
// sharded buckets. Allocates nothing once the Decision is warm, unless a request is rewritten or
// filled.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <vector>

#include "commands/command_table.h"
#include "policies/engine.h"
#include "policies/engine_internal.h"
#include "policies/global_limits.h"
#include "proxy/codec/resp.h"

namespace corral::policies {

using commands::CommandInfo;

namespace {

constexpr size_t kMaxKeyInError = 64;

}  // namespace

CommandTraits commandTraits(const CommandInfo& c) {
  CommandTraits t;
  t.arity = c.arity;
  t.keyed = !(c.flags & (commands::kNoKey | commands::kPubSub));
  const commands::KeySpec& k = c.keys[0];
  if (t.keyed && c.nkeyspecs == 1 && k.search == commands::KeySearch::kRange && k.first == k.last &&
      k.first > 0 && k.first < 256) {
    t.key_at = static_cast<uint8_t>(k.first);
  }
  t.write = (c.flags & commands::kWrite) != 0;
  t.read_only = (c.flags & commands::kRead) && !t.write;
  // Scripts and functions may write any key they are given (only the _RO forms cannot).
  t.may_write = t.write || ((c.flags & commands::kScript) && !c.name.ends_with("_ro"));
  // Single-key reads whose reply tells a cache hit from a miss (nil or an empty collection).
  static constexpr std::string_view kHitMissReads[] = {
      "get", "getex", "getdel", "hget", "hgetall", "smembers", "lrange", "zrange", "json.get"};
  t.hitmiss = std::find(std::begin(kHitMissReads), std::end(kHitMissReads), c.name) !=
              std::end(kHitMissReads);
  t.get = c.name == "get";
  t.mget = c.name == "mget";
  t.hgetall = c.name == "hgetall";
  t.hget = c.name == "hget";
  return t;
}

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

void PolicySet::decide(const CommandInfo* cmd, std::span<const std::string_view> args,
                       const RequestContext& ctx, Registry& reg, Decision& out) const {
  out.clear();
  // A top-level command (the common case) finds its traits and list bits in one lookup; the
  // unsigned difference also sends commands below the table's start to the slow path.
  const uintptr_t off = reinterpret_cast<uintptr_t>(cmd) - commands_base_;
  if (cmd != nullptr && off < commands_count_ * sizeof(CommandInfo)) [[likely]] {
    const size_t top = off / sizeof(CommandInfo);
    const CommandEntry& e = commands_[top];
    const Request r{cmd, static_cast<int64_t>(top), e.traits, args, ctx, reg};
    if ((e.denied || e.audited) && !checkCommand(r, out)) return;
    run(r, out);
    return;
  }
  // A subcommand or a command the table does not know.
  const CommandTraits traits = cmd != nullptr ? commandTraits(*cmd) : CommandTraits{};
  const Request r{cmd, -1, traits, args, ctx, reg};
  if (!checkCommand(r, out)) return;
  run(r, out);
}

[[gnu::always_inline]] inline void PolicySet::run(const Request& r, Decision& out) const {
  if (!resolveKeys(r, out)) return;
  if (any_limits_ && !checkLimits(r, out)) return;
  if (any_ttl_rules_ && r.traits.write && !applyTtl(r, out)) return;
  // Routing, accounting and fills concern the keys of policies only.
  if (out.key_policy.empty() || out.key_policy[0] == nullptr) {
    if (any_fills_ && out.keys.size() > 1) planFills(r, out);  // later keys may have policies
    return;
  }
  route(r, out);
  if (any_fills_) planFills(r, out);
}

// 1. Command rules: global.commands.deny refuses, global.commands.audit counts.
bool PolicySet::checkCommand(const Request& r, Decision& out) const {
  const config::GlobalSpec& g = config_.global;
  // A top-level command is on a list exactly when its entry says so; subcommands and commands
  // the table does not know take the slow path.
  auto listed = [&r](bool top_listed, const std::vector<std::string>& names,
                     const std::vector<const CommandInfo*>& cmds) {
    if (r.top >= 0) return top_listed;
    if (names.empty()) return false;
    if (r.cmd != nullptr && r.cmd->id != commands::kLearntId) {
      return std::any_of(cmds.begin(), cmds.end(),
                         [&r](const CommandInfo* c) { return sameOrChild(c, r.cmd); });
    }
    // A command the table does not know (a module's), or one learnt from the server after the
    // lists were compiled (commands/overlay.h: its name did not resolve then): compare names as
    // written, a listed container covering its subcommands ("vset" lists "vset|add").
    const std::string_view name = r.cmd != nullptr ? r.cmd->name : r.args[0];
    return std::any_of(names.begin(), names.end(), [name](const std::string& n) {
      return commands::equalsIgnoreCase(n, name) ||
             (name.size() > n.size() && name[n.size()] == '|' &&
              commands::equalsIgnoreCase(n, name.substr(0, n.size())));
    });
  };
  const CommandEntry* e = r.top >= 0 ? &commands_[static_cast<size_t>(r.top)] : nullptr;
  if (listed(e != nullptr && e->denied, g.deny_commands, deny_)) {
    r.reg.denied.add();
    out.verdict = Decision::Verdict::kReject;
    out.error = "DENIED command '";
    if (r.cmd != nullptr) {
      out.error.append(r.cmd->name);
    } else {
      appendEscaped(out.error, r.args[0]);
    }
    out.error += "' is denied by global.commands.deny";
    return false;
  }
  if (listed(e != nullptr && e->audited, g.audit_commands, audit_)) {
    if (!r.ctx.replay) r.reg.command_audit.add();
    if (out.audit.empty()) {
      out.audit = "command '";
      appendEscaped(out.audit, r.args[0]);
      out.audit += "' (global.commands.audit)";
    }
  }
  return true;
}

// 2. The keys (from the command table), each key's policy, and naming.
[[gnu::always_inline]] inline bool PolicySet::resolveKeys(const Request& r, Decision& out) const {
  out.keys.clear();
  out.key_policy.clear();
  if (!r.traits.keyed || !arityFits(r.traits.arity, r.args.size())) return true;
  if (r.traits.key_at != 0) {
    // One key at a fixed position (GET, SET, HSET, ...), the common case: no loops.
    out.keys.push_back(r.traits.key_at);  // arityFits: the argument is there
    const CompiledPolicy* p = nullptr;
    if (!resolveKey(r, r.args[r.traits.key_at], out, p)) return false;
    out.key_policy.push_back(p);
    if (p != nullptr && !r.ctx.replay) p->counters->requests.add();
    return true;
  }
  if (!commands::extractKeys(*r.cmd, r.args, out.keys)) {
    out.keys.clear();  // malformed: Redis will refuse it
    return true;
  }
  for (uint32_t idx : out.keys) {
    const CompiledPolicy* p = nullptr;
    if (!resolveKey(r, r.args[idx], out, p)) return false;
    out.key_policy.push_back(p);
  }
  // Each policy counts a request once, however many of its keys the request has.
  for (size_t i = 0; i < out.key_policy.size(); ++i) {
    const CompiledPolicy* p = out.key_policy[i];
    if (p == nullptr) continue;
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = out.key_policy[j] == p;
    if (!seen && !r.ctx.replay) p->counters->requests.add();
  }
  return true;
}

[[gnu::always_inline]] inline bool PolicySet::resolveKey(const Request& r, std::string_view key,
                                                         Decision& out,
                                                         const CompiledPolicy*& policy) const {
  const KeyVerdict v = classify(key);
  if (v.internal) [[unlikely]] {
    // Leases and negative entries of fills: corral's own, never a client's to read or write.
    out.verdict = Decision::Verdict::kReject;
    out.error = "KEYNAME key '";
    appendEscaped(out.error, key);
    out.error += "' is in corral's reserved prefix ";
    out.error += kInternalPrefix;
    return false;
  }
  const CompiledPolicy* p = v.policy;
  if (p == nullptr) [[unlikely]] {
    const config::GlobalSpec& g = config_.global;
    if (g.unmatched_keys == config::UnmatchedKeys::kReject) {
      r.reg.unmatched_rejected.add();
      out.verdict = Decision::Verdict::kReject;
      out.error = "KEYNAME key '";
      appendEscaped(out.error, key);
      out.error += "' matches no policy (global.unmatched_keys: reject)";
      return false;
    }
    if (g.unmatched_keys == config::UnmatchedKeys::kAudit) {
      if (!r.ctx.replay) r.reg.unmatched_audited.add();
      if (out.audit.empty()) {
        out.audit = "key '";
        appendEscaped(out.audit, key);
        out.audit += "' matches no policy (global.unmatched_keys: audit)";
      }
    }
    return true;
  }
  if (p->off) return true;  // mode off: as if no policy covered the key
  policy = p;
  const bool too_long = v.too_long;
  if (!v.violation && !too_long) [[likely]] {
    return true;
  }
  const config::PolicySpec& spec = *p->spec;
  if (p->audit) {
    if (!r.ctx.replay) p->counters->naming_audited.add();
    if (out.audit.empty()) {
      out.audit = "policy ";
      out.audit += spec.name;
      out.audit += " (mode audit) would refuse key '";
      appendEscaped(out.audit, key);
      out.audit += too_long ? "': longer than naming.max_key_bytes" : "': does not match ";
      if (!too_long) out.audit += spec.match;
    }
    return true;
  }
  p->counters->naming_rejected.add();
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
  return false;
}

// 3. Rate limits, global ones first, then each key's policy's. A limit keyed by `key` or by a
// capture takes one bucket per key of the request; any other limit one bucket per request (a
// policy's: at its first key). A bucket key is its key_by parts as views into the request and
// the context (nothing is copied); the limiter bounds what it keeps of them (rate_limiter.h:
// long parts become digests) and how many buckets a limit holds.
namespace {

// The bucket-key parts of limit l for one key (or for the whole request: key empty) into out;
// returns how many (the compiler allows at most RateLimiter::kMaxParts).
[[gnu::always_inline]] inline size_t bucketParts(const CompiledLimit& l, const CompiledPolicy* p,
                                                 const PolicySet::Request& r, std::string_view key,
                                                 std::span<const Capture> caps,
                                                 std::string_view* out) {
  if (l.by_client_only) {  // the usual per-client limit
    out[0] = r.ctx.client;
    return 1;
  }
  const auto& parts = l.spec->key_by;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view v;
    switch (parts[i].kind) {
      case config::KeyByPart::Kind::kClient:
        v = r.ctx.client;
        break;
      case config::KeyByPart::Kind::kPolicy:
        v = p != nullptr ? std::string_view(p->spec->name) : std::string_view();
        break;
      case config::KeyByPart::Kind::kCommand:
        v = r.cmd != nullptr ? r.cmd->name : std::string_view();
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
    out[i] = v;
  }
  return parts.size();
}

}  // namespace

inline bool PolicySet::limitApplies(const CompiledLimit& l, const Request& r) const {
  if (r.top >= 0) return l.applies_top[static_cast<size_t>(r.top)] != 0;
  return limitMatchesCommand(l, r.cmd);
}

[[gnu::always_inline]] inline bool PolicySet::admit(const CompiledLimit& l, bool shadow,
                                                    const Request& r, size_t nparts,
                                                    const std::string_view* parts,
                                                    Decision& out) const {
  const int64_t now = r.ctx.clock->monoNs();
  RateLimiter& limiter = r.reg.limiter();
  const GcraVerdict v = nparts == 1 ? limiter.admit(l.counters->id, parts[0], now, l.params)
                                    : limiter.admit(l.counters->id, {parts, nparts}, now, l.params);
  return account(l, shadow, v, out);
}

[[gnu::always_inline]] inline bool PolicySet::account(const CompiledLimit& l, bool shadow,
                                                      const GcraVerdict& v, Decision& out) const {
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

template <class Visit>
[[gnu::always_inline]] inline bool PolicySet::forEachBucket(const Request& r, Decision& out,
                                                            Visit&& visit) const {
  std::string_view* parts = out.bucket_parts.data();
  for (const CompiledLimit& l : global_limits_) {
    if (!limitApplies(l, r)) continue;
    if (l.by_key && !out.keys.empty()) {
      for (size_t k = 0; k < out.keys.size(); ++k) {
        const size_t n = bucketParts(l, out.key_policy[k], r, r.args[out.keys[k]], {}, parts);
        if (!visit(l, false, n, parts)) return false;
      }
    } else {
      const CompiledPolicy* first = out.key_policy.empty() ? nullptr : out.key_policy[0];
      if (!visit(l, false, bucketParts(l, first, r, {}, {}, parts), parts)) return false;
    }
  }
  for (size_t i = 0; i < out.key_policy.size(); ++i) {
    const CompiledPolicy* p = out.key_policy[i];
    if (p == nullptr || p->limits.empty()) continue;
    for (const CompiledLimit& l : p->limits) {
      if (!limitApplies(l, r)) continue;
      size_t n = 0;
      if (!l.by_key && !l.by_capture) {
        // Once per request: only at the policy's first key.
        bool first_of_policy = true;
        for (size_t j = 0; j < i && first_of_policy; ++j) first_of_policy = out.key_policy[j] != p;
        if (!first_of_policy) continue;
        n = bucketParts(l, p, r, {}, {}, parts);
      } else {
        const std::string_view key = r.args[out.keys[i]];
        out.caps.clear();
        if (l.by_capture) matcher_->match(key, &out.caps);
        n = bucketParts(l, p, r, key, out.caps, parts);
      }
      if (!visit(l, p->audit, n, parts)) return false;
    }
  }
  return true;
}

// Scope global limits take two passes (global_limits.h): the first finds every global bucket's
// lease and whether the request must wait for credits on their way; only when none must does
// the second decide, in order, spending local buckets and leased credits alike. So a request
// that waits has spent and counted nothing, and is decided whole when it comes back. A set
// without local limits spends the leases the first pass found, without walking again.
[[gnu::always_inline]] inline bool PolicySet::checkLimits(const Request& r, Decision& out) const {
  GlobalLimits* global = any_global_limits_ ? r.ctx.global : nullptr;
  if (global == nullptr) [[likely]] {
    return forEachBucket(
        r, out, [&](const CompiledLimit& l, bool shadow, size_t n, const std::string_view* p) {
          return admit(l, shadow, r, n, p, out);
        });
  }
  const int64_t now = r.ctx.clock->monoNs();
  out.global_buckets.clear();
  bool wait = false;
  forEachBucket(r, out,
                [&](const CompiledLimit& l, bool shadow, size_t n, const std::string_view* p) {
                  if (!l.global) return true;
                  bool w = false;
                  Lease* lease = global->ready(l, {p, n}, now, &w);
                  out.global_buckets.push_back({&l, lease, shadow});
                  // A shadow limit only counts: it never holds a request up.
                  wait |= w && !shadow && l.spec->on_limit != config::OnLimit::kShadow;
                  return true;
                });
  if (wait) {
    out.verdict = Decision::Verdict::kWait;
    return false;
  }
  if (!any_local_limits_) {
    for (const Decision::GlobalBucket& b : out.global_buckets) {
      const CompiledLimit& l = *b.limit;
      if (!account(l, b.shadow, global->admit(l, b.lease, now), out)) return false;
    }
    return true;
  }
  size_t next = 0;
  return forEachBucket(
      r, out, [&](const CompiledLimit& l, bool shadow, size_t n, const std::string_view* p) {
        if (!l.global) return admit(l, shadow, r, n, p, out);
        Lease* lease = out.global_buckets[next++].lease;
        return account(l, shadow, global->admit(l, lease, now), out);
      });
}

// 4. TTL rules of a write (decideTtl leaves commands without TTL semantics alone).
bool PolicySet::applyTtl(const Request& r, Decision& out) const {
  bool any = false;
  out.ttl_rules.clear();
  for (const CompiledPolicy* p : out.key_policy) {
    KeyTtlRules rules;
    if (p != nullptr && p->has_ttl_rules) {
      rules.ttl = &p->spec->ttl;
      rules.policy = p->spec->name;
      rules.audit = p->audit;
      any = true;
    }
    out.ttl_rules.push_back(rules);
  }
  if (!any) return true;
  out.ttl.clear();
  TtlInput in;
  in.command = r.cmd->name;
  in.args = r.args;
  in.keys = out.keys;
  in.rules = out.ttl_rules;
  in.now_unix_ms = r.ctx.clock->unixMs();
  decideTtl(in, *r.ctx.random, out.ttl);
  for (const TtlEvent& e : out.ttl.events) {
    const CompiledPolicy* p = out.key_policy[e.key];
    if (p == nullptr) continue;
    switch (e.kind) {
      case TtlEvent::Kind::kFixed:
        p->counters->ttl_fixed.add();
        break;
      case TtlEvent::Kind::kRejected:
        p->counters->ttl_rejected.add();
        break;
      case TtlEvent::Kind::kAudited:
        p->counters->ttl_audited.add();
        if (out.audit.empty()) {
          out.audit = "policy ";
          out.audit += p->spec->name;
          out.audit += " would fix or refuse the TTL of key '";
          appendEscaped(out.audit, r.args[out.keys[e.key]]);
          out.audit += "' (audit)";
        }
        break;
    }
  }
  if (out.ttl.verdict == TtlDecision::Verdict::kReject) {
    out.verdict = Decision::Verdict::kReject;
    out.error.swap(out.ttl.error);
    return false;
  }
  if (out.ttl.verdict == TtlDecision::Verdict::kRewrite) {
    out.verdict = Decision::Verdict::kRewrite;
    const auto argv = out.ttl.argv();
    out.args.assign(argv.begin(), argv.end());
    out.append_from = out.ttl.append_from;
  }
  if (!out.ttl.followups.empty()) out.extras_ = true;
  for (const TtlFollowup& f : out.ttl.followups) {
    char num[24];
    const auto n = std::to_chars(num, num + sizeof num, f.ttl_ms);
    out.ttl_followups.add({"PEXPIRE", r.args[out.keys[f.key]],
                           std::string_view(num, static_cast<size_t>(n.ptr - num)), "NX"});
  }
  return true;
}

// 5. Routing hints and hit/miss accounting, from the first key's policy (not null here).
[[gnu::always_inline]] inline void PolicySet::route(const Request& r, Decision& out) const {
  const CompiledPolicy* p = out.key_policy[0];
  if (any_routing_) {
    const config::RoutingSpec& routing = p->spec->routing;
    if (r.traits.read_only && routing.read_from) {
      out.has_read_from = true;
      out.read_from = *routing.read_from;
    }
    if (routing.read_your_writes.count() > 0) {
      out.read_your_writes_ms = routing.read_your_writes.count();
      out.ryw_key = r.args[out.keys[0]];
    }
  }
  if (r.traits.hitmiss && out.keys.size() == 1) out.hitmiss = p->counters;
}

// 6. Fills: the plan of a GET, HGETALL, HGET or MGET of fill policies' keys; writes revoke fills
// of their keys.
void PolicySet::planFills(const Request& r, Decision& out) const {
  const CompiledPolicy* first = out.key_policy[0];
  if (first != nullptr && first->fill != nullptr && out.keys.size() == 1 &&
      ((r.traits.get && first->fill_get) || (r.traits.hgetall && first->fill_hgetall) ||
       (r.traits.hget && first->fill_hget && r.args.size() == 3))) {
    out.extras_ = true;
    FillPlan& f = out.fill;
    f.key.assign(r.args[out.keys[0]]);
    if (!fillPath(*first, f.key, out, f.path)) return;  // no path for this key: no fill
    f.policy = first->fill.get();
    if (!r.traits.get) {  // a hash fill (fill_decode.h): no freshness rules (compile refuses)
      f.read = r.traits.hget ? FillPlan::Read::kHget : FillPlan::Read::kHgetall;
      if (r.traits.hget) f.field.assign(r.args[2]);
      return;
    }
    f.with_pttl =
        first->fill->window_ms() > 0 || first->fill->xfetch || first->fill->ttl_from_origin;
    if (first->fill->ttl_from_origin) {
      // The value, its PTTL and the freshness windows the origin gave it (kept beside it).
      out.scratch.clear();
      first->fill->names.appendMeta(out.scratch, f.key);
      codec::appendArrayHeader(f.request, 5);
      codec::appendBulk(f.request, "EVAL");
      codec::appendBulk(f.request, kGetWithPttlWindowsScript);
      codec::appendBulk(f.request, "2");
      codec::appendBulk(f.request, f.key);
      codec::appendBulk(f.request, out.scratch);
    } else if (f.with_pttl) {
      // One atomic read of the value and its remaining TTL (freshness needs both).
      codec::appendArrayHeader(f.request, 4);
      codec::appendBulk(f.request, "EVAL");
      codec::appendBulk(f.request, kGetWithPttlScript);
      codec::appendBulk(f.request, "1");
      codec::appendBulk(f.request, f.key);
    }
    return;
  }
  if (r.traits.mget) [[unlikely]] {
    // Each missing key of a policy that fills on MGET is filled on its own.
    for (size_t i = 0; i < out.key_policy.size(); ++i) {
      const CompiledPolicy* p = out.key_policy[i];
      if (p == nullptr || p->fill == nullptr || !p->fill_mget) continue;
      const std::string_view key = r.args[out.keys[i]];
      if (!fillPath(*p, key, out, out.scratch)) continue;  // no path for this key: no fill
      out.extras_ = true;
      FillPlan::Item& m = out.fill.addItem();
      m.pos = static_cast<uint32_t>(i);
      m.policy = p->fill.get();
      m.key.assign(key);
      m.path.assign(out.scratch);
    }
    return;
  }
  if (!r.traits.may_write) return;
  // Writes of keys that fills may be filling: those fills must not store their (older) value
  // (stale-set protection); for distributed policies, other corrals' neither.
  for (size_t i = 0; i < out.key_policy.size(); ++i) {
    const CompiledPolicy* p = out.key_policy[i];
    if (p == nullptr || p->fill == nullptr || p->fill->audit) continue;
    const std::string_view key = r.args[out.keys[i]];
    out.extras_ = true;
    out.revoke.push_back(key);
    if (p->distributed) {
      out.scratch.clear();
      p->fill->names.appendLease(out.scratch, key);
      out.lease_deletes.add({"DEL", out.scratch});
    }
    if (p->fill->ttl_from_origin) {
      // The validator and windows kept beside the value describe the origin's answer, not the
      // client's: the next refresh is a plain GET, and hits use the policy's windows.
      out.scratch.clear();
      p->fill->names.appendMeta(out.scratch, key);
      out.lease_deletes.add({"DEL", out.scratch});
    }
  }
}

bool PolicySet::fillPath(const CompiledPolicy& p, std::string_view key, Decision& out,
                         std::string& path) const {
  out.caps.clear();
  matcher_->match(key, &out.caps);
  std::optional<std::string> built = buildFillPath(p.spec->fill.path, out.caps);
  if (!built) return false;
  path.swap(*built);
  return true;
}

}  // namespace corral::policies
