// The Registry's counters and their Prometheus text (see registry.h).
#include "policies/registry.h"

#include <chrono>
#include <cstdio>
#include <tuple>

namespace corral::policies {

void PolicyCounters::countOtherRead(std::string_view reply) {
  if (reply.empty() || reply[0] == '-' || reply[0] == '!') return;
  if (reply[0] == '_' || reply.starts_with("$-1") || reply.starts_with("*-1") ||
      reply.starts_with("*0\r") || reply.starts_with("%0\r") || reply.starts_with("~0\r")) {
    misses.add();
  } else {
    hits.add();
  }
}

PolicyCounters* Registry::policy(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& p : policies_) {
    if (p.name == name) return &p;
  }
  policies_.emplace_back();
  policies_.back().name = name;
  return &policies_.back();
}

LimitCounters* Registry::limitById(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  return id >= 1 && id <= limits_.size() ? &limits_[id - 1] : nullptr;
}

LimitCounters* Registry::limit(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& l : limits_) {
    if (l.name == name) return &l;
  }
  limits_.emplace_back();
  limits_.back().name = name;
  limits_.back().id = static_cast<uint32_t>(limits_.size());
  return &limits_.back();
}

FillCounters* Registry::fill(const std::string& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, c] : fills_) {
    if (name == policy) return &c;
  }
  fills_.emplace_back(std::piecewise_construct, std::forward_as_tuple(policy),
                      std::forward_as_tuple());
  return &fills_.back().second;
}

OriginHealth* Registry::origin(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& o : origins_) {
    if (o.name == name) return &o;
  }
  // steady_clock is CLOCK_MONOTONIC, the loops' clock (proxy/loop/clock.h).
  origins_.emplace_back(name, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count());
  return &origins_.back();
}

