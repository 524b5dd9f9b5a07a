#include "doctor/rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace corral::doctor {

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

std::string humanBytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (bytes >= 1024 && u + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++u;
  }
  return fixed(bytes, u == 0 ? 0 : 1) + " " + kUnits[u];
}

KeyKind kindOf(const config::PolicySpec& p) {
  const bool cache = !p.fill.origin.empty() || p.ttl.default_ttl.has_value() || p.ttl.require;
  return cache ? KeyKind::kCache : KeyKind::kDurable;
}

PolicyMix mixOf(const std::vector<config::PolicySpec>& policies) {
  PolicyMix mix;
  for (const config::PolicySpec& p : policies) {
    if (p.mode == config::PolicyMode::kOff) continue;
    if (kindOf(p) == KeyKind::kCache) {
      mix.cache.push_back(p.name);
      if (!p.ttl.require) mix.cache_without_required_ttl.push_back(p.name);
    } else {
      mix.durable.push_back(p.name);
    }
  }
  return mix;
}

Finding judgeEviction(const PolicyMix& mix, std::string_view mp) {
  const std::string policy(mp);
  const bool allkeys = mp.starts_with("allkeys-");
  const bool volatile_ = mp.starts_with("volatile-");
  const bool noeviction = mp == "noeviction";
  const bool by_use = mp == "allkeys-lru" || mp == "allkeys-lfu";
  std::string seen = "maxmemory-policy " + policy;
  const std::string caches = "cache policies (fill or TTL rules): " + joined(mix.cache);
  const std::string durables = "durable policies (no fill, no TTL rules): " + joined(mix.durable);
  auto f = [&](Severity s, std::string why, std::string action = "") {
    return finding("eviction_policy", s, seen + "; " + why, std::move(action));
  };
  if (mix.cache.empty() && mix.durable.empty()) {
    return f(Severity::kOk, "not judged: no policies (run with --config to judge it)");
  }
  if (mix.durable.empty()) {
    if (by_use) return f(Severity::kOk, caches);
    if (noeviction) {
      return f(Severity::kError, caches + "; once memory is full every write fails (OOM)",
               "CONFIG SET maxmemory-policy allkeys-lru (or allkeys-lfu), and in redis.conf");
    }
    if (volatile_ && !mix.cache_without_required_ttl.empty()) {
      return f(Severity::kWarning,
               caches + "; volatile-* evicts only keys with a TTL and " +
                   joined(mix.cache_without_required_ttl) + " do not require one",
               "use allkeys-lru (or allkeys-lfu): every key here is a cache key");
    }
    return f(Severity::kWarning, caches + "; " + policy + " does not evict by use",
             "use allkeys-lru (or allkeys-lfu): every key here is a cache key");
  }
  if (mix.cache.empty()) {
    if (noeviction) return f(Severity::kOk, durables);
    if (allkeys) {
      return f(Severity::kError, durables + "; " + policy + " may evict any of their keys",
               "CONFIG SET maxmemory-policy noeviction (and in redis.conf): these keys must not "
               "be lost");
    }
    return f(Severity::kWarning,
             durables + "; " + policy + " evicts their keys that carry a TTL (locks) early",
             "use noeviction: these keys must not be lost");
  }
  const std::string both = caches + "; " + durables;
  if (allkeys) {
    return f(Severity::kError, both + "; " + policy + " evicts durable keys too",
             "use volatile-lru (or volatile-lfu) and give every cache key a TTL (ttl.require: "
             "true with ttl.default)");
  }
  if (noeviction) {
    return f(Severity::kWarning, both + "; with noeviction the caches cannot make room",
             "use volatile-lru (or volatile-lfu) and give every cache key a TTL");
  }
  if (!mix.cache_without_required_ttl.empty()) {
    return f(Severity::kWarning,
             both +
                 "; cache policies without ttl.require: " + joined(mix.cache_without_required_ttl) +
                 " (their keys without a TTL are never "
                 "evicted)",
             "set ttl.require: true and ttl.default on those policies");
  }
  return f(Severity::kOk, both);
}

Finding judgeMaxmemory(double maxmemory) {
  if (maxmemory <= 0) {
    return finding(
        "maxmemory", Severity::kError,
        "maxmemory 0 (unset): Redis grows until the host runs out of memory",
        "set maxmemory (CONFIG SET maxmemory <bytes> and in redis.conf), e.g. 75% of the "
        "memory the container or host gives Redis");
  }
  return finding("maxmemory", Severity::kOk, "maxmemory " + humanBytes(maxmemory));
}

