// The TTL a fill stores an origin's answer with: the policy's ttl.default, or with
// ttl.from_origin what the answer's caching headers say (http_freshness.h), clamped and jittered.
//
//   200/304 headers --parseHttpFreshness--> no-store/private: do not store
//                                          no-cache: soft 0 (stale at once: every hit refreshes)
//                                          lifetime: clamp(ttl.min, ttl.max), else ttl.default
//   soft --jitterMs--> + the policy's freshness window = the PX of the value (and its validator)
#pragma once

#include <cstdint>

#include "policies/clock.h"
#include "policies/fill.h"
#include "policies/http_freshness.h"

namespace corral::policies {

struct FillTtl {
  bool store = true;   // false: serve the body to the waiting clients, store nothing
  int64_t ttl_ms = 0;  // the physical TTL (PX) when stored: soft TTL + p.window_ms()
  int64_t soft_ms = 0;
};

// Draws jitter from rnd only when there is a soft TTL to jitter. now_unix_ms: when the answer
// arrived (Expires without Date is counted from it).
FillTtl fillTtl(const FillPolicy& p, const HttpCacheHeaders& h, int64_t now_unix_ms, Random& rnd);

}  // namespace corral::policies
