// A bounded sample of the keyspace, judged by the proxy's own policy rules.
//
//   SCAN cursor COUNT kScanCount --keys--> PolicySet::classify(key): policy, template, length
//       pipelined per page: PTTL (keys of policies with ttl.require), MEMORY USAGE (every key)
//   until the cursor is back at 0, max_keys keys are seen, or max_time has passed
//   --> per policy: keys breaking its template, keys without a required TTL, big values;
//       keys no policy covers
//
// Run against a replica when the config names one (the sample's SCAN and MEMORY USAGE then cost
// the primary nothing). Keys are shown cut short and escaped (shownKey); values are never read.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "doctor/connection.h"
#include "doctor/report.h"
#include "policies/engine.h"

namespace corral::doctor {

struct SampleLimits {
  uint64_t max_keys = 10000;                 // keys looked at, at most
  std::chrono::milliseconds max_time{5000};  // time spent, at most (checked between pages)
  uint64_t big_value_bytes = 100 * 1024;     // MEMORY USAGE above this: a big value
};

// What a sample saw, per policy name ("" = keys no policy covers). Pure data, so the findings
// are tested without a server.
struct PolicyTally {
  std::string match;  // the policy's template ("" for unmatched)
  bool requires_ttl = false;
  bool mode_off = false;
  uint64_t keys = 0;
  uint64_t broken = 0;  // breaks the template or naming.max_key_bytes
  uint64_t no_ttl = 0;  // requires_ttl and PTTL -1
  uint64_t big = 0;
  std::vector<std::string> broken_examples;  // shown keys, at most kExamples each
  std::vector<std::string> no_ttl_examples;
  std::vector<std::string> big_examples;  // "key (1.2 MiB)"
  std::vector<std::string> key_examples;  // any of its keys (how unmatched keys are shown)
};

struct KeyspaceTally {
  std::string where;  // the address sampled, and db
  bool have_policies = false;
  uint64_t scanned = 0;
  uint64_t internal = 0;  // corral's own keys (__corral:), not judged
  double dbsize = -1;     // DBSIZE, -1 unknown
  double elapsed_ms = 0;
  bool capped_keys = false;
  bool capped_time = false;
  uint64_t big_value_bytes = 0;
  std::string refused;  // "SCAN refused: <Redis's error>": the sample stopped there
  std::map<std::string, PolicyTally> by_policy;
};

// Examples kept per kind and policy.
inline constexpr size_t kExamples = 3;

// Scans c (set may be null: no config, only big values are judged). False and *err when the
// connection failed.
bool sampleKeyspace(Connection& c, const policies::PolicySet* set, const SampleLimits& limits,
                    KeyspaceTally* tally, std::string* err);

// The findings of a tally: one ok finding on the sample itself, then per policy (config order
// is name order here) broken templates, missing TTLs and big values, and keys no policy covers.
void addKeyspaceFindings(const KeyspaceTally& t, Report& out);

}  // namespace corral::doctor
