// Counters and gauges of the data path, one cache-line-aligned block per worker so the hot
// path never contends. Each field is written by its worker only (relaxed store of a plain
// increment) and read by the admin thread, which sums the blocks.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "commands/command_table.h"

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

struct Stats {
  static constexpr size_t kCommandSlots = 256;  // Redis 7.0 has 240 top-level commands
  static constexpr size_t kLatencyBuckets = 12;
  static constexpr int64_t kLatencyBoundsUs[kLatencyBuckets] = {
      100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};
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
    Counter auth_failures;               // AUTH / HELLO AUTH with wrong credentials
    Counter slow_consumers;              // pipe-mode clients cut off at max_output_bytes
    Counter per_command[kCommandSlots];  // calls, indexed like commands::allCommands()
    Counter per_command_errors[kCommandSlots];  // error replies (Redis's or corral's)
    // Request latency, from the read that brought the request to the read that brought its
    // reply (what corral adds plus Redis's time), as a Prometheus histogram.
    Counter latency_bucket[kLatencyBuckets + 1];  // last: +Inf
    Counter latency_sum_us;
    Counter latency_count;
    // Counts one call of cmd; returns the counter slot to count its error in (UINT16_MAX: none).
    uint16_t countCommand(const commands::CommandInfo* cmd) {
      const int64_t idx = commands::topLevelIndex(cmd);
      if (idx < 0 || static_cast<size_t>(idx) >= kCommandSlots) return UINT16_MAX;
      per_command[idx].add();
      return static_cast<uint16_t>(idx);
    }
    void observeLatency(int64_t us) {
      size_t i = 0;
      while (i < kLatencyBuckets && us > kLatencyBoundsUs[i]) ++i;
      latency_bucket[i].add();
      latency_sum_us.add(static_cast<uint64_t>(us < 0 ? 0 : us));
      latency_count.add();
    }
  };

  explicit Stats(size_t workers = 1) { resize(workers); }
  void resize(size_t workers) {
    blocks = std::vector<std::unique_ptr<Worker>>(workers);
    for (auto& b : blocks) b = std::make_unique<Worker>();
  }
  std::vector<std::unique_ptr<Worker>> blocks;
};

}  // namespace corral::net
