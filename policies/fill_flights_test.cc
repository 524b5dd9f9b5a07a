// Single flight across workers (fill_flights.h): several FillEngines, each with its own fakes
// and a task queue standing for its loop, sharing one FlightTable. The first tests run on one
// thread with manual queues (every step visible); the last ones race real threads on the table
// and on whole workers.
#include "policies/fill_flights.h"

#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "policies/fill_test_support.h"

namespace corral::policies::filltest {
namespace {

// One worker: an Env (engine and fakes) and a queue that other workers post to.
struct Worker {
  Worker(FlightTable& table, uint32_t index)
      : flights(std::make_unique<SharedFlights>(*env.engine, table, env.timer, index,
                                                [this](std::function<void()> t) {
                                                  std::lock_guard<std::mutex> lock(mu);
                                                  queue.push_back(std::move(t));
                                                  cv.notify_all();
                                                })) {}
  ~Worker() { flights.reset(); }
  // Runs what other workers posted; returns how many tasks ran.
  size_t run() {
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mu);
      tasks.swap(queue);
    }
    for (auto& t : tasks) t();
    return tasks.size();
  }
  uint64_t miss(const FillPolicy& p, int tag, const std::string* stale = nullptr) {
    return flights->onMiss(p, "user:42", "/v1/users/42", stale, env.waiter(tag));
  }

  Env env;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  std::unique_ptr<SharedFlights> flights;
};

// Two workers; both policies' origin is worker 0's FakeOrigin, so calls are counted in one place.
struct Two {
  FlightTable table;
  Worker w0{table, 0};
  Worker w1{table, 1};
  FillPolicy policy(SingleFlight sf = SingleFlight::kLocal) {
    FillPolicy p = w0.env.policy(sf);
    p.origin = &w0.env.origin;
    return p;
  }
};

TEST_CASE("flights: misses on two workers make one origin call; followers get it on their loop") {
  Two t;
  const FillPolicy p = t.policy();
  t.w0.miss(p, 1);
  t.w0.miss(p, 2);  // joins worker 0's flight in its engine
  t.w1.miss(p, 3);
  t.w1.miss(p, 4);  // joins worker 1's group without the table
  CHECK(t.table.size() == 1);
  CHECK(t.w0.env.store.lookups.size() == 1);
  CHECK(t.w1.env.store.lookups.empty());  // worker 1 runs no flight of its own
  CHECK(t.w0.env.c().coalesced == 1);
  CHECK(t.w1.env.c().coalesced == 2);
  CHECK(t.w1.env.c().worker_waits == 2);
  CHECK(t.w1.flights->followers() == 2);

  t.w0.env.store.answer(0, LKind::kMissing);
  REQUIRE(t.w0.env.origin.requests.size() == 1);
  t.w1.miss(p, 5);  // joins during the origin call
  t.w0.env.origin.complete(0, OKind::kValue, "v42");
  REQUIRE(t.w0.env.got.size() == 2);
  checkValue(t.w0.env.got[0], 1, "v42");
  checkValue(t.w0.env.got[1], 2, "v42");
  CHECK(t.w0.env.store.commits.size() == 1);  // the leader stores it, once
  CHECK(t.w0.env.c().worker_wakes == 1);
  CHECK(t.table.size() == 0);
  CHECK(t.w1.env.got.empty());  // not before worker 1's loop runs the posted result
  CHECK(t.w1.run() == 1);
  REQUIRE(t.w1.env.got.size() == 3);
  for (int i = 0; i < 3; ++i) checkValue(t.w1.env.got[i], i + 3, "v42");
  CHECK(t.w1.flights->followers() == 0);
  CHECK(t.w1.env.timer.pending() == 0);  // the group's deadline was cancelled
  CHECK(t.w0.env.origin.requests.size() == 1);

  // The next miss anywhere starts a new flight: worker 1 leads it now.
  t.w1.miss(p, 6);
  CHECK(t.w1.env.store.lookups.size() == 1);
  CHECK(t.table.size() == 1);
}

