#include "proxy/upstream/limit_store.h"

#include <algorithm>

#include "proxy/codec/resp.h"
#include "proxy/loop/clock.h"
#include "proxy/upstream/log.h"
#include "proxy/upstream/script.h"

namespace corral::upstream {

namespace {

// KEYS: the bucket's state. ARGV: interval_us, tolerance_us, want.
// {granted, retry_after_us, full_after_us}: gcraTake (credit_lease.cc) on Redis's clock.
constexpr std::string_view kTake = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local base = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local room = now + tolerance - base
local fit = 0
if room >= 0 then fit = math.floor(room / interval) + 1 end
local granted = math.max(0, math.min(want, fit))
local after = base + granted * interval
if granted > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX',
             math.floor((after - now) / 1000) + 1)
end
local retry = 0
if granted == 0 and want > 0 then retry = -room end
local full = 0
if granted < want then
  local rest = math.min(want - granted, math.floor(tolerance / interval) + 1)
  full = math.max(0, after + (rest - 1) * interval - tolerance - now)
end
return {granted, retry, full})lua";

// KEYS: the sidecars' sorted set. ARGV: id, live_ms. The number of live sidecars.
constexpr std::string_view kHeartbeat = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - live)
redis.call('PEXPIRE', KEYS[1], live * 2)
return redis.call('ZCARD', KEYS[1]))lua";

// The take script's reply as a grant; false when it is not one (an error, say).
bool decodeTake(std::string_view reply, policies::GcraGrant* g) {
  codec::FrameReader rd(reply);
  int64_t n = 0;
  int64_t granted = 0;
  int64_t retry_us = 0;
  int64_t full_us = 0;
  if (!rd.array(&n) || n != 3 || !rd.integer(&granted) || !rd.integer(&retry_us) ||
      !rd.integer(&full_us) || !rd.atEnd() || granted < 0 || retry_us < 0 || full_us < 0) {
    return false;
  }
  g->granted = granted;
  g->retry_after_ns = retry_us * 1000;
  g->full_after_ns = full_us * 1000;
  return true;
}

}  // namespace

void LimitStore::take(std::string_view state_key, const policies::GcraParams& p, int64_t want,
                      std::function<void(bool ok, const policies::GcraGrant& g)> done) {
  // Microseconds, the interval rounded up; the burst kept.
  const int64_t interval_us = std::max<int64_t>(1, (p.interval_ns + 999) / 1000);
  const int64_t burst = p.tolerance_ns / p.interval_ns + 1;
  const std::string interval = std::to_string(interval_us);
  const std::string tolerance = std::to_string((burst - 1) * interval_us);
  const std::string n = std::to_string(want);
  runScript(primary_(state_key), timer_, scratch_, kTake, {state_key}, {interval, tolerance, n},
            [failures = failures_, done = std::move(done)](std::string_view reply) {
              policies::GcraGrant g;
              const bool ok = decodeTake(reply, &g);
              if (!ok) failures->note(reply);
              done(ok, g);
            });
}

void LimitStore::Failures::note(std::string_view reply) {
  // Why limits went to on_unavailable: once, then a reminder at most every 30 s.
  const int64_t now_ms = loop::monotonicNs() / 1'000'000;
  ++count;
  if (logged_ms >= 0 && now_ms - logged_ms < kFailureLogEveryMs) return;
  logged_ms = now_ms;
  const std::string_view why = !reply.empty() && reply[0] == '-'
                                   ? errorText(reply)
                                   : std::string_view("an unexpected reply");
  log()->warn("global rate limit take failed, limits follow on_unavailable failures={} why={}",
              count, why);
  count = 0;
}

void LimitStore::heartbeat(std::string_view id, int64_t live_ms,
                           std::function<void(int64_t live)> done) {
  const std::string live = std::to_string(live_ms);
  runScript(primary_(policies::GlobalLimits::kSidecarsKey), timer_, scratch_, kHeartbeat,
            {policies::GlobalLimits::kSidecarsKey}, {id, live},
            [done = std::move(done)](std::string_view reply) {
              codec::FrameReader rd(reply);
              int64_t n = -1;
              if (!rd.integer(&n) || !rd.atEnd()) n = -1;
              done(n);
            });
}

}  // namespace corral::upstream
