#include "policies/global_limits.h"

#include <algorithm>
#include <cstring>

#include "policies/engine.h"
#include "policies/fill.h"
#include "policies/registry.h"
#include "policies/siphash.h"

namespace corral::policies {

namespace {

// Fixed keys: every sidecar must name a bucket's state alike. Parts longer than kLongPart are
// kept as a digest in the lookup key too (bounded memory per bucket, whatever clients send).
constexpr SipKey kStateKeyA{0x636f7272616c2072ULL, 0x6c2073746174652aULL};
constexpr SipKey kStateKeyB{0x676c6f62616c206cULL, 0x696d697473203132ULL};
constexpr size_t kLongPart = RateLimiter::kMaxPartBytes;  // as the local buckets
constexpr uint32_t kFallbackBit = 0x80000000u;            // local_share buckets in the RateLimiter

void appendHex(std::string& out, uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 0xf]);
}

// Each part as <length: 2 bytes><bytes>, a long one as <0xffff><16-byte digest>: parts stay
// apart ("ab" "c" is not "a" "bc").
void appendParts(std::string& out, std::span<const std::string_view> parts) {
  for (std::string_view part : parts) {
    if (part.size() <= kLongPart) {
      out.push_back(static_cast<char>(part.size() >> 8));
      out.push_back(static_cast<char>(part.size() & 0xff));
      out.append(part);
      continue;
    }
    const uint64_t d[2] = {sipHash24(kStateKeyA, part), sipHash24(kStateKeyB, part)};
    out.append("\xff\xff", 2);
    out.append(reinterpret_cast<const char*>(d), sizeof d);
  }
}

// Whether `key` is the lookup key of (id, parts), without building it (false for a long part:
// its digest would have to be computed; the caller then builds the key).
bool sameKey(std::string_view key, uint32_t id, std::span<const std::string_view> parts) {
  if (key.size() < sizeof id || std::memcmp(key.data(), &id, sizeof id) != 0) return false;
  size_t at = sizeof id;
  for (std::string_view part : parts) {
    const size_t n = part.size();
    if (n > kLongPart || key.size() - at < 2 + n) return false;
    if (static_cast<uint8_t>(key[at]) != (n >> 8) ||
        static_cast<uint8_t>(key[at + 1]) != (n & 0xff)) {
      return false;
    }
    if (std::memcmp(key.data() + at + 2, part.data(), n) != 0) return false;
    at += 2 + n;
  }
  return at == key.size();
}

std::string stateKeyOf(std::string_view name, std::string_view encoded_parts) {
  std::string k = "__corral:rl:{";
  k.append(name);
  k.push_back(':');
  appendHex(k, sipHash24(kStateKeyA, encoded_parts));
  appendHex(k, sipHash24(kStateKeyB, encoded_parts));
  k.push_back('}');
  return k;
}

}  // namespace

GlobalLimits::GlobalLimits(LimitStore& store, Registry& registry, const Clock& clock, Timer& timer,
                           LeaseOptions opt)
    : store_(store), registry_(registry), clock_(clock), timer_(timer), leases_(opt) {}

GlobalLimits::~GlobalLimits() { *alive_ = false; }

std::string GlobalLimits::stateKey(std::string_view name, std::span<const std::string_view> parts) {
  std::string encoded;
  appendParts(encoded, parts);
  return stateKeyOf(name, encoded);
}

std::string_view GlobalLimits::lookupKey(uint32_t id, std::span<const std::string_view> parts) {
  key_.resize(sizeof id);
  std::memcpy(key_.data(), &id, sizeof id);
  appendParts(key_, parts);
  return key_;
}

