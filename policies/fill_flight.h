// The state of one fill flight inside FillEngine (fill.cc): the flight, its waiters and the
// per-policy latency state. Internal to the engine; kept apart so fill.cc stays the flow.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policies/fill.h"

namespace corral::policies::fill_internal {

constexpr int64_t kPollFirstMs = 2;  // the first lease-wait poll backoff (fill.cc doubles it)

struct PolicyState {
  FillCounters own;               // used when the engine has no counter source
  FillCounters* counters = &own;  // never null
  double delta_ms = 0;            // fill latency moving average
  bool has_delta = false;
};

struct Waiter {
  uint64_t id = 0;
  FillEngine::Done done;
  std::optional<std::string> stale;  // served if the fill fails (stale-if-error)
};

enum class Phase : uint8_t {
  kLookup,  // a store lookup is outstanding
  kWait,    // another corral holds the lease; a poll timer is armed
  kOrigin,  // the origin call is outstanding
};

struct Flight {
  uint64_t id = 0;
  uint64_t step = 0;  // bumped by every lookup / poll / origin call; older replies are dropped
  Phase phase = Phase::kLookup;
  FillPolicy policy;  // a copy: a policy reload does not change a running flight
  PolicyState* state = nullptr;
  std::string path;
  FillKeys keys;
  std::string token;  // empty: no lease, commit with SET NX semantics (off / local fills)
  bool joinable = false;
  bool refresh = false;  // the data key may hold the value being replaced: refreshLookup
  int64_t fresh_above_ms = 0;
  bool revoked = false;
  std::string validator;  // a refresh's stored validator (ttl.from_origin): conditional GET
  std::vector<Waiter> waiters;
  int64_t wait_deadline_ns = 0;
  int64_t backoff_ms = kPollFirstMs;
  int64_t origin_start_ns = 0;
  std::optional<uint64_t> deadline_timer;
  std::optional<uint64_t> poll_timer;
};

}  // namespace corral::policies::fill_internal
