// Upstream connections by address and role, for the admin's per-upstream series:
//
//   Worker::onTick --report(i, addr, role, ready, configured) ... finish(n)--> UpstreamGauges
//     (one per worker, in Stats::Worker; the names change only when the topology does)
//   admin: snapshot() of each worker --sumUpstreams--> UpstreamTotals, one per (addr, role)
//     --writeUpstreamMetrics--> corral_upstream_up{addr,role},
//                               corral_upstream_connections_ready{addr,role},
//                               corral_upstream_connections{addr,role}
//
// The counts are relaxed atomics written by the worker's tick (never on the request path); the
// list of names sits behind a mutex the worker takes only when it differs from the last one
// reported (an upstream added, moved by Sentinel, or a cluster node learnt), so the admin
// thread never waits on a worker's request handling.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/net/prometheus.h"

namespace corral::net {

enum class UpstreamRole : uint8_t { kPrimary, kReplica };
std::string_view roleName(UpstreamRole r);

// The addr label of an upstream: "host:port" ("[::1]:6379" for IPv6), "unix:/path" for a unix
// socket; never the credentials a redis:// URL may carry. Written into *out (its buffer reused).
void addressLabel(const config::ListenAddress& a, std::string* out);

class UpstreamGauges {
 public:
  // Addresses past this many (a cluster of more nodes) are left out of the series.
  static constexpr size_t kMaxNodes = 128;

  struct Node {
    std::string addr;  // "host:port" as corral connects to it
    UpstreamRole role = UpstreamRole::kPrimary;
    uint64_t ready = 0;       // this worker's connections to it past their handshake
    uint64_t configured = 0;  // this worker's connections to it
  };

  // Worker thread: entry i of this round (0, 1, ... in order), then finish(count). No allocation
  // unless an address is new or longer than the one in its place.
  void report(size_t i, std::string_view addr, UpstreamRole role, uint64_t ready,
              uint64_t configured);
  void finish(size_t count);

  // Any thread: the entries of the last finished round.
  std::vector<Node> snapshot() const;

 private:
  struct Count {
    std::atomic<uint64_t> ready{0};
    std::atomic<uint64_t> configured{0};
  };
  // Worker-only: this round's names, and whether they differ from the published ones.
  std::vector<Node> round_;
  size_t published_count_ = 0;  // worker's copy of what it published last
  bool changed_ = false;

  mutable std::mutex mu_;
  std::vector<Node> names_;  // guarded by mu_; ready/configured unused (in counts_)
  Count counts_[kMaxNodes];
};

// One (addr, role) over every worker.
struct UpstreamTotals {
  std::string addr;
  UpstreamRole role = UpstreamRole::kPrimary;
  uint64_t ready = 0;
  uint64_t configured = 0;
  uint64_t workers = 0;        // workers that keep connections to it
  uint64_t workers_ready = 0;  // ... and have at least one ready
  // corral_upstream_up: every worker that keeps connections to it has one ready.
  bool up() const { return workers > 0 && workers_ready == workers; }
};

// Adds up the workers' snapshots, in the order addresses first appear (primary first, as the
// workers list them). Pure.
std::vector<UpstreamTotals> sumUpstreams(const std::vector<std::vector<UpstreamGauges::Node>>& w);

// Appends the three families (headers always; one sample per address).
void writeUpstreamMetrics(const std::vector<UpstreamTotals>& totals, PromWriter& w);

}  // namespace corral::net