Lease* GlobalLimits::ready(const CompiledLimit& l, std::span<const std::string_view> parts,
                           int64_t now_ns, bool* wait) {
  // The bucket of the previous request is the likely one (a pipeline, a limit of one bucket):
  // compared in place before any key is built or hashed.
  Lease* lease = last_lease_ != nullptr && sameKey(last_lease_->key(), l.counters->id, parts)
                     ? last_lease_
                     : nullptr;
  if (lease == nullptr) {
    last_lease_ = nullptr;  // at() may sweep (and free it) when the table is full
    lease = leases_.at(lookupKey(l.counters->id, parts), now_ns);
    last_lease_ = lease;
  }
  *wait = false;
  if (lease == nullptr) [[unlikely]] {
    return nullptr;
  }
  if (lease->hasCredit(now_ns)) [[likely]] {
    return lease;
  }
  int64_t take = 0;
  int64_t dropped = 0;
  *wait = lease->mustWait(l.params, now_ns, leases_.options(), &take, &dropped);
  if (dropped > 0) l.counters->dropped.add(static_cast<uint64_t>(dropped));
  if (take > 0) sendTake(l, lease->key(), take);
  if (*wait) {
    // Woken once the take is overdue, if it is not back by then: the request is then decided
    // as unavailable. Each wait arms its own (a request woken a hair early waits again, and
    // arms again), so no waiter depends on a timer armed for somebody else.
    const int64_t left_ms = (lease->waitLeftNs(now_ns, leases_.options()) + 999'999) / 1'000'000;
    timer_.after(left_ms + 1, [this, alive = alive_] {
      if (*alive && wake_) wake_();
    });
  }
  return lease;
}

GcraVerdict GlobalLimits::admit(const CompiledLimit& l, Lease* lease, int64_t now_ns) {
  if (lease == nullptr) [[unlikely]] {
    l.counters->unavailable.add();
    return fallback(l, {}, now_ns);
  }
  if (lease->spendFast(now_ns, leases_.options())) [[likely]] {
    return {true, 0};
  }
  const Lease::Step s = lease->admit(l.params, now_ns, leases_.options());
  if (s.dropped > 0) [[unlikely]] {
    l.counters->dropped.add(static_cast<uint64_t>(s.dropped));
  }
  if (s.take > 0) sendTake(l, lease->key(), s.take);
  switch (s.verdict) {
    case Lease::Verdict::kAdmit:
      return {true, 0};
    case Lease::Verdict::kReject:
      return {false, s.retry_after_ns};
    case Lease::Verdict::kUnavailable:
      break;
  }
  l.counters->unavailable.add();
  return fallback(l, lease->key(), now_ns);
}

GcraVerdict GlobalLimits::fallback(const CompiledLimit& l, std::string_view key, int64_t now_ns) {
  switch (l.spec->on_unavailable) {
    case config::OnUnavailable::kAllow:
      return {true, 0};
    case config::OnUnavailable::kDeny:
      return {false, leases_.options().retry_ns};
    case config::OnUnavailable::kLocalShare:
      break;
  }
  // This sidecar's share: the rate and the burst divided by the live sidecars, in a local
  // bucket of this process (every worker's).
  const int64_t n = std::max<int64_t>(1, registry_.sidecars.load(std::memory_order_relaxed));
  const uint64_t burst = std::max<uint64_t>(1, l.spec->burst / static_cast<uint64_t>(n));
  const GcraParams share =
      GcraParams::from(l.spec->count, l.spec->period.count() * 1'000'000 * n, burst);
  return registry_.limiter().admit(l.counters->id | kFallbackBit, key, now_ns, share);
}

void GlobalLimits::sendTake(const CompiledLimit& l, std::string_view key, int64_t want) {
  const std::string state = stateKeyOf(l.spec->name, key.substr(sizeof(uint32_t)));
  LimitCounters* c = l.counters;
  store_.take(state, l.params, want,
              [this, alive = alive_, key = std::string(key), c](bool ok, const GcraGrant& g) {
                if (!*alive) return;
                const int64_t now = clock_.monoNs();
                Lease* lease = leases_.find(key);
                if (!ok) {
                  c->takes_failed.add();
                  if (lease != nullptr) lease->onFailure(now, leases_.options());
                } else {
                  if (g.granted > 0) {
                    c->takes_granted.add();
                    c->leased.add(static_cast<uint64_t>(g.granted));
                  } else {
                    c->takes_empty.add();
                  }
                  if (lease != nullptr) {
                    const int64_t dropped = lease->onGrant(g, now, leases_.options());
                    if (dropped > 0) c->dropped.add(static_cast<uint64_t>(dropped));
                  }
                }
                if (wake_) wake_();
              });
}

void GlobalLimits::tick(int64_t now_ns, bool active) {
  last_lease_ = nullptr;  // the sweep may free it
  leases_.sweep(now_ns, [this](std::string_view key, int64_t dropped) {
    uint32_t id = 0;
    std::memcpy(&id, key.data(), sizeof id);
    if (LimitCounters* c = registry_.limitById(id); c != nullptr) {
      c->dropped.add(static_cast<uint64_t>(dropped));
    }
  });
  if (!active || heartbeat_id_.empty() || beating_ || now_ns < next_beat_ns_) return;
  beating_ = true;
  next_beat_ns_ = now_ns + kHeartbeatNs;
  store_.heartbeat(heartbeat_id_, kLiveMs, [this, alive = alive_](int64_t live) {
    if (!*alive) return;
    beating_ = false;
    if (live > 0) registry_.sidecars.store(live, std::memory_order_relaxed);
  });
}

}  // namespace corral::policies
