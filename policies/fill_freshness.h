// The TTL a fill stores an origin's answer with: the policy's ttl.default, or with
// ttl.from_origin what the answer's caching headers say (http_freshness.h), clamped and jittered.
//
//   200/304 headers --parseHttpFreshness--> no-store/private: do not store
//                                          no-cache: soft 0 (stale at once: every hit refreshes)
//                                          lifetime: clamp(ttl.min, ttl.max), else ttl.default
//   stale-while-revalidate=N, stale-if-error=N: this value's windows (else the policy's), each
//                                          at most ttl.max
//   soft --jitterMs--> + the larger window = the PX of the value (and of its meta key)
//
// The meta key (FillKeys::meta) of a ttl.from_origin value holds
//   <sha1hex of the value, 40 digits><swr_ms>:<sie_ms>:<validator: "E<etag>" | "L<date>" | "">
// The scripts check the digest before trusting the validator; a hit reads the windows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policies/clock.h"
#include "policies/fill.h"
#include "policies/http_freshness.h"

namespace corral::policies {

struct FillTtl {
  bool store = true;   // false: serve the body to the waiting clients, store nothing
  int64_t ttl_ms = 0;  // the physical TTL (PX) when stored: soft TTL + p.window_ms()
  int64_t soft_ms = 0;
  int64_t swr_ms = 0;  // the value's windows (the policy's unless the origin set them)
  int64_t sie_ms = 0;
};

// Draws jitter from rnd only when there is a soft TTL to jitter. now_unix_ms: when the answer
// arrived (Expires without Date is counted from it).
FillTtl fillTtl(const FillPolicy& p, const HttpCacheHeaders& h, int64_t now_unix_ms, Random& rnd);

// What the meta key holds after the digest: "<swr_ms>:<sie_ms>:<validator>".
std::string encodeMeta(const FillTtl& t, const std::string& validator);
// The validator part of encodeMeta's text ("" when it has none or does not parse).
std::string_view metaValidator(std::string_view meta);

}  // namespace corral::policies