Finding judgeMemoryUse(double used, double maxmemory) {
  const double share = used / maxmemory;
  std::string seen = "used_memory " + humanBytes(used) + " = " + fixed(share * 100, 1) +
                     "% of maxmemory " + humanBytes(maxmemory);
  if (share > kMemoryErrorShare) {
    return finding("memory_use", Severity::kError,
                   seen + " (over " + fixed(kMemoryErrorShare * 100) + "%)",
                   "raise maxmemory or shrink the data (TTLs, big keys) now");
  }
  if (share > kMemoryWarnShare) {
    return finding("memory_use", Severity::kWarning,
                   seen + " (over " + fixed(kMemoryWarnShare * 100) + "%)",
                   "plan more memory, or shorter TTLs / smaller values");
  }
  return finding("memory_use", Severity::kOk, seen);
}

Finding judgeFragmentation(double ratio, double used) {
  std::string seen =
      "mem_fragmentation_ratio " + fixed(ratio) + " at used_memory " + humanBytes(used);
  if (used < kFragmentationFloorBytes) {
    return finding("fragmentation", Severity::kOk,
                   seen + "; not judged below " + humanBytes(kFragmentationFloorBytes) +
                       " used (the allocator's fixed overhead dominates)");
  }
  if (ratio > kFragmentationMax) {
    return finding("fragmentation", Severity::kWarning,
                   seen + " (over " + fixed(kFragmentationMax) + ")",
                   "CONFIG SET activedefrag yes, or restart the node after a failover");
  }
  return finding("fragmentation", Severity::kOk, seen);
}

Finding judgeHitRatio(double hits, double misses) {
  const double lookups = hits + misses;
  std::string seen = "keyspace_hits " + fixed(hits, 0) + ", keyspace_misses " + fixed(misses, 0);
  if (lookups < kHitRatioMinLookups) {
    return finding("hit_ratio", Severity::kOk,
                   seen + "; not judged under " + fixed(kHitRatioMinLookups, 0) + " lookups");
  }
  const double ratio = hits / lookups;
  seen += " = hit ratio " + fixed(ratio * 100, 1) + "% since the server started";
  if (ratio < kHitRatioMin) {
    return finding("hit_ratio", Severity::kWarning,
                   seen + " (under " + fixed(kHitRatioMin * 100, 0) + "%)",
                   "check TTLs are not too short, that maxmemory leaves room for the working set "
                   "(evictions), and which policies miss (corral_policy_misses_total)");
  }
  return finding("hit_ratio", Severity::kOk, seen);
}

Finding judgeRates(double evicted_per_s, double expired_per_s, double seconds, double total_evicted,
                   const PolicyMix& mix) {
  std::string seen = "evicted " + fixed(evicted_per_s) + "/s, expired " + fixed(expired_per_s) +
                     "/s over " + fixed(seconds) + " s between two INFO samples; evicted_keys " +
                     fixed(total_evicted, 0) + " since the server started";
  if (evicted_per_s > 0) {
    if (!mix.durable.empty()) {
      return finding("evictions", Severity::kError,
                     seen + "; durable policies: " + joined(mix.durable),
                     "Redis is evicting while keys that must not be lost exist: raise maxmemory "
                     "and check maxmemory-policy");
    }
    return finding("evictions", Severity::kWarning, seen + "; memory is full",
                   "raise maxmemory if the hit ratio suffers");
  }
  return finding("evictions", Severity::kOk, seen);
}

Finding judgeLatency(std::vector<double> rtts_us) {
  std::sort(rtts_us.begin(), rtts_us.end());
  const double median = rtts_us[rtts_us.size() / 2];
  const double max = rtts_us.back();
  std::string seen = "PING round trip median " + fixed(median / 1000.0, 3) + " ms, max " +
                     fixed(max / 1000.0, 3) + " ms over " + std::to_string(rtts_us.size()) +
                     " PINGs";
  if (median > kLatencyMedianMaxUs) {
    return finding("latency", Severity::kWarning,
                   seen + " (median over " + fixed(kLatencyMedianMaxUs / 1000.0) + " ms)",
                   "run corral in the same zone as Redis; check the Redis host's CPU and network");
  }
  return finding("latency", Severity::kOk, seen);
}

}  // namespace corral::doctor
