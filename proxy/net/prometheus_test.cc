// PromWriter: the exact text of headers, samples, label escaping and histograms.
#include "proxy/net/prometheus.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

namespace corral::net {
namespace {

TEST_CASE("header and plain samples") {
  std::string out = "before\n";
  PromWriter w(out);
  w.header("x_total", MetricType::kCounter, "Things.");
  w.sample("x_total", 0);
  w.sample("x_total", UINT64_MAX);
  w.header("g", MetricType::kGauge, "A gauge.");
  w.header("h", MetricType::kHistogram, "A histogram.");
  CHECK(out ==
        "before\n"
        "# HELP x_total Things.\n# TYPE x_total counter\n"
        "x_total 0\nx_total 18446744073709551615\n"
        "# HELP g A gauge.\n# TYPE g gauge\n"
        "# HELP h A histogram.\n# TYPE h histogram\n");
}

TEST_CASE("real samples: the shortest text that reads back as the same double") {
  std::string out;
  PromWriter w(out);
  w.sampleReal("s", 0.25);
  w.sampleReal("s", 1765051234.57);
  w.sampleReal("s", 3.0);
  CHECK(out == "s 0.25\ns 1765051234.57\ns 3\n");
}

TEST_CASE("labels are escaped in values, HELP text keeps its quotes") {
  std::string out;
  PromWriter w(out);
  w.header("y", MetricType::kCounter, "say \"hi\" \\ or\nnot");
  w.sample("y", {{"command", "client|setname"}}, 3);
  w.sample("y", {{"policy", "a\"b\\c\nd"}, {"action", "fixed"}}, 4);
  CHECK(out ==
        "# HELP y say \"hi\" \\\\ or\\nnot\n# TYPE y counter\n"
        "y{command=\"client|setname\"} 3\n"
        "y{policy=\"a\\\"b\\\\c\\nd\",action=\"fixed\"} 4\n");
}

TEST_CASE("histogram: cumulative buckets, +Inf, sum and count, with and without labels") {
  const double bounds[] = {0.001, 0.25};
  const uint64_t buckets[] = {2, 0, 5};
  std::string out;
  PromWriter w(out);
  w.histogram("d_seconds", {}, bounds, buckets, 1.5, 7);
  w.histogram("d_seconds", {{"policy", "p"}}, bounds, buckets, 0.0000026, 7);
  CHECK(out ==
        "d_seconds_bucket{le=\"0.001\"} 2\n"
        "d_seconds_bucket{le=\"0.25\"} 2\n"
        "d_seconds_bucket{le=\"+Inf\"} 7\n"
        "d_seconds_sum 1.500000\n"
        "d_seconds_count 7\n"
        "d_seconds_bucket{policy=\"p\",le=\"0.001\"} 2\n"
        "d_seconds_bucket{policy=\"p\",le=\"0.25\"} 2\n"
        "d_seconds_bucket{policy=\"p\",le=\"+Inf\"} 7\n"
        "d_seconds_sum{policy=\"p\"} 0.000003\n"
        "d_seconds_count{policy=\"p\"} 7\n");
}

}  // namespace
}  // namespace corral::net
