#include "proxy/sentinel/view.h"

#include <algorithm>

namespace corral::sentinel {
namespace {

bool sameNodes(const std::vector<config::ListenAddress>& a,
               const std::vector<config::ListenAddress>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), sameNode);
}

}  // namespace

uint32_t View::fence(size_t by, int64_t now_ms) {
  if (by < announced_.size()) announced_[by] = true;
  // Every announcement restarts the wait: a round sent before it cannot end the fence.
  fence_since_ms_ = now_ms;
  if (topo_.fenced) return kNoChange;
  topo_.fenced = true;
  return kFenceChanged;
}

uint32_t View::unfence() {
  std::fill(announced_.begin(), announced_.end(), false);
  fence_since_ms_ = -1;
  if (!topo_.fenced) return kNoChange;
  topo_.fenced = false;
  return kFenceChanged;
}

uint32_t View::onRound(const std::vector<Answer>& answers, int64_t started_ms, int64_t now_ms) {
  const Answer* best = nullptr;
  bool under_way = false;
  for (const Answer& a : answers) {
    if (!a.answered || !a.knows_master) continue;
    under_way = under_way || a.state.failover_in_progress;
    if (best == nullptr || a.state.config_epoch > best->state.config_epoch) best = &a;
  }
  if (best == nullptr) return kNoChange;
  if (best->state.failover_timeout_ms > 0) fence_limit_ms_ = best->state.failover_timeout_ms;
  if (best->state.config_epoch < min_epoch_) return kStaleIgnored;

  uint32_t changes = kNoChange;
  if (!topo_.primary || !sameNode(*topo_.primary, best->primary)) {
    topo_.primary = best->primary;
    changes |= kPrimaryChanged | unfence();
  }
  epoch_ = best->state.config_epoch;
  min_epoch_ = std::max(min_epoch_, epoch_);

  // A failover of our primary under way, as the sentinel running it says (its event may have
  // been lost with a subscription).
  for (size_t i = 0; i < answers.size(); ++i) {
    const Answer& a = answers[i];
    if (a.answered && a.state.failover_in_progress && sameNode(a.state.addr, *topo_.primary)) {
      changes |= fence(i, now_ms);
    }
  }
  if (topo_.fenced && !under_way && started_ms > fence_since_ms_) {
    bool heard_all = true;  // from every sentinel that announced the failover
    for (size_t i = 0; i < announced_.size() && i < answers.size(); ++i) {
      if (announced_[i] && !answers[i].answered) heard_all = false;
    }
    if (heard_all) changes |= unfence();
  }

  std::vector<config::ListenAddress> replicas;
  for (const auto& r : best->replicas) {
    if (!sameNode(r, *topo_.primary)) replicas.push_back(r);
  }
  if (!sameNodes(replicas, topo_.replicas)) {
    topo_.replicas = std::move(replicas);
    changes |= kReplicasChanged;
  }
  return changes;
}

uint32_t View::onSwitch(const SwitchMaster& s) {
  uint32_t changes = unfence();
  if (topo_.primary && sameNode(*topo_.primary, s.to)) return changes;
  topo_.primary = s.to;
  // A switch raises the config epoch: anything at or below the one corral followed is stale.
  min_epoch_ = std::max(min_epoch_, epoch_ + 1);
  changes |= kPrimaryChanged;
  // The promoted replica is a replica no more; the next round brings the rest of the list.
  const auto it = std::remove_if(topo_.replicas.begin(), topo_.replicas.end(),
                                 [&](const config::ListenAddress& r) { return sameNode(r, s.to); });
  if (it != topo_.replicas.end()) {
    topo_.replicas.erase(it, topo_.replicas.end());
    changes |= kReplicasChanged;
  }
  return changes;
}

uint32_t View::onFailoverStarted(const config::ListenAddress& of, size_t from, int64_t now_ms) {
  // Only a failover of the primary corral sends to matters (a late event about an older one
  // must not fence the new primary).
  if (!topo_.primary || !sameNode(*topo_.primary, of)) return kNoChange;
  return fence(from, now_ms);
}

uint32_t View::onTick(int64_t now_ms) {
  if (!topo_.fenced || now_ms - fence_since_ms_ < fence_limit_ms_) return kNoChange;
  return unfence() | kFenceExpired;
}

}  // namespace corral::sentinel
