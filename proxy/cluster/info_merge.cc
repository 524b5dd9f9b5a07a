#include "proxy/cluster/info_merge.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "commands/command_table.h"
#include "proxy/cluster/split.h"
#include "proxy/codec/resp.h"

namespace corral::cluster {
namespace {

enum class SectionRule : uint8_t { kFirst, kCounters, kUnion, kCluster };
enum class FieldRule : uint8_t { kFirst, kSum, kMax, kRate, kHuman };

struct Section {
  std::string_view header;              // the "# Name" line; empty for lines before any header
  std::string_view name;                // "Name"
  std::vector<std::string_view> lines;  // its lines, empty ones (separators) left out
};

// One primary's INFO text: its sections, and every "key:value" line's value by key (the keys of
// Redis's INFO are unique across sections; a repeated one keeps its first value).
struct Parsed {
  std::vector<Section> sections;
  std::unordered_map<std::string_view, std::string_view> fields;
};

Parsed parse(std::string_view text) {
  Parsed p;
  p.sections.emplace_back();
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line[0] == '#') {
      Section& s = p.sections.emplace_back();
      s.header = line;
      s.name = line.substr(std::min(line.find_first_not_of("# "), line.size()));
      continue;
    }
    p.sections.back().lines.push_back(line);
    if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
      p.fields.emplace(line.substr(0, colon), line.substr(colon + 1));
    }
  }
  return p;
}

SectionRule sectionRule(std::string_view name) {
  using commands::equalsIgnoreCase;
  if (equalsIgnoreCase(name, "clients") || equalsIgnoreCase(name, "memory") ||
      equalsIgnoreCase(name, "stats")) {
    return SectionRule::kCounters;
  }
  if (equalsIgnoreCase(name, "keyspace") || equalsIgnoreCase(name, "commandstats") ||
      equalsIgnoreCase(name, "errorstats")) {
    return SectionRule::kUnion;
  }
  return equalsIgnoreCase(name, "cluster") ? SectionRule::kCluster : SectionRule::kFirst;
}

// A field of # Clients, # Memory or # Stats.
FieldRule counterRule(std::string_view key) {
  // One node's peaks, and what every primary holds its own copy of (SCRIPT LOAD and FUNCTION
  // LOAD go to every primary): summing would count one thing once per primary.
  static constexpr std::string_view kMax[] = {
      "client_recent_max_input_buffer",
      "client_recent_max_output_buffer",
      "latest_fork_usec",
      "current_eviction_exceeded_time",
      "current_active_defrag_time",
      "number_of_cached_scripts",
      "number_of_functions",
      "number_of_libraries",
  };
  // Settings, flags and facts of the machine: the same kind of number on every primary.
  static constexpr std::string_view kFirst[] = {
      "maxclients",
      "maxmemory",
      "total_system_memory",
      "active_defrag_running",
  };
  if (key.ends_with("_human")) return FieldRule::kHuman;
  if (std::find(std::begin(kMax), std::end(kMax), key) != std::end(kMax)) return FieldRule::kMax;
  if (std::find(std::begin(kFirst), std::end(kFirst), key) != std::end(kFirst)) {
    return FieldRule::kFirst;
  }
  if (key.starts_with("instantaneous_")) return FieldRule::kRate;
  return FieldRule::kSum;
}

bool toInt(std::string_view s, int64_t* v) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

bool toDouble(std::string_view s, double* v) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

// Sum (or largest, max=true) of integer values; false when one is not an integer or it overflows.
bool combineInts(std::span<const std::string_view> values, bool max, int64_t* out) {
  int64_t acc = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    int64_t v = 0;
    if (!toInt(values[i], &v)) return false;
    if (i == 0) {
      acc = v;
    } else if (max) {
      acc = std::max(acc, v);
    } else if (__builtin_add_overflow(acc, v, &acc)) {
      return false;
    }
  }
  *out = acc;
  return !values.empty();
}

void appendFixed2(std::string* out, double v) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof(buf), "%.2f", v);
  if (n > 0) out->append(buf, std::min(static_cast<size_t>(n), sizeof(buf) - 1));
}

// Redis's bytesToHuman (server.c): "200B", "919.09K", "11.87M", ... two decimals past 1 KiB.
void appendHuman(std::string* out, uint64_t n) {
  static constexpr char kUnits[] = "KMGTP";
  if (n < 1024) {
    out->append(std::to_string(n));
    out->push_back('B');
    return;
  }
  double scale = 1024.0;
  for (char unit : std::string_view(kUnits)) {
    if (static_cast<double>(n) < scale * 1024.0) {
      appendFixed2(out, static_cast<double>(n) / scale);
      out->push_back(unit);
      return;
    }
    scale *= 1024.0;
  }
  out->append(std::to_string(n));  // past the petabytes, as Redis does
  out->push_back('B');
}

