// GCRA rate limiting: the pure step plus a sharded, bounded table of buckets.
//
//   admit(limit, key, now) --hash--> shard (mutex) --find (no allocation)--> TAT --gcraStep-->
//       allowed: TAT += interval          refused: TAT unchanged, retry_after = TAT - tol - now
//   new bucket --> over the shard's share of max_buckets? sweep idle; still full? evict
//       the closest-to-idle buckets of that limit down to a low-water mark --> insert
//
// Bound (documented in rate_limiter.h as "per limit id"): each of the kShards shards keeps at
// most max(1, max_buckets / kShards) buckets per limit id, so one limit never holds more than
// max(max_buckets, kShards) buckets in total. A limit whose keys hash unevenly may start
// evicting in one shard a little before it reaches max_buckets overall; that is the price of
// a bound that needs no cross-shard counter.
#include "policies/rate_limiter.h"

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace corral::policies {

GcraParams GcraParams::from(uint64_t count, int64_t period_ns, uint64_t burst) {
  // The config guarantees count >= 1, burst >= 1 and period > 0; clamp anyway so that a bad
  // value degrades to a strict limit rather than a division by zero or an unlimited bucket.
  count = std::max<uint64_t>(count, 1);
  burst = std::max<uint64_t>(burst, 1);
  const uint64_t period = static_cast<uint64_t>(std::max<int64_t>(period_ns, 1));
  // Round the interval up: a request never costs less than period / count, so the long-run
  // rate is never above count per period (it is below by at most one ns per request).
  const uint64_t interval = period / count + (period % count != 0 ? 1 : 0);
  GcraParams p;
  p.interval_ns = static_cast<int64_t>(interval);
  // Saturate: a burst so large that the product overflows is "unlimited for a very long time".
  constexpr uint64_t kMaxTolerance = static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / 4);
  const uint64_t extra = burst - 1;
  p.tolerance_ns = static_cast<int64_t>(
      extra != 0 && interval > kMaxTolerance / extra ? kMaxTolerance : extra * interval);
  return p;
}

GcraVerdict gcraStep(int64_t& tat, int64_t now_ns, const GcraParams& p) {
  const int64_t t = tat == 0 ? now_ns : tat;  // a fresh bucket is one whose TAT is now
  const int64_t earliest = t - p.tolerance_ns;
  if (earliest > now_ns) return GcraVerdict{false, earliest - now_ns};
  tat = std::max(t, now_ns) + p.interval_ns;
  return GcraVerdict{true, 0};
}

namespace {

constexpr size_t kShards = 16;

struct BucketKeyView {
  uint32_t limit;
  std::string_view key;
};

struct BucketKey {
  uint32_t limit;
  std::string key;
};

uint64_t hashKey(uint32_t limit, std::string_view key) {
  const uint64_t h = std::hash<std::string_view>{}(key);
  return h ^ ((static_cast<uint64_t>(limit) + 1) * 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2));
}

// Transparent hash and equality: find() takes a BucketKeyView, so a lookup of an existing
// bucket builds no std::string.
struct BucketHash {
  using is_transparent = void;
  size_t operator()(const BucketKeyView& k) const noexcept { return hashKey(k.limit, k.key); }
  size_t operator()(const BucketKey& k) const noexcept { return hashKey(k.limit, k.key); }
};

struct BucketEq {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a.limit == b.limit && std::string_view(a.key) == std::string_view(b.key);
  }
};

using BucketMap = std::unordered_map<BucketKey, int64_t, BucketHash, BucketEq>;

// Other bits than the map's bucket index uses, so that one shard's keys still spread well.
size_t shardOf(uint64_t h) { return static_cast<size_t>((h * 0xD6E8FEB86659FD93ULL) >> 60); }
static_assert(kShards == 16, "shardOf() takes the top 4 bits");

}  // namespace

struct RateLimiter::Impl {
  // alignas: two workers hitting neighbouring shards do not share a cache line for the mutex.
  struct alignas(64) Shard {
    mutable std::mutex mu;
    BucketMap tats;
    std::unordered_map<uint32_t, size_t> per_limit;                // bucket count of each limit id
    std::vector<std::pair<int64_t, BucketMap::iterator>> scratch;  // eviction, reused
  };

  size_t cap = 1;        // buckets per limit id per shard
  size_t low_water = 0;  // eviction goes down to this, so the next one is cap/8 inserts away
  std::array<Shard, kShards> shards;

  // Drops the shard's idle buckets (TAT <= now): exact, an idle bucket decides like a new one.
  static void sweepShard(Shard& s, int64_t now_ns) {
    for (auto it = s.tats.begin(); it != s.tats.end();) {
      if (it->second <= now_ns) {
        --s.per_limit[it->first.limit];
        it = s.tats.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Called when `limit` is at its cap in `s`. Sweeps; if that does not bring the limit down to
  // the low-water mark (most buckets still busy), evicts the limit's buckets with the lowest
  // TAT, the ones closest to idle, whose loss changes the fewest decisions. Either way the
  // O(shard) pass buys at least cap - low_water inserts, so inserting stays amortized O(1).
  void makeRoom(Shard& s, uint32_t limit, int64_t now_ns) {
    sweepShard(s, now_ns);
    size_t& n = s.per_limit[limit];
    if (n <= low_water) return;
    s.scratch.clear();
    for (auto it = s.tats.begin(); it != s.tats.end(); ++it) {
      if (it->first.limit == limit) s.scratch.emplace_back(it->second, it);
    }
    const size_t evict = n - low_water;
    const auto nth = s.scratch.begin() + static_cast<std::ptrdiff_t>(evict);
    std::nth_element(s.scratch.begin(), nth, s.scratch.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto it = s.scratch.begin(); it != nth; ++it) s.tats.erase(it->second);
    n -= evict;
    s.scratch.clear();
  }
};

RateLimiter::RateLimiter(size_t max_buckets) : impl_(std::make_unique<Impl>()) {
  impl_->cap = std::max<size_t>(1, max_buckets / kShards);
  impl_->low_water = impl_->cap - std::max<size_t>(1, impl_->cap / 8);
}

RateLimiter::~RateLimiter() = default;

GcraVerdict RateLimiter::admit(uint32_t limit_id, std::string_view bucket_key, int64_t now_ns,
                               const GcraParams& p) {
  const BucketKeyView view{limit_id, bucket_key};
  Impl::Shard& s = impl_->shards[shardOf(hashKey(limit_id, bucket_key))];
  std::lock_guard<std::mutex> lock(s.mu);
  if (auto it = s.tats.find(view); it != s.tats.end()) return gcraStep(it->second, now_ns, p);

  int64_t tat = 0;
  const GcraVerdict v = gcraStep(tat, now_ns, p);
  if (!v.allowed) return v;  // cannot happen for a fresh bucket; nothing to remember anyway
  if (s.per_limit[limit_id] >= impl_->cap) impl_->makeRoom(s, limit_id, now_ns);
  s.tats.emplace(BucketKey{limit_id, std::string(bucket_key)}, tat);
  ++s.per_limit[limit_id];
  return v;
}

void RateLimiter::sweep(int64_t now_ns) {
  for (Impl::Shard& s : impl_->shards) {
    std::lock_guard<std::mutex> lock(s.mu);
    Impl::sweepShard(s, now_ns);
  }
}

size_t RateLimiter::buckets() const {
  size_t n = 0;
  for (const Impl::Shard& s : impl_->shards) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.tats.size();
  }
  return n;
}

}  // namespace corral::policies
