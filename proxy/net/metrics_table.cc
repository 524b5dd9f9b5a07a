#include "proxy/net/metrics_table.h"

#include <array>
#include <bitset>
#include <cstdio>

#include "commands/command_table.h"

namespace corral::net {
namespace {

using W = Stats::Worker;
constexpr MetricType kCounter = MetricType::kCounter;
constexpr MetricType kGauge = MetricType::kGauge;

// The table. INFO names are the Prometheus names without "_total" unless INFO had another name
// first (corral_connected_clients); both are public contracts, so neither is renamed.
constexpr MetricRow kRows[] = {
    {.name = "corral_connections_accepted_total",
     .type = kCounter,
     .help = "Client connections accepted.",
     .counter = &W::connections_accepted,
     .info = "corral_connections_accepted"},
    {.name = "corral_connections_rejected_total",
     .type = kCounter,
     .help = "Client connections refused (max_clients).",
     .counter = &W::connections_rejected,
     .info = "corral_connections_rejected"},
    {.name = "corral_requests_total",
     .type = kCounter,
     .help = "Requests parsed.",
     .counter = &W::requests,
     .info = "corral_requests"},
    {.name = "corral_requests_forwarded_total",
     .type = kCounter,
     .help = "Requests sent to an upstream.",
     .counter = &W::forwarded,
     .info = "corral_requests_forwarded"},
    {.name = "corral_local_replies_total",
     .type = kCounter,
     .help = "Requests answered by corral itself.",
     .counter = &W::local_replies,
     .info = "corral_local_replies"},
    {.name = "corral_upstream_errors_total",
     .type = kCounter,
     .help = "Replies of -ERR corral: upstream unavailable/timeout.",
     .counter = &W::upstream_errors,
     .info = "corral_upstream_errors"},
    {.name = "corral_protocol_errors_total",
     .type = kCounter,
     .help = "Malformed requests (connection closed).",
     .counter = &W::protocol_errors,
     .info = "corral_protocol_errors"},
    {.name = "corral_oversize_requests_total",
     .type = kCounter,
     .help = "Requests over limits.max_request_bytes.",
     .counter = &W::oversize_requests,
     .info = "corral_oversize_requests"},
    {.name = "corral_refused_commands_total",
     .type = kCounter,
     .help = "Connection-state commands refused by this version.",
     .counter = &W::refused_commands,
     .info = "corral_refused_commands"},
    {.name = "corral_backpressure_pauses_total",
     .type = kCounter,
     .help = "Times a client's reading was paused.",
     .counter = &W::backpressure_pauses,
     .info = "corral_backpressure_pauses"},
    {.name = "corral_pending_requests",
     .type = kGauge,
     .help = "Requests waiting for an upstream reply.",
     .counter = &W::pending,
     .info = "corral_pending_requests"},
    {.name = "corral_clients",
     .type = kGauge,
     .help = "Connected clients.",
     .counter = &W::clients,
     .info = "corral_connected_clients"},
    // corral_upstream_connections_ready and corral_upstream_connections are labelled by address
    // and role (upstream_gauges.h, written by the admin endpoint); INFO shows their sums as one
    // line, corral_upstream_connections_ready:<ready>/<configured> (Client::appendProxyInfo).
    {.name = "corral_auth_failures_total",
     .type = kCounter,
     .help = "AUTH attempts with wrong credentials.",
     .counter = &W::auth_failures,
     .info = "corral_auth_failures"},
    {.name = "corral_auth_checks_total",
     .type = kCounter,
     .help = "Passthrough AUTHs checked by Redis (not answered from the cache).",
     .counter = &W::auth_checks,
     .info = "corral_auth_checks"},
    {.name = "corral_auth_cache_hits_total",
     .type = kCounter,
     .help = "Passthrough AUTHs answered from the verdict cache.",
     .counter = &W::auth_cache_hits,
     .info = "corral_auth_cache_hits"},
    {.name = "corral_auth_user_pools",
     .type = kGauge,
     .help = "Users (user and password) with shared upstream connections of their own.",
     .counter = &W::auth_user_pools,
     .info = "corral_auth_user_pools"},
    {.name = "corral_auth_user_pool_evictions_total",
     .type = kCounter,
     .help = "User pools closed: idle for auth.passthrough.idle_timeout, or to make room.",
     .counter = &W::auth_pool_evictions,
     .info = "corral_auth_user_pool_evictions"},
    {.name = "corral_auth_pools_full_total",
     .type = kCounter,
     .help = "AUTHs refused because auth.passthrough.max_users pools were all in use.",
     .counter = &W::auth_pools_full,
     .info = "corral_auth_pools_full"},
    {.name = "corral_slow_consumers_disconnected_total",
     .type = kCounter,
     .help = "Subscribers (clients on their own connection) cut off at the limits.pubsub_* limits.",
     .counter = &W::slow_consumers,
     .info = "corral_slow_consumers_disconnected"},
    {.name = "corral_tls_handshakes_total",
     .type = kCounter,
     .help = "TLS clients whose handshake completed.",
     .counter = &W::tls_handshakes,
     .info = "corral_tls_handshakes"},
    {.name = "corral_tls_failures_total",
     .type = kCounter,
     .help = "TLS clients closed on a TLS error (handshake refused, bad record).",
     .counter = &W::tls_failures,
     .info = "corral_tls_failures"},
    {.name = "corral_tls_handshake_timeouts_total",
     .type = kCounter,
     .help = "TLS clients closed at tls.handshake_timeout.",
     .counter = &W::tls_timeouts,
     .info = "corral_tls_handshake_timeouts"},
    {.name = "corral_cluster_moved_total",
     .type = kCounter,
     .help = "MOVED replies followed (upstream.cluster); the app never sees one.",
     .counter = &W::cluster_moved,
     .info = "corral_cluster_moved"},
    {.name = "corral_cluster_ask_total",
     .type = kCounter,
     .help = "ASK replies followed with ASKING and the command (upstream.cluster).",
     .counter = &W::cluster_ask,
     .info = "corral_cluster_ask"},
    {.name = "corral_cluster_retries_total",
     .type = kCounter,
     .help = "Requests sent again after TRYAGAIN or CLUSTERDOWN (upstream.cluster).",
     .counter = &W::cluster_retries,
     .info = "corral_cluster_retries"},
    {.name = "corral_cluster_gave_up_total",
     .type = kCounter,
     .help = "Requests still redirected at command_timeout, answered with an error.",
     .counter = &W::cluster_gave_up,
     .info = "corral_cluster_gave_up"},
    {.name = "corral_cluster_split_total",
     .type = kCounter,
     .help = "Multi-key requests split by slot and merged (MGET, MSET, DEL, ...).",
     .counter = &W::cluster_split,
     .info = "corral_cluster_split"},
    {.name = "corral_near_hits_total",
     .type = kCounter,
     .help = "GETs of near_cache policies answered from corral's memory.",
     .counter = &W::near_hits,
     .info = "corral_near_hits"},
    {.name = "corral_near_misses_total",
     .type = kCounter,
     .help = "GETs of near_cache policies read from Redis (on the tracking connection).",
     .counter = &W::near_misses,
     .info = "corral_near_misses"},
    {.name = "corral_near_invalidations_total",
     .type = kCounter,
     .help = "Near cache entries dropped because Redis or a write said their key changed, or "
             "the cache was flushed.",
     .counter = &W::near_invalidations,
     .info = "corral_near_invalidations"},
    {.name = "corral_near_evictions_total",
     .type = kCounter,
     .help = "Near cache entries dropped to stay under near_cache.max_bytes.",
     .counter = &W::near_evictions,
     .info = "corral_near_evictions"},
    {.name = "corral_near_bytes",
     .type = kGauge,
     .help = "Bytes the near cache holds (keys, replies and per-entry overhead).",
     .counter = &W::near_bytes,
     .info = "corral_near_bytes"},
    {.name = "corral_near_entries",
     .type = kGauge,
     .help = "Entries the near cache holds.",
     .counter = &W::near_entries,
     .info = "corral_near_entries"},
    {.name = "corral_unknown_commands_rejected_total",
     .type = kCounter,
     .help = "Commands neither the built-in table nor the server's learnt commands know, refused "
             "(global.unknown_commands: reject).",
     .counter = &W::unknown_rejected,
     .info = "corral_unknown_commands_rejected"},
    {.name = "corral_commands_learnt",
     .type = kGauge,
     .help = "Commands and subcommands learnt from the primary's COMMAND reply on top of the "
             "built-in table (Redis 7.0.15).",
     .counter = &W::commands_learnt,
     .info = "corral_commands_learnt"},
    {.name = "corral_blocking_requests_total",
     .type = kCounter,
     .help = "Blocking commands sent (BLPOP & co, XREAD/XREADGROUP with BLOCK, WAIT, WAITAOF); "
             "corral_request_duration_seconds leaves them out.",
     .counter = &W::blocking_requests,
     .info = "corral_blocking_requests"},
    {.name = "corral_dedicated_connections",
     .type = kGauge,
     .help = "Dedicated upstream connections held by clients (MULTI/WATCH, blocking commands).",
     .counter = &W::dedicated,
     .info = "corral_dedicated_connections"},
    {.name = "corral_command_requests_total",
     .type = kCounter,
     .help = "Requests by command; subcommands apart (command=\"client|setname\").",
     .per_command = &W::per_command,
     .info = "calls"},
    {.name = "corral_command_errors_total",
     .type = kCounter,
     .help = "Error replies by command (Redis's and corral's); subcommands apart.",
     .per_command = &W::per_command_errors,
     .info = "failed_calls"},
    {.name = "corral_request_duration_seconds",
     .type = MetricType::kHistogram,
     .help = "Forwarded requests, from read to reply; blocking commands left out.",
     .histogram = &W::latency,
     .info = "corral_request_duration"},
};

// The name a command slot is shown by: the table's name, or "(learnt)" for the one slot every
// learnt command shares (not a name Redis could have: it has parentheses).
std::string_view slotName(size_t slot) {
  const commands::CommandInfo* c = commands::byId(slot);
  return c != nullptr ? c->name : std::string_view(kLearntSlotName);
}

uint64_t sumCommand(const Stats& stats, const MetricRow& r, size_t slot) {
  return stats.sum([&r, slot](const W& w) -> const Counter& { return (w.*r.per_command)[slot]; });
}

// Commands with a non-zero count in any per-command row: the ones both renderers list.
std::bitset<Stats::kCommandSlots> activeCommands(const Stats& stats) {
  std::bitset<Stats::kCommandSlots> active;
  for (const MetricRow& r : kRows) {
    if (r.per_command == nullptr) continue;
    for (size_t i = 0; i < Stats::kCommandSlots; ++i) {
      if (!active[i] && sumCommand(stats, r, i) != 0) active[i] = true;
    }
  }
  return active;
}

// Sums of one histogram over the workers.
struct HistogramTotals {
  uint64_t buckets[LatencyHistogram::kBuckets + 1] = {};
  uint64_t sum_us = 0;
  uint64_t count = 0;
};

HistogramTotals sumHistogram(const Stats& stats, LatencyHistogram W::*h) {
  HistogramTotals t;
  for (size_t i = 0; i <= LatencyHistogram::kBuckets; ++i) {
    t.buckets[i] = stats.sum([h, i](const W& w) -> const Counter& { return (w.*h).bucket[i]; });
  }
  t.sum_us = stats.sum([h](const W& w) -> const Counter& { return (w.*h).sum_us; });
  t.count = stats.sum([h](const W& w) -> const Counter& { return (w.*h).count; });
  return t;
}

// The histogram's bounds in seconds, the unit of its Prometheus name.
constexpr auto kBoundsSeconds = [] {
  std::array<double, LatencyHistogram::kBuckets> b{};
  for (size_t i = 0; i < b.size(); ++i) {
    b[i] = static_cast<double>(LatencyHistogram::kBoundsUs[i]) / 1e6;
  }
  return b;
}();

void infoLine(std::string& text, std::string_view field, std::string_view value) {
  text.append(field);
  text.push_back(':');
  text.append(value);
  text.append("\r\n");
}

}  // namespace

std::span<const MetricRow> metricRows() { return kRows; }

void writePrometheus(const Stats& stats, PromWriter& w) {
  const auto active = activeCommands(stats);
  for (const MetricRow& r : kRows) {
    w.header(r.name, r.type, r.help);
    if (r.counter != nullptr) {
      w.sample(r.name, stats.sum(r.counter));
    } else if (r.per_command != nullptr) {
      for (size_t i = 0; i < Stats::kCommandSlots; ++i) {
        if (!active[i]) continue;
        w.sample(r.name, {{"command", slotName(i)}}, sumCommand(stats, r, i));
      }
    } else if (r.histogram != nullptr) {
      const HistogramTotals t = sumHistogram(stats, r.histogram);
      w.histogram(r.name, {}, kBoundsSeconds, t.buckets, static_cast<double>(t.sum_us) / 1e6,
                  t.count);
    }
  }
}

void appendProxyInfoLines(const Stats& stats, std::string& text) {
  for (const MetricRow& r : kRows) {
    if (r.info.empty()) continue;
    if (r.counter != nullptr) {
      infoLine(text, r.info, std::to_string(stats.sum(r.counter)));
    } else if (r.histogram != nullptr) {
      const HistogramTotals t = sumHistogram(stats, r.histogram);
      infoLine(text, r.info,
               "count=" + std::to_string(t.count) + ",usec=" + std::to_string(t.sum_us));
    }
  }
  // The near cache's hit ratio since start (/metrics has it per policy: the policies' families).
  const uint64_t hits = stats.sum(&Stats::Worker::near_hits);
  const uint64_t reads = hits + stats.sum(&Stats::Worker::near_misses);
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.4f",
                reads == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(reads));
  infoLine(text, "corral_near_hit_ratio", ratio);
  // One line per command, its per-command rows as key=value pairs, as Redis's cmdstat lines.
  const auto active = activeCommands(stats);
  std::string field;
  std::string value;
  for (size_t i = 0; i < Stats::kCommandSlots; ++i) {
    if (!active[i]) continue;
    field.assign(kInfoCommandPrefix);
    field.append(slotName(i));
    value.clear();
    for (const MetricRow& r : kRows) {
      if (r.per_command == nullptr || r.info.empty()) continue;
      if (!value.empty()) value.push_back(',');
      value.append(r.info);
      value.push_back('=');
      value.append(std::to_string(sumCommand(stats, r, i)));
    }
    infoLine(text, field, value);
  }
}

}  // namespace corral::net