// The value of subfield `name` in "a=1,b=2"; false when there is none.
bool subfield(std::string_view value, std::string_view name, std::string_view* out) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view part = value.substr(0, comma);
    if (part.size() > name.size() && part[name.size()] == '=' && part.starts_with(name)) {
      *out = part.substr(name.size() + 1);
      return true;
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Sum of subfield `name` over values; false unless every value has it as an integer.
bool sumSubfield(std::span<const std::string_view> values, std::string_view name, int64_t* out) {
  int64_t acc = 0;
  for (std::string_view v : values) {
    std::string_view s;
    int64_t n = 0;
    if (!subfield(v, name, &s) || !toInt(s, &n) || __builtin_add_overflow(acc, n, &acc)) {
      return false;
    }
  }
  *out = acc;
  return true;
}

// avg_ttl over the primaries, weighted by their expires; those reporting 0 (Redis has not
// sampled yet) do not count. False when a value lacks either subfield.
bool weightedTtl(std::span<const std::string_view> values, int64_t* out) {
  double weighted = 0;
  double weight = 0;
  for (std::string_view v : values) {
    std::string_view ttl_s;
    std::string_view exp_s;
    int64_t ttl = 0;
    int64_t exp = 0;
    if (!subfield(v, "avg_ttl", &ttl_s) || !subfield(v, "expires", &exp_s) || !toInt(ttl_s, &ttl) ||
        !toInt(exp_s, &exp)) {
      return false;
    }
    if (ttl <= 0 || exp <= 0) continue;
    weighted += static_cast<double>(ttl) * static_cast<double>(exp);
    weight += static_cast<double>(exp);
  }
  *out = weight > 0 ? static_cast<int64_t>(weighted / weight + 0.5) : 0;
  return true;
}

// A "k=v,k=v" value of # Keyspace, # Commandstats or # Errorstats: values[0] gives the
// subfields and their order.
void appendSubfields(std::span<const std::string_view> values, std::string* out) {
  std::string_view rest = values[0];
  bool first = true;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view part = rest.substr(0, comma);
    const size_t eq = part.find('=');
    if (!first) out->push_back(',');
    first = false;
    if (eq == std::string_view::npos) {
      out->append(part);
    } else {
      const std::string_view name = part.substr(0, eq);
      out->append(part.substr(0, eq + 1));
      int64_t n = 0;
      int64_t calls = 0;
      if (name == "usec_per_call") {
        if (sumSubfield(values, "usec", &n) && sumSubfield(values, "calls", &calls)) {
          appendFixed2(out, calls == 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(calls));
        } else {
          out->append(part.substr(eq + 1));
        }
      } else if (name == "avg_ttl" ? weightedTtl(values, &n) : sumSubfield(values, name, &n)) {
        out->append(std::to_string(n));
      } else {
        out->append(part.substr(eq + 1));
      }
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
}

class InfoMerger {
 public:
  InfoMerger(std::span<const std::string_view> texts, std::string* out) : out_(out) {
    parsed_.reserve(texts.size());
    for (std::string_view t : texts) parsed_.push_back(parse(t));
  }

  void run() {
    bool first_section = true;
    for (const Section& s : parsed_[0].sections) {
      if (s.header.empty() && s.lines.empty()) continue;
      if (!first_section) out_->append("\r\n");
      first_section = false;
      if (!s.header.empty()) line(s.header);
      const SectionRule rule = sectionRule(s.name);
      for (std::string_view l : s.lines) {
        const size_t colon = l.find(':');
        if (colon == std::string_view::npos || rule == SectionRule::kFirst ||
            rule == SectionRule::kCluster) {
          line(l);
          continue;
        }
        const std::string_view key = l.substr(0, colon);
        out_->append(l.substr(0, colon + 1));
        if (rule == SectionRule::kCounters) {
          appendCounter(key, l.substr(colon + 1));
        } else {
          appendUnion(key, 0);
        }
        out_->append("\r\n");
      }
      if (rule == SectionRule::kUnion) appendOthersOnly(s.name);
      if (rule == SectionRule::kCluster) {
        out_->append(kMergedPrimariesField);
        out_->push_back(':');
        out_->append(std::to_string(parsed_.size()));
        out_->append("\r\n");
      }
    }
  }

 private:
  void line(std::string_view l) {
    out_->append(l);
    out_->append("\r\n");
  }

  // The values of `key` in replies from..end that have it (reused buffer).
  std::span<const std::string_view> values(std::string_view key, size_t from) {
    values_.clear();
    for (size_t i = from; i < parsed_.size(); ++i) {
      if (auto it = parsed_[i].fields.find(key); it != parsed_[i].fields.end()) {
        values_.push_back(it->second);
      }
    }
    return values_;
  }

  // The merged integer of a summed or maxed counter; false for the first's rule or a value
  // that is not an integer somewhere.
  bool mergedInt(std::string_view key, int64_t* n) {
    const FieldRule rule = counterRule(key);
    if (rule != FieldRule::kSum && rule != FieldRule::kMax) return false;
    return combineInts(values(key, 0), rule == FieldRule::kMax, n);
  }

  void appendCounter(std::string_view key, std::string_view first) {
    int64_t n = 0;
    switch (counterRule(key)) {
      case FieldRule::kSum:
      case FieldRule::kMax:
        if (mergedInt(key, &n)) {
          out_->append(std::to_string(n));
          return;
        }
        break;
      case FieldRule::kRate: {
        if (combineInts(values(key, 0), false, &n)) {
          out_->append(std::to_string(n));
          return;
        }
        double sum = 0;
        bool ok = true;
        for (std::string_view v : values(key, 0)) {
          double d = 0;
          ok = ok && toDouble(v, &d);
          sum += d;
        }
        if (ok) {
          appendFixed2(out_, sum);
          return;
        }
        break;
      }
      case FieldRule::kHuman:
        if (mergedInt(key.substr(0, key.size() - 6), &n) && n >= 0) {
          appendHuman(out_, static_cast<uint64_t>(n));
          return;
        }
        break;
      case FieldRule::kFirst:
        break;
    }
    out_->append(first);
  }

  // A line of a merged-by-line section, its value from replies from..end that have it.
  void appendUnion(std::string_view key, size_t from) {
    const std::span<const std::string_view> v = values(key, from);
    if (!v.empty()) appendSubfields(v, out_);
  }

  // The lines of section `name` that the first reply lacks, in the order first met.
  void appendOthersOnly(std::string_view name) {
    std::unordered_set<std::string_view> done;
    for (size_t i = 1; i < parsed_.size(); ++i) {
      for (const Section& s : parsed_[i].sections) {
        if (s.header.empty() || !commands::equalsIgnoreCase(s.name, name)) continue;
        for (std::string_view l : s.lines) {
          const size_t colon = l.find(':');
          if (colon == std::string_view::npos) continue;
          const std::string_view key = l.substr(0, colon);
          if (parsed_[0].fields.contains(key) || !done.insert(key).second) continue;
          out_->append(l.substr(0, colon + 1));
          appendUnion(key, i);
          out_->append("\r\n");
        }
      }
    }
  }

  std::vector<Parsed> parsed_;
  std::vector<std::string_view> values_;
  std::string* out_;
};

}  // namespace

void mergeInfoText(std::span<const std::string_view> texts, std::string* out) {
  if (texts.empty()) return;
  InfoMerger(texts, out).run();
}

void mergeInfo(std::span<const std::string_view> replies, std::string* out) {
  std::vector<std::string_view> texts;
  texts.reserve(replies.size());
  std::string_view format;  // the first reply's verbatim format; empty for a bulk string
  for (std::string_view r : replies) {
    codec::FrameReader rd(r);
    std::string_view text;
    std::string_view fmt;
    bool nil = false;
    const bool ok = r.starts_with('=') ? rd.verbatim(&text, &fmt)
                                       : r.starts_with('$') && rd.bulk(&text, &nil) && !nil;
    if (!ok || !rd.atEnd()) {
      out->append(kBadFragmentReply);
      return;
    }
    if (texts.empty()) format = fmt;
    texts.push_back(text);
  }
  if (texts.empty()) {
    out->append(kBadFragmentReply);
    return;
  }
  std::string text;
  mergeInfoText(texts, &text);
  if (format.empty()) {
    codec::appendBulk(*out, text);
    return;
  }
  out->push_back('=');
  out->append(std::to_string(format.size() + 1 + text.size()));
  out->append("\r\n");
  out->append(format);
  out->push_back(':');
  out->append(text);
  out->append("\r\n");
}

}  // namespace corral::cluster
