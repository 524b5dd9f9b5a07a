// Single flight across the workers of one process: one origin call per key per corral.
//
//   miss of k on worker B (B has no flight of k, and no group waiting for one)
//     --FlightTable::join(k, B)-->  no entry: B leads (generation g); FillEngine::onMiss starts
//                                   (or joins) B's own flight of k, with its lookup, lease and
//                                   origin call as ever
//                                   entry led by A: B follows; the waiter waits in B's group of
//                                   k (more misses of k on B join the group without the table)
//   A's flight of k ends --FlightObserver::onFlightEnd--> FlightTable::finish(k, A, g): the
//     entry goes, and each follower worker is posted the result on its own loop (Post):
//     value / nil / failure; on a failure each waiter gets its stale value if it has one, else
//     the leader's on_error answer. A 304 (ttl.from_origin's revalidation of a refresh) ends
//     the flight as a failure too: the waiters of a refresh hold the stale value, which is the
//     value just revalidated (the leader extends its TTL once)
//   a client write of k on any worker --revoke--> this worker's flights, and the entry's
//     revoked flag, which the leader reads before it stores what the origin sent
//   a worker whose loop ends --stop()--> the entries it leads go; their followers are told
//     at once (on_error, "leader stopped"); a follower group also ends by its own deadline
//     (stampede.wait + origin timeout + margins: the longest a leader's flight can take)
//
// Hits never come here (FillEngine::onHit is per worker, lock-free). A miss takes the table's
// mutex once when its worker has neither a flight nor a group for the key; a write of a fill
// policy's key takes it only while some flight is in the table. The table is process-wide
// (Registry::flights); a SharedFlights belongs to one worker and is used on its thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/policy_config.h"
#include "policies/fill.h"

namespace corral::policies {

// What a follower worker is told when the flight it waits for ends.
struct FlightEnd {
  enum class Kind : uint8_t {
    kAnswered,  // outcome is the answer (value or nil) for every waiter
    kFailed,    // each waiter: its stale value, else `outcome` (the leader's on_error answer)
    kGone,      // the leader's worker stopped: each waiter: its stale value, else its on_error
  };
  Kind kind = Kind::kGone;
  FillOutcome outcome;
};

// Process-wide: which worker runs the flight of each key, and which other workers wait for it.
// Thread-safe (one mutex, held for a map lookup and, at a flight's end, the posts).
class FlightTable {
 public:
  // How a follower worker is handed a result: called under the table's lock, from the leader's
  // thread; it must only queue work for the follower's own loop (Worker::post).
  using Deliver =
      std::function<void(const std::string& key, uint64_t gen, std::shared_ptr<const FlightEnd>)>;

  // A worker's delivery function; detach() before the worker (or what Deliver uses) goes.
  void attach(uint32_t worker, Deliver deliver);
  void detach(uint32_t worker);

  struct Joined {
    bool lead = false;  // true: the caller runs the flight; false: it waits for `gen`'s end
    uint64_t gen = 0;
  };
  // A miss of key on worker: leads when no flight of key is in the table (or it is the
  // worker's own), else follows it.
  Joined join(std::string_view key, uint32_t worker);
  // The flight (key, gen) that worker leads ended: its entry goes and every follower worker is
  // handed `end`. Returns how many were. Does nothing for a flight the table does not hold.
  size_t finish(std::string_view key, uint32_t worker, uint64_t gen,
                std::shared_ptr<const FlightEnd> end);
  // A client wrote key: the flight of key, if any, must not store its value.
  void revoke(std::string_view key);
  bool revoked(std::string_view key, uint64_t gen) const;
  // worker's loop ends: the flights it leads go, their followers are handed kGone.
  size_t abandon(uint32_t worker);
  size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    uint32_t leader = 0;
    uint64_t gen = 0;
    bool revoked = false;
    std::vector<uint32_t> followers;  // distinct workers, a handful
  };
  size_t handOut(const std::string& key, const Entry& e,
                 const std::shared_ptr<const FlightEnd>& end);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<Deliver> workers_;  // by worker index; empty: detached
  uint64_t next_gen_ = 1;
  std::atomic<size_t> size_{0};  // entries_.size(), read without the lock by revoke()
};

// One worker's side: fronts its FillEngine for misses and writes, and observes its flights.
// Lives on the worker's thread; destroy it before the engine.
class SharedFlights final : public FlightObserver {
 public:
  using Post = std::function<void(std::function<void()>)>;  // run a task on this worker's loop
  SharedFlights(FillEngine& engine, FlightTable& table, Timer& timer, uint32_t worker, Post post);
  ~SharedFlights() override;  // waiting followers are dropped without a call (like the engine)
  SharedFlights(const SharedFlights&) = delete;
  SharedFlights& operator=(const SharedFlights&) = delete;

  // FillEngine::onMiss with the process's flights: same contract (done runs exactly once unless
  // detached; maybe synchronously). Waiter ids of followers have the top bit set.
  uint64_t onMiss(const FillPolicy& p, std::string_view key, const std::string& path,
                  const std::string* stale, FillEngine::Done done);
  void detach(uint64_t waiter);
  // FillEngine::revoke, and the flight of key on any other worker.
  void revoke(std::string_view key);
  // The worker's loop ends: hand the flights it leads back (their followers fail over at once).
  void stop();
  size_t followers() const;  // waiters here waiting for another worker's flight (tests)

  void onFlightEnd(std::string_view key, const FillOutcome* o, const FillOutcome& failed) override;
  bool revokedElsewhere(std::string_view key) override;

 private:
  struct Waiter {
    uint64_t id = 0;
    FillEngine::Done done;
    std::optional<std::string> stale;
  };
  // This worker's waiters of another worker's flight of one key.
  struct Group {
    uint64_t gen = 0;
    std::string origin_name;  // for this worker's own failure answers (deadline, leader gone)
    config::FillOnError on_error = config::FillOnError::kNil;
    FillCounters* counters = nullptr;
    std::optional<uint64_t> timer;
    std::vector<Waiter> waiters;
  };
  struct Leading {
    uint64_t gen = 0;
    FillCounters* counters = nullptr;  // worker_wakes
  };
  void onRemoteEnd(const std::string& key, uint64_t gen, const FlightEnd& end);
  void onGroupDeadline(const std::string& key, uint64_t gen);
  // Ends group (already out of groups_): every waiter still attached gets end's answer.
  void answer(Group& g, const FlightEnd& end, std::string_view reason);

  FillEngine& engine_;
  FlightTable& table_;
  Timer& timer_;
  const uint32_t worker_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // posted tasks check it
  std::unordered_map<std::string, Leading> leading_;       // the flights this worker leads
  std::unordered_map<std::string, Group> groups_;
  std::unordered_map<uint64_t, std::string> waiter_key_;  // attached follower -> its key
  uint64_t next_waiter_ = 1;
  bool stopped_ = false;
};

}  // namespace corral::policies
