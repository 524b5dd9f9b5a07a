// Where the policies' interfaces get their implementations: the one place a worker's policy
// engine is wired to the world.
//
//   policies::Clock  <- loop::SystemClock        policies::Random <- loop::FastRandom
//   policies::Timer  <- loop::LoopTimer          policies::Store  <- upstream::FillStore (Lua
//   policies::Origin <- origin::HttpOrigin (one per origin spec, per worker)      on the primary)
//   policies::LimitStore <- upstream::LimitStore (Lua on the primary)
//   policies::FillEngine over the four above (its flights shared with the other workers through
//   policies::SharedFlights), policies::GlobalLimits over the limit store; the
//   PolicySet in force and the Decision it fills
//
// One PolicyRuntime per worker thread, used only on that thread. The worker hands it the policy
// set in force between loop turns (sync); requests decided by an older set keep that set alive
// through their own shared_ptr.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "policies/engine.h"
#include "policies/fill.h"
#include "policies/fill_flights.h"
#include "policies/global_limits.h"
#include "proxy/loop/clock.h"
#include "proxy/loop/timer.h"
#include "proxy/upstream/fill_store.h"
#include "proxy/upstream/limit_store.h"
#include "proxy/upstream/upstream.h"

namespace corral::wiring {

class PolicyRuntime {
 public:
  // primary() returns the connection the fill scripts run on (called for every script).
  // post runs a task on this worker's loop from any thread (Worker::post): how other workers
  // hand this one the results of the fill flights it waits for.
  PolicyRuntime(event_base* base, evdns_base* dns, int worker_index, policies::Registry& registry,
                std::function<upstream::Connection*(std::string_view key)> primary,
                policies::SharedFlights::Post post);
  ~PolicyRuntime();  // pending fill callbacks are dropped first
  PolicyRuntime(const PolicyRuntime&) = delete;
  PolicyRuntime& operator=(const PolicyRuntime&) = delete;

  // Takes the set in force (nullptr: none configured, an empty set that decides nothing).
  void sync(std::shared_ptr<const policies::PolicySet> set);

  // The policy set of this loop turn (never null), and the shared pointer that keeps it alive.
  const policies::PolicySet& set() const { return *set_; }
  const std::shared_ptr<const policies::PolicySet>& setPtr() const { return set_; }
  // The decision object reused by every request of this worker.
  policies::Decision& decision() { return decision_; }
  // Who is asking, with this worker's clock and random source.
  policies::RequestContext& context(std::string_view client) {
    ctx_.client = client;
    return ctx_;
  }
  policies::FillEngine& fillEngine() { return *fill_engine_; }
  // Misses and writes of fill policies' keys go here: the engine's flights shared with the
  // other workers (one origin call per key per process). Hits go to fillEngine().onHit.
  policies::SharedFlights& sharedFill() { return *flights_; }
  // The worker's loop ended: flights it leads are handed back to the workers waiting for them.
  void stopFills() { flights_->stop(); }
  // This worker's leases of scope global limits (its wake() is the worker's to set).
  policies::GlobalLimits& globalLimits() { return *global_limits_; }
  // Worker tick: the global limits' sweep and heartbeat.
  void tick() { global_limits_->tick(clock_.monoNs(), set_->hasGlobalLimits()); }
  // A policy's fill settings with this worker's origin object. `shared` belongs to `set` (kept
  // alive by the caller). Cached per policy until the next sync: a GET hit of a freshness
  // policy needs it on every call and must not copy strings.
  const policies::FillPolicy& localFillPolicy(const policies::FillPolicy& shared,
                                              const policies::PolicySet& set);
  // Receives the replies of hidden follow-up commands (PEXPIRE ... NX, lease DELs): counts
  // their errors.
  upstream::ReplySink* followupSink() { return &followup_sink_; }
  // Logs what an audit rule saw, at most once a second per worker (the rest are counted in
  // /metrics and summed up in the next line logged).
  void logAudit(int64_t now_ms, uint64_t client_id, std::string_view what);

 private:
  event_base* base_;
  evdns_base* dns_;  // the worker's resolver, for origins' host names
  policies::Registry& registry_;
  std::shared_ptr<const policies::PolicySet> set_;
  policies::Decision decision_;
  loop::SystemClock clock_;
  loop::FastRandom random_;
  policies::RequestContext ctx_;
  std::unique_ptr<loop::LoopTimer> timer_;
  std::unique_ptr<upstream::FillStore> store_;
  std::unique_ptr<policies::FillEngine> fill_engine_;
  std::unique_ptr<policies::SharedFlights> flights_;  // over fill_engine_, goes before it
  std::unique_ptr<upstream::LimitStore> limit_store_;
  std::unique_ptr<policies::GlobalLimits> global_limits_;
  // HTTP origins of this worker, by every setting of the origin (originIdentity): an origin whose
  // settings change on reload gets a new object; old ones stay (flights may still use them).
  std::unordered_map<std::string, std::unique_ptr<policies::Origin>> origins_;
  // The retries and breaker around each (same keys): what fills call. Destroyed before the
  // timer and the origins they use.
  std::unordered_map<std::string, std::unique_ptr<policies::Origin>> guards_;
  std::unordered_map<const policies::FillPolicy*, policies::FillPolicy> local_fill_;
  int64_t audit_logged_ms_ = -1000000;
  uint64_t audit_suppressed_ = 0;
  struct FollowupSink final : upstream::ReplySink {
    policies::Registry* registry = nullptr;
    void onUpstreamReply(uint64_t seq, std::string_view reply) override;
  } followup_sink_;
};

}  // namespace corral::wiring
