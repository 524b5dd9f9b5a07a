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

// ---------------------------------------------------------------------------------------------
// Lease

int64_t Lease::dropExpired(int64_t now_ns) {
  if (credits_ == 0 || now_ns < expires_ns_) return 0;
  const int64_t n = credits_;
  credits_ = 0;
  return n;
}

void Lease::rollWindow(int64_t now_ns, const LeaseOptions& o) {
  // Requests per lease-long window; a window with no request at all counts as 1.
  if (now_ns - window_start_ns_ >= o.window_ns) {
    const bool just_one = now_ns - window_start_ns_ >= 2 * o.window_ns;
    demand_ = just_one ? 1 : std::max<int64_t>(window_count_, 1);
    window_start_ns_ = now_ns;
    window_count_ = 0;
  }
}

int64_t Lease::batch(const GcraParams& p, const LeaseOptions& o) const {
  // The credits one lease of this key's demand uses, at most the burst (no take gets more).
  const int64_t burst = p.tolerance_ns / p.interval_ns + 1;
  // The requests waiting for a take count too: they are this lease's demand as well.
  return std::clamp<int64_t>(std::max(demand_, window_count_ + waiters_), 1,
                             std::min(o.max_batch, burst));
}

int64_t Lease::startTake(const GcraParams& p, int64_t now_ns, const LeaseOptions& o) {
  taking_ = true;
  taking_since_ns_ = now_ns;
  want_ = batch(p, o);
  return want_;
}

bool Lease::mustWait(const GcraParams& p, int64_t now_ns, const LeaseOptions& o, int64_t* take,
                     int64_t* dropped) {
  *take = 0;
  *dropped = dropExpired(now_ns);
  if (credits_ > 0 || unavailable_) return false;  // admit() decides at once
  rollWindow(now_ns, o);
  if (taking_) {
    if (overdue(now_ns, o)) return false;  // kUnavailable: nothing waits longer than max_wait
    ++waiters_;
    return true;
  }
  if (now_ns < none_until_ns_) return false;  // kReject: Redis said none until then
  ++waiters_;
  *take = startTake(p, now_ns, o);
  return true;
}

Lease::Step Lease::admit(const GcraParams& p, int64_t now_ns, const LeaseOptions& o) {
  Step s;
  s.dropped = dropExpired(now_ns);
  rollWindow(now_ns, o);
  ++window_count_;
  if (credits_ > 0) {
    --credits_;
    // The low watermark: half a batch left, so the next credits land before these run out.
    // A bucket asked about once a lease takes no credit ahead (it would mostly be dropped):
    // its next request waits for its own.
    const int64_t b = batch(p, o);
    floor_ = b / 2;
    if (!taking_ && b > 1 && credits_ <= floor_ && now_ns >= none_until_ns_) {
      s.take = startTake(p, now_ns, o);
    }
    return s;
  }
  if (unavailable_ || overdue(now_ns, o)) {
    s.verdict = Verdict::kUnavailable;
    // Ask again now and then; requests are decided without waiting meanwhile.
    if (!taking_ && now_ns >= none_until_ns_) s.take = startTake(p, now_ns, o);
    return s;
  }
  s.verdict = Verdict::kReject;
  if (now_ns < none_until_ns_) {
    s.retry_after_ns = none_until_ns_ - now_ns;
    return s;
  }
  // The credits of the take on its way are spoken for (one request spent a bucket twice, or
  // mustWait() was not asked): come back once it has landed.
  s.retry_after_ns = 1'000'000;
  if (!taking_) s.take = startTake(p, now_ns, o);
  return s;
}

int64_t Lease::onGrant(const GcraGrant& g, int64_t now_ns, const LeaseOptions& o) {
  taking_ = false;
  unavailable_ = false;
  waiters_ = 0;  // woken now: each is counted again when it is admitted
  // Spent: wait for share_requests of this worker's requests, as its demand goes, but no
  // longer than it takes for what it asked to be there again (credits past the burst would be
  // lost to everyone), and at least until Redis's next credit.
  const int64_t demand = std::max<int64_t>(1, std::max(demand_, window_count_));
  const int64_t share = std::min(o.window_ns, o.share_requests * o.window_ns / demand);
  const int64_t backoff = std::max(g.retry_after_ns, std::min(g.full_after_ns, share));
  if (g.granted <= 0) {
    none_until_ns_ = now_ns + backoff;
    return 0;
  }
  const int64_t dropped = dropExpired(now_ns);
  // The lease counts from the take's answer (the script ran up to one round trip before).
  credits_ += g.granted;
  floor_ = want_ > 1 ? want_ / 2 : 0;  // the watermark of the batch it asked for
  expires_ns_ = now_ns + o.lease_ns;
  none_until_ns_ = g.granted < want_ ? now_ns + backoff : 0;
  return dropped;
}

void Lease::onFailure(int64_t now_ns, const LeaseOptions& o) {
  taking_ = false;
  waiters_ = 0;
  unavailable_ = true;
  none_until_ns_ = now_ns + o.retry_ns;
}

bool Lease::idle(int64_t now_ns, const LeaseOptions& o) const {
  return !taking_ && !unavailable_ && (credits_ == 0 || now_ns >= expires_ns_) &&
         now_ns >= none_until_ns_ && now_ns - window_start_ns_ >= 2 * o.window_ns;
}

// ---------------------------------------------------------------------------------------------
// CreditLeases

Lease* CreditLeases::at(std::string_view key, int64_t now_ns) {
  auto it = leases_.find(key);
  if (it != leases_.end()) return &it->second;
  if (leases_.size() >= opt_.max_leases) [[unlikely]] {
    // Idle ones first (their unspent credits had expired: nothing is lost but counts).
    sweep(now_ns, [](std::string_view, int64_t) {});
    if (leases_.size() >= opt_.max_leases) return nullptr;
  }
  auto made = leases_.emplace(std::string(key), Lease{}).first;
  made->second.key_ = &made->first;
  return &made->second;
}

Lease* CreditLeases::find(std::string_view key) {
  auto it = leases_.find(key);
  return it == leases_.end() ? nullptr : &it->second;
}

void CreditLeases::sweep(int64_t now_ns,
                         const std::function<void(std::string_view, int64_t)>& dropped) {
  std::erase_if(leases_, [&](const auto& e) {
    if (!e.second.idle(now_ns, opt_)) return false;
    if (e.second.credits() > 0) dropped(e.first, e.second.credits());
    return true;
  });
}

}  // namespace corral::policies