TEST_CASE("flights: a 404 and an origin failure reach every worker's waiters") {
  Two t;
  SUBCASE("404: nil everywhere") {
    const FillPolicy p = t.policy();
    t.w0.miss(p, 1);
    t.w1.miss(p, 2);
    t.w0.env.store.answer(0, LKind::kMissing);
    t.w0.env.origin.complete(0, OKind::kNotFound);
    t.w1.run();
    REQUIRE(t.w0.env.got.size() == 1);
    REQUIRE(t.w1.env.got.size() == 1);
    checkNil(t.w0.env.got[0], 1);
    checkNil(t.w1.env.got[0], 2);
  }
  SUBCASE("503 with on_error error: the leader's answer, or a waiter's own stale value") {
    FillPolicy p = t.policy();
    p.on_error = FillOnError::kError;
    t.w0.miss(p, 1);
    const std::string stale = "old";
    t.w1.miss(p, 2);
    t.w1.miss(p, 3, &stale);
    t.w0.env.store.answer(0, LKind::kMissing);
    t.w0.env.origin.complete(0, OKind::kError, "status 503");
    t.w1.run();
    REQUIRE(t.w0.env.got.size() == 1);
    REQUIRE(t.w1.env.got.size() == 2);
    checkError(t.w0.env.got[0], 1, "FILLERR users-api status 503");
    checkError(t.w1.env.got[0], 2, "FILLERR users-api status 503");
    checkValue(t.w1.env.got[1], 3, "old");
    CHECK(t.w1.env.c().stale_served == 1);
    CHECK(t.w0.env.c().fill_errors == 1);
  }
  CHECK(t.w0.env.origin.requests.size() == 1);
  CHECK(t.table.size() == 0);
}

TEST_CASE("flights: a 304 to a shared refresh: every worker's waiters get their stale value") {
  // ttl.from_origin: clients in the stale-if-error window wait for the refresh (onMiss with
  // their stale value). A 304 never crosses workers as such: the flight ends without an
  // answer, and each waiter serves the value it holds, the one just revalidated.
  Two t;
  FillPolicy p = t.policy();
  p.ttl_from_origin = true;
  p.on_error = FillOnError::kError;
  const std::string stale = "v1";
  t.w0.miss(p, 1, &stale);
  t.w1.miss(p, 2, &stale);
  t.w1.miss(p, 3);  // no stale value (the key expired meanwhile): on_error, as for any failure
  CHECK(t.table.size() == 1);
  REQUIRE(t.w0.env.store.lookups.size() == 1);
  CHECK(t.w1.env.store.lookups.empty());
  t.w0.env.store.answerWon(0, "0:20000:E\"e1\"");
  REQUIRE(t.w0.env.origin.requests.size() == 1);
  CHECK(t.w0.env.origin.requests[0].validator == "E\"e1\"");
  OriginResult r;
  r.kind = OKind::kNotModified;
  r.headers.cache_control = "max-age=30";
  t.w0.env.origin.completeWith(0, r);
  REQUIRE(t.w0.env.store.extends.size() == 1);  // the leader extends, once
  CHECK(t.w0.env.store.commits.empty());
  CHECK(t.w1.run() == 1);
  REQUIRE(t.w0.env.got.size() == 1);
  REQUIRE(t.w1.env.got.size() == 2);
  checkValue(t.w0.env.got[0], 1, "v1");
  checkValue(t.w1.env.got[0], 2, "v1");
  checkError(t.w1.env.got[1], 3, "FILLERR users-api not modified");
  CHECK(t.w0.env.c().fill_errors == 0);
  CHECK(t.table.size() == 0);
  CHECK(t.w0.env.origin.requests.size() == 1);
}

TEST_CASE("flights: a write on another worker revokes the flight; its waiters still get it") {
  Two t;
  const FillPolicy p = t.policy();
  t.w0.miss(p, 1);
  t.w1.miss(p, 2);
  t.w0.env.store.answer(0, LKind::kMissing);
  t.w1.flights->revoke("user:42");  // a client of worker 1 writes the key
  t.w0.env.origin.complete(0, OKind::kValue, "v42");
  CHECK(t.w0.env.store.commits.empty());  // not stored
  CHECK(t.w0.env.c().not_stored == 1);
  t.w1.run();
  REQUIRE(t.w0.env.got.size() == 1);
  REQUIRE(t.w1.env.got.size() == 1);
  checkValue(t.w0.env.got[0], 1, "v42");
  checkValue(t.w1.env.got[0], 2, "v42");

  // A write before the next flight changes nothing for it.
  t.w1.flights->revoke("user:42");
  t.w1.miss(p, 3);
  t.w1.env.store.answer(0, LKind::kMissing);
  t.w0.env.origin.complete(1, OKind::kValue, "v43");
  CHECK(t.w1.env.store.commits.size() == 1);
}

