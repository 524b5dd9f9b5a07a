// The standard process metrics of the Prometheus client libraries, by their names and types, so
// that dashboards and alerts written for any process work on corral too:
//
//   /proc/self/stat --parseProcStat--> ProcStat (CPU and start ticks, sizes) --+
//   /proc/stat      --parseBootTime--> boot time, seconds since the epoch -----+--> ProcessSample
//   /proc/self/fd (entries), getrlimit(RLIMIT_NOFILE) -------------------------+        |
//                                                       writeProcessMetrics(sample, writer)
//
// process_cpu_seconds_total (counter), process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds
// (gauges). The parsers are pure (tested on text); readProcessSample() is the only part that
// reads files, on the admin thread, once per scrape.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/net/prometheus.h"

namespace corral::admin {

// The fields of /proc/<pid>/stat the metrics need (proc(5): fields 14, 15, 22, 23, 24).
struct ProcStat {
  uint64_t utime_ticks = 0;  // user CPU time, in clock ticks (sysconf(_SC_CLK_TCK))
  uint64_t stime_ticks = 0;  // system CPU time, in clock ticks
  uint64_t start_ticks = 0;  // start time after boot, in clock ticks
  uint64_t vsize_bytes = 0;  // virtual memory size
  uint64_t rss_pages = 0;    // resident set size, in pages
};

// Parses one /proc/<pid>/stat line. The command name (field 2) is in parentheses and may hold
// spaces and parentheses itself, so fields are counted from the last ')'. Nullopt when a field
// is missing or not a number.
std::optional<ProcStat> parseProcStat(std::string_view text);

// The "btime N" line of /proc/stat: boot time in seconds since the epoch; nullopt without one.
std::optional<uint64_t> parseBootTime(std::string_view proc_stat);

// One scrape's values, in the metrics' units.
struct ProcessSample {
  double cpu_seconds = 0;
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  double start_time_seconds = 0;  // since the epoch
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;  // the soft RLIMIT_NOFILE (UINT64_MAX when unlimited)
};

// The sample from parsed values: ticks_per_second is sysconf(_SC_CLK_TCK), page_bytes the page
// size. Pure.
ProcessSample processSample(const ProcStat& stat, uint64_t boot_time_seconds,
                            uint64_t ticks_per_second, uint64_t page_bytes, uint64_t open_fds,
                            uint64_t max_fds);

// Reads this process's values from /proc and getrlimit; nullopt when /proc is not there (the
// metrics are then left out rather than reported as zeros).
std::optional<ProcessSample> readProcessSample();

// Appends the six families (HELP, TYPE and one sample each).
void writeProcessMetrics(const ProcessSample& s, net::PromWriter& w);

}  // namespace corral::admin
