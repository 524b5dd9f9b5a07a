#include "proxy/net/prometheus.h"

#include <charconv>
#include <cstdio>

namespace corral::net {
namespace {

std::string_view typeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

void PromWriter::header(std::string_view name, MetricType type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  escaped(help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += typeName(type);
  out_ += '\n';
}

void PromWriter::sample(std::string_view name, uint64_t value) { sample(name, {}, value); }

void PromWriter::sample(std::string_view name, std::initializer_list<Label> labels,
                        uint64_t value) {
  series(name, "", labels, "");
  number(value);
  out_ += '\n';
}

void PromWriter::sampleReal(std::string_view name, double value) {
  series(name, "", {}, "");
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, r.ptr);
  out_ += '\n';
}

void PromWriter::histogram(std::string_view name, std::initializer_list<Label> labels,
                           std::span<const double> bounds, std::span<const uint64_t> buckets,
                           double sum, uint64_t count) {
  uint64_t cumulative = 0;
  char le[32];
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (i < buckets.size()) cumulative += buckets[i];
    std::snprintf(le, sizeof le, "%g", bounds[i]);
    series(name, "_bucket", labels, le);
    number(cumulative);
    out_ += '\n';
  }
  // +Inf counts every observation, whatever the caller's bucket count.
  for (size_t i = bounds.size(); i < buckets.size(); ++i) cumulative += buckets[i];
  series(name, "_bucket", labels, "+Inf");
  number(cumulative);
  out_ += '\n';
  char s[48];
  std::snprintf(s, sizeof s, "%.6f", sum);
  series(name, "_sum", labels, "");
  out_ += s;
  out_ += '\n';
  series(name, "_count", labels, "");
  number(count);
  out_ += '\n';
}

void PromWriter::series(std::string_view name, std::string_view suffix,
                        std::initializer_list<Label> labels, std::string_view le) {
  out_ += name;
  out_ += suffix;
  if (labels.size() != 0 || !le.empty()) {
    char sep = '{';
    for (const Label& l : labels) {
      out_ += sep;
      out_ += l.name;
      out_ += "=\"";
      escaped(l.value, true);
      out_ += '"';
      sep = ',';
    }
    if (!le.empty()) {
      out_ += sep;
      out_ += "le=\"";
      out_ += le;
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
}

// The format escapes backslash and newline in HELP text, and also the double quote in label
// values; anything else goes as it is (UTF-8 is allowed).
void PromWriter::escaped(std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else if (c == '"' && quote) {
      out_ += "\\\"";
    } else {
      out_ += c;
    }
  }
}

void PromWriter::number(uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
}

}  // namespace corral::net
