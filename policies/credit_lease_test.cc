// Leased GCRA credits (credit_lease.h, global_limits.h): gcraTake against gcraStep; one
// worker's leases with a number for a clock and a fake store (a TAT per state key, takes
// answered when the test says); and four sidecars sharing one fake store under skewed and
// moving load, offered at 3x the limit.
#include "policies/credit_lease.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "policies/engine.h"
#include "policies/engine_test_support.h"
#include "policies/fill.h"
#include "policies/global_limits.h"
#include "policies/global_limits_test_support.h"
#include "policies/registry.h"

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

// --- fakes: a clock, a timer, a store (one GCRA state per key, takes answered on deliver()).

using enginetest::FakeClock;
using testing::FakeTimer;
using FakeStore = testing::FakeLimitStore;

struct Worker {
  FakeClock clock;
  FakeTimer timer;
  FakeStore store;
  Registry reg;
  config::RateLimitSpec spec;
  CompiledLimit ref;
  std::unique_ptr<GlobalLimits> limits;
  int wakes = 0;

  Worker(uint64_t rate, uint64_t burst,
         config::OnUnavailable on_unavailable = config::OnUnavailable::kLocalShare) {
    spec.name = "tenant";
    spec.count = rate;
    spec.burst = burst;
    spec.scope = config::LimitScope::kGlobal;
    spec.on_unavailable = on_unavailable;
    ref.spec = &spec;
    ref.params = GcraParams::from(rate, kSecond, burst);
    ref.counters = reg.limit("tenant");
    ref.global = true;
    limits = std::make_unique<GlobalLimits>(store, reg, clock, timer);
    limits->setWake([this] { ++wakes; });
  }
  // One request of bucket "acme" as decide() makes it: pass 1, then pass 2 unless it waits.
  enum Outcome { kAdmitted, kRejected, kWaits };
  Outcome request(GcraVerdict* v = nullptr) {
    const std::string_view parts[] = {"acme"};
    bool wait = false;
    Lease* lease = limits->ready(ref, parts, clock.mono_ns, &wait);
    if (wait) return kWaits;
    const GcraVerdict got = limits->admit(ref, lease, clock.mono_ns);
    if (v != nullptr) *v = got;
    return got.allowed ? kAdmitted : kRejected;
  }
};

TEST_CASE("global limits: a cold bucket waits for one take; then admits without round trips") {
  Worker w(1000, 100);
  CHECK(w.request() == Worker::kWaits);
  REQUIRE(w.store.pending.size() == 1);
  CHECK(w.store.pending[0].want == 1);  // no demand known yet: one credit
  CHECK(w.store.pending[0].key ==
        GlobalLimits::stateKey("tenant", std::vector<std::string_view>{"acme"}));
  CHECK(w.store.pending[0].key.starts_with("__corral:rl:{tenant:"));
  CHECK(w.request() == Worker::kWaits);  // one take at a time; the demand grows meanwhile
  CHECK(w.store.pending.size() == 1);
  w.store.deliver(w.clock.mono_ns);
  CHECK(w.wakes == 1);
  CHECK(w.request() == Worker::kAdmitted);
  // A batch of one takes nothing ahead: the second waiter asks for its own, with the demand
  // seen so far (one admitted, one waiting).
  CHECK(w.store.pending.empty());
  CHECK(w.request() == Worker::kWaits);
  REQUIRE(w.store.pending.size() == 1);
  CHECK(w.store.pending[0].want == 2);
  w.store.deliver(w.clock.mono_ns);
  CHECK(w.request() == Worker::kAdmitted);
  // Half a batch left: the next take goes out behind it (the low watermark).
  CHECK(w.store.pending.size() == 1);
  CHECK(w.request() == Worker::kAdmitted);
  CHECK(w.ref.counters->takes_granted.get() == 2);
  CHECK(w.ref.counters->leased.get() == 3);
}