TEST_CASE("flights: a 404 revoked elsewhere leaves no negative entry") {
  Two t;
  FillPolicy p = t.policy();
  p.negative_ttl_ms = 5000;
  t.w0.miss(p, 1);
  t.w0.env.store.answer(0, LKind::kMissing);
  t.w1.flights->revoke("user:42");
  t.w0.env.origin.complete(0, OKind::kNotFound);
  CHECK(t.w0.env.store.commits.empty());
  checkNil(t.w0.env.got.at(0), 1);
}

TEST_CASE("flights: followers never wait past their bound, nor for a stopped leader") {
  Two t;
  FillPolicy p = t.policy();
  p.on_error = FillOnError::kError;
  SUBCASE("the leader's worker stops: followers fail at once") {
    t.w0.miss(p, 1);
    t.w1.miss(p, 2);
    t.w0.flights->stop();
    CHECK(t.table.size() == 0);
    t.w1.run();
    REQUIRE(t.w1.env.got.size() == 1);
    checkError(t.w1.env.got[0], 2, "FILLERR users-api leader stopped");
    // A miss on the stopped worker is its engine's alone (its loop is ending).
    t.w0.miss(p, 3);
    CHECK(t.table.size() == 0);
  }
  SUBCASE("the leader never ends: the group's deadline (wait + origin timeout + slack)") {
    t.w0.miss(p, 1);
    t.w1.miss(p, 2);
    const std::string stale = "old";
    t.w1.miss(p, 3, &stale);
    t.w1.env.timer.advance(600 + 300 + 249);
    CHECK(t.w1.env.got.empty());
    t.w1.env.timer.advance(1);
    REQUIRE(t.w1.env.got.size() == 2);
    checkError(t.w1.env.got[0], 2, "FILLERR users-api timeout");
    checkValue(t.w1.env.got[1], 3, "old");
    CHECK(t.w1.env.c().wait_timeouts == 1);
    // The leader's late result finds no group: nobody is answered twice.
    t.w0.env.store.answer(0, LKind::kMissing);
    t.w0.env.origin.complete(0, OKind::kValue, "v42");
    t.w1.run();
    CHECK(t.w1.env.got.size() == 2);
  }
}

TEST_CASE("flights: a detached follower is not called; off and audit bypass the table") {
  Two t;
  const FillPolicy p = t.policy();
  t.w0.miss(p, 1);
  const uint64_t id = t.w1.miss(p, 2);
  t.w1.miss(p, 3);
  t.w1.flights->detach(id);
  t.w0.env.store.answer(0, LKind::kMissing);
  t.w0.env.origin.complete(0, OKind::kValue, "v42");
  t.w1.run();
  REQUIRE(t.w1.env.got.size() == 1);
  checkValue(t.w1.env.got[0], 3, "v42");

  FillPolicy off = t.policy(SingleFlight::kOff);
  t.w0.miss(off, 4);
  t.w1.miss(off, 5);
  CHECK(t.table.size() == 0);
  CHECK(t.w1.env.store.lookups.size() == 1);  // its own flight
  FillPolicy audit = t.policy();
  audit.audit = true;
  t.w1.miss(audit, 6);
  CHECK(t.table.size() == 0);
  CHECK(t.w1.env.c().would_fill == 1);
}

