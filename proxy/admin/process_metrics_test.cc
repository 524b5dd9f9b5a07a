// process_metrics.h: the /proc parsers on made-up text, the sample's units, and the families as
// text; one real read of this test's own process.
#include "proxy/admin/process_metrics.h"

#include <doctest/doctest.h>

#include <string>

namespace corral::admin {
namespace {

// Fields 1-24 of a /proc/<pid>/stat line, with `comm` as field 2: utime 250, stime 50,
// starttime 12345, vsize 104857600, rss 2560.
std::string statLine(const std::string& comm) {
  return "4242 (" + comm +
         ") S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 5 0 12345 104857600 2560 "
         "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n";
}

}  // namespace

TEST_CASE("parseProcStat: the fields after the command name, whatever the name holds") {
  for (const std::string comm : {"corral", "corral-w0", "a b", "x) S 9 9 (y", ")", ""}) {
    CAPTURE(comm);
    const auto s = parseProcStat(statLine(comm));
    REQUIRE(s.has_value());
    CHECK(s->utime_ticks == 250);
    CHECK(s->stime_ticks == 50);
    CHECK(s->start_ticks == 12345);
    CHECK(s->vsize_bytes == 104857600);
    CHECK(s->rss_pages == 2560);
  }
}

TEST_CASE("parseProcStat: short, garbled or empty input is refused") {
  CHECK_FALSE(parseProcStat(""));
  CHECK_FALSE(parseProcStat("4242 corral S 1"));  // no parentheses
  CHECK_FALSE(parseProcStat("4242 (corral) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50"));
  std::string bad = statLine("corral");
  bad.replace(bad.find(" 250 "), 5, " 2x0 ");
  CHECK_FALSE(parseProcStat(bad));
  // Fields past 24 may be missing (older kernels have fewer): not needed.
  const std::string line = statLine("corral");
  const size_t cut = line.find(" 2560 ") + 5;
  CHECK(parseProcStat(line.substr(0, cut)).has_value());
}

TEST_CASE("parseBootTime: the btime line, anywhere in /proc/stat") {
  CHECK(parseBootTime("cpu  1 2 3\ncpu0 1 2 3\nintr 5\nctxt 9\nbtime 1765000000\nprocesses 7\n") ==
        1765000000);
  CHECK(parseBootTime("btime 17\n") == 17);
  CHECK(parseBootTime("btime 17") == 17);
  CHECK_FALSE(parseBootTime("cpu 1 2 3\nctxt 9\n"));
  CHECK_FALSE(parseBootTime("btime x\n"));
  CHECK_FALSE(parseBootTime("xbtime 17\n"));
}

TEST_CASE("processSample: ticks to seconds, pages to bytes, start after boot") {
  ProcStat st;
  st.utime_ticks = 250;
  st.stime_ticks = 50;
  st.start_ticks = 12345;
  st.vsize_bytes = 104857600;
  st.rss_pages = 2560;
  const ProcessSample s = processSample(st, 1765000000, 100, 4096, 12, 1024);
  CHECK(s.cpu_seconds == doctest::Approx(3.0));
  CHECK(s.resident_bytes == 2560u * 4096u);
  CHECK(s.virtual_bytes == 104857600u);
  CHECK(s.start_time_seconds == doctest::Approx(1765000123.45));
  CHECK(s.open_fds == 12);
  CHECK(s.max_fds == 1024);
}

TEST_CASE("writeProcessMetrics: the six families with the client libraries' names and types") {
  ProcessSample s;
  s.cpu_seconds = 3.5;
  s.resident_bytes = 10485760;
  s.virtual_bytes = 104857600;
  s.start_time_seconds = 1765000123.45;
  s.open_fds = 12;
  s.max_fds = 1024;
  std::string out;
  net::PromWriter w(out);
  writeProcessMetrics(s, w);
  CHECK(out.find("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.5\n") !=
        std::string::npos);
  CHECK(out.find("# TYPE process_resident_memory_bytes gauge\n"
                 "process_resident_memory_bytes 10485760\n") != std::string::npos);
  CHECK(out.find("# TYPE process_virtual_memory_bytes gauge\n"
                 "process_virtual_memory_bytes 104857600\n") != std::string::npos);
  CHECK(out.find("# TYPE process_open_fds gauge\nprocess_open_fds 12\n") != std::string::npos);
  CHECK(out.find("# TYPE process_max_fds gauge\nprocess_max_fds 1024\n") != std::string::npos);
  CHECK(out.find("# TYPE process_start_time_seconds gauge\n"
                 "process_start_time_seconds 1765000123.45\n") != std::string::npos);
}

TEST_CASE("readProcessSample: this process's own values are plausible") {
  const auto s = readProcessSample();
  REQUIRE(s.has_value());  // Linux with /proc
  CHECK(s->resident_bytes > 0);
  CHECK(s->virtual_bytes >= s->resident_bytes);
  CHECK(s->open_fds >= 3);  // stdin, stdout, stderr at least
  CHECK(s->max_fds >= s->open_fds);
  CHECK(s->start_time_seconds > 1.6e9);  // after 2020
  CHECK(s->cpu_seconds >= 0);
}

}  // namespace corral::admin