void Registry::appendMetrics(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto head = [&out](const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
  };
  auto line = [&out](const char* name, std::string_view labels, uint64_t v) {
    out += name;
    out += '{';
    out += labels;
    out += "} ";
    out += std::to_string(v);
    out += '\n';
  };
  auto plabel = [](const std::string& policy, const char* extra_key, const char* extra) {
    std::string l = "policy=\"" + policy + "\"";
    if (extra_key != nullptr) l += std::string(",") + extra_key + "=\"" + extra + "\"";
    return l;
  };
  head("corral_policy_requests_total", "counter", "Requests with at least one key of the policy.");
  for (const auto& p : policies_)
    line("corral_policy_requests_total", plabel(p.name, nullptr, nullptr), p.requests.get());
  head("corral_policy_naming_violations_total", "counter",
       "Keys that broke the policy's template or length (rejected, or audited only).");
  for (const auto& p : policies_) {
    line("corral_policy_naming_violations_total", plabel(p.name, "action", "rejected"),
         p.naming_rejected.get());
    line("corral_policy_naming_violations_total", plabel(p.name, "action", "audited"),
         p.naming_audited.get());
  }
  head("corral_policy_ttl_total", "counter",
       "TTL rule outcomes: fixed (default added or clamped), rejected, audited.");
  for (const auto& p : policies_) {
    line("corral_policy_ttl_total", plabel(p.name, "action", "fixed"), p.ttl_fixed.get());
    line("corral_policy_ttl_total", plabel(p.name, "action", "rejected"), p.ttl_rejected.get());
    line("corral_policy_ttl_total", plabel(p.name, "action", "audited"), p.ttl_audited.get());
  }
  head("corral_policy_reads_total", "counter",
       "GET-like single-key reads of the policy's keys by result (keyspace hit ratio).");
  for (const auto& p : policies_) {
    line("corral_policy_reads_total", plabel(p.name, "result", "hit"), p.hits.get());
    line("corral_policy_reads_total", plabel(p.name, "result", "miss"), p.misses.get());
  }
  head("corral_policy_near_total", "counter",
       "Near cache events per policy: hit (a read answered from memory), miss (read from "
       "Redis), invalidation and eviction (entries dropped).");
  for (const auto& p : policies_) {
    if (!p.near_used.load(std::memory_order_relaxed)) continue;
    line("corral_policy_near_total", plabel(p.name, "event", "hit"), p.near_hits.get());
    line("corral_policy_near_total", plabel(p.name, "event", "miss"), p.near_misses.get());
    line("corral_policy_near_total", plabel(p.name, "event", "invalidation"),
         p.near_invalidations.get());
    line("corral_policy_near_total", plabel(p.name, "event", "eviction"), p.near_evictions.get());
  }
  head("corral_policy_near_bytes", "gauge", "Bytes the policy's near cache holds (all workers).");
  for (const auto& p : policies_) {
    if (!p.near_used.load(std::memory_order_relaxed)) continue;
    const int64_t b = p.near_bytes.load(std::memory_order_relaxed);
    line("corral_policy_near_bytes", plabel(p.name, nullptr, nullptr),
         b > 0 ? static_cast<uint64_t>(b) : 0);
  }
  head("corral_policy_near_hit_ratio", "gauge",
       "Near cache hits / (hits + misses) per policy since start; 0 before its first read.");
  for (const auto& p : policies_) {
    if (!p.near_used.load(std::memory_order_relaxed)) continue;
    const uint64_t h = p.near_hits.get();
    const uint64_t all = h + p.near_misses.get();
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.4f",
                  all == 0 ? 0.0 : static_cast<double>(h) / static_cast<double>(all));
    out += "corral_policy_near_hit_ratio{" + plabel(p.name, nullptr, nullptr) + "} " + ratio + "\n";
  }
  head("corral_ratelimit_requests_total", "counter",
       "Rate-limit checks by result: admitted, rejected (-RATELIMITED), shadowed (over, let "
       "through).");
  for (const auto& l : limits_) {
    const std::string lab = "limit=\"" + l.name + "\"";
    line("corral_ratelimit_requests_total", lab + ",result=\"admitted\"", l.admitted.get());
    line("corral_ratelimit_requests_total", lab + ",result=\"rejected\"", l.rejected.get());
    line("corral_ratelimit_requests_total", lab + ",result=\"shadowed\"", l.shadowed.get());
  }
  head("corral_ratelimit_global_credits_total", "counter",
       "Credits of scope global limits: leased (granted by the shared state in Redis) and "
       "dropped (unspent when their lease ended).");
  for (const auto& l : limits_) {
    if (!l.global.load(std::memory_order_relaxed)) continue;
    const std::string lab = "limit=\"" + l.name + "\"";
    line("corral_ratelimit_global_credits_total", lab + ",event=\"leased\"", l.leased.get());
    line("corral_ratelimit_global_credits_total", lab + ",event=\"dropped\"", l.dropped.get());
  }
  head("corral_ratelimit_global_takes_total", "counter",
       "Refill round trips of scope global limits to Redis: granted (credits came back), empty "
       "(the limit was spent), failed (error, or unanswered too long).");
  for (const auto& l : limits_) {
    if (!l.global.load(std::memory_order_relaxed)) continue;
    const std::string lab = "limit=\"" + l.name + "\"";
    line("corral_ratelimit_global_takes_total", lab + ",result=\"granted\"", l.takes_granted.get());
    line("corral_ratelimit_global_takes_total", lab + ",result=\"empty\"", l.takes_empty.get());
    line("corral_ratelimit_global_takes_total", lab + ",result=\"failed\"", l.takes_failed.get());
  }
  head("corral_ratelimit_global_unavailable_total", "counter",
       "Requests of scope global limits decided by on_unavailable (Redis unreachable).");
  for (const auto& l : limits_) {
    if (!l.global.load(std::memory_order_relaxed)) continue;
    line("corral_ratelimit_global_unavailable_total", "limit=\"" + l.name + "\"",
         l.unavailable.get());
  }
  head("corral_ratelimit_global_sidecars", "gauge",
       "Live sidecars sharing the global limits' Redis, as last counted (0: not yet).");
  out += "corral_ratelimit_global_sidecars " +
         std::to_string(sidecars.load(std::memory_order_relaxed)) + "\n";
  head("corral_ratelimit_buckets", "gauge", "Rate-limit buckets held in memory.");
  out += "corral_ratelimit_buckets " + std::to_string(limiter_.buckets()) + "\n";
  head("corral_fill_events_total", "counter",
       "Cache-aside fill events per policy: fills (origin calls attempted, including those "
       "refused at once by max_in_flight), fill_errors, coalesced "
       "waiters, lease_wins, lease_losses, stale_served, negative_hits, would_fill (audit), "
       "not_stored, refreshes, store_errors, wait_timeouts, worker_waits (coalesced waiters "
       "whose flight ran on another worker), worker_wakes (workers handed a flight's result), "
       "revalidated (304s that extended the stored value).");
  for (const auto& [name, c] : fills_) {
    const std::pair<const char*, const FillCount*> rows[] = {
        {"fills", &c.fills},
        {"fill_errors", &c.fill_errors},
        {"coalesced", &c.coalesced},
        {"lease_wins", &c.lease_wins},
        {"lease_losses", &c.lease_losses},
        {"stale_served", &c.stale_served},
        {"negative_hits", &c.negative_hits},
        {"would_fill", &c.would_fill},
        {"not_stored", &c.not_stored},
        {"refreshes", &c.refreshes},
        {"store_errors", &c.store_errors},
        {"wait_timeouts", &c.wait_timeouts},
        {"worker_waits", &c.worker_waits},
        {"worker_wakes", &c.worker_wakes},
        {"revalidated", &c.revalidated},
    };
    for (const auto& [event, v] : rows) {
      line("corral_fill_events_total", plabel(name, "event", event), *v);
    }
  }
  head("corral_fill_origin_bytes_total", "counter",
       "Body bytes of the origin's 200 answers to fills per policy (a 304 moves none).");
  for (const auto& [name, c] : fills_) {
    line("corral_fill_origin_bytes_total", plabel(name, nullptr, nullptr), c.origin_bytes);
  }
  head("corral_fill_origin_duration_seconds", "histogram",
       "Origin latency of fills (answers 200 and 404) per policy.");
  for (const auto& [name, c] : fills_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= FillCounters::kLatencyBuckets; ++i) {
      cumulative += c.latency_bucket[i];
      char le[32];
      if (i < FillCounters::kLatencyBuckets) {
        std::snprintf(le, sizeof le, "%g",
                      static_cast<double>(FillCounters::kLatencyBoundsMs[i]) / 1000.0);
      } else {
        std::snprintf(le, sizeof le, "+Inf");
      }
      line("corral_fill_origin_duration_seconds_bucket", plabel(name, "le", le), cumulative);
    }
    char sum[48];
    std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(c.latency_sum_us) / 1e6);
    out += "corral_fill_origin_duration_seconds_sum{policy=\"" + name + "\"} " + sum + "\n";
    line("corral_fill_origin_duration_seconds_count", plabel(name, nullptr, nullptr),
         c.latency_count);
  }
  head("corral_unmatched_keys_total", "counter",
       "Keys no policy covers, by action (global.unmatched_keys).");
  line("corral_unmatched_keys_total", "action=\"rejected\"", unmatched_rejected.get());
  line("corral_unmatched_keys_total", "action=\"audited\"", unmatched_audited.get());
  head("corral_commands_denied_total", "counter", "Commands refused by global.commands.deny.");
  out += "corral_commands_denied_total " + std::to_string(denied.get()) + "\n";
  head("corral_commands_audited_total", "counter", "Commands counted by global.commands.audit.");
  out += "corral_commands_audited_total " + std::to_string(command_audit.get()) + "\n";
  head("corral_ttl_followup_errors_total", "counter",
       "Follow-up PEXPIRE ... NX that Redis answered with an error.");
  out += "corral_ttl_followup_errors_total " + std::to_string(followup_errors.get()) + "\n";
  appendOriginMetrics(out, origins_,
                      std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count());
}

}  // namespace corral::policies
