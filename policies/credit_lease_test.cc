// Leased GCRA credits (credit_lease.h): gcraTake against gcraStep, one sidecar's leases with a
// number for a clock, and four sidecars sharing one GCRA state (a fake store: a TAT and a
// round-trip delay) under skewed and moving load, offered at 3x the limit.
#include "policies/credit_lease.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace corral::policies {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;

TEST_CASE("gcraTake: n credits at once are what n gcraStep calls would allow") {
  std::mt19937_64 rng(13);
  for (int round = 0; round < 200; ++round) {
    const uint64_t rate = 1 + rng() % 1000;
    const uint64_t burst = 1 + rng() % 200;
    const GcraParams p = GcraParams::from(rate, kSecond, burst);
    int64_t tat_take = 0;
    int64_t tat_step = 0;
    int64_t now = 1'000 * kSecond;
    for (int i = 0; i < 50; ++i) {
      now += static_cast<int64_t>(rng() % (200 * kMs));
      const int64_t want = static_cast<int64_t>(rng() % 300);
      const GcraGrant g = gcraTake(tat_take, now, p, want);
      int64_t steps = 0;
      GcraVerdict v{true, 0};
      while (steps < want && (v = gcraStep(tat_step, now, p)).allowed) ++steps;
      CAPTURE(rate);
      CAPTURE(burst);
      CHECK(g.granted == steps);
      CHECK(tat_take == tat_step);
      if (g.granted == 0 && want > 0) CHECK(g.retry_after_ns == v.retry_after_ns);
      if (g.granted < want) {  // the rest (at most a burst) is there full_after_ns later
        const int64_t rest = std::min<int64_t>(want - g.granted, static_cast<int64_t>(burst));
        int64_t tat_later = tat_step;
        CHECK(gcraTake(tat_later, now + g.full_after_ns, p, rest).granted == rest);
        if (g.full_after_ns > 0) {
          tat_later = tat_step;
          CHECK(gcraTake(tat_later, now + g.full_after_ns - 1, p, rest).granted < rest);
        }
      }
    }
  }
}

TEST_CASE("gcraTake: a fresh state grants the burst, then the rate") {
  const GcraParams p = GcraParams::from(100, kSecond, 20);  // 100/s, burst 20
  int64_t tat = 0;
  const int64_t t0 = 50 * kSecond;
  CHECK(gcraTake(tat, t0, p, 1000).granted == 20);
  const GcraGrant none = gcraTake(tat, t0, p, 5);
  CHECK(none.granted == 0);
  CHECK(none.retry_after_ns == 10 * kMs);
  CHECK(gcraTake(tat, t0 + 100 * kMs, p, 1000).granted == 10);  // 100 ms at 100/s
  CHECK(gcraTake(tat, t0 + 100 * kMs, p, 0).granted == 0);
}

TEST_CASE("leases: a cold key waits for one take; then admits without round trips") {
  CreditLeases l;
  const GcraParams p = GcraParams::from(1000, kSecond, 100);
  int64_t now = kSecond;
  CreditLeases::Result r = l.admit("k", p, now);
  CHECK(r.verdict == CreditLeases::Verdict::kWait);
  REQUIRE(r.take == 1);  // no demand known yet: one credit
  CHECK(l.admit("k", p, now).verdict == CreditLeases::Verdict::kWait);  // one take at a time
  CHECK(l.admit("k", p, now).take == 0);
  l.onGrant("k", {1, 0, 0}, now + kMs);
  r = l.admit("k", p, now + kMs);
  CHECK(r.verdict == CreditLeases::Verdict::kAdmit);
  CHECK(r.take == 1);  // its last credit: the next take goes out behind it (the watermark)
  CHECK(l.stats().takes == 2);
  CHECK(l.stats().waited == 3);
}

TEST_CASE("leases: Redis says none -> rejected with its retry hint, until then no take") {
  CreditLeases l;
  const GcraParams p = GcraParams::from(10, kSecond, 1);
  CreditLeases::Result r = l.admit("k", p, kSecond);
  REQUIRE(r.take == 1);
  l.onGrant("k", {0, 80 * kMs, 80 * kMs}, kSecond);
  r = l.admit("k", p, kSecond + 30 * kMs);
  CHECK(r.verdict == CreditLeases::Verdict::kReject);
  CHECK(r.retry_after_ns == 50 * kMs);
  CHECK(r.take == 0);
  r = l.admit("k", p, kSecond + 80 * kMs);
  CHECK(r.verdict == CreditLeases::Verdict::kWait);
  CHECK(r.take == 1);
}

