// Global rate limits (`scope: global`): one worker's side of limits shared by every sidecar.
//
//   decide, phase 3, pass 1: ready(limit, bucket parts) --lease found or made (credit_lease.h)
//       no credit, a take on its way ----------------> the request waits (Decision::kWait);
//                                                       wake() when the take is back
//   pass 2: admit(lease) --credit--> admitted, no round trip; at the low watermark a take goes
//       --none, Redis said so--> -RATELIMITED with Redis's retry hint
//       --Redis unreachable----> on_unavailable: local_share (a local bucket at rate / live
//                                sidecars), allow, or deny
//   take --LimitStore (one EVAL of the bucket's GCRA state in Redis)--> grant / failure
//       --> credits, counters, wake()
//   tick: overdue takes wake their waiters (they are decided as unavailable), idle leases are
//         forgotten, and one worker per process beats the sidecars' heartbeat
//
// The bucket's state in Redis is "__corral:rl:{<limit name>:<32 hex>}": the digest of the
// bucket key's parts under a fixed key, so every sidecar names a bucket alike; all of it is
// one hash tag (Cluster: one slot). Not thread-safe: one GlobalLimits per worker.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "config/policy_config.h"
#include "policies/clock.h"
#include "policies/credit_lease.h"
#include "policies/rate_limiter.h"

namespace corral::policies {

struct CompiledLimit;  // engine.h: its spec, GCRA parameters and counters (their id names buckets)
struct LimitCounters;
class Registry;
class Timer;

// The shared GCRA states and the sidecars' heartbeat (Redis: proxy/upstream/limit_store.h).
class LimitStore {
 public:
  virtual ~LimitStore() = default;
  // gcraTake on the state at state_key, on the store's clock. done is called exactly once,
  // later (never from inside the call): ok with the grant, or !ok (unreachable, an error).
  virtual void take(std::string_view state_key, const GcraParams& p, int64_t want,
                    std::function<void(bool ok, const GcraGrant& g)> done) = 0;
  // Marks sidecar `id` live for live_ms and counts the live ones: done(count), or done(-1).
  virtual void heartbeat(std::string_view id, int64_t live_ms,
                         std::function<void(int64_t live)> done) = 0;
};

class GlobalLimits {
 public:
  inline static constexpr std::string_view kSidecarsKey = "__corral:rl:sidecars";
  static constexpr int64_t kHeartbeatNs = 1'000'000'000;  // one beat a second
  static constexpr int64_t kLiveMs = 3000;                // a sidecar is live this long after

  // All four outlive this object.
  GlobalLimits(LimitStore& store, Registry& registry, const Clock& clock, Timer& timer,
               LeaseOptions opt = {});
  ~GlobalLimits();
  GlobalLimits(const GlobalLimits&) = delete;
  GlobalLimits& operator=(const GlobalLimits&) = delete;

  // Pass 1 (nothing spent): the lease of the bucket (l, parts). *wait: the request must wait
  // for a take on its way (sent now if none was). nullptr: too many buckets are held
  // (LeaseOptions::max_leases); admit() then decides as on_unavailable.
  Lease* ready(const CompiledLimit& l, std::span<const std::string_view> parts, int64_t now_ns,
               bool* wait);
  // Pass 2: one request of the bucket whose lease ready() gave (in this loop turn: a sweep
  // may free it later).
  GcraVerdict admit(const CompiledLimit& l, Lease* lease, int64_t now_ns);

  // Called whenever a take is back, or a waiting request's take has been out max_wait_ns (a
  // timer armed for each wait): requests that waited may go on.
  void setWake(std::function<void()> wake) { wake_ = std::move(wake); }
  // The process's heartbeat is beaten by this worker, as `id` (one worker per process).
  void beatHeartbeat(std::string id) { heartbeat_id_ = std::move(id); }
  // Worker tick: forgets idle leases, beats the heartbeat (while `active`: the policy set in
  // force has global limits).
  void tick(int64_t now_ns, bool active);

  size_t leases() const { return leases_.size(); }
  // The state key of bucket parts of limit `name` (tests, and the docs' example).
  static std::string stateKey(std::string_view name, std::span<const std::string_view> parts);

 private:
  // The lookup key of (limit id, parts) into key_: the id, then each part with its length.
  std::string_view lookupKey(uint32_t id, std::span<const std::string_view> parts);
  // A take for the lease stored under `key` (Lease::key(): it outlives the call).
  void sendTake(const CompiledLimit& l, std::string_view key, int64_t want);
  // on_unavailable for the bucket of lease key `key` (empty: buckets past max_leases share one).
  GcraVerdict fallback(const CompiledLimit& l, std::string_view key, int64_t now_ns);

  LimitStore& store_;
  Registry& registry_;
  const Clock& clock_;
  Timer& timer_;
  CreditLeases leases_;
  std::function<void()> wake_;
  std::string key_;              // scratch of lookupKey
  Lease* last_lease_ = nullptr;  // the lease ready() found last (until a sweep)
  std::string heartbeat_id_;
  int64_t next_beat_ns_ = 0;
  bool beating_ = false;
  // Takes' and beats' callbacks check it: the worker may go before Redis answers.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace corral::policies
