// The judgements of corral doctor, pure: numbers in, a Finding out. Every threshold is here,
// named, with the reason for its value; server_checks.cc only gathers the numbers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"
#include "doctor/report.h"

namespace corral::doctor {

// used_memory above this share of maxmemory: a warning (eviction or OOM errors are near).
inline constexpr double kMemoryWarnShare = 0.80;
// ... above this share: an error.
inline constexpr double kMemoryErrorShare = 0.95;
// mem_fragmentation_ratio above this: a warning...
inline constexpr double kFragmentationMax = 1.5;
// ... judged only from this much used_memory on: a small heap's ratio is dominated by the
// allocator's fixed overhead (a fresh Redis shows 3-10). Redis's own active-defrag-ignore-bytes
// default is the same 100 MiB.
inline constexpr double kFragmentationFloorBytes = 100.0 * 1024 * 1024;
// Keyspace hit ratio below this: a warning...
inline constexpr double kHitRatioMin = 0.90;
// ... judged only with at least this many lookups since the server started.
inline constexpr double kHitRatioMinLookups = 1000;
// Median PING round trip above this (microseconds): a warning. A sidecar's Redis is in the same
// zone; a few ms per round trip is what a cross-zone or overloaded hop costs.
inline constexpr double kLatencyMedianMaxUs = 5000;
// A slowlog entry at least this slow (microseconds) makes the slowlog a warning.
inline constexpr int64_t kSlowlogWarnUs = 100000;

// What the policies say a policy's keys are, for the eviction rule:
//   cache   - it has a fill (fill.origin), a default TTL (ttl.default) or requires a TTL
//             (ttl.require): its keys are meant to expire or be filled again, so losing one
//             early costs a miss;
//   durable - none of those (queues, locks, counters, anything written without TTL rules):
//             losing one to eviction is a bug in the app.
// Policies in mode off are left out: the proxy treats their keys as covered by no policy.
enum class KeyKind { kCache, kDurable };
KeyKind kindOf(const config::PolicySpec& p);

struct PolicyMix {
  std::vector<std::string> cache;                       // policy names, config order
  std::vector<std::string> durable;                     // ...
  std::vector<std::string> cache_without_required_ttl;  // cache policies without ttl.require
};
PolicyMix mixOf(const std::vector<config::PolicySpec>& policies);

// maxmemory-policy against the mix:
//   only cache policies:   allkeys-lru / allkeys-lfu ok; allkeys-random and volatile-* warning;
//                          noeviction error (once full, every write fails);
//   only durable policies: noeviction ok; volatile-* warning (keys with a TTL, such as locks,
//                          can go before they expire); allkeys-* error;
//   both:                  volatile-* ok when every cache policy requires a TTL (else warning:
//                          cache keys without one are never evicted); noeviction warning (the
//                          caches cannot make room); allkeys-* error (durable keys go too);
//   no policies:           ok, not judged (no config).
Finding judgeEviction(const PolicyMix& mix, std::string_view maxmemory_policy);
// maxmemory 0 (unset) is an error: Redis grows until the kernel kills it.
Finding judgeMaxmemory(double maxmemory);
// used_memory against maxmemory (only when maxmemory is set).
Finding judgeMemoryUse(double used, double maxmemory);
Finding judgeFragmentation(double ratio, double used);
Finding judgeHitRatio(double hits, double misses);
// Evictions and expirations per second over `seconds` between two INFO samples; total_evicted
// is evicted_keys since the server started. Evicting while durable policies exist is an error.
Finding judgeRates(double evicted_per_s, double expired_per_s, double seconds, double total_evicted,
                   const PolicyMix& mix);
// PING round trips in microseconds (non-empty).
Finding judgeLatency(std::vector<double> rtts_us);

// "1.5 MiB", "812 B": for evidence.
std::string humanBytes(double bytes);
// A number with at most `decimals` decimals, no trailing zeros ("0.93", "12").
std::string fixed(double v, int decimals = 2);

}  // namespace corral::doctor
