// Phase 3 of decide(): rate limits, global ones first, then each key's policy's. A limit keyed
// by `key` or by a capture takes one bucket per key of the request; any other limit one bucket
// per request (a policy's: at its first key). A bucket key is bounded whatever the client sends:
// long parts become digests (appendPart), and the limiter bounds the buckets of each limit.
#include <algorithm>
#include <cstring>
#include <string>

#include "policies/engine.h"
#include "policies/engine_internal.h"
#include "policies/siphash.h"

namespace corral::policies {

namespace {

// Bucket-key parts longer than this become a digest: a client name (CLIENT SETNAME takes up to
// 512 MB), a key or a capture must not make a bucket as large as itself.
constexpr size_t kMaxBucketPart = 64;
// In place of a length byte: a digest follows (16 bytes). Lengths never exceed kMaxBucketPart.
constexpr char kDigestMarker = static_cast<char>(0xff);
static_assert(kMaxBucketPart < 0xff);

// One part: its length in one byte, then its bytes; or, when longer than kMaxBucketPart, the
// marker and two SipHash-2-4 values (128 bits) under the registry's random keys. The lengths
// keep parts apart ("a" "bc" vs "ab" "c"), the marker keeps a digest apart from a short value
// that happens to hold the same 16 bytes. A part's encoding is thus at most 65 bytes.
void appendPart(std::string& out, std::string_view v, const Registry& reg) {
  if (v.size() <= kMaxBucketPart) [[likely]] {
    out.push_back(static_cast<char>(v.size()));
    out.append(v);
    return;
  }
  out.push_back(kDigestMarker);
  const uint64_t d[2] = {sipHash24(reg.bucketDigestKey(0), v),
                         sipHash24(reg.bucketDigestKey(1), v)};
  char bytes[sizeof d];
  std::memcpy(bytes, d, sizeof d);
  out.append(bytes, sizeof bytes);
}

}  // namespace

bool PolicySet::checkLimits(const Request& r, Decision& out) const {
  for (const CompiledLimit& l : global_limits_) {
    if (!limitApplies(l, r)) continue;
    if (l.by_key && !out.keys.empty()) {
      for (size_t k = 0; k < out.keys.size(); ++k) {
        bucketKey(l, out.key_policy[k], r, r.args[out.keys[k]], {}, out.bucket);
        if (!admit(l, false, r, out)) return false;
      }
    } else {
      const CompiledPolicy* first = out.key_policy.empty() ? nullptr : out.key_policy[0];
      bucketKey(l, first, r, {}, {}, out.bucket);
      if (!admit(l, false, r, out)) return false;
    }
  }
  for (size_t i = 0; i < out.key_policy.size(); ++i) {
    const CompiledPolicy* p = out.key_policy[i];
    if (p == nullptr || p->limits.empty()) continue;
    for (const CompiledLimit& l : p->limits) {
      if (!limitApplies(l, r)) continue;
      if (!l.by_key && !l.by_capture) {
        // Once per request: only at the policy's first key.
        bool first_of_policy = true;
        for (size_t j = 0; j < i && first_of_policy; ++j) first_of_policy = out.key_policy[j] != p;
        if (!first_of_policy) continue;
        bucketKey(l, p, r, {}, {}, out.bucket);
      } else {
        const std::string_view key = r.args[out.keys[i]];
        out.caps.clear();
        if (l.by_capture) matcher_->match(key, &out.caps);
        bucketKey(l, p, r, key, out.caps, out.bucket);
      }
      if (!admit(l, p->audit, r, out)) return false;
    }
  }
  return true;
}

void PolicySet::bucketKey(const CompiledLimit& l, const CompiledPolicy* p, const Request& r,
                          std::string_view key, std::span<const Capture> caps,
                          std::string& out) const {
  out.clear();
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
    appendPart(out, v, r.reg);
  }
}

bool PolicySet::admit(const CompiledLimit& l, bool shadow, const Request& r, Decision& out) const {
  if (!r.count) return true;  // a replay: admitted the first time
  const GcraVerdict v =
      r.reg.limiter().admit(l.counters->id, out.bucket, r.ctx.clock->monoNs(), l.params);
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

}  // namespace corral::policies
