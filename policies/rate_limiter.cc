// GCRA rate limiting: the pure step plus a sharded, bounded table of buckets.
//
//   admit(limit, parts, now) --long parts digested, all hashed once--> shard (spin lock)
//       --find (parts compared in place, no allocation)--> TAT --gcraStep-->
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
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policies/siphash.h"

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

constexpr uint8_t kDigestFlag = 0x80;  // on a part's length byte: a digest follows
constexpr size_t kDigestBytes = 16;
static_assert(RateLimiter::kMaxPartBytes < kDigestFlag);
// The longest encoded bucket key: every part at its longest.
constexpr size_t kMaxKeyBytes = RateLimiter::kMaxParts * (1 + RateLimiter::kMaxPartBytes);

// A bucket's identity: the limit id and its encoded key (the parts one after the other, each as
// a length byte, with kDigestFlag for a digest, and its bytes). The hash is computed once per
// admit() and carried along, so the shard choice and the table lookup share it and a stored
// bucket is never hashed again.
struct BucketKeyView {
  uint32_t limit;
  std::string_view key;
  uint64_t hash;
};

struct BucketKey {
  uint32_t limit;
  std::string key;
  uint64_t hash;
};

struct BucketHash {
  using is_transparent = void;
  size_t operator()(const BucketKeyView& k) const noexcept { return k.hash; }
  size_t operator()(const BucketKey& k) const noexcept { return k.hash; }
};

uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint64_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Short byte strings (bucket keys are mostly a dozen bytes) compared and copied with a few word
// loads instead of a library call.
[[gnu::always_inline]] inline bool sameBytes(const char* a, const char* b, size_t n) {
  if (n >= 8) {
    if (n > 16) return std::memcmp(a, b, n) == 0;
    return ((load64(a) ^ load64(b)) | (load64(a + n - 8) ^ load64(b + n - 8))) == 0;
  }
  if (n >= 4) return ((load32(a) ^ load32(b)) | (load32(a + n - 4) ^ load32(b + n - 4))) == 0;
  if (n == 0) return true;
  return ((a[0] ^ b[0]) | (a[n / 2] ^ b[n / 2]) | (a[n - 1] ^ b[n - 1])) == 0;
}

[[gnu::always_inline]] inline void copyBytes(char* dst, const char* src, size_t n) {
  if (n > 16) {
    std::memcpy(dst, src, n);
  } else if (n >= 8) {
    const uint64_t head = load64(src);
    const uint64_t tail = load64(src + n - 8);
    std::memcpy(dst, &head, 8);
    std::memcpy(dst + n - 8, &tail, 8);
  } else if (n >= 4) {
    const auto head = static_cast<uint32_t>(load32(src));
    const auto tail = static_cast<uint32_t>(load32(src + n - 4));
    std::memcpy(dst, &head, 4);
    std::memcpy(dst + n - 4, &tail, 4);
  } else if (n > 0) {
    dst[0] = src[0];
    dst[n / 2] = src[n / 2];
    dst[n - 1] = src[n - 1];
  }
}

struct BucketEq {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a.hash == b.hash && a.limit == b.limit && a.key.size() == b.key.size() &&
           sameBytes(a.key.data(), b.key.data(), a.key.size());
  }
};

