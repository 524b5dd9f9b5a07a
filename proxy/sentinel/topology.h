// The primary and replicas the sentinels name, shared by the monitor's thread with the workers
// and the admin endpoint:
//
//   Monitor (its own loop) --publish()--> TopologyBoard --generation(), get()--> each Worker
//                          --setStatus()-->             --status()--> admin (/ready, /metrics)
//
// Workers read generation() (one atomic load) once per loop turn and take the topology under
// the mutex only when it changed; publish() wakes them. Nothing here is touched per request.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace corral::sentinel {

struct Topology {
  std::optional<config::ListenAddress> primary;  // unset until a sentinel has named one
  std::vector<config::ListenAddress> replicas;   // fit to serve reads (parseReplicas)
  // A failover of `primary` is under way (a sentinel announced it, or says so when asked): it
  // must take nothing new, or a write it acknowledges after a replica's promotion is lost.
  bool fenced = false;
};

// One sentinel, as the admin endpoint shows it.
struct SentinelState {
  std::string address;
  bool reachable = false;   // answered the last round of questions
  bool subscribed = false;  // its event subscription is confirmed and answers PING
};

// What the monitor knows, for /ready, /metrics and INFO. Copied whole under the board's mutex.
struct Status {
  std::string master;
  std::vector<SentinelState> sentinels;
  size_t reachable = 0;        // sentinels that answered the last round
  bool answered_once = false;  // some sentinel has named a primary since start
  std::string primary;         // "" while unknown
  size_t replicas = 0;
  bool fenced = false;
  uint64_t config_epoch = 0;
  uint64_t switches = 0;        // primary changes after the first
  uint64_t rounds = 0;          // rounds of questions finished
  uint64_t events = 0;          // events received that concern the master
  int64_t last_answer_ms = -1;  // monotonic ms of the last round some sentinel answered
};

class TopologyBoard {
 public:
  // Workers: generation 0 = nothing published yet.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const Topology> get() const;
  Status status() const;
  // Called (on the monitor's thread) after each publish; a worker's wakes its loop. Register
  // before the monitor can be stopped; the callee must outlive the monitor's loop.
  void addWaker(std::function<void()> wake);
  // Any thread: ask every sentinel now (a connection found a server that is not the primary).
  void requestRefresh() const;

  // The monitor's side.
  void publish(Topology t);
  void setStatus(Status s);
  void setRefreshHook(std::function<void()> hook);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Topology> topology_;
  Status status_;
  std::vector<std::function<void()>> wakers_;
  std::function<void()> refresh_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace corral::sentinel
