// What corral doctor found, and how it is shown: findings with their evidence and action, a
// readable text report or one JSON object, and the exit code.
//
//   checks (server_checks.cc, keyspace.cc) --add(Finding)--> Report --renderText/renderJson
//                                                                   --exitCode(): 0, 1 or 2
//
// Pure: no I/O. Nothing in a Report may hold a password or a value read from Redis; key names
// are escaped and cut (shownKey) before they are put in one.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corral::doctor {

enum class Severity { kOk, kWarning, kError };

// "ok", "warning", "error".
std::string_view severityName(Severity s);

// One check's outcome. check is a stable id ("maxmemory", "eviction_policy", "keys_no_ttl", ...)
// that scripts can match; seen holds the numbers the verdict rests on; action is what an
// operator should do ("" when there is nothing to do).
struct Finding {
  std::string check;
  Severity severity = Severity::kOk;
  std::string seen;
  std::string action;
  std::string policy;  // keyspace findings: the policy concerned ("" = none / not per policy)
};

// A finding in one expression: finding("maxmemory", Severity::kError, "maxmemory 0 (unset)",
// "...").
Finding finding(std::string check, Severity s, std::string seen, std::string action = "",
                std::string policy = "");

struct Report {
  std::string target;  // the address checked, as endpointText() gives it (never credentials)
  // Facts shown in the header and the JSON summary, in order: version, mode, role, ...
  std::vector<std::pair<std::string, std::string>> facts;
  std::vector<Finding> findings;

  void add(Finding f) { findings.push_back(std::move(f)); }
  Severity worst() const;
  // 0 every finding ok, 1 a warning, 2 an error.
  int exitCode() const;
};

// The report for people: a header, one block per finding (worst first, then in check order),
// and a summary line.
std::string renderText(const Report& r);
// One JSON object: {"target", "facts": {...}, "findings": [{check, severity, policy, seen,
// action}], "summary": {"ok", "warning", "error", "exit_code", "status"}}.
std::string renderJson(const Report& r);

// A JSON string literal of s (quotes included); bytes outside printable ASCII as \u00XX.
std::string jsonString(std::string_view s);
// A key name fit for a report: at most max bytes (then "..."), non-printable bytes as \xHH.
std::string shownKey(std::string_view key, size_t max = 60);

}  // namespace corral::doctor
