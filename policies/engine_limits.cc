// Phase 3 of decide(): rate limits, global ones first, then each key's policy's. A limit keyed
// by `key` or by a capture takes one bucket per key of the request; any other limit one bucket
// per request (a policy's: at its first key). A bucket key is its key_by parts as views into the
// request and the context (nothing is copied); the limiter bounds what it keeps of them
// (rate_limiter.h: long parts become digests) and how many buckets a limit holds.
#include <algorithm>
#include <string>

#include "policies/engine.h"
#include "policies/engine_internal.h"

namespace corral::policies {

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
  if (!r.count) return true;  // a replay: admitted the first time
  const int64_t now = r.ctx.clock->monoNs();
  RateLimiter& limiter = r.reg.limiter();
  const GcraVerdict v = nparts == 1 ? limiter.admit(l.counters->id, parts[0], now, l.params)
                                    : limiter.admit(l.counters->id, {parts, nparts}, now, l.params);
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

bool PolicySet::checkLimits(const Request& r, Decision& out) const {
  std::string_view* parts = out.bucket_parts.data();
  for (const CompiledLimit& l : global_limits_) {
    if (!limitApplies(l, r)) continue;
    if (l.by_key && !out.keys.empty()) {
      for (size_t k = 0; k < out.keys.size(); ++k) {
        const size_t n = bucketParts(l, out.key_policy[k], r, r.args[out.keys[k]], {}, parts);
        if (!admit(l, false, r, n, parts, out)) return false;
      }
    } else {
      const CompiledPolicy* first = out.key_policy.empty() ? nullptr : out.key_policy[0];
      if (!admit(l, false, r, bucketParts(l, first, r, {}, {}, parts), parts, out)) return false;
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
      if (!admit(l, p->audit, r, n, parts, out)) return false;
    }
  }
  return true;
}

}  // namespace corral::policies
