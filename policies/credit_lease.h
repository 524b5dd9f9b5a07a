// Global rate limits (`scope: global`, issue 13), the arithmetic: leased GCRA credits.
//
//   the limit key's GCRA state (its TAT) lives in Redis, shared by every sidecar
//   a sidecar takes a batch of credits with one atomic step (gcraTake: all, some, or none and
//   how long until one), spends them locally, and takes again at a low watermark:
//
//     admit(key) --credit here--> kAdmit (no round trip) ----credits <= watermark--> take(k)
//                 \-none, a take on its way-> kWait (asked again when it lands: onGrant)
//                 \-none, Redis said none---> kReject, retry after what Redis said
//     onGrant(key, n, retry) --> credits += n, valid for one lease; unspent ones are dropped
//
// Why the fleet never admits more than rate x t + burst: every credit spent was taken from Redis
// first, and Redis's GCRA state never grants more than that since it began. The lease keeps a
// credit from being spent long after it was taken (at most one lease, counted from the take's
// answer), so over a shorter window the fleet can run ahead by at most the credits it took in
// the lease before the window began. What it costs:
// credits dropped unspent (an idle pod's, when its demand fell) are under-admission, bounded by
// the outstanding batches. `k` follows the key's demand here (requests per second over the last
// lease, times one lease), so an idle pod holds almost nothing and a busy one most of the budget.
//
// Pure: no clock, no sockets; the caller sends the takes (a script in Redis) and hands the
// grants back. Not thread-safe: one CreditLeases per worker.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "policies/rate_limiter.h"

namespace corral::policies {

struct GcraGrant {
  int64_t granted = 0;         // 0..want
  int64_t retry_after_ns = 0;  // when granted == 0: until the next credit
  int64_t full_after_ns = 0;   // when granted < want: until the rest (at most a burst) is there
};

// Takes up to `want` credits from a GCRA state: as many as the burst allows now (the same
// arithmetic as `want` gcraStep calls, at once). tat == 0: a fresh state. What the Redis script
// of a global limit does, so a fake store in tests is exact.
GcraGrant gcraTake(int64_t& tat, int64_t now_ns, const GcraParams& p, int64_t want);

struct LeaseOptions {
  int64_t lease_ns = 250'000'000;  // unspent credits are dropped this long after their take
  int64_t max_batch = 1000;        // and never more than the burst
};

class CreditLeases {
 public:
  explicit CreditLeases(LeaseOptions opt = {}) : opt_(opt) {}

  enum class Verdict : uint8_t { kAdmit, kWait, kReject };
  struct Result {
    Verdict verdict = Verdict::kWait;
    int64_t retry_after_ns = 0;  // kReject
    int64_t take = 0;            // > 0: send a take of this many credits for the key now
  };
  // One request of `key` (the limit and its bucket key, as the caller names it) at now_ns.
  Result admit(const std::string& key, const GcraParams& p, int64_t now_ns);
  // A take of `key` came back: `granted` credits (may be 0: retry_after_ns says for how long
  // there are none). A failed take: granted 0, retry_after_ns 0 (the next request asks again).
  // A partial grant means the shared state is spent: no take again before full_after_ns, so a
  // drained limit costs Redis about one take per batch, not one per request.
  void onGrant(const std::string& key, const GcraGrant& g, int64_t now_ns);

  struct Stats {
    uint64_t admitted = 0;
    uint64_t rejected = 0;
    uint64_t waited = 0;   // requests that had to wait for a take
    uint64_t takes = 0;    // round trips to the shared state
    uint64_t leased = 0;   // credits granted
    uint64_t dropped = 0;  // credits dropped unspent at their lease's end
  };
  const Stats& stats() const { return stats_; }
  // Credits held for key now (tests).
  int64_t credits(const std::string& key) const;

 private:
  struct Entry {
    int64_t credits = 0;
    int64_t expires_ns = 0;       // the credits' lease
    int64_t none_until_ns = 0;    // Redis said none (or too few) until then: no take before
    bool taking = false;          // a take is on its way
    int64_t want = 0;             // what it asked for
    int64_t window_start_ns = 0;  // demand: requests in the current window (one lease long)
    int64_t window_count = 0;
    int64_t demand = 1;  // requests per lease, from the last full window (at least 1)
  };
  int64_t batchFor(const Entry& e, const GcraParams& p) const;

  LeaseOptions opt_;
  std::unordered_map<std::string, Entry> entries_;
  Stats stats_;
};

}  // namespace corral::policies
