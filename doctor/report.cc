#include "doctor/report.h"

#include <algorithm>
#include <cstdio>

namespace corral::doctor {

Finding finding(std::string check, Severity s, std::string seen, std::string action,
                std::string policy) {
  Finding f;
  f.check = std::move(check);
  f.severity = s;
  f.seen = std::move(seen);
  f.action = std::move(action);
  f.policy = std::move(policy);
  return f;
}

std::string_view severityName(Severity s) {
  switch (s) {
    case Severity::kOk:
      return "ok";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
  }
  return "?";
}

Severity Report::worst() const {
  Severity w = Severity::kOk;
  for (const Finding& f : findings) w = std::max(w, f.severity);
  return w;
}

int Report::exitCode() const {
  switch (worst()) {
    case Severity::kOk:
      return 0;
    case Severity::kWarning:
      return 1;
    case Severity::kError:
      return 2;
  }
  return 2;
}

namespace {

size_t countOf(const Report& r, Severity s) {
  return static_cast<size_t>(std::count_if(r.findings.begin(), r.findings.end(),
                                           [s](const Finding& f) { return f.severity == s; }));
}

std::string_view statusWord(Severity s) {
  switch (s) {
    case Severity::kOk:
      return "healthy";
    case Severity::kWarning:
      return "warnings";
    case Severity::kError:
      return "errors";
  }
  return "?";
}

}  // namespace

std::string renderText(const Report& r) {
  std::string out = "corral doctor: " + r.target + "\n";
  for (const auto& [k, v] : r.facts) out += "  " + k + ": " + v + "\n";
  out += "\n";
  // Worst first, so what needs doing is at the top; stable: checks keep their order within.
  std::vector<const Finding*> sorted;
  for (const Finding& f : r.findings) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Finding* a, const Finding* b) { return a->severity > b->severity; });
  for (const Finding* f : sorted) {
    std::string label = "[" + std::string(severityName(f->severity)) + "]";
    label.resize(10, ' ');
    out += label + f->check;
    if (!f->policy.empty()) out += " (policy " + f->policy + ")";
    out += "\n          seen:   " + f->seen + "\n";
    if (!f->action.empty()) out += "          action: " + f->action + "\n";
  }
  out += "\nsummary: " + std::to_string(countOf(r, Severity::kError)) + " error(s), " +
         std::to_string(countOf(r, Severity::kWarning)) + " warning(s), " +
         std::to_string(countOf(r, Severity::kOk)) + " ok: " + std::string(statusWord(r.worst())) +
         " (exit " + std::to_string(r.exitCode()) + ")\n";
  return out;
}

std::string jsonString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string renderJson(const Report& r) {
  std::string out = "{\"target\":" + jsonString(r.target) + ",\"facts\":{";
  for (size_t i = 0; i < r.facts.size(); ++i) {
    if (i > 0) out += ",";
    out += jsonString(r.facts[i].first) + ":" + jsonString(r.facts[i].second);
  }
  out += "},\"findings\":[";
  for (size_t i = 0; i < r.findings.size(); ++i) {
    const Finding& f = r.findings[i];
    if (i > 0) out += ",";
    out += "{\"check\":" + jsonString(f.check) +
           ",\"severity\":" + jsonString(severityName(f.severity)) +
           ",\"policy\":" + (f.policy.empty() ? std::string("null") : jsonString(f.policy)) +
           ",\"seen\":" + jsonString(f.seen) + ",\"action\":" + jsonString(f.action) + "}";
  }
  out += "],\"summary\":{\"ok\":" + std::to_string(countOf(r, Severity::kOk)) +
         ",\"warning\":" + std::to_string(countOf(r, Severity::kWarning)) +
         ",\"error\":" + std::to_string(countOf(r, Severity::kError)) +
         ",\"exit_code\":" + std::to_string(r.exitCode()) +
         ",\"status\":" + jsonString(statusWord(r.worst())) + "}}\n";
  return out;
}

std::string shownKey(std::string_view key, size_t max) {
  std::string out;
  const size_t n = std::min(key.size(), max);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (key.size() > max) out += "...";
  return out;
}

}  // namespace corral::doctor
