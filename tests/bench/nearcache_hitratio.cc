// Near-cache hit ratios, plain LRU against TinyLFU admission, on a Zipf(0.99) read workload over
// 100,000 keys, with caches that hold 1,000 to 5,000 entries; and lookups per second on a warm
// cache. A benchmark, not a test: it prints tables and checks nothing (ctest does not run it).
//
//   build/<preset>/tests/nearcache_hitratio [ops]      (default 2,000,000 reads per row)
//
//   trace (Zipf ranks, fixed seed) --> per read: lookup --> miss: beginFill + complete
//                                  --> hits / reads after a warm-up of the first 10%
//
// "best static" is the share of reads that go to the cache-size most popular keys: what a cache
// that knew the distribution and never changed would hit, the ceiling for this independent
// workload. The second table mixes in one-time keys (a scan: half the reads ask for a key never
// asked for again), the case admission exists for.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "proxy/nearcache/near_store.h"
#include "tests/bench/zipf.h"

namespace {

using corral::nearcache::FillTicket;
using corral::nearcache::NearStore;
using corral::nearcache::Policy;
using corral::nearcache::StoreOptions;

constexpr size_t kKeys = 100000;
constexpr double kTheta = 0.99;

struct Workload {
  std::vector<std::string> keys;  // keys[i] for a Zipf rank; one-time keys after kKeys
  std::vector<uint32_t> trace;    // indices into keys
  double best_static[3] = {};     // for the cache sizes below
};

constexpr size_t kSizes[3] = {1000, 2500, 5000};

// `scan_share` of the reads go to keys that appear once in the whole trace.
Workload makeWorkload(size_t ops, double scan_share, uint64_t seed) {
  Workload w;
  const corral::bench::ZipfRanks zipf(kKeys, kTheta);
  for (int s = 0; s < 3; ++s) w.best_static[s] = zipf.share(kSizes[s]) * (1.0 - scan_share);
  w.keys.reserve(kKeys + ops);
  char buf[32];
  for (size_t i = 0; i < kKeys; ++i) {
    std::snprintf(buf, sizeof buf, "key:%06zu", i);
    w.keys.emplace_back(buf);
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  w.trace.reserve(ops);
  for (size_t op = 0; op < ops; ++op) {
    if (scan_share > 0 && u(rng) < scan_share) {
      std::snprintf(buf, sizeof buf, "once:%09zu", op);
      w.trace.push_back(static_cast<uint32_t>(w.keys.size()));
      w.keys.emplace_back(buf);
      continue;
    }
    w.trace.push_back(static_cast<uint32_t>(zipf.rank(u(rng))));
  }
  return w;
}

struct Row {
  double hit_ratio;
  double lookups_per_s;  // pure lookups over the trace, warm cache
  uint64_t rejected;
  uint64_t evictions;
};

Row run(const Workload& w, Policy policy, size_t entries) {
  const std::string reply = "$32\r\n" + std::string(32, 'v') + "\r\n";
  StoreOptions o;
  o.policy = policy;
  o.max_bytes = entries * NearStore::entryBytes("key:000000", reply);
  o.expected_entries = entries;
  NearStore store(o);
  const int64_t now = 0, forever = int64_t{1} << 60;
  const size_t warm = w.trace.size() / 10;
  uint64_t hits = 0;
  for (size_t i = 0; i < w.trace.size(); ++i) {
    const std::string& k = w.keys[w.trace[i]];
    if (store.lookup(k, now)) {
      if (i >= warm) ++hits;
      continue;
    }
    const FillTicket t = store.beginFill(k);
    store.complete(t, k, reply, forever, now);
  }
  Row r{};
  r.hit_ratio = static_cast<double>(hits) / static_cast<double>(w.trace.size() - warm);
  r.rejected = store.stats().admissions_rejected;
  r.evictions = store.stats().evictions;
  // Lookups alone (a miss stays a miss): what the hot path costs with this policy's bookkeeping.
  size_t found = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint32_t idx : w.trace) found += store.lookup(w.keys[idx], now).has_value() ? 1 : 0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.lookups_per_s = static_cast<double>(w.trace.size()) / secs;
  if (found == 0) std::printf("(no hits in the timed pass)\n");
  return r;
}

void table(const char* title, const Workload& w) {
  std::printf("\n%s\n", title);
  std::printf("%-8s %-8s %10s %12s %12s %12s %14s\n", "entries", "policy", "hit ratio",
              "best static", "evictions", "rejected", "lookups/s");
  for (int s = 0; s < 3; ++s) {
    for (Policy p : {Policy::kLru, Policy::kTinyLfu}) {
      const Row r = run(w, p, kSizes[s]);
      std::printf("%-8zu %-8s %9.2f%% %11.2f%% %12llu %12llu %13.2fM\n", kSizes[s],
                  p == Policy::kLru ? "LRU" : "TinyLFU", 100 * r.hit_ratio, 100 * w.best_static[s],
                  static_cast<unsigned long long>(r.evictions),
                  static_cast<unsigned long long>(r.rejected), r.lookups_per_s / 1e6);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const size_t ops = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2000000;
  std::printf(
      "near cache hit ratio: Zipf(%.2f) over %zu keys, %zu reads per row, first 10%% "
      "warm-up; 32-byte values\n",
      kTheta, kKeys, ops);
  table("Zipf reads", makeWorkload(ops, 0.0, 1));
  table("Zipf reads, half of them one-time keys (a scan)", makeWorkload(ops, 0.5, 2));
  return 0;
}
