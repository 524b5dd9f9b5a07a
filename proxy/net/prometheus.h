// A writer of the Prometheus text exposition format (version 0.0.4), appending to a string:
//
//   header(name, type, help)   "# HELP name help" and "# TYPE name type", once per family
//   sample(name, [labels], v)  "name{k="v",...} 12"; label values escaped
//   sampleReal(name, v)        "name 1765051234.57" (a double)
//   histogram(name, ...)       the _bucket (cumulative, le="..."), _sum and _count samples
//
// Used by the metrics table (metrics_table.h) for net::Stats and by the admin endpoint for its
// process lines. It knows nothing of corral's counters, so other families (the policy registry's)
// can be written with it too.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace corral::net {

enum class MetricType : uint8_t { kCounter, kGauge, kHistogram };

// One label of a sample. Both views only need to live for the call.
struct Label {
  std::string_view name;   // [a-zA-Z_][a-zA-Z0-9_]*, not checked: our code names labels
  std::string_view value;  // any bytes; escaped as the format asks (\\, \", \n)
};

class PromWriter {
 public:
  // Appends to `out`, which must outlive the writer.
  explicit PromWriter(std::string& out) : out_(out) {}

  // The HELP and TYPE lines of a family; call once, before its samples. `help` is escaped.
  void header(std::string_view name, MetricType type, std::string_view help);

  void sample(std::string_view name, uint64_t value);
  void sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value);
  // A sample whose value is not a whole number (seconds, a timestamp): the shortest text that
  // reads back as the same double. A name of its own, so that sample(name, 1) stays unambiguous.
  void sampleReal(std::string_view name, double value);

  // Every sample of one histogram (its header is the caller's). `bounds` are the buckets' upper
  // bounds in the metric's unit, ascending; `buckets` holds bounds.size() + 1 counts, not
  // cumulative, the last one above every bound (le="+Inf"). `sum` is printed with six decimals,
  // the microsecond resolution of the sums we keep in seconds.
  void histogram(std::string_view name, std::initializer_list<Label> labels,
                 std::span<const double> bounds, std::span<const uint64_t> buckets, double sum,
                 uint64_t count);

 private:
  // `name{labels[,le="..."]} ` (no braces when there is no label at all).
  void series(std::string_view name, std::string_view suffix, std::initializer_list<Label> labels,
              std::string_view le);
  void escaped(std::string_view s, bool quote);
  void number(uint64_t v);

  std::string& out_;
};

}  // namespace corral::net
