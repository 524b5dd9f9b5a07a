// view.h: the decisions, from made-up answers and events (no sockets, no clock).
#include "proxy/sentinel/view.h"

#include <doctest/doctest.h>

namespace corral::sentinel {
namespace {

const config::ListenAddress kA = makeNode("10.0.0.1", 6379);
const config::ListenAddress kB = makeNode("10.0.0.2", 6379);
const config::ListenAddress kC = makeNode("10.0.0.3", 6379);

Answer said(const config::ListenAddress& primary, uint64_t epoch,
            std::vector<config::ListenAddress> replicas = {}, bool in_progress = false) {
  Answer a;
  a.answered = true;
  a.knows_master = true;
  a.primary = primary;
  a.state.addr = primary;
  a.state.config_epoch = epoch;
  a.state.failover_in_progress = in_progress;
  a.state.failover_timeout_ms = 5000;
  a.replicas = std::move(replicas);
  return a;
}

Answer silent() { return Answer{}; }

SwitchMaster switchTo(const config::ListenAddress& from, const config::ListenAddress& to) {
  return SwitchMaster{"m", from, to};
}

}  // namespace

TEST_CASE("a round names the primary and replicas; the newest epoch wins") {
  View v(3);
  CHECK(v.onRound({silent(), silent(), silent()}, 0, 1) == kNoChange);
  CHECK_FALSE(v.topology().primary.has_value());
  CHECK(v.onRound({said(kA, 1, {kB}), said(kC, 2, {kA, kB}), silent()}, 10, 11) ==
        (kPrimaryChanged | kReplicasChanged));
  REQUIRE(v.topology().primary.has_value());
  CHECK(v.topology().primary->text == "10.0.0.3:6379");
  REQUIRE(v.topology().replicas.size() == 2);
  CHECK(v.epoch() == 2);
  // The same again: nothing changes. Every sentinel down: the last known topology stays.
  CHECK(v.onRound({said(kC, 2, {kA, kB}), silent(), silent()}, 20, 21) == kNoChange);
  CHECK(v.onRound({silent(), silent(), silent()}, 30, 31) == kNoChange);
  CHECK(v.topology().primary->text == "10.0.0.3:6379");
  // A sentinel lagging behind the epoch corral follows never takes it back.
  CHECK(v.onRound({said(kA, 1, {kB}), silent(), silent()}, 40, 41) == kStaleIgnored);
  CHECK(v.topology().primary->text == "10.0.0.3:6379");
  // The primary never appears as its own replica.
  CHECK(v.onRound({said(kC, 2, {kC, kB})}, 50, 51) == kReplicasChanged);
  REQUIRE(v.topology().replicas.size() == 1);
  CHECK(v.topology().replicas[0].text == "10.0.0.2:6379");
}

TEST_CASE("+switch-master applies at once; rounds older than it are stale") {
  View v(2);
  v.onRound({said(kA, 4, {kB}), said(kA, 4, {kB})}, 0, 1);
  CHECK(v.onSwitch(switchTo(kA, kB)) == (kPrimaryChanged | kReplicasChanged));
  CHECK(v.topology().primary->text == "10.0.0.2:6379");
  CHECK(v.topology().replicas.empty());
  // A sentinel that has not heard of the switch yet still says A at epoch 4: ignored.
  CHECK(v.onRound({said(kA, 4, {kB}), silent()}, 10, 11) == kStaleIgnored);
  CHECK(v.topology().primary->text == "10.0.0.2:6379");
  // The same switch announced by another sentinel changes nothing.
  CHECK(v.onSwitch(switchTo(kA, kB)) == kNoChange);
  // Once one answers with the new epoch, the round is followed again (and brings replicas).
  CHECK(v.onRound({said(kA, 4), said(kB, 5, {kA})}, 20, 21) == kReplicasChanged);
  CHECK(v.epoch() == 5);
}

TEST_CASE("a failover fences the primary until the switch") {
  View v(3);
  v.onRound({said(kA, 1, {kB}), said(kA, 1, {kB}), said(kA, 1, {kB})}, 0, 1);
  // An event about another server (a late one about an older primary) fences nothing.
  CHECK(v.onFailoverStarted(kC, 0, 5) == kNoChange);
  CHECK(v.onFailoverStarted(kA, 0, 10) == kFenceChanged);
  CHECK(v.topology().fenced);
  CHECK(v.onFailoverStarted(kA, 0, 12) == kNoChange);  // the next step of the same failover
  // A round sent before the announcement ends nothing, even with nobody reporting it.
  CHECK(v.onRound({said(kA, 1), said(kA, 1), said(kA, 1)}, 9, 20) == kReplicasChanged);
  CHECK(v.topology().fenced);
  // The leader reports the failover under way: still fenced.
  CHECK(v.onRound({said(kA, 1, {kB}, true), said(kA, 1, {kB}), said(kA, 1, {kB})}, 30, 31) ==
        kReplicasChanged);
  CHECK(v.topology().fenced);
  // The switch ends the fence.
  CHECK(v.onSwitch(switchTo(kA, kB)) == (kPrimaryChanged | kFenceChanged | kReplicasChanged));
  CHECK_FALSE(v.topology().fenced);
  CHECK(v.topology().primary->text == "10.0.0.2:6379");
  // A late event about the old primary does not fence the new one.
  CHECK(v.onFailoverStarted(kA, 1, 40) == kNoChange);
  CHECK_FALSE(v.topology().fenced);
}

TEST_CASE("an aborted failover ends the fence once its announcer answers") {
  View v(2);
  v.onRound({said(kA, 1), said(kA, 1)}, 0, 1);
  REQUIRE(v.onFailoverStarted(kA, 1, 10) == kFenceChanged);
  // The announcer does not answer: the fence stays (it may still be promoting a replica).
  CHECK(v.onRound({said(kA, 1), silent()}, 20, 21) == kNoChange);
  CHECK(v.topology().fenced);
  CHECK(v.onRound({said(kA, 1), said(kA, 1)}, 30, 31) == kFenceChanged);
  CHECK_FALSE(v.topology().fenced);
  CHECK(v.topology().primary->text == "10.0.0.1:6379");
}

TEST_CASE("a round that sees the failover under way fences (the event may be lost)") {
  View v(2);
  v.onRound({said(kA, 1), said(kA, 1)}, 0, 1);
  CHECK(v.onRound({said(kA, 1, {}, true), said(kA, 1)}, 10, 11) == kFenceChanged);
  CHECK(v.topology().fenced);
  // Late in the failover the leader names the promoted replica while its master entry is still
  // A, at the same epoch: the first answer of the newest epoch is followed (A, still fenced).
  Answer leader = said(kB, 1, {}, true);
  leader.state.addr = kA;
  CHECK(v.onRound({said(kA, 1), leader}, 20, 21) == kNoChange);
  CHECK(v.topology().primary->text == "10.0.0.1:6379");
  CHECK(v.topology().fenced);
  // Once the switch raised the epoch, B wins the round, and B is not fenced.
  CHECK(v.onRound({said(kA, 1), said(kB, 2)}, 30, 31) == (kPrimaryChanged | kFenceChanged));
  CHECK(v.topology().primary->text == "10.0.0.2:6379");
  CHECK_FALSE(v.topology().fenced);
}

TEST_CASE("a fence with no end outlives failover-timeout only") {
  View v(1);
  v.onRound({said(kA, 1)}, 0, 1);  // failover-timeout 5000
  REQUIRE(v.onFailoverStarted(kA, 0, 100) == kFenceChanged);
  CHECK(v.onTick(5099) == kNoChange);
  CHECK(v.onTick(5100) == (kFenceChanged | kFenceExpired));
  CHECK_FALSE(v.topology().fenced);
  CHECK(v.onTick(20000) == kNoChange);
}

}  // namespace corral::sentinel
