// Rate limits: GCRA (the generic cell rate algorithm, equivalent to a token bucket that holds
// `burst` tokens and refills `count` per `period`), one bucket per limit and bucket key.
//
//   engine: limit id + bucket-key parts (key_by: client, key, capture, ...)
//       --admit(now)--> hash the parts once --> shard --> find (parts compared in place)
//       --> gcraStep --> allowed / retry after
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
#include <span>
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
  // A bucket key has at most this many parts (key_by parts; the compiler refuses more).
  static constexpr size_t kMaxParts = 16;
  // Parts longer than this are stored as a digest (see admit).
  static constexpr size_t kMaxPartBytes = 64;

  // max_buckets: per limit id, the bound on remembered buckets. The seed of the bucket hash and
  // the key of the part digests are random unless a seed is given (tests).
  explicit RateLimiter(size_t max_buckets = 100000);
  RateLimiter(size_t max_buckets, uint64_t seed);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Checks one request against the bucket (limit_id, parts). Thread-safe. The parts (a client
  // name, a key, a capture, ...) are views valid for the call; nothing is copied unless a new
  // bucket is made. A part longer than kMaxPartBytes is kept as a 128-bit keyed digest
  // (SipHash-2-4 under a random per-process key), so a bucket key takes at most
  // 65 bytes per part whatever clients send, and no client can make two long values share a
  // bucket on purpose. Parts stay apart ("ab" "c" is not "a" "bc"). At most kMaxParts parts.
  // Buckets persist across policy reloads when the limit keeps its id (the engine keys ids by
  // limit name).
  GcraVerdict admit(uint32_t limit_id, std::span<const std::string_view> parts, int64_t now_ns,
                    const GcraParams& p);
  // The same for a key of one part (a limit keyed by client only: the common case).
  GcraVerdict admit(uint32_t limit_id, std::string_view part, int64_t now_ns, const GcraParams& p);

  // Drops every bucket that is idle at now_ns (exact: an idle bucket decides like a fresh one).
  void sweep(int64_t now_ns);
  size_t buckets() const;   // all limits, for /metrics
  size_t keyBytes() const;  // bytes of all stored bucket keys (for tests of the bound)

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::policies