TEST_CASE("leases: unspent credits are dropped at the lease's end; an idle key holds little") {
  LeaseOptions o;
  o.lease_ns = 100 * kMs;
  CreditLeases l(o);
  const GcraParams p = GcraParams::from(100000, kSecond, 10000);
  int64_t now = kSecond;
  // Busy: 1,000 requests per lease; the batch grows to the demand.
  int64_t biggest = 0;
  for (int i = 0; i < 5000; ++i, now += 100'000) {  // 10,000/s
    const CreditLeases::Result r = l.admit("k", p, now);
    if (r.take > 0) {
      biggest = std::max(biggest, r.take);
      l.onGrant("k", {r.take, 0, 0}, now);
    }
  }
  CHECK(biggest >= 900);
  CHECK(biggest <= 1000);
  const int64_t held = l.credits("k");
  CHECK(held > 0);
  // Idle for two leases: what it held is dropped, and the next batch is small again.
  now += 250 * kMs;
  const uint64_t dropped = l.stats().dropped;
  const CreditLeases::Result r = l.admit("k", p, now);
  CHECK(l.stats().dropped == dropped + static_cast<uint64_t>(held));
  CHECK(r.verdict == CreditLeases::Verdict::kWait);
  CHECK(r.take == 1);
}

// Four sidecars, one shared GCRA state behind a fixed round trip. Each tick of 1 ms, each pod
// gets its share of `offered` requests; takes land one round trip later.
struct Fleet {
  GcraParams p;
  int64_t tat = 0;
  int64_t rtt_ns = kMs / 2;
  std::vector<CreditLeases> pods = std::vector<CreditLeases>(4);
  struct Pending {
    size_t pod;
    int64_t want;
    int64_t at;
  };
  std::deque<Pending> inflight;
  uint64_t admitted = 0;

  void tick(int64_t now, const std::vector<int64_t>& per_pod) {
    while (!inflight.empty() && inflight.front().at <= now) {
      const Pending t = inflight.front();
      inflight.pop_front();
      // The script ran half a round trip ago; its answer lands now.
      const GcraGrant g = gcraTake(tat, t.at - rtt_ns / 2, p, t.want);
      pods[t.pod].onGrant("limit:tenant", g, now);
    }
    for (size_t i = 0; i < pods.size(); ++i) {
      for (int64_t n = 0; n < per_pod[i]; ++n) {
        const CreditLeases::Result r = pods[i].admit("limit:tenant", p, now);
        if (r.verdict == CreditLeases::Verdict::kAdmit) ++admitted;
        if (r.take > 0) inflight.push_back({i, r.take, now + rtt_ns});
      }
    }
  }
};

void checkAccuracy(bool moving) {
  const uint64_t rate = 2000;  // per second
  const uint64_t burst = 200;
  Fleet f;
  f.p = GcraParams::from(rate, kSecond, burst);
  const int64_t start = 100 * kSecond;
  const int64_t seconds = 10;
  // Offered at 3x the limit: 6,000/s, 6 per ms; 70% to one pod, 10% to each other.
  for (int64_t ms = 0; ms < seconds * 1000; ++ms) {
    const bool second_half = moving && ms >= seconds * 500;
    std::vector<int64_t> per_pod = {4, 1, 1, 0};  // 4.2 : 0.6 : 0.6 : 0.6 on average
    if (ms % 5 < 3) per_pod[3] = 1;
    if (ms % 5 == 0) per_pod[0] += 1;
    if (second_half) std::swap(per_pod[0], per_pod[2]);  // the load moves to another pod
    f.tick(start + ms * kMs, per_pod);
  }
  const double ceiling = static_cast<double>(rate * seconds + burst);
  CAPTURE(f.admitted);
  CHECK(static_cast<double>(f.admitted) <= ceiling);
  CHECK(static_cast<double>(f.admitted) >= 0.97 * ceiling);
  uint64_t takes = 0;
  for (const CreditLeases& pod : f.pods) takes += pod.stats().takes;
  // Batches, not a round trip per request: fewer takes than admissions, though the limit is
  // spent all the time (every pod asks again once a batch's worth has come back).
  CAPTURE(takes);
  CHECK(takes * 3 < f.admitted);
}

TEST_CASE("fleet: skewed load at 3x the limit admits at most rate x t + burst, at least 97%") {
  checkAccuracy(false);
}

TEST_CASE("fleet: the same with the load moving from one pod to another mid-run") {
  checkAccuracy(true);
}

}  // namespace
}  // namespace corral::policies
