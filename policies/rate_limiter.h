// Rate limits: GCRA (the generic cell rate algorithm, equivalent to a token bucket that holds
// `burst` tokens and refills `count` per `period`), one bucket per limit and bucket key.
//
//   engine: limit id + bucket key (its key_by parts, bounded: engine_limits.cc)
//       --admit(now)--> allowed / retry after
//   bucket state: one int64 per bucket, the theoretical arrival time (TAT)
//
// Process-wide (every worker checks the same buckets, so a limit is per sidecar, not per
// thread): the table is split in shards, each behind its own spin lock. State is bounded: a bucket
// whose TAT has passed is the same as a fresh bucket, so sweeps drop such buckets without
// changing any decision; past max_buckets a limit sweeps before it inserts, and if every bucket
// is still busy it evicts the one closest to idle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace corral::policies {

struct GcraParams {
  int64_t interval_ns = 0;   // period / count: time one request "costs"
  int64_t tolerance_ns = 0;  // (burst - 1) * interval: how far ahead of now TAT may run
  static GcraParams from(uint64_t count, int64_t period_ns, uint64_t burst);
};

struct GcraVerdict {
  bool allowed = false;
  int64_t retry_after_ns = 0;  // when not allowed: wait at least this long before retrying
};

// The pure step: decides one request against a bucket's TAT and updates it when allowed.
// tat == 0 means a fresh bucket.
GcraVerdict gcraStep(int64_t& tat, int64_t now_ns, const GcraParams& p);

class RateLimiter {
 public:
  // max_buckets: per limit id, the bound on remembered buckets. The seed of the bucket hash is
  // random unless given (tests).
  explicit RateLimiter(size_t max_buckets = 100000);
  RateLimiter(size_t max_buckets, uint64_t seed);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Checks one request against the bucket (limit_id, bucket_key). Thread-safe. Buckets persist
  // across policy reloads when the limit keeps its id (the engine keys ids by limit name).
  GcraVerdict admit(uint32_t limit_id, std::string_view bucket_key, int64_t now_ns,
                    const GcraParams& p);

  // Drops every bucket that is idle at now_ns (exact: an idle bucket decides like a fresh one).
  void sweep(int64_t now_ns);
  size_t buckets() const;  // all limits, for /metrics

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::policies
