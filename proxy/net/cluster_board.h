// The cluster's slot map as every worker sees it (upstream.cluster), and who may ask the cluster
// for it next.
//
//   worker (MOVED, lost primary, tick) --beginRefresh--> yes: CLUSTER SHARDS on its connection
//                                                      no: one in flight, or too soon: later
//   reply --endRefresh(map)--> generation + 1 --> each worker swaps its table in whole (sync)
//
// Refreshes are process-wide: at most one in flight, and at most
// upstream.cluster.max_refreshes_per_second started, whichever worker wants one. A worker
// patches its own table at once on MOVED; the board is how the others (and the periodic
// refresh) learn the whole truth.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "proxy/cluster/slot_map.h"

namespace corral::net {

class ClusterBoard {
 public:
  explicit ClusterBoard(int64_t min_gap_ms) : min_gap_ms_(min_gap_ms) {}

  std::shared_ptr<const cluster::SlotMap> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return map_;
  }
  uint64_t generation() const { return gen_.load(std::memory_order_acquire); }

  // True when the caller should ask the cluster now; it must then call endRefresh once. A
  // refresh in flight for longer than `stale_ms` is taken as lost (its worker stopped).
  bool beginRefresh(int64_t now_ms, int64_t stale_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_ && now_ms - started_ms_ < stale_ms) return false;
    if (started_ms_ != 0 && now_ms - started_ms_ < min_gap_ms_) return false;
    in_flight_ = true;
    started_ms_ = now_ms;
    refreshes_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // `map`: the new map (published only when it differs), or null when the refresh failed.
  void endRefresh(std::shared_ptr<const cluster::SlotMap> map) {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ = false;
    if (map == nullptr) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (map_ != nullptr && cluster::sameTopology(*map_, *map) && sameHealth(*map_, *map)) return;
    map_ = std::move(map);
    gen_.fetch_add(1, std::memory_order_release);
    changes_.fetch_add(1, std::memory_order_relaxed);
  }

  // For /metrics: refreshes started, failed, and maps that changed the topology.
  uint64_t refreshes() const { return refreshes_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  uint64_t changes() const { return changes_.load(std::memory_order_relaxed); }

 private:
  // Replica reads go to replicas the map reports online: a change of health is news too
  // (sameTopology looks at addresses and slots only).
  static bool sameHealth(const cluster::SlotMap& a, const cluster::SlotMap& b) {
    auto health = [](const cluster::SlotMap& m) {
      std::vector<std::tuple<std::string, uint16_t, uint16_t, bool>> v;
      for (const cluster::Shard& s : m.shards) {
        for (const cluster::Node& n : s.nodes) v.emplace_back(n.host, n.port, n.tls_port, n.online);
      }
      std::sort(v.begin(), v.end());
      return v;
    };
    return health(a) == health(b);
  }

  const int64_t min_gap_ms_;
  mutable std::mutex mu_;
  std::shared_ptr<const cluster::SlotMap> map_;
  std::atomic<uint64_t> gen_{0};
  bool in_flight_ = false;
  int64_t started_ms_ = 0;
  std::atomic<uint64_t> refreshes_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> changes_{0};
};

}  // namespace corral::net