TEST_CASE("global limits: Redis says none -> rejected with its retry hint, and no take until") {
  Worker w(10, 1);
  CHECK(w.request() == Worker::kWaits);
  w.store.deliver(w.clock.mono_ns);
  CHECK(w.request() == Worker::kAdmitted);  // the burst of 1
  CHECK(w.store.pending.empty());           // a batch of one takes nothing ahead
  w.clock.mono_ns += 30 * kMs;
  CHECK(w.request() == Worker::kWaits);
  w.store.deliver(w.clock.mono_ns);  // none: 70 ms to the next credit
  CHECK(w.ref.counters->takes_empty.get() == 1);
  GcraVerdict v;
  CHECK(w.request(&v) == Worker::kRejected);
  CHECK(v.retry_after_ns == 70 * kMs);  // 100 ms per credit, the last granted at t+0
  CHECK(w.store.pending.empty());
  w.clock.mono_ns += 50 * kMs;
  CHECK(w.request(&v) == Worker::kRejected);
  CHECK(v.retry_after_ns == 20 * kMs);
  w.clock.mono_ns += 20 * kMs;
  CHECK(w.request() == Worker::kWaits);
  w.store.deliver(w.clock.mono_ns);
  CHECK(w.request() == Worker::kAdmitted);
}

TEST_CASE("global limits: unspent credits are dropped at the lease's end; idle holds little") {
  Worker w(100000, 10000);
  int64_t biggest = 0;
  for (int i = 0; i < 5000; ++i, w.clock.mono_ns += 100'000) {  // 10,000/s
    for (const auto& t : w.store.pending) biggest = std::max(biggest, t.want);
    w.store.deliver(w.clock.mono_ns);
    w.request();
  }
  CHECK(biggest >= 900);  // a lease (250 ms) of demand (2,500), at most max_batch
  CHECK(biggest <= LeaseOptions{}.max_batch);
  const uint64_t leased = w.ref.counters->leased.get();
  const uint64_t admitted_ish = 5000;
  CHECK(leased >= admitted_ish - 1);
  // Idle past the lease: what it held is dropped, and the next take is small again.
  w.clock.mono_ns += LeaseOptions{}.lease_ns + 100 * kMs;
  CHECK(w.request() == Worker::kWaits);
  CHECK(w.ref.counters->dropped.get() > 0);
  CHECK(w.ref.counters->dropped.get() + 5000 >= leased);
  REQUIRE(w.store.pending.size() == 1);
  CHECK(w.store.pending[0].want <= 2);
}