TEST_CASE("flights: a background refresh on the leader's worker is not a shared flight") {
  Two t;
  FillPolicy p = t.policy();
  p.swr_ms = 10'000;
  // Past the soft expiry: a background refresh starts on worker 0, without the table.
  CHECK(t.w0.env.engine->onHit(p, "user:42", "/v1/users/42", 5'000) == HitAction::kServeStale);
  CHECK(t.table.size() == 0);
  t.w0.env.store.answer(0, LKind::kLeaseWon);
  t.w0.env.origin.complete(0, OKind::kValue, "v42");
  CHECK(t.w0.env.c().worker_wakes == 0);
}

// ---- threads --------------------------------------------------------------------------------

TEST_CASE("flights: threads racing on one key: one leader per round, each follower told once") {
  constexpr uint32_t kThreads = 8;
  constexpr int kRounds = 300;
  FlightTable table;
  std::atomic<uint64_t> delivered[kThreads] = {};
  for (uint32_t w = 0; w < kThreads; ++w) {
    table.attach(
        w, [&delivered, w](const std::string& key, uint64_t, std::shared_ptr<const FlightEnd> end) {
          CHECK(key == "k");
          CHECK(end->kind == FlightEnd::Kind::kAnswered);
          delivered[w].fetch_add(1);
        });
  }
  std::atomic<int> leaders{0};
  std::atomic<int> leader_of_round{-1};
  std::atomic<uint64_t> gen_of_round{0};
  std::barrier sync(kThreads);
  auto body = [&](uint32_t w) {
    for (int r = 0; r < kRounds; ++r) {
      sync.arrive_and_wait();  // everyone joins at once
      const FlightTable::Joined j = table.join("k", w);
      if (j.lead) {
        leaders.fetch_add(1);
        leader_of_round.store(static_cast<int>(w));
        gen_of_round.store(j.gen);
      }
      sync.arrive_and_wait();  // every join is in
      if (j.lead) {
        auto end = std::make_shared<FlightEnd>();
        end->kind = FlightEnd::Kind::kAnswered;
        CHECK(table.finish("k", w, j.gen, end) == kThreads - 1);
      } else {
        table.revoke("k");  // concurrent with the finish: before or after, never a crash
      }
      sync.arrive_and_wait();
    }
  };
  std::vector<std::thread> threads;
  for (uint32_t w = 0; w < kThreads; ++w) threads.emplace_back(body, w);
  for (auto& th : threads) th.join();
  CHECK(leaders.load() == kRounds);
  uint64_t total = 0;
  for (auto& d : delivered) total += d.load();
  CHECK(total == static_cast<uint64_t>(kRounds) * (kThreads - 1));
  CHECK(table.size() == 0);
}

// Whole workers on threads: each has its engine, fakes and a loop (its queue). All miss at
// once; the one whose store was asked is the leader and answers its store and origin; every
// other worker's waiters are answered on their own thread.
TEST_CASE("flights: four worker threads, one storm, one origin call, every waiter answered") {
  constexpr uint32_t kWorkers = 4;
  constexpr int kPerWorker = 25;
  for (int round = 0; round < 20; ++round) {
    FlightTable table;
    std::vector<std::unique_ptr<Worker>> ws;
    for (uint32_t i = 0; i < kWorkers; ++i) ws.push_back(std::make_unique<Worker>(table, i));
    std::atomic<int> origin_calls{0};
    std::atomic<int> answered{0};
    std::barrier sync(kWorkers);
    auto body = [&](uint32_t i) {
      Worker& w = *ws[i];
      const FillPolicy p = w.env.policy();  // each worker's own origin, as in corral
      sync.arrive_and_wait();
      for (int n = 0; n < kPerWorker; ++n) w.miss(p, n);
      sync.arrive_and_wait();  // every miss is in: the flight cannot have ended yet
      if (!w.env.store.lookups.empty()) {
        w.env.store.answer(0, LKind::kMissing);
        origin_calls.fetch_add(static_cast<int>(w.env.origin.requests.size()));
        w.env.origin.complete(0, OKind::kValue, "v42");
      }
      // Run this worker's loop until its waiters are answered (bounded: 5 s).
      for (int spin = 0; spin < 5000 && w.env.got.size() < kPerWorker; ++spin) {
        std::unique_lock<std::mutex> lock(w.mu);
        w.cv.wait_for(lock, std::chrono::milliseconds(1), [&w] { return !w.queue.empty(); });
        lock.unlock();
        w.run();
      }
      for (const auto& g : w.env.got) {
        if (g.second.kind == FKind::kValue && g.second.value == "v42") answered.fetch_add(1);
      }
      sync.arrive_and_wait();  // nobody's SharedFlights goes while another may post to it
    };
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < kWorkers; ++i) threads.emplace_back(body, i);
    for (auto& th : threads) th.join();
    CHECK(origin_calls.load() == 1);
    CHECK(answered.load() == static_cast<int>(kWorkers) * kPerWorker);
    CHECK(table.size() == 0);
    uint64_t wakes = 0;
    for (auto& w : ws) wakes += w->env.c().worker_wakes;
    CHECK(wakes == kWorkers - 1);
  }
}

}  // namespace
}  // namespace corral::policies::filltest
