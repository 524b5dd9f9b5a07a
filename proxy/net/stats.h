// Counters and gauges of the data path, one cache-line-aligned block per worker so the hot
// path never contends. Each field is written by its worker only (relaxed store of a plain
// increment) and read by the admin thread and INFO, which sum the blocks with Stats::sum.
// What each field is called in /metrics and INFO is declared once, in metrics_table.cc.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "commands/command_table.h"
#include "proxy/net/upstream_gauges.h"

namespace corral::net {

// A counter written by one thread and read by others: a relaxed load+store, not a locked RMW.
class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(uint64_t n) { v_.store(n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Observations counted into fixed buckets (a Prometheus histogram), for one worker.
struct LatencyHistogram {
  static constexpr size_t kBuckets = 12;
  static constexpr int64_t kBoundsUs[kBuckets] = {100,   250,   500,   1000,   2500,   5000,
                                                  10000, 25000, 50000, 100000, 250000, 1000000};
  Counter bucket[kBuckets + 1];  // not cumulative; the last counts everything above kBoundsUs
  Counter sum_us;
  Counter count;
  void observe(int64_t us) {
    size_t i = 0;
    while (i < kBuckets && us > kBoundsUs[i]) ++i;
    bucket[i].add();
    sum_us.add(static_cast<uint64_t>(us < 0 ? 0 : us));
    count.add();
  }
};

struct Stats {
  // One slot per command and subcommand (CommandInfo::id): CLIENT SETNAME counts as
  // client|setname, as in Redis's INFO commandstats. Commands learnt from the server
  // (commands/overlay.h) share the last slot, commands::kLearntId.
  static constexpr size_t kCommandSlots = commands::kCommandIds + 1;
  static_assert(commands::kLearntId == kCommandSlots - 1);
  static constexpr uint16_t kNoCommand = UINT16_MAX;  // a request with no slot (unknown command)
  static_assert(kCommandSlots < kNoCommand);
  using CommandCounters = std::array<Counter, kCommandSlots>;

  struct alignas(64) Worker {
    Counter connections_accepted;
    Counter connections_rejected;        // over max_clients
    Counter requests;                    // requests parsed (forwarded or answered locally)
    Counter forwarded;                   // requests sent upstream
    Counter local_replies;               // answered by corral itself
    Counter upstream_errors;             // -ERR corral: upstream ... replies
    Counter protocol_errors;             // malformed requests (connection closed)
    Counter oversize_requests;           // over max_request_bytes (discarded, connection kept)
    Counter refused_commands;            // connection-state commands not supported yet
    Counter backpressure_pauses;         // times a client's reading was paused
    Counter pending;                     // gauge: requests waiting for a reply
    Counter clients;                     // gauge: this worker's clients
    Counter upstreams_ready;             // gauge: connected upstream connections
    Counter upstreams_total;             // gauge: upstream connections configured
    Counter primary_ready;               // gauge: connected primary connections
    Counter dedicated;                   // gauge: dedicated connections held by clients
    Counter blocking_requests;           // blocking commands sent (BLPOP, XREAD BLOCK, WAIT...)
    Counter auth_failures;               // AUTH / HELLO AUTH with wrong credentials
    Counter auth_checks;                 // passthrough: credentials checked by Redis
    Counter auth_cache_hits;             // passthrough: verdicts reused from the cache
    Counter auth_user_pools;             // gauge: users with connections of their own
    Counter auth_pool_evictions;         // user pools closed (idle, or to make room)
    Counter auth_pools_full;             // AUTHs refused: max_users pools all in use
    Counter slow_consumers;              // subscribers cut off at limits.pubsub_*_bytes
    Counter tls_handshakes;              // TLS clients whose handshake completed
    Counter tls_failures;                // TLS clients refused (handshake or record error)
    Counter tls_timeouts;                // TLS clients closed at tls.handshake_timeout
    Counter cluster_moved;               // upstream.cluster: MOVED replies followed
    Counter cluster_ask;                 // ASK replies followed (ASKING + the command)
    Counter cluster_retries;             // TRYAGAIN / CLUSTERDOWN: sent again after a pause
    Counter cluster_gave_up;             // still redirected at command_timeout: an error
    Counter cluster_split;               // multi-key requests split by slot
    Counter unknown_rejected;            // unknown commands refused (unknown_commands: reject)
    Counter near_hits;                   // near cache: GETs answered from memory (set each tick)
    Counter near_misses;                 // near cache: GETs read on the tracking connection
    Counter near_invalidations;          // entries dropped: Redis's pushes, writes, flushes
    Counter near_evictions;              // entries dropped to make room
    Counter near_bytes;                  // gauge: bytes held
    Counter near_entries;                // gauge: entries held
    Counter commands_learnt;             // gauge: commands this worker learnt (one worker does)
    CommandCounters per_command;         // calls, indexed by CommandInfo::id
    CommandCounters per_command_errors;  // error replies (Redis's or corral's), the same way
    // Request latency, from the read that brought the request to the read that brought its
    // reply (what corral adds plus Redis's time). Blocking commands are left out (their wait is
    // the app's timeout, not latency): blocking_requests counts them.
    LatencyHistogram latency;
    // Connections by upstream address and role (corral_upstream_up and the labelled
    // corral_upstream_connections* families); set by the worker's tick.
    UpstreamGauges upstream_nodes;

    // Counts one call of cmd and returns its slot, to count an error reply against later
    // (per_command_errors[slot]); kNoCommand, counting nothing, for an unknown command
    // (nullptr). One array index: no hashing, no allocation.
    uint16_t countCommand(const commands::CommandInfo* cmd) {
      if (cmd == nullptr) return kNoCommand;
      per_command[cmd->id].add();
      return cmd->id;
    }
    // The slot countCommand would return, counting nothing (a request seen a second time).
    static uint16_t commandSlot(const commands::CommandInfo* cmd) {
      return cmd == nullptr ? kNoCommand : cmd->id;
    }
    void observeLatency(int64_t us) { latency.observe(us); }
  };

  explicit Stats(size_t workers = 1) { resize(workers); }
  void resize(size_t workers) {
    blocks = std::vector<std::unique_ptr<Worker>>(workers);
    for (auto& b : blocks) b = std::make_unique<Worker>();
  }

  // The one place the worker blocks are added up (each counter read once, relaxed; the total
  // is not a snapshot of one instant). `read` picks a counter out of a block.
  template <typename Read>
  uint64_t sum(Read&& read) const {
    uint64_t total = 0;
    for (const auto& b : blocks) total += read(*b).get();
    return total;
  }
  uint64_t sum(Counter Worker::*field) const {
    return sum([field](const Worker& w) -> const Counter& { return w.*field; });
  }

  std::vector<std::unique_ptr<Worker>> blocks;
};

}  // namespace corral::net