TEST_CASE("global limits: Redis down -> on_unavailable decides at once; back when a take lands") {
  SUBCASE("deny") {
    Worker w(100, 10, config::OnUnavailable::kDeny);
    w.store.down = true;
    CHECK(w.request() == Worker::kWaits);
    w.store.deliver(w.clock.mono_ns);  // fails
    CHECK(w.ref.counters->takes_failed.get() == 1);
    GcraVerdict v;
    CHECK(w.request(&v) == Worker::kRejected);
    CHECK(v.retry_after_ns == LeaseOptions{}.retry_ns);
    CHECK(w.ref.counters->unavailable.get() == 1);
    CHECK(w.store.pending.empty());  // no take again before retry_ns
    w.clock.mono_ns += LeaseOptions{}.retry_ns;
    w.store.down = false;
    CHECK(w.request() == Worker::kRejected);  // a probe goes out; this one is not held
    REQUIRE(w.store.pending.size() == 1);
    w.store.deliver(w.clock.mono_ns);
    CHECK(w.request() == Worker::kAdmitted);
  }
  SUBCASE("allow") {
    Worker w(100, 10, config::OnUnavailable::kAllow);
    w.store.down = true;
    CHECK(w.request() == Worker::kWaits);
    w.store.deliver(w.clock.mono_ns);
    for (int i = 0; i < 50; ++i) CHECK(w.request() == Worker::kAdmitted);
  }
  SUBCASE("local_share: the rate and burst divided by the live sidecars") {
    Worker w(100, 40);
    w.reg.sidecars = 4;
    w.store.down = true;
    CHECK(w.request() == Worker::kWaits);
    w.store.deliver(w.clock.mono_ns);
    int admitted = 0;
    for (int i = 0; i < 100; ++i) admitted += w.request() == Worker::kAdmitted ? 1 : 0;
    CHECK(admitted == 10);  // burst 40 / 4
    w.clock.mono_ns += kSecond;
    admitted = 0;
    for (int i = 0; i < 100; ++i) admitted += w.request() == Worker::kAdmitted ? 1 : 0;
    CHECK(admitted == 10);  // a second of 100/s / 4 (25) but never more than the burst share
  }
  SUBCASE("a take that stays unanswered: waiters are woken and decided as unavailable") {
    Worker w(100, 10, config::OnUnavailable::kDeny);
    CHECK(w.request() == Worker::kWaits);
    REQUIRE(w.timer.due.size() == 1);
    CHECK(w.timer.due[0].first == LeaseOptions{}.max_wait_ns / kMs + 1);
    // Woken a hair early (the loop's timer and the clock disagree): it waits again, with a
    // timer of its own for what is left.
    w.clock.mono_ns += LeaseOptions{}.max_wait_ns - kMs / 2;
    w.timer.fireAll();
    CHECK(w.wakes == 1);
    CHECK(w.request() == Worker::kWaits);
    REQUIRE(w.timer.due.size() == 1);
    CHECK(w.timer.due[0].first == 2);
    w.clock.mono_ns += kMs;
    w.timer.fireAll();
    CHECK(w.wakes == 2);
    CHECK(w.request() == Worker::kRejected);
    CHECK(w.ref.counters->unavailable.get() == 1);
    w.store.deliver(w.clock.mono_ns);  // late, but it counts
    CHECK(w.request() == Worker::kAdmitted);
  }
}

TEST_CASE("global limits: buckets stay apart, idle leases are forgotten") {
  Worker w(1000, 100);
  const std::string_view ab_c[] = {"ab", "c"};
  const std::string_view a_bc[] = {"a", "bc"};
  CHECK(GlobalLimits::stateKey("t", ab_c) != GlobalLimits::stateKey("t", a_bc));
  const std::string long_part(1000, 'x');
  const std::string_view lp[] = {long_part};
  CHECK(GlobalLimits::stateKey("t", lp).size() < 60);  // "__corral:rl:{t:" + 32 hex + "}"
  for (int i = 0; i < 100; ++i) {
    const std::string name = "client" + std::to_string(i);
    const std::string_view parts[] = {name};
    bool wait = false;
    w.limits->ready(w.ref, parts, w.clock.mono_ns, &wait);
    CHECK(wait);
  }
  w.store.deliver(w.clock.mono_ns);
  CHECK(w.limits->leases() == 100);
  w.clock.mono_ns += kSecond;
  w.limits->tick(w.clock.mono_ns, true);
  CHECK(w.limits->leases() == 0);
  CHECK(w.ref.counters->dropped.get() == 100);  // one credit each, never spent
}

TEST_CASE("global limits: past max_leases a new bucket is decided as unavailable") {
  Worker w(1000, 100, config::OnUnavailable::kDeny);
  LeaseOptions o;
  o.max_leases = 3;
  w.limits = std::make_unique<GlobalLimits>(w.store, w.reg, w.clock, w.timer, o);
  for (int i = 0; i < 3; ++i) {
    const std::string name = "c" + std::to_string(i);
    const std::string_view parts[] = {name};
    bool wait = false;
    CHECK(w.limits->ready(w.ref, parts, w.clock.mono_ns, &wait) != nullptr);
    CHECK(wait);
  }
  const std::string_view fourth[] = {"c3"};
  bool wait = true;
  Lease* lease = w.limits->ready(w.ref, fourth, w.clock.mono_ns, &wait);
  CHECK(lease == nullptr);
  CHECK_FALSE(wait);
  CHECK_FALSE(w.limits->admit(w.ref, lease, w.clock.mono_ns).allowed);  // deny
  CHECK(w.ref.counters->unavailable.get() == 1);
  CHECK(w.limits->leases() == 3);
  // Once the others are idle, there is room again.
  w.store.deliver(w.clock.mono_ns);
  w.clock.mono_ns += kSecond;
  CHECK(w.limits->ready(w.ref, fourth, w.clock.mono_ns, &wait) != nullptr);
  CHECK(w.limits->leases() == 1);
}

