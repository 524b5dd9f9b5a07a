// Process-wide policy counters and rate-limit buckets: what outlives every PolicySet.
//
//   PolicySet::compile --policy(name), limit(name), fill(name)--> stable pointers into Registry
//   decide (any worker) --relaxed atomics--> counters --appendMetrics (admin thread)--> /metrics
//
// A policy or limit keeps its counters (and its buckets) across reloads as long as it keeps its
// name. Entries are never removed, so the pointers stay valid for the life of the process.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "policies/fill.h"
#include "policies/fill_flights.h"
#include "policies/origin_guard.h"
#include "policies/rate_limiter.h"

namespace corral::policies {

// A counter bumped by any worker thread (relaxed: metrics only).
struct AtomicCounter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n = 1) { v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// What a policy did, for /metrics. "audited" = would have acted (mode audit or
// on_violation audit) but changed nothing.
struct PolicyCounters {
  std::string name;
  AtomicCounter requests;  // requests with at least one key of the policy
  AtomicCounter naming_rejected;
  AtomicCounter naming_audited;
  AtomicCounter ttl_fixed;
  AtomicCounter ttl_rejected;
  AtomicCounter ttl_audited;
  AtomicCounter hits;    // GET-like reads answered with a value
  AtomicCounter misses;  // ... answered with nil / an empty collection
  // The near cache (proxy/net/near_cache.h), summed over the workers' stores of the policy,
  // brought up to date by each worker's tick. near_used: a worker made a store for it.
  std::atomic<bool> near_used{false};
  AtomicCounter near_hits;
  AtomicCounter near_misses;
  AtomicCounter near_invalidations;
  AtomicCounter near_evictions;
  std::atomic<int64_t> near_bytes{0};  // a gauge: each worker adds its change

  // Counts a GET-like reply (RESP bytes): nil (RESP2 "$-1"/"*-1", RESP3 "_") or an empty
  // collection is a miss, an error neither, anything else a hit.
  void countRead(std::string_view reply) {
    // The common cases inline: a bulk value, or RESP2's nil bulk "$-1".
    if (reply.size() > 2 && reply[0] == '$') [[likely]] {
      if (reply[1] != '-') {
        hits.add();
      } else {
        misses.add();
      }
      return;
    }
    countOtherRead(reply);
  }
  void countOtherRead(std::string_view reply);
};

struct LimitCounters {
  std::string name;
  uint32_t id = 0;  // bucket namespace in the RateLimiter
  AtomicCounter admitted;
  AtomicCounter rejected;  // answered -RATELIMITED
  AtomicCounter shadowed;  // over the limit but let through (on_limit shadow, or mode audit)
  // scope global (global_limits.h): set by compile; the counters below are shown only then.
  std::atomic<bool> global{false};
  AtomicCounter leased;         // credits granted by the shared state
  AtomicCounter dropped;        // credits dropped unspent at their lease's end
  AtomicCounter takes_granted;  // refill round trips that brought credits
  AtomicCounter takes_empty;    // ... that brought none (the limit was spent)
  AtomicCounter takes_failed;   // ... that failed or went unanswered (Redis unreachable)
  AtomicCounter unavailable;    // requests decided by on_unavailable
};

// Process-wide: counters by name and the rate-limit buckets. Entries are never removed (a
// policy that disappears keeps its last values, as Prometheus counters must), so pointers into
// it stay valid for the life of the process.
class Registry {
 public:
  PolicyCounters* policy(const std::string& name);  // get or create; thread-safe
  LimitCounters* limit(const std::string& name);
  LimitCounters* limitById(uint32_t id);          // nullptr when unknown
  FillCounters* fill(const std::string& policy);  // shared by every worker's FillEngine
  // An origin's breaker, retry budget and counters, shared by every worker (origin_guard.h).
  OriginHealth* origin(const std::string& name);
  RateLimiter& limiter() { return limiter_; }
  // The fill flights of every worker, by key (fill_flights.h): one origin call per key per process.
  FlightTable& flights() { return flights_; }

  AtomicCounter unmatched_rejected;  // keys no policy covers, refused (unmatched_keys: reject)
  AtomicCounter unmatched_audited;
  AtomicCounter denied;           // global.commands.deny
  AtomicCounter command_audit;    // global.commands.audit
  AtomicCounter followup_errors;  // follow-up PEXPIREs that Redis answered with an error
  // Live sidecars sharing the global limits' Redis, as last counted by the heartbeat (0: not
  // counted yet). on_unavailable local_share divides a global limit's rate by it.
  std::atomic<int64_t> sidecars{0};

  // Prometheus text of every counter above (corral_policy_*).
  void appendMetrics(std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::deque<PolicyCounters> policies_;  // deque: stable addresses
  std::deque<LimitCounters> limits_;
  std::deque<std::pair<std::string, FillCounters>> fills_;
  std::deque<OriginHealth> origins_;
  RateLimiter limiter_;
  FlightTable flights_;
};

}  // namespace corral::policies
