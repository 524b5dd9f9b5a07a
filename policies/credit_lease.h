// Global rate limits (`scope: global`), the arithmetic: leased GCRA credits.
//
//   the limit key's GCRA state (its TAT) lives in Redis, shared by every sidecar
//   a sidecar takes a batch of credits with one atomic step (gcraTake: all, some, or none and
//   how long until one), spends them locally, and takes again at a low watermark:
//
//     mustWait(): no credit here and a take is (now) on its way --> the request waits for it
//     admit():    credit here --> kAdmit (no round trip; a take goes out at the watermark)
//                 none, Redis said none ---------> kReject, retry after what Redis said
//                 the shared state unreachable --> kUnavailable (the limit's on_unavailable)
//     onGrant(n): credits += n, valid for one lease; unspent ones are dropped at its end
//     onFailure(): the take failed (or went unanswered too long): kUnavailable for a while
//
// Why the fleet never admits more than rate x t + burst: every credit spent was taken from Redis
// first, and Redis's GCRA state never grants more than that since it began. The lease keeps a
// credit from being spent long after it was taken (at most one lease, counted from the take's
// answer), so over a shorter window the fleet can run ahead by at most the credits it took in
// the lease before the window began. What it costs:
// credits dropped unspent (an idle pod's, when its demand fell) are under-admission, bounded by
// the outstanding batches. The batch follows the key's demand here (requests per lease, from the
// last whole lease or the current one and its waiting requests if larger), so an idle pod holds
// almost nothing and a busy one most of the budget.
//
// Pure: no clock, no sockets; the caller sends the takes (a script in Redis) and hands the
// answers back. Not thread-safe: one CreditLeases per worker.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
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
// of a global limit does (proxy/upstream/limit_store.cc, in microseconds), so a fake store in
// tests is exact.
GcraGrant gcraTake(int64_t& tat, int64_t now_ns, const GcraParams& p, int64_t want);

struct LeaseOptions {
  int64_t window_ns = 250'000'000;    // demand is counted per window; a batch is one window's
  int64_t lease_ns = 1'000'000'000;   // unspent credits are dropped this long after their take
  int64_t max_batch = 1000;           // and never more than the burst
  int64_t max_wait_ns = 100'000'000;  // a take unanswered this long: decided as unavailable
  int64_t retry_ns = 100'000'000;     // after a failed take, the next one no sooner than this
  // While the shared state is spent, a worker asks again once it has seen about this many
  // requests (at most a window later): busy workers ask more often, so the rate the fleet is
  // granted is shared by demand, not by who asks most.
  int64_t share_requests = 32;
  size_t max_leases = 100000;  // per worker; a new bucket past it is decided as unavailable
};

// One bucket's credits in one worker.
class Lease {
 public:
  enum class Verdict : uint8_t { kAdmit, kReject, kUnavailable };
  struct Step {
    Verdict verdict = Verdict::kAdmit;
    int64_t retry_after_ns = 0;  // kReject
    int64_t take = 0;            // > 0: send a take of this many credits now
    int64_t dropped = 0;         // credits dropped unspent (their lease ended)
  };

