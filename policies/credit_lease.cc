#include "policies/credit_lease.h"

#include <algorithm>

namespace corral::policies {

GcraGrant gcraTake(int64_t& tat, int64_t now_ns, const GcraParams& p, int64_t want) {
  // The i-th of the credits (from 0) is allowed while base + i * interval - tolerance <= now,
  // as gcraStep allows one request after another.
  const int64_t base = std::max(tat == 0 ? now_ns : tat, now_ns);
  const int64_t room = now_ns + p.tolerance_ns - base;
  const int64_t fit = room < 0 ? 0 : room / p.interval_ns + 1;
  GcraGrant g;
  g.granted = std::clamp<int64_t>(want, 0, fit);
  if (g.granted > 0) tat = base + g.granted * p.interval_ns;
  if (g.granted == 0) g.retry_after_ns = want > 0 ? -room : 0;
  if (g.granted < want) {
    // The rest (at most a burst: no more is ever there at once), taken later from the state
    // this grant left: its last is allowed once tat + (rest - 1) * interval - tolerance <= t.
    const int64_t burst = p.tolerance_ns / p.interval_ns + 1;
    const int64_t rest = std::min(want - g.granted, burst);
    const int64_t after = base + g.granted * p.interval_ns;
    g.full_after_ns =
        std::max<int64_t>(0, after + (rest - 1) * p.interval_ns - p.tolerance_ns - now_ns);
  }
  return g;
}

int64_t CreditLeases::batchFor(const Entry& e, const GcraParams& p) const {
  // The credits one lease of this key's demand uses, at most the burst (no take gets more).
  const int64_t burst = p.tolerance_ns / p.interval_ns + 1;
  return std::clamp<int64_t>(e.demand, 1, std::min(opt_.max_batch, burst));
}

CreditLeases::Result CreditLeases::admit(const std::string& key, const GcraParams& p,
                                         int64_t now_ns) {
  Entry& e = entries_[key];
  // Demand: requests per lease-long window; a window with no request at all counts as 1.
  if (now_ns - e.window_start_ns >= opt_.lease_ns) {
    const bool just_one = now_ns - e.window_start_ns >= 2 * opt_.lease_ns;
    e.demand = just_one ? 1 : std::max<int64_t>(e.window_count, 1);
    e.window_start_ns = now_ns;
    e.window_count = 0;
  }
  ++e.window_count;
  if (e.credits > 0 && now_ns >= e.expires_ns) {
    stats_.dropped += static_cast<uint64_t>(e.credits);
    e.credits = 0;
  }
  Result r;
  const int64_t batch = batchFor(e, p);
  if (e.credits > 0) {
    --e.credits;
    ++stats_.admitted;
    r.verdict = Verdict::kAdmit;
    // The low watermark: half a batch left, so the next credits land before these run out.
    if (!e.taking && e.credits <= batch / 2 && now_ns >= e.none_until_ns) {
      e.taking = true;
      e.want = batch;
      ++stats_.takes;
      r.take = batch;
    }
    return r;
  }
  if (e.taking) {
    ++stats_.waited;
    r.verdict = Verdict::kWait;
    return r;
  }
  if (now_ns < e.none_until_ns) {
    ++stats_.rejected;
    r.verdict = Verdict::kReject;
    r.retry_after_ns = e.none_until_ns - now_ns;
    return r;
  }
  e.taking = true;
  e.want = batch;
  ++stats_.takes;
  ++stats_.waited;
  r.verdict = Verdict::kWait;
  r.take = batch;
  return r;
}

void CreditLeases::onGrant(const std::string& key, const GcraGrant& g, int64_t now_ns) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  e.taking = false;
  if (g.granted <= 0) {
    e.none_until_ns = now_ns + g.retry_after_ns;
    return;
  }
  stats_.leased += static_cast<uint64_t>(g.granted);
  if (e.credits > 0 && now_ns >= e.expires_ns) {
    stats_.dropped += static_cast<uint64_t>(e.credits);
    e.credits = 0;
  }
  // The lease counts from the take's answer (the script ran up to one round trip before).
  e.credits += g.granted;
  e.expires_ns = now_ns + opt_.lease_ns;
  e.none_until_ns = g.granted < e.want ? now_ns + g.full_after_ns : 0;
}

int64_t CreditLeases::credits(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.credits;
}

}  // namespace corral::policies
