// The server's own state, read through INFO, SLOWLOG and PING: version and mode, memory and
// eviction settings against the policies, hit ratio, evictions, slowlog, latency. The numbers
// are judged by rules.h; this file gathers them and names what it saw.
//
//   INFO (all) --> facts (version, mode, role) + maxmemory, eviction policy, memory use,
//                  fragmentation, hit ratio
//   PING x kPings --> latency;  SLOWLOG GET --> the slowest entries (command and key only)
//   INFO again, >= 1 s after the first (the keyspace sample runs in between) --> rates
#pragma once

#include <chrono>
#include <string>

#include "doctor/connection.h"
#include "doctor/info.h"
#include "doctor/report.h"
#include "doctor/rules.h"

namespace corral::doctor {

// An INFO reply and when it was taken.
struct InfoSample {
  Info info;
  std::chrono::steady_clock::time_point at;
};

// INFO (every section); false and *err when the connection fails or INFO is refused.
bool takeInfo(Connection& c, InfoSample* out, std::string* err);

// How the target was reached: "sentinel-managed" is added to the mode it reports.
struct ServerContext {
  const PolicyMix* mix = nullptr;
  bool via_sentinel = false;
  bool via_cluster = false;
};

// The checks that need one INFO sample, latency and the slowlog. False and *err when the
// connection failed on the way (findings so far stay in out).
bool checkServer(Connection& c, const InfoSample& first, const ServerContext& ctx, Report& out,
                 std::string* err);

// Evictions and expirations per second between two samples (second taken >= 1 s after first).
void checkRates(const InfoSample& first, const InfoSample& second, const PolicyMix& mix,
                Report& out);

// A slowlog entry's arguments as a report may show them: the command name and its first key
// (found through the command table), the key cut short; never any other argument, which may
// be a value or a secret.
std::string slowlogCommand(const std::vector<std::string>& args);

}  // namespace corral::doctor