// Four sidecars, one shared store behind a fixed round trip. Each tick of 1 ms, each pod gets
// its share of the offered requests; a request that waits is asked again when its pod wakes.
struct Fleet {
  std::vector<std::unique_ptr<Worker>> pods;
  int64_t rtt_ns = kMs / 2;
  uint64_t admitted = 0;
  std::vector<uint64_t> admitted_by = std::vector<uint64_t>(4, 0);
  std::vector<int> waiting = std::vector<int>(4, 0);
  struct InFlight {
    size_t pod;
    int64_t at;
  };
  std::deque<InFlight> inflight;
  FakeStore shared;

  Fleet(uint64_t rate, uint64_t burst) {
    for (int i = 0; i < 4; ++i) pods.push_back(std::make_unique<Worker>(rate, burst));
  }
  void tick(int64_t now, const std::vector<int64_t>& per_pod) {
    for (auto& p : pods) p->clock.mono_ns = now;
    // Takes sent a round trip ago land now; the script ran half a round trip ago.
    while (!inflight.empty() && inflight.front().at <= now) {
      const size_t i = inflight.front().pod;
      inflight.pop_front();
      Worker& w = *pods[i];
      FakeStore::Pending t = std::move(w.store.pending.front());
      w.store.pending.pop_front();
      t.done(true, gcraTake(shared.tat[t.key], now - rtt_ns / 2, t.p, t.want));
      int again = std::exchange(waiting[i], 0);
      while (again-- > 0) one(i);
    }
    for (size_t i = 0; i < pods.size(); ++i) {
      for (int64_t n = 0; n < per_pod[i]; ++n) one(i);
    }
  }
  void one(size_t i) {
    Worker& w = *pods[i];
    const size_t before = w.store.pending.size();
    const Worker::Outcome o = w.request();
    if (o == Worker::kAdmitted) {
      ++admitted;
      ++admitted_by[i];
    }
    if (o == Worker::kWaits) ++waiting[i];
    if (w.store.pending.size() > before) inflight.push_back({i, w.clock.mono_ns + rtt_ns});
  }
};

void checkAccuracy(bool moving) {
  const uint64_t rate = 2000;  // per second
  const uint64_t burst = 200;
  Fleet f(rate, burst);
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
  for (const auto& pod : f.pods) {
    const LimitCounters& c = *pod->ref.counters;
    takes += c.takes_granted.get() + c.takes_empty.get();
  }
  // Batches, not a round trip per request: fewer takes than admissions, though the limit is
  // spent all the time (every pod asks again once a batch's worth has come back).
  CAPTURE(takes);
  CHECK(takes * 3 < f.admitted);
  // Shared by demand, not split evenly: the pod sending 70% gets most of the rate (a static
  // split would give it a quarter).
  CAPTURE(f.admitted_by[0]);
  CAPTURE(f.admitted_by[2]);
  const uint64_t busiest = moving ? f.admitted_by[0] + f.admitted_by[2] : f.admitted_by[0];
  CHECK(static_cast<double>(busiest) >= 0.5 * static_cast<double>(f.admitted));
  MESSAGE("pods " << f.admitted_by[0] << " " << f.admitted_by[1] << " " << f.admitted_by[2] << " "
                  << f.admitted_by[3] << " takes " << takes);
}

TEST_CASE("fleet: skewed load at 3x the limit admits at most rate x t + burst, at least 97%") {
  checkAccuracy(false);
}

TEST_CASE("fleet: the same with the load moving from one pod to another mid-run") {
  checkAccuracy(true);
}

}  // namespace
}  // namespace corral::policies
