// fillTtl: see fill_freshness.h.
#include "policies/fill_freshness.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "policies/ttl.h"

namespace corral::policies {

FillTtl fillTtl(const FillPolicy& p, const HttpCacheHeaders& h, int64_t now_unix_ms, Random& rnd) {
  FillTtl out;
  int64_t soft = p.ttl_ms;
  out.swr_ms = p.swr_ms;
  out.sie_ms = p.sie_ms;
  if (p.ttl_from_origin) {
    const HttpFreshness f = parseHttpFreshness(h, now_unix_ms);
    // An origin may stretch its windows (a day of stale-if-error); ttl.max bounds each, so a
    // value never outlives 2 x ttl.max.
    auto bound = [&p](int64_t w) { return p.ttl_max_ms > 0 ? std::min(w, p.ttl_max_ms) : w; };
    if (f.swr_ms) out.swr_ms = bound(*f.swr_ms);
    if (f.sie_ms) out.sie_ms = bound(*f.sie_ms);
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
  out.ttl_ms = out.soft_ms + std::max(out.swr_ms, out.sie_ms);
  // Zero freshness and no window: nothing would ever serve the stored copy.
  out.store = out.ttl_ms > 0;
  return out;
}

std::string encodeMeta(const FillTtl& t, const std::string& validator) {
  return std::to_string(t.swr_ms) + ":" + std::to_string(t.sie_ms) + ":" + validator;
}

std::string_view metaValidator(std::string_view meta) {
  const size_t a = meta.find(':');
  const size_t b = a == std::string_view::npos ? a : meta.find(':', a + 1);
  return b == std::string_view::npos ? std::string_view() : meta.substr(b + 1);
}

}  // namespace corral::policies
