// The metrics of net::Stats, each declared once and rendered twice:
//
//   metricRows(): name, type, help, Stats::Worker field, INFO field
//        |
//        +--> writePrometheus(stats, writer) --> admin's GET /metrics
//        +--> appendProxyInfoLines(stats, text) --> INFO's "# Proxy" section, after the lines
//                                                   that are not counters (Client::appendProxyInfo)
//
// Both renderers read the same rows and sum the worker blocks with Stats::sum, so a counter
// added to the table shows in both. Row order is output order.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "proxy/net/prometheus.h"
#include "proxy/net/stats.h"

namespace corral::net {

// One metric. Exactly one of the three field pointers is set; `type` says which:
// kCounter or kGauge with `counter` (one number) or `per_command` (one number per command and
// subcommand, labelled command="client|setname"), kHistogram with `histogram`.
struct MetricRow {
  std::string_view name;  // Prometheus family name; dashboards use it, so never rename one
  MetricType type = MetricType::kCounter;
  std::string_view help;
  Counter Stats::Worker::*counter = nullptr;
  Stats::CommandCounters Stats::Worker::*per_command = nullptr;
  LatencyHistogram Stats::Worker::*histogram = nullptr;
  // How INFO shows it. counter: the field name ("name:value"); "" leaves it out of INFO (the row
  // says where INFO shows it instead). per_command: the key in the command's line, as in
  // Redis's cmdstat ("corral_cmdstat_get:calls=3,failed_calls=1"). histogram: the field name of
  // "name:count=N,usec=S".
  std::string_view info;
};

// Every row, in output order. Static storage.
std::span<const MetricRow> metricRows();

// INFO's per-command lines start with this, followed by the command's table name
// ("client|setname"), mirroring Redis's "cmdstat_client|setname".
inline constexpr std::string_view kInfoCommandPrefix = "corral_cmdstat_";
// The command label of the slot all commands learnt from the server share (commands::kLearntId).
inline constexpr std::string_view kLearntSlotName = "(learnt)";

// Appends every row as Prometheus text. Per-command rows list only the commands that have a
// non-zero count in some per-command row, so every such family names the same commands.
void writePrometheus(const Stats& stats, PromWriter& w);

// Appends the rows' INFO lines ("field:value\r\n"), then one cmdstat line per command called.
void appendProxyInfoLines(const Stats& stats, std::string& text);

}  // namespace corral::net
