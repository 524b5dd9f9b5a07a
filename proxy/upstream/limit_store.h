// The shared state of global rate limits: policies::LimitStore as Lua scripts on the primary.
//
//   GlobalLimits --take(state key, params, want)--> EVAL: the bucket's GCRA state (its TAT in
//       microseconds of Redis's clock, PX-expiring once it is in the past) grants up to `want`
//       credits at once --> {granted, retry_after_us, full_after_us} --> GcraGrant
//   GlobalLimits --heartbeat(id)--> EVAL: ZADD the sidecar to __corral:rl:sidecars with Redis's
//       time, drop the ones not seen for live_ms, ZCARD
//
// The take script is policies::gcraTake in microseconds (the interval rounded up: the fleet's
// rate is never above the limit's). Redis's clock, not the sidecars', so that sidecars whose
// clocks differ share one timeline. Not thread-safe: one LimitStore per worker.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "policies/fill.h"
#include "policies/global_limits.h"
#include "proxy/upstream/upstream.h"

namespace corral::upstream {

class LimitStore final : public policies::LimitStore {
 public:
  // primary(key) returns the connection to run a script on (as for FillStore).
  LimitStore(std::function<Connection*(std::string_view key)> primary, policies::Timer& timer)
      : primary_(std::move(primary)), timer_(timer) {}

  void take(std::string_view state_key, const policies::GcraParams& p, int64_t want,
            std::function<void(bool ok, const policies::GcraGrant& g)> done) override;
  void heartbeat(std::string_view id, int64_t live_ms,
                 std::function<void(int64_t live)> done) override;

 private:
  // Takes that failed: logged at most every kFailureLogEveryMs (with the count since). Shared
  // with the takes' callbacks, which may run after this store is gone (worker shutdown).
  struct Failures {
    int64_t logged_ms = -1;
    uint64_t count = 0;
    void note(std::string_view reply);
  };

  std::function<Connection*(std::string_view key)> primary_;
  policies::Timer& timer_;
  std::string scratch_;
  std::shared_ptr<Failures> failures_ = std::make_shared<Failures>();
};

}  // namespace corral::upstream