  // Before admit(), without spending: true when the request must wait for a take (one is on
  // its way and not overdue; *take > 0 when it must be sent now). *dropped: as Step::dropped.
  bool mustWait(const GcraParams& p, int64_t now_ns, const LeaseOptions& o, int64_t* take,
                int64_t* dropped);
  // The common case of mustWait() and admit(), inline: a credit of a live lease above the low
  // watermark (as of the last admit()) and nothing to count but the request.
  bool hasCredit(int64_t now_ns) const { return credits_ > 0 && now_ns < expires_ns_; }
  bool spendFast(int64_t now_ns, const LeaseOptions& o) {
    // Above the watermark once this one is spent; else admit() decides (and takes).
    if (credits_ <= floor_ + 1 || now_ns >= expires_ns_ ||
        now_ns - window_start_ns_ >= o.window_ns) {
      return false;
    }
    --credits_;
    ++window_count_;
    return true;
  }
  // One request. Never waits: without a credit it is kReject (Redis said none, or the credits
  // of a take on its way are spoken for) or kUnavailable.
  Step admit(const GcraParams& p, int64_t now_ns, const LeaseOptions& o);
  // A take came back with g (granted may be 0: retry_after_ns says for how long there are
  // none). Less than asked means the shared state is spent: no take again before this worker
  // has seen about share_requests more requests, or all it asked is there again (whichever
  // comes first; and not before Redis's next credit), so a
  // drained limit costs Redis a take per share_requests requests, not one per request, and the
  // workers that see more requests get more of the rate. Returns the credits dropped (their
  // lease had ended).
  int64_t onGrant(const GcraGrant& g, int64_t now_ns, const LeaseOptions& o);
  // A take failed (Redis unreachable, or an error): unavailable until the next take lands; the
  // next one goes out retry_ns later at the soonest.
  void onFailure(int64_t now_ns, const LeaseOptions& o);

  int64_t credits() const { return credits_; }
  // How long until the take on its way is overdue (mustWait() then says no more).
  int64_t waitLeftNs(int64_t now_ns, const LeaseOptions& o) const {
    return std::max<int64_t>(0, taking_since_ns_ + o.max_wait_ns - now_ns);
  }
  // The bucket key it is stored under (CreditLeases).
  std::string_view key() const { return *key_; }
  // Nothing held, nothing asked, nothing remembered that a fresh lease would not know: the
  // bucket can be forgotten (CreditLeases::sweep).
  bool idle(int64_t now_ns, const LeaseOptions& o) const;

 private:
  int64_t dropExpired(int64_t now_ns);
  void rollWindow(int64_t now_ns, const LeaseOptions& o);
  int64_t batch(const GcraParams& p, const LeaseOptions& o) const;
  int64_t startTake(const GcraParams& p, int64_t now_ns, const LeaseOptions& o);
  bool overdue(int64_t now_ns, const LeaseOptions& o) const {
    return taking_ && now_ns - taking_since_ns_ >= o.max_wait_ns;
  }

  friend class CreditLeases;
  const std::string* key_ = nullptr;
  int64_t credits_ = 0;
  int64_t floor_ = 0;            // spendFast() leaves the last credits to admit(): its watermark
  int64_t expires_ns_ = 0;       // the credits' lease
  int64_t none_until_ns_ = 0;    // Redis said none (or too few) until then: no take before
  int64_t taking_since_ns_ = 0;  // when the take on its way was sent
  int64_t want_ = 0;             // what it asked for
  int64_t window_start_ns_ = 0;  // demand: requests in the current window (one lease long)
  int64_t window_count_ = 0;
  int64_t demand_ = 1;        // requests per lease, from the last full window (at least 1)
  int64_t waiters_ = 0;       // requests waiting for the take on its way
  bool taking_ = false;       // a take is on its way
  bool unavailable_ = false;  // the last take failed; cleared by the next grant
};

// The leases of one worker, by bucket key (any bytes the caller makes unique per limit and
// bucket; looked up without copying it).
class CreditLeases {
 public:
  explicit CreditLeases(LeaseOptions opt = {}) : opt_(opt) {}

  const LeaseOptions& options() const { return opt_; }
  // Found, or made; nullptr when max_leases are held and none is idle (the caller decides
  // without the shared state: memory stays bounded whatever keys clients send).
  Lease* at(std::string_view key, int64_t now_ns);
  Lease* find(std::string_view key);
  // Drops the leases that are idle (Lease::idle): bounded memory over many bucket keys.
  // dropped(key, n): a lease forgotten with n unspent credits (their lease had ended).
  void sweep(int64_t now_ns, const std::function<void(std::string_view, int64_t)>& dropped);
  size_t size() const { return leases_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  LeaseOptions opt_;
  std::unordered_map<std::string, Lease, Hash, std::equal_to<>> leases_;
};

}  // namespace corral::policies