// 64 x 64 -> 128-bit product, folded: every input bit reaches many output bits.
uint64_t fold(uint64_t a, uint64_t b) {
  __extension__ using U128 = unsigned __int128;
  const U128 r = static_cast<U128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

constexpr uint64_t kM0 = 0xa0761d6478bd642fULL;
constexpr uint64_t kM1 = 0xe7037ed1a0b428dbULL;
constexpr uint64_t kM2 = 0x8ebc6af09c88c6e3ULL;

// A fast hash of (limit, encoded key): 16 bytes per multiply, short keys in one. Not
// cryptographic; it only spreads buckets over shards and table slots. Clients choose keys and
// names, so the limiter's random seed goes into one side of every multiply: without it nobody
// can aim many keys at one slot (a fixed constant there would let a chosen word zero the
// product).
uint64_t hashKey(uint64_t s0, uint64_t s1, uint32_t limit, std::string_view key) {
  const char* p = key.data();
  size_t n = key.size();
  uint64_t h = fold(s0 ^ limit, s1 ^ n);
  while (n > 16) {
    h = fold(load64(p) ^ s0, load64(p + 8) ^ h);
    p += 16;
    n -= 16;
  }
  uint64_t a = 0;
  uint64_t b = 0;
  if (n >= 8) {
    a = load64(p);
    b = load64(p + n - 8);
  } else if (n >= 4) {
    a = load32(p);
    b = load32(p + n - 4);
  } else if (n > 0) {
    a = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
        (uint64_t{static_cast<uint8_t>(p[n / 2])} << 8) | static_cast<uint8_t>(p[n - 1]);
  }
  return fold(a ^ s1, b ^ h);
}

// A test-and-test-and-set lock that yields the CPU while it waits. A shard's critical section
// is a table lookup and a store (an eviction or sweep pass once in many inserts): far shorter
// than a futex round trip. Uncontended, std::mutex costs about 60 instructions a request; this
// an exchange and a store.
class SpinLock {
 public:
  void lock() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

using BucketMap = std::unordered_map<BucketKey, int64_t, BucketHash, BucketEq>;

// Other bits than the map's bucket index uses (the low ones), so that one shard's keys still
// spread well.
size_t shardOf(uint64_t h) { return static_cast<size_t>(h >> 60); }
static_assert(kShards == 16, "shardOf() takes the top 4 bits");

}  // namespace

struct RateLimiter::Impl {
  // alignas: two workers hitting neighbouring shards do not share a cache line for the lock.
  struct alignas(64) Shard {
    mutable SpinLock mu;
    BucketMap tats;
    std::unordered_map<uint32_t, size_t> per_limit;                // bucket count of each limit id
    std::vector<std::pair<int64_t, BucketMap::iterator>> scratch;  // eviction, reused
    size_t key_bytes = 0;                                          // of the keys in tats
  };

  uint64_t s0 = 0;  // the hash's seed
  uint64_t s1 = 0;
  SipKey digest_keys[2];  // of long parts
  size_t cap = 1;         // buckets per limit id per shard
  size_t low_water = 0;   // eviction goes down to this, so the next one is cap/8 inserts away
  std::array<Shard, kShards> shards;

  // admit() once the key is encoded.
  [[gnu::always_inline]] GcraVerdict admitKey(uint32_t limit_id, std::string_view key,
                                              int64_t now_ns, const GcraParams& p) {
    const BucketKeyView view{limit_id, key, hashKey(s0, s1, limit_id, key)};
    Shard& s = shards[shardOf(view.hash)];
    std::lock_guard<SpinLock> lock(s.mu);
    if (auto it = s.tats.find(view); it != s.tats.end()) return gcraStep(it->second, now_ns, p);

    int64_t tat = 0;
    const GcraVerdict v = gcraStep(tat, now_ns, p);
    if (!v.allowed) return v;  // cannot happen for a fresh bucket; nothing to remember anyway
    if (s.per_limit[limit_id] >= cap) makeRoom(s, limit_id, now_ns);
    s.key_bytes += key.size();
    s.tats.emplace(BucketKey{limit_id, std::string(key), view.hash}, tat);
    ++s.per_limit[limit_id];
    return v;
  }

  // Drops the shard's idle buckets (TAT <= now): exact, an idle bucket decides like a new one.
  static void sweepShard(Shard& s, int64_t now_ns) {
    for (auto it = s.tats.begin(); it != s.tats.end();) {
      if (it->second <= now_ns) {
        --s.per_limit[it->first.limit];
        s.key_bytes -= it->first.key.size();
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
  [[gnu::noinline]] void makeRoom(Shard& s, uint32_t limit, int64_t now_ns) {
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
    for (auto it = s.scratch.begin(); it != nth; ++it) {
      s.key_bytes -= it->second->first.key.size();
      s.tats.erase(it->second);
    }
    n -= evict;
    s.scratch.clear();
  }
};

RateLimiter::RateLimiter(size_t max_buckets) : RateLimiter(max_buckets, randomSipKey().k0) {}

RateLimiter::RateLimiter(size_t max_buckets, uint64_t seed) : impl_(std::make_unique<Impl>()) {
  impl_->s0 = fold(seed ^ kM0, kM1);
  impl_->s1 = fold(seed ^ kM2, kM0);
  impl_->digest_keys[0] = SipKey{fold(seed ^ kM1, kM2), fold(seed ^ kM0, kM2)};
  impl_->digest_keys[1] = SipKey{fold(seed ^ kM2, kM1), fold(seed ^ kM1, kM0)};
  impl_->cap = std::max<size_t>(1, max_buckets / kShards);
  impl_->low_water = impl_->cap - std::max<size_t>(1, impl_->cap / 8);
}

RateLimiter::~RateLimiter() = default;

namespace {

// Appends the encoding of one part to buf[0, n) and returns the new length. buf has room for
// 1 + kMaxPartBytes more bytes.
[[gnu::always_inline]] inline size_t encodePart(char* buf, size_t n, std::string_view v,
                                                const SipKey* digest_keys) {
  if (v.size() <= RateLimiter::kMaxPartBytes) [[likely]] {
    buf[n] = static_cast<char>(v.size());
    copyBytes(buf + n + 1, v.data(), v.size());
    return n + 1 + v.size();
  }
  const uint64_t d[2] = {sipHash24(digest_keys[0], v), sipHash24(digest_keys[1], v)};
  buf[n] = static_cast<char>(kDigestFlag | kDigestBytes);
  std::memcpy(buf + n + 1, d, kDigestBytes);
  return n + 1 + kDigestBytes;
}

}  // namespace

// flatten: the lookup (hash, table find, GCRA step) is one straight path; the rare insert
// path's makeRoom stays a call (noinline).
[[gnu::flatten]] GcraVerdict RateLimiter::admit(uint32_t limit_id,
                                                std::span<const std::string_view> parts,
                                                int64_t now_ns, const GcraParams& p) {
  // Encode the key on the stack: it is bounded, so it fits, and a known bucket costs no copy.
  char buf[kMaxKeyBytes];
  size_t n = 0;
  for (size_t i = 0, end = std::min(parts.size(), kMaxParts); i < end; ++i) {
    n = encodePart(buf, n, parts[i], impl_->digest_keys);
  }
  return impl_->admitKey(limit_id, std::string_view(buf, n), now_ns, p);
}

[[gnu::flatten]] GcraVerdict RateLimiter::admit(uint32_t limit_id, std::string_view part,
                                                int64_t now_ns, const GcraParams& p) {
  char buf[1 + kMaxPartBytes];
  const size_t n = encodePart(buf, 0, part, impl_->digest_keys);
  return impl_->admitKey(limit_id, std::string_view(buf, n), now_ns, p);
}

void RateLimiter::sweep(int64_t now_ns) {
  for (Impl::Shard& s : impl_->shards) {
    std::lock_guard<SpinLock> lock(s.mu);
    Impl::sweepShard(s, now_ns);
  }
}

size_t RateLimiter::keyBytes() const {
  size_t n = 0;
  for (const Impl::Shard& s : impl_->shards) {
    std::lock_guard<SpinLock> lock(s.mu);
    n += s.key_bytes;
  }
  return n;
}

size_t RateLimiter::buckets() const {
  size_t n = 0;
  for (const Impl::Shard& s : impl_->shards) {
    std::lock_guard<SpinLock> lock(s.mu);
    n += s.tats.size();
  }
  return n;
}

}  // namespace corral::policies
