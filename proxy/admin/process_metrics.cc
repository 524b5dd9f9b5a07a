#include "proxy/admin/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <string>

namespace corral::admin {
namespace {

bool parseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// The next space-separated token of *rest (consumed from it); empty at the end.
std::string_view nextToken(std::string_view* rest) {
  const size_t start = rest->find_first_not_of(" \n");
  if (start == std::string_view::npos) {
    *rest = {};
    return {};
  }
  size_t end = rest->find_first_of(" \n", start);
  if (end == std::string_view::npos) end = rest->size();
  const std::string_view tok = rest->substr(start, end - start);
  rest->remove_prefix(end);
  return tok;
}

// A whole small file (a /proc file reports size 0, so read until EOF); "" when it cannot.
std::string readSmallFile(const char* path) {
  std::string out;
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

uint64_t countOpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.')
      ++n;  // skips "." and ".."; the directory's own fd counts, as in
            // the Prometheus clients
  }
  ::closedir(d);
  return n;
}

}  // namespace

std::optional<ProcStat> parseProcStat(std::string_view text) {
  const size_t paren = text.rfind(')');
  if (paren == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(paren + 1);
  // Field 3 (state) is the first token after the name; we want fields 14, 15, 22, 23 and 24.
  ProcStat s;
  for (int field = 3; field <= 24; ++field) {
    const std::string_view tok = nextToken(&rest);
    if (tok.empty()) return std::nullopt;
    uint64_t* dst = nullptr;
    switch (field) {
      case 14:
        dst = &s.utime_ticks;
        break;
      case 15:
        dst = &s.stime_ticks;
        break;
      case 22:
        dst = &s.start_ticks;
        break;
      case 23:
        dst = &s.vsize_bytes;
        break;
      case 24:
        dst = &s.rss_pages;
        break;
      default:
        break;
    }
    if (dst != nullptr && !parseU64(tok, dst)) return std::nullopt;
  }
  return s;
}

std::optional<uint64_t> parseBootTime(std::string_view proc_stat) {
  size_t pos = 0;
  while (pos < proc_stat.size()) {
    size_t end = proc_stat.find('\n', pos);
    if (end == std::string_view::npos) end = proc_stat.size();
    std::string_view line = proc_stat.substr(pos, end - pos);
    pos = end + 1;
    if (!line.starts_with("btime ")) continue;
    line.remove_prefix(6);
    uint64_t v = 0;
    if (parseU64(nextToken(&line), &v)) return v;
    return std::nullopt;
  }
  return std::nullopt;
}

ProcessSample processSample(const ProcStat& stat, uint64_t boot_time_seconds,
                            uint64_t ticks_per_second, uint64_t page_bytes, uint64_t open_fds,
                            uint64_t max_fds) {
  const double hz = ticks_per_second == 0 ? 100.0 : static_cast<double>(ticks_per_second);
  ProcessSample s;
  s.cpu_seconds = static_cast<double>(stat.utime_ticks + stat.stime_ticks) / hz;
  s.resident_bytes = stat.rss_pages * page_bytes;
  s.virtual_bytes = stat.vsize_bytes;
  s.start_time_seconds =
      static_cast<double>(boot_time_seconds) + static_cast<double>(stat.start_ticks) / hz;
  s.open_fds = open_fds;
  s.max_fds = max_fds;
  return s;
}

std::optional<ProcessSample> readProcessSample() {
  const std::optional<ProcStat> stat = parseProcStat(readSmallFile("/proc/self/stat"));
  const std::optional<uint64_t> boot = parseBootTime(readSmallFile("/proc/stat"));
  if (!stat || !boot) return std::nullopt;
  rlimit rl{};
  uint64_t max_fds = 0;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(rl.rlim_cur);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  return processSample(*stat, *boot, hz > 0 ? static_cast<uint64_t>(hz) : 100,
                       page > 0 ? static_cast<uint64_t>(page) : 4096, countOpenFds(), max_fds);
}

void writeProcessMetrics(const ProcessSample& s, net::PromWriter& w) {
  using net::MetricType;
  w.header("process_cpu_seconds_total", MetricType::kCounter,
           "CPU time the process used, user and system, in seconds.");
  w.sampleReal("process_cpu_seconds_total", s.cpu_seconds);
  w.header("process_resident_memory_bytes", MetricType::kGauge,
           "Memory the process holds in RAM (RSS), in bytes.");
  w.sample("process_resident_memory_bytes", s.resident_bytes);
  w.header("process_virtual_memory_bytes", MetricType::kGauge,
           "The process's virtual address space, in bytes.");
  w.sample("process_virtual_memory_bytes", s.virtual_bytes);
  w.header("process_open_fds", MetricType::kGauge, "File descriptors the process has open.");
  w.sample("process_open_fds", s.open_fds);
  w.header("process_max_fds", MetricType::kGauge,
           "The limit on open file descriptors (soft RLIMIT_NOFILE).");
  w.sample("process_max_fds", s.max_fds);
  w.header("process_start_time_seconds", MetricType::kGauge,
           "When the process started, in seconds since the Unix epoch.");
  w.sampleReal("process_start_time_seconds", s.start_time_seconds);
}

}  // namespace corral::admin
