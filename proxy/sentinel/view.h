// What corral believes about the master it follows, from what the sentinels said: a pure state
// machine (no I/O, no clock of its own), fed by the monitor and tested with made-up answers
// and events (view_test.cc).
//
//   round of questions (every sentinel) --onRound-----------.
//   +switch-master                      --onSwitch----------+--> Topology (primary, replicas,
//   +try-failover ... (a failover starts) --onFailoverStarted-'      fenced)
//   time passing                        --onTick: a fence that outlived failover-timeout ends
//
// Rules:
// - The newest answer wins: in a round, the sentinel with the highest config epoch names the
//   primary and its replicas. Once corral has followed epoch E (or seen a +switch-master after
//   it), answers below E (or E + 1) are stale and ignored: a lagging sentinel never takes
//   corral back to a demoted primary.
// - +switch-master takes effect at once; the next round confirms it and brings the replicas.
// - A failover of the current primary, announced by an event or by a sentinel that reports
//   failover_in_progress for it, fences the primary: nothing new is sent to it until the switch.
//   The fence ends with the switch, or when a round started after the last announcement finds
//   every sentinel that announced it answering, none with a failover under way, and the same
//   primary (an aborted failover), or after the master's failover-timeout with no such round.
#pragma once

#include <cstdint>
#include <vector>

#include "proxy/sentinel/protocol.h"
#include "proxy/sentinel/topology.h"

namespace corral::sentinel {

// One sentinel's answers in a round: valid only when `answered`.
struct Answer {
  bool answered = false;      // the three replies arrived and parsed
  bool knows_master = false;  // GET-MASTER-ADDR-BY-NAME named a primary (not nil)
  config::ListenAddress primary;
  MasterState state;
  std::vector<config::ListenAddress> replicas;
};

// Bits of what a call changed.
enum Change : uint32_t {
  kNoChange = 0,
  kPrimaryChanged = 1,
  kFenceChanged = 2,
  kReplicasChanged = 4,
  kFenceExpired = 8,   // with kFenceChanged: the fence outlived failover-timeout
  kStaleIgnored = 16,  // the round's newest answer was older than what corral follows
};

class View {
 public:
  explicit View(size_t sentinels) : announced_(sentinels, false) {}

  const Topology& topology() const { return topo_; }
  uint64_t epoch() const { return epoch_; }

  // A round ended: answers[i] is sentinel i's; the round was sent at started_ms.
  uint32_t onRound(const std::vector<Answer>& answers, int64_t started_ms, int64_t now_ms);
  // +switch-master for the master corral follows, from sentinel `from`.
  uint32_t onSwitch(const SwitchMaster& s);
  // A failover of the master at `of` started (event from sentinel `from`).
  uint32_t onFailoverStarted(const config::ListenAddress& of, size_t from, int64_t now_ms);
  uint32_t onTick(int64_t now_ms);

 private:
  uint32_t fence(size_t by, int64_t now_ms);
  uint32_t unfence();

  Topology topo_;
  uint64_t epoch_ = 0;      // config epoch of the answer corral follows
  uint64_t min_epoch_ = 0;  // answers below it are stale
  int64_t fence_since_ms_ = -1;
  std::vector<bool> announced_;      // sentinels that announced the failover being fenced
  int64_t fence_limit_ms_ = 180000;  // the master's failover-timeout (Sentinel's default)
};

}  // namespace corral::sentinel
