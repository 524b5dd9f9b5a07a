// fillTtl: see fill_freshness.h.
#include "policies/fill_freshness.h"

#include <algorithm>

#include "policies/ttl.h"

namespace corral::policies {

FillTtl fillTtl(const FillPolicy& p, const HttpCacheHeaders& h, int64_t now_unix_ms,
                Random& rnd) {
  FillTtl out;
  int64_t soft = p.ttl_ms;
  if (p.ttl_from_origin) {
    const HttpFreshness f = parseHttpFreshness(h, now_unix_ms);
    if (f.no_store) {
      out.store = false;
      return out;
    }
    if (f.no_cache) {
      // Stored, but never fresh: each hit serves it within the policy's windows and
      // revalidates it (a 304 costs no body). Not raised to ttl.min: that would make it fresh.
      soft = 0;
    } else if (f.fresh_ms) {
      soft = *f.fresh_ms;
      if (p.ttl_min_ms > 0) soft = std::max(soft, p.ttl_min_ms);
      if (p.ttl_max_ms > 0) soft = std::min(soft, p.ttl_max_ms);
    }
  }
  out.soft_ms = soft > 0 ? jitterMs(soft, p.jitter, rnd) : 0;
  out.ttl_ms = out.soft_ms + p.window_ms();
  // Zero freshness and no window: nothing would ever serve the stored copy.
  out.store = out.ttl_ms > 0;
  return out;
}

}  // namespace corral::policies
