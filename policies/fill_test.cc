// Tests for the fill engine: every branch of fill.h's flow with fakes. The store and the origin
// hold every request until the test answers it; the timer runs on manual time (advance() also
// moves the clock); randomness comes from a queue. No sleeps, no threads.
#include "policies/fill.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corral::policies {
namespace {

using config::FillOnError;
using config::SingleFlight;
using LKind = LookupResult::Kind;
using OKind = OriginResult::Kind;
using FKind = FillOutcome::Kind;
using HitAction = FillEngine::HitAction;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kT0 = 7'000 * kMs;  // a monotonic clock does not start at zero

// ---- Redis Cluster key slot (CRC16/XMODEM), for the fillKeys tests only ---------------------

uint16_t crc16(std::string_view s) {
  uint16_t crc = 0;
  for (char ch : s) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint8_t>(ch) << 8));
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

uint16_t keySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<uint16_t>(crc16(key) & 16383);
}

// ---- fakes ----------------------------------------------------------------------------------

class FakeClock : public Clock {
 public:
  int64_t monoNs() const override { return now_ns; }
  int64_t unixMs() const override { return 1'700'000'000'000 + now_ns / kMs; }
  int64_t ms() const { return (now_ns - kT0) / kMs; }  // test time since the start
  int64_t now_ns = kT0;
};

// Manual time: advance(ms) runs every callback due within the step, in (due, scheduling) order,
// with the clock set to each callback's due time.
class FakeTimer : public Timer {
 public:
  explicit FakeTimer(FakeClock& c) : clock_(c) {}
  uint64_t after(int64_t delay_ms, std::function<void()> cb) override {
    REQUIRE(delay_ms >= 0);
    const uint64_t id = next_++;
    due_[{clock_.now_ns + delay_ms * kMs, id}] = std::move(cb);
    delays.push_back(delay_ms);
    return id;
  }
  void cancel(uint64_t id) override {
    for (auto it = due_.begin(); it != due_.end(); ++it) {
      if (it->first.second == id) {
        due_.erase(it);
        return;
      }
    }
  }
  void advance(int64_t ms) {
    const int64_t target = clock_.now_ns + ms * kMs;
    while (!due_.empty() && due_.begin()->first.first <= target) {
      auto node = due_.extract(due_.begin());
      clock_.now_ns = node.key().first;
      node.mapped()();
    }
    clock_.now_ns = target;
  }
  size_t pending() const { return due_.size(); }
  std::vector<int64_t> delays;  // every delay asked for, in order

 private:
  FakeClock& clock_;
  std::map<std::pair<int64_t, uint64_t>, std::function<void()>> due_;
  uint64_t next_ = 1;
};

// uniform() returns queued values first, then `fallback`.
class FakeRandom : public Random {
 public:
  double uniform() override {
    ++calls;
    if (queue.empty()) return fallback;
    const double u = queue.front();
    queue.pop_front();
    return u;
  }
  std::deque<double> queue;
  double fallback = 0.5;
  int calls = 0;
};

class FakeStore : public Store {
 public:
  explicit FakeStore(const FakeClock& c) : clock_(c) {}
  struct Lookup {
    FillKeys keys;
    std::string token;
    int64_t lock_ttl_ms = 0;
    bool take_lease = false;
    bool refresh = false;
    int64_t fresh_above_ms = 0;
    int64_t at_ms = 0;  // test time of the call
    std::function<void(LookupResult)> done;
  };
  struct Commit {
    FillKeys keys;
    std::string token;
    std::string value;
    int64_t ttl_ms = 0;
    bool negative = false;
    std::function<void(bool)> done;
  };
  struct Release {
    FillKeys keys;
    std::string token;
  };

  void lookup(const FillKeys& keys, const std::string& token, int64_t lock_ttl_ms, bool take_lease,
              std::function<void(LookupResult)> done) override {
    lookups.push_back({keys, token, lock_ttl_ms, take_lease, false, 0, clock_.ms(), done});
  }
  void refreshLookup(const FillKeys& keys, const std::string& token, int64_t lock_ttl_ms,
                     int64_t fresh_above_ms, std::function<void(LookupResult)> done) override {
    lookups.push_back({keys, token, lock_ttl_ms, true, true, fresh_above_ms, clock_.ms(), done});
  }
  void commit(const FillKeys& keys, const std::string& token, const std::string& value,
              int64_t ttl_ms, std::function<void(bool)> done) override {
    commits.push_back({keys, token, value, ttl_ms, false, std::move(done)});
  }
  void commitNegative(const FillKeys& keys, const std::string& token, int64_t ttl_ms,
                      std::function<void(bool)> done) override {
    commits.push_back({keys, token, {}, ttl_ms, true, std::move(done)});
  }
  void release(const FillKeys& keys, const std::string& token) override {
    releases.push_back({keys, token});
  }

  // Answers lookup i (each exactly once).
  void answer(size_t i, LKind kind, std::string value = {}, std::string error = {}) {
    REQUIRE(i < lookups.size());
    REQUIRE(lookups[i].done);
    auto done = std::move(lookups[i].done);
    lookups[i].done = nullptr;
    LookupResult r;
    r.kind = kind;
    r.value = std::move(value);
    r.error = std::move(error);
    done(r);
  }
  void answerLast(LKind kind, std::string value = {}) {
    REQUIRE(!lookups.empty());
    answer(lookups.size() - 1, kind, std::move(value));
  }

  std::vector<Lookup> lookups;
  std::vector<Commit> commits;
  std::vector<Release> releases;

 private:
  const FakeClock& clock_;
};

class FakeOrigin : public Origin {
 public:
  struct Request {
    std::string path;
    std::function<void(OriginResult)> done;
  };
  void fetch(const std::string& path, std::function<void(OriginResult)> done) override {
    requests.push_back({path, std::move(done)});
  }
  void complete(size_t i, OKind kind, std::string text = {}) {
    REQUIRE(i < requests.size());
    REQUIRE(requests[i].done);
    auto done = std::move(requests[i].done);
    requests[i].done = nullptr;
    OriginResult r;
    r.kind = kind;
    if (kind == OKind::kValue) r.body = std::move(text);
    if (kind == OKind::kError) r.error = std::move(text);
    done(r);
  }
  std::vector<Request> requests;
};

// Everything a test needs; outcomes are logged as (waiter tag, outcome).
struct Env {
  FakeClock clock;
  FakeTimer timer{clock};
  FakeRandom random;
  FakeStore store{clock};
  FakeOrigin origin;
  std::unique_ptr<FillEngine> engine = std::make_unique<FillEngine>(store, timer, clock, random);
  std::vector<std::pair<int, FillOutcome>> got;

  FillPolicy policy(SingleFlight sf = SingleFlight::kLocal) {
    FillPolicy p;
    p.name = "users";
    p.origin = &origin;
    p.origin_name = "users-api";
    p.origin_timeout_ms = 300;
    p.ttl_ms = 60'000;
    p.jitter = 0.25;  // with U = 0.5: 60000 * 0.875 = 52500 exactly
    p.single_flight = sf;
    p.lock_ttl_ms = 600;
    p.wait_ms = 600;
    return p;
  }
  FillEngine::Done waiter(int tag) {
    return [this, tag](const FillOutcome& o) { got.emplace_back(tag, o); };
  }
  uint64_t miss(const FillPolicy& p, int tag, std::string_view key = "user:42",
                const std::string* stale = nullptr) {
    return engine->onMiss(p, key, "/v1/users/42", stale, waiter(tag));
  }
  FillCounters& c() { return engine->counters("users"); }
};

void checkValue(const std::pair<int, FillOutcome>& g, int tag, const std::string& value) {
  CHECK(g.first == tag);
  CHECK(g.second.kind == FKind::kValue);
  CHECK(g.second.value == value);
}
void checkNil(const std::pair<int, FillOutcome>& g, int tag) {
  CHECK(g.first == tag);
  CHECK(g.second.kind == FKind::kNil);
}
void checkError(const std::pair<int, FillOutcome>& g, int tag, const std::string& error) {
  CHECK(g.first == tag);
  CHECK(g.second.kind == FKind::kError);
  CHECK(g.second.error == error);
}

bool isToken(const std::string& t) {
  if (t.size() != 32) return false;
  for (char ch : t) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

// ---- keys and paths -------------------------------------------------------------------------

TEST_CASE("fill: keySlot (test helper) matches the Redis Cluster reference values") {
  CHECK(crc16("123456789") == 0x31C3);  // CRC16/XMODEM check value
  CHECK(keySlot("foo") == 12182);       // CLUSTER KEYSLOT foo
  CHECK(keySlot("{user1000}.following") == keySlot("{user1000}.followers"));
  CHECK(keySlot("foo{}{bar}") == keySlot("foo{}{bar}"));
  CHECK(keySlot("foo{}{bar}") != keySlot("bar"));  // empty first tag: the whole key hashes
  CHECK(keySlot("foo{{bar}}zap") == keySlot("{bar"));
  CHECK(keySlot("foo{bar}{zap}") == keySlot("bar"));
}

TEST_CASE("fill: fillKeys names the lease and negative keys in the data key's slot") {
  FillKeys k = fillKeys("user:42");
  CHECK(k.data == "user:42");
  CHECK(k.lease == "__corral:lease:{user:42}");
  CHECK(k.negative == "__corral:neg:{user:42}");

  k = fillKeys("cart:{42}:items");
  CHECK(k.data == "cart:{42}:items");
  CHECK(k.lease == "__corral:lease:{42}:cart:{42}:items");
  CHECK(k.negative == "__corral:neg:{42}:cart:{42}:items");

  k = fillKeys("a{b{c}d");  // tag "b{c": the first '}' after the first '{'
  CHECK(k.lease == "__corral:lease:{b{c}:a{b{c}d");

  // Keys that keep their slot: no brace at all, or a valid hash tag; also "a{b" (wrapped, its
  // tag is the whole key again).
  for (std::string_view key : {"user:42", "x", "sess:9f86d081884c7d65", "cart:{42}:items", "{42}",
                               "a{b{c}d", "foo{bar}{zap}", "a{b"}) {
    CAPTURE(key);
    const FillKeys fk = fillKeys(key);
    CHECK(keySlot(fk.lease) == keySlot(key));
    CHECK(keySlot(fk.negative) == keySlot(key));
    CHECK(fk.lease != fk.negative);
  }
  // Documented limit: braces without a valid tag ("{a}b}" hashes "a", not "a}b"), and the
  // empty key ("{}" is an empty tag).
  for (std::string_view key : {"a}b", "a{}b", "}{", "foo{}{bar}x", ""}) {
    CAPTURE(key);
    const FillKeys fk = fillKeys(key);
    CHECK(fk.lease == "__corral:lease:{" + std::string(key) + "}");
    CHECK(keySlot(fk.lease) != keySlot(key));
  }
}

TEST_CASE("fill: buildFillPath percent-encodes captures and copies literal text") {
  const std::string id = "a b/\xc3\xa4~._-Z9%?";
  const std::vector<Capture> caps = {{"id", id}, {"kind", "gold"}};
  CHECK(buildFillPath("/v1/users/<id>", caps) == "/v1/users/a%20b%2F%C3%A4~._-Z9%25%3F");
  CHECK(buildFillPath("/<kind>/<id>?x=<kind>", caps) == "/gold/a%20b%2F%C3%A4~._-Z9%25%3F?x=gold");
  CHECK(buildFillPath("/static/path", caps) == "/static/path");
  CHECK(buildFillPath("", caps) == "");
  CHECK(buildFillPath("/a<kind", caps) == "/a<kind");  // no '>': literal
  CHECK(buildFillPath("/<nope>", caps) == std::nullopt);
  CHECK(buildFillPath("/<>", caps) == std::nullopt);
  const std::vector<Capture> raw = {{"v", std::string_view("\x00\xff\n", 3)}};
  CHECK(buildFillPath("<v>", raw) == "%00%FF%0A");

  std::string missing = "unchanged";
  const std::vector<std::string> names = {"id", "kind"};
  CHECK(fillPathValid("/v1/<kind>/<id>", names, &missing));
  CHECK(missing == "unchanged");
  CHECK_FALSE(fillPathValid("/v1/<kind>/<uid>/<other>", names, &missing));
  CHECK(missing == "uid");
  CHECK_FALSE(fillPathValid("/<>", names, &missing));
  CHECK(missing == "");
  CHECK_FALSE(fillPathValid("/<x>", names, nullptr));
  CHECK(fillPathValid("/plain", {}, nullptr));
}

// ---- misses: local, off ---------------------------------------------------------------------

TEST_CASE("fill: local single-flight coalesces N misses into one origin call") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kLocal);
  for (int i = 1; i <= 5; ++i) e.miss(p, i);
  CHECK(e.engine->inflight() == 1);
  CHECK(e.c().coalesced == 4);
  REQUIRE(e.store.lookups.size() == 1);
  const auto& l = e.store.lookups[0];
  CHECK(l.keys.data == "user:42");
  CHECK(l.keys.lease == "__corral:lease:{user:42}");
  CHECK(l.token == "");
  CHECK_FALSE(l.take_lease);
  CHECK_FALSE(l.refresh);
  CHECK(l.lock_ttl_ms == 600);
  CHECK(e.random.calls == 0);  // no token without a lease

  e.store.answer(0, LKind::kMissing);
  REQUIRE(e.origin.requests.size() == 1);
  CHECK(e.origin.requests[0].path == "/v1/users/42");
  CHECK(e.c().fills == 1);
  e.miss(p, 6);  // joins during the origin call
  CHECK(e.c().coalesced == 5);
  CHECK(e.got.empty());

  e.origin.complete(0, OKind::kValue, "{\"id\":42}");
  // Answered at once, before the commit is acknowledged.
  REQUIRE(e.got.size() == 6);
  for (int i = 0; i < 6; ++i) checkValue(e.got[i], i + 1, "{\"id\":42}");
  CHECK(e.engine->inflight() == 0);
  REQUIRE(e.store.commits.size() == 1);
  const auto& cm = e.store.commits[0];
  CHECK_FALSE(cm.negative);
  CHECK(cm.token == "");  // SET NX
  CHECK(cm.value == "{\"id\":42}");
  CHECK(cm.ttl_ms == 52'500);  // 60000 * (1 - 0.5 * 0.25) + window 0
  CHECK(e.origin.requests.size() == 1);
  CHECK(e.store.releases.empty());

  e.store.commits[0].done(false);  // the key was written meanwhile: SET NX refused
  CHECK(e.c().not_stored == 1);
  CHECK(e.c().fills == 1);
  CHECK(e.c().fill_errors == 0);
  CHECK(e.timer.pending() == 0);  // the deadline timer was cancelled

  // The next miss starts a new flight.
  e.miss(p, 7);
  CHECK(e.store.lookups.size() == 2);
  CHECK(e.c().coalesced == 5);
}

TEST_CASE("fill: single_flight off makes one origin call per miss") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kOff);
  for (int i = 1; i <= 3; ++i) e.miss(p, i);
  CHECK(e.engine->inflight() == 3);
  CHECK(e.c().coalesced == 0);
  REQUIRE(e.store.lookups.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK_FALSE(e.store.lookups[i].take_lease);
    e.store.answer(i, LKind::kMissing);
  }
  REQUIRE(e.origin.requests.size() == 3);
  CHECK(e.c().fills == 3);
  e.origin.complete(1, OKind::kValue, "b");
  e.origin.complete(0, OKind::kValue, "a");
  e.origin.complete(2, OKind::kNotFound);
  REQUIRE(e.got.size() == 3);
  checkValue(e.got[0], 2, "b");
  checkValue(e.got[1], 1, "a");
  checkNil(e.got[2], 3);
  REQUIRE(e.store.commits.size() == 2);  // negative_ttl 0: no negative entry
  CHECK(e.store.commits[0].token == "");
  CHECK(e.store.commits[1].token == "");
  CHECK(e.store.releases.empty());  // no token, nothing to release
  CHECK(e.engine->inflight() == 0);
}

TEST_CASE("fill: a lookup that finds a value or a negative entry answers without the origin") {
  Env e;
  const FillPolicy p = e.policy();
  SUBCASE("value") {
    e.miss(p, 1);
    e.miss(p, 2);
    e.store.answer(0, LKind::kValue, "cached");
    REQUIRE(e.got.size() == 2);
    checkValue(e.got[0], 1, "cached");
    checkValue(e.got[1], 2, "cached");
    CHECK(e.c().negative_hits == 0);
  }
  SUBCASE("negative") {
    e.miss(p, 1);
    e.miss(p, 2);
    e.store.answer(0, LKind::kNegative);
    REQUIRE(e.got.size() == 2);
    checkNil(e.got[0], 1);
    checkNil(e.got[1], 2);
    CHECK(e.c().negative_hits == 2);  // per miss answered
  }
  CHECK(e.origin.requests.empty());
  CHECK(e.c().fills == 0);
  CHECK(e.store.commits.empty());
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);
}

TEST_CASE("fill: a store error answers by on_error") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  SUBCASE("nil") {
    e.miss(p, 1);
    e.store.answer(0, LKind::kError, {}, "READONLY\r\nx");
    REQUIRE(e.got.size() == 1);
    checkNil(e.got[0], 1);
  }
  SUBCASE("error") {
    p.on_error = FillOnError::kError;
    e.miss(p, 1);
    e.store.answer(0, LKind::kError, {}, "READONLY\r\nx");
    REQUIRE(e.got.size() == 1);
    checkError(e.got[0], 1, "FILLERR users-api store READONLY  x");
  }
  CHECK(e.c().store_errors == 1);
  CHECK(e.c().fill_errors == 0);
  CHECK(e.origin.requests.empty());
}

// ---- distributed ----------------------------------------------------------------------------

TEST_CASE("fill: distributed lease won: fill and token-checked commit") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.swr_ms = 10'000;  // window: stored TTL = soft TTL + 10000
  e.miss(p, 1);
  e.miss(p, 2);
  REQUIRE(e.store.lookups.size() == 1);
  const std::string token = e.store.lookups[0].token;
  CHECK(token == "80000000800000008000000080000000");  // four draws of U = 0.5
  CHECK(isToken(token));
  CHECK(e.store.lookups[0].take_lease);
  e.store.answer(0, LKind::kLeaseWon);
  CHECK(e.c().lease_wins == 1);
  CHECK(e.c().lease_losses == 0);
  REQUIRE(e.origin.requests.size() == 1);
  e.origin.complete(0, OKind::kValue, "v");
  REQUIRE(e.got.size() == 2);
  checkValue(e.got[0], 1, "v");
  checkValue(e.got[1], 2, "v");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].token == token);
  CHECK(e.store.commits[0].ttl_ms == 52'500 + 10'000);
  e.store.commits[0].done(true);
  CHECK(e.c().not_stored == 0);
  CHECK(e.store.releases.empty());  // the commit deletes the lease itself

  // A second flight draws a different token from the random source.
  e.random.queue = {0.25, 0.0, 0.0, 0.999};
  e.miss(p, 3);
  REQUIRE(e.store.lookups.size() == 2);
  CHECK(e.store.lookups[1].token == "400000000000000000000000ffbe76c8");
}

TEST_CASE("fill: distributed lease lost: poll with backoff until the value appears") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.wait_ms = 1'000;
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseHeld);
  CHECK(e.c().lease_losses == 1);
  CHECK(e.origin.requests.empty());
  e.timer.advance(1);
  CHECK(e.store.lookups.size() == 1);
  e.timer.advance(1);
  REQUIRE(e.store.lookups.size() == 2);
  CHECK(e.store.lookups[1].at_ms == 2);
  CHECK(e.store.lookups[1].take_lease);
  CHECK(e.store.lookups[1].token == e.store.lookups[0].token);
  // Held again and again: the backoff doubles to 4, 8, then stays at 10 ms.
  for (int64_t backoff : {4, 8, 10, 10, 10}) {
    CAPTURE(backoff);
    e.store.answerLast(LKind::kLeaseHeld);
    const size_t n = e.store.lookups.size();
    const int64_t held_at = e.clock.ms();
    e.timer.advance(backoff - 1);
    CHECK(e.store.lookups.size() == n);
    e.timer.advance(1);
    REQUIRE(e.store.lookups.size() == n + 1);
    CHECK(e.store.lookups.back().at_ms == held_at + backoff);
    CHECK(e.store.lookups.back().take_lease);
  }
  CHECK(e.store.lookups.back().at_ms == 44);
  CHECK(e.c().lease_losses == 6);
  e.miss(p, 2);  // a miss during the wait joins
  CHECK(e.c().coalesced == 1);
  e.store.answerLast(LKind::kValue, "from another corral");
  REQUIRE(e.got.size() == 2);
  checkValue(e.got[0], 1, "from another corral");
  checkValue(e.got[1], 2, "from another corral");
  CHECK(e.origin.requests.empty());
  CHECK(e.c().fills == 0);
  CHECK(e.c().lease_wins == 0);
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);
}

TEST_CASE("fill: distributed takeover after the other corral's lease expires") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kDistributed);
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseHeld);
  e.timer.advance(5);
  e.store.answerLast(LKind::kLeaseHeld);
  e.timer.advance(10);
  REQUIRE(e.store.lookups.size() == 3);
  e.store.answerLast(LKind::kLeaseWon);  // the other lease expired: ours now
  CHECK(e.c().lease_losses == 2);
  CHECK(e.c().lease_wins == 1);
  REQUIRE(e.origin.requests.size() == 1);
  e.origin.complete(0, OKind::kValue, "mine");
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, "mine");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].token == e.store.lookups[0].token);
  CHECK(e.timer.pending() == 0);
}

TEST_CASE("fill: distributed lease wait times out after stampede.wait") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.wait_ms = 30;
  bool last_wins = false;
  SUBCASE("on_error nil") {}
  SUBCASE("on_error error") { p.on_error = FillOnError::kError; }
  SUBCASE("the last lookup wins the lease") { last_wins = true; }
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseHeld);
  // Polls at 2, 6, 14, 24, then at the deadline (30), not at 34.
  for (int64_t step : {2, 4, 8, 10}) {
    e.timer.advance(step);
    e.store.answerLast(LKind::kLeaseHeld);
  }
  e.timer.advance(5);
  CHECK(e.store.lookups.size() == 5);
  e.timer.advance(1);
  REQUIRE(e.store.lookups.size() == 6);
  CHECK(e.store.lookups[4].at_ms == 24);
  CHECK(e.store.lookups[5].at_ms == 30);
  CHECK(e.store.lookups[5].take_lease);
  CHECK(e.got.empty());
  if (last_wins) {
    e.store.answerLast(LKind::kLeaseWon);
    CHECK(e.c().lease_wins == 1);
    REQUIRE(e.origin.requests.size() == 1);
    e.origin.complete(0, OKind::kValue, "v");
    REQUIRE(e.got.size() == 1);
    checkValue(e.got[0], 1, "v");
    CHECK(e.c().wait_timeouts == 0);
  } else {
    e.store.answerLast(LKind::kLeaseHeld);
    CHECK(e.c().lease_losses == 6);
    CHECK(e.c().wait_timeouts == 1);
    REQUIRE(e.got.size() == 1);
    if (p.on_error == FillOnError::kError) {
      checkError(e.got[0], 1, "FILLERR users-api lease wait timed out");
    } else {
      checkNil(e.got[0], 1);
    }
    CHECK(e.origin.requests.empty());
    CHECK(e.store.releases.empty());  // never held it
  }
  CHECK(e.c().fill_errors == 0);
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);
  e.timer.advance(1'000);
  CHECK(e.got.size() == 1);  // exactly once
}

// ---- origin outcomes ------------------------------------------------------------------------

TEST_CASE("fill: an origin 404 is remembered as a negative entry") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.negative_ttl_ms = 30'000;
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(0, OKind::kNotFound);
  REQUIRE(e.got.size() == 1);
  checkNil(e.got[0], 1);
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].negative);
  CHECK(e.store.commits[0].ttl_ms == 30'000);
  CHECK(e.store.commits[0].token == e.store.lookups[0].token);
  CHECK(e.store.commits[0].keys.negative == "__corral:neg:{user:42}");
  CHECK(e.store.releases.empty());
  e.store.commits[0].done(false);  // token refused
  CHECK(e.c().not_stored == 1);

  // The next miss finds it.
  e.miss(p, 2);
  e.store.answerLast(LKind::kNegative);
  REQUIRE(e.got.size() == 2);
  checkNil(e.got[1], 2);
  CHECK(e.c().negative_hits == 1);
  CHECK(e.c().fills == 1);
}

TEST_CASE("fill: an origin 404 without negative caching releases the lease") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kDistributed);  // negative_ttl 0
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(0, OKind::kNotFound);
  REQUIRE(e.got.size() == 1);
  checkNil(e.got[0], 1);
  CHECK(e.store.commits.empty());
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].token == e.store.lookups[0].token);
  CHECK(e.store.releases[0].keys.lease == "__corral:lease:{user:42}");
}

TEST_CASE("fill: an origin error answers by on_error, or with the stale value") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  SUBCASE("on_error nil") {
    e.miss(p, 1);
    e.store.answerLast(LKind::kLeaseWon);
    e.origin.complete(0, OKind::kError, "status 503");
    REQUIRE(e.got.size() == 1);
    checkNil(e.got[0], 1);
    CHECK(e.c().stale_served == 0);
  }
  SUBCASE("on_error error") {
    p.on_error = FillOnError::kError;
    e.miss(p, 1);
    e.store.answerLast(LKind::kLeaseWon);
    e.origin.complete(0, OKind::kError, "status 503");
    REQUIRE(e.got.size() == 1);
    checkError(e.got[0], 1, "FILLERR users-api status 503");
    CHECK(e.c().stale_served == 0);
  }
  SUBCASE("stale-if-error") {
    p.on_error = FillOnError::kError;
    p.sie_ms = 5'000;
    const std::string stale = "old";
    e.miss(p, 1, "user:42", &stale);
    e.miss(p, 2);  // joins without a stale value
    REQUIRE(e.store.lookups.size() == 1);
    CHECK(e.store.lookups[0].refresh);  // the data key still holds "old"
    CHECK(e.store.lookups[0].fresh_above_ms == 5'000);
    e.store.answerLast(LKind::kLeaseWon);
    e.origin.complete(0, OKind::kError, "timeout");
    REQUIRE(e.got.size() == 2);
    checkValue(e.got[0], 1, "old");
    checkError(e.got[1], 2, "FILLERR users-api timeout");
    CHECK(e.c().stale_served == 1);
  }
  CHECK(e.c().fill_errors == 1);
  CHECK(e.c().fills == 1);
  CHECK(e.store.commits.empty());
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].token == e.store.lookups[0].token);
  CHECK(e.engine->deltaMs("users") == 0.0);  // errors are not latency samples
}

TEST_CASE("fill: stale value with a local policy refreshes under a lease and overwrites") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kLocal);
  p.sie_ms = 5'000;
  const std::string stale = "old";
  e.miss(p, 1, "user:42", &stale);
  REQUIRE(e.store.lookups.size() == 1);
  CHECK(e.store.lookups[0].refresh);
  CHECK(isToken(e.store.lookups[0].token));
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(0, OKind::kValue, "new");
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, "new");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].token == e.store.lookups[0].token);  // not SET NX: it must replace
  CHECK(e.store.commits[0].ttl_ms == 52'500 + 5'000);
  CHECK(e.c().stale_served == 0);
}

TEST_CASE("fill: bodies over max_value_bytes are served but not stored") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.max_value_bytes = 4;
  e.miss(p, 1);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(0, OKind::kValue, "12345");
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, "12345");
  CHECK(e.store.commits.empty());
  CHECK(e.c().not_stored == 1);
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].token == e.store.lookups[0].token);

  // Exactly the limit is stored.
  e.miss(p, 2);
  e.store.answerLast(LKind::kLeaseWon);
  e.origin.complete(1, OKind::kValue, "1234");
  CHECK(e.store.commits.size() == 1);
  CHECK(e.c().not_stored == 1);
}

TEST_CASE("fill: revoke keeps a running fill from storing its value") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.negative_ttl_ms = 30'000;
  e.miss(p, 1);
  e.miss(p, 9, "user:43");
  e.store.answer(0, LKind::kLeaseWon);
  e.store.answer(1, LKind::kLeaseWon);
  e.engine->revoke("user:42");
  e.engine->revoke("user:nobody");  // no flight: nothing
  SUBCASE("value") {
    e.origin.complete(0, OKind::kValue, "pre-write");
    REQUIRE(e.got.size() == 1);
    checkValue(e.got[0], 1, "pre-write");  // the waiter still gets it
    CHECK(e.c().not_stored == 1);
  }
  SUBCASE("404") {
    e.origin.complete(0, OKind::kNotFound);
    REQUIRE(e.got.size() == 1);
    checkNil(e.got[0], 1);
    CHECK(e.c().not_stored == 0);
  }
  CHECK(e.store.commits.empty());
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].keys.data == "user:42");
  // The other key's flight was not revoked.
  e.origin.complete(1, OKind::kValue, "v43");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].keys.data == "user:43");
}

TEST_CASE("fill: detach removes one waiter; the flight goes on") {
  Env e;
  const FillPolicy p = e.policy();
  const uint64_t w1 = e.miss(p, 1);
  const uint64_t w2 = e.miss(p, 2);
  const uint64_t w3 = e.miss(p, 3);
  CHECK(w1 != w2);
  CHECK(w2 != w3);
  e.engine->detach(w2);
  e.engine->detach(w2);      // twice: nothing
  e.engine->detach(999999);  // unknown: nothing
  e.store.answer(0, LKind::kMissing);
  e.engine->detach(w1);
  e.engine->detach(w3);
  CHECK(e.engine->inflight() == 1);  // nobody waits, the fill still completes
  e.origin.complete(0, OKind::kValue, "v");
  CHECK(e.got.empty());
  CHECK(e.store.commits.size() == 1);
  CHECK(e.engine->inflight() == 0);
}

TEST_CASE("fill: a waiter's callback may detach a later waiter or start a new miss") {
  Env e;
  const FillPolicy p = e.policy();
  uint64_t w2 = 0;
  e.engine->onMiss(p, "user:42", "/p", nullptr, [&](const FillOutcome& o) {
    e.got.emplace_back(1, o);
    e.engine->detach(w2);
    e.miss(p, 4);  // a new flight, not the one being answered
  });
  w2 = e.miss(p, 2);
  e.miss(p, 3);
  e.store.answer(0, LKind::kValue, "v");
  REQUIRE(e.got.size() == 2);
  checkValue(e.got[0], 1, "v");
  checkValue(e.got[1], 3, "v");
  CHECK(e.engine->inflight() == 1);
  CHECK(e.store.lookups.size() == 2);
}

// ---- deadlines ------------------------------------------------------------------------------

TEST_CASE("fill: the flight deadline ends a fill whose origin never answers") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.on_error = FillOnError::kError;
  e.miss(p, 1);
  e.timer.advance(20);
  e.store.answerLast(LKind::kLeaseWon);  // origin call starts at 20
  REQUIRE(e.origin.requests.size() == 1);
  e.timer.advance(399);  // 300 ms timeout + 100 ms margin = 420
  CHECK(e.got.empty());
  e.timer.advance(1);
  REQUIRE(e.got.size() == 1);
  checkError(e.got[0], 1, "FILLERR users-api timeout");
  CHECK(e.c().fill_errors == 1);
  CHECK(e.engine->inflight() == 0);
  REQUIRE(e.store.releases.size() == 1);
  CHECK(e.store.releases[0].token == e.store.lookups[0].token);

  // The origin answers late: ignored.
  e.origin.complete(0, OKind::kValue, "late");
  CHECK(e.got.size() == 1);
  CHECK(e.store.commits.empty());
  CHECK(e.engine->deltaMs("users") == 0.0);
  e.timer.advance(10'000);
  CHECK(e.got.size() == 1);
}

TEST_CASE("fill: the flight deadline ends a fill whose store never answers") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kLocal);
  p.wait_ms = 200;
  e.miss(p, 1);
  e.timer.advance(299);
  CHECK(e.got.empty());
  e.timer.advance(1);  // wait 200 + margin 100
  REQUIRE(e.got.size() == 1);
  checkNil(e.got[0], 1);
  CHECK(e.c().store_errors == 1);
  CHECK(e.store.releases.empty());     // local: no token
  e.store.answer(0, LKind::kMissing);  // late: ignored
  CHECK(e.origin.requests.empty());
  CHECK(e.got.size() == 1);
  CHECK(e.engine->inflight() == 0);
}

TEST_CASE("fill: replies after the engine is destroyed are ignored") {
  Env e;
  const FillPolicy p = e.policy(SingleFlight::kDistributed);
  e.miss(p, 1);
  e.miss(p, 2, "user:43");
  e.store.answer(1, LKind::kLeaseWon);
  e.engine.reset();
  CHECK(e.timer.pending() == 0);  // its timers were cancelled
  e.store.answer(0, LKind::kLeaseWon);
  e.origin.complete(0, OKind::kValue, "v");
  CHECK(e.got.empty());
  CHECK(e.origin.requests.size() == 1);
  CHECK(e.store.commits.empty());
}

// ---- audit ----------------------------------------------------------------------------------

TEST_CASE("fill: audit counts the fill it would make and never fills") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.audit = true;
  p.swr_ms = 10'000;
  const uint64_t a = e.miss(p, 1);
  const uint64_t b = e.miss(p, 2);
  CHECK(a != b);
  REQUIRE(e.got.size() == 2);  // synchronously
  checkNil(e.got[0], 1);
  checkNil(e.got[1], 2);
  CHECK(e.c().would_fill == 2);
  CHECK(e.engine->onHit(p, "user:42", "/p", 5'000) == HitAction::kServe);
  CHECK(e.c().would_fill == 3);
  CHECK(e.engine->onHit(p, "user:42", "/p", 50'000) == HitAction::kServe);
  CHECK(e.c().would_fill == 3);
  CHECK(e.store.lookups.empty());
  CHECK(e.origin.requests.empty());
  CHECK(e.engine->inflight() == 0);
  CHECK(e.c().fills == 0);
  CHECK(e.c().refreshes == 0);
  CHECK(e.c().stale_served == 0);
  e.engine->detach(a);  // nothing to detach
}

// ---- hits: SWR, stale-if-error, xfetch ------------------------------------------------------

TEST_CASE("fill: onHit serves fresh values and values without a TTL") {
  Env e;
  FillPolicy p = e.policy();
  p.swr_ms = 10'000;
  p.xfetch = true;
  CHECK(e.engine->onHit(p, "user:42", "/p", -1) == HitAction::kServe);
  CHECK(e.engine->onHit(p, "user:42", "/p", 10'001) == HitAction::kServe);
  CHECK(e.random.calls == 0);  // delta 0: xfetch does not draw
  p.swr_ms = 0;
  CHECK(e.engine->onHit(p, "user:42", "/p", 0) == HitAction::kServe);  // no window at all
  CHECK(e.store.lookups.empty());
  CHECK(e.c().refreshes == 0);
}

TEST_CASE("fill: stale-while-revalidate starts one background refresh while it runs") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kDistributed);
  p.swr_ms = 10'000;
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 10'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 1);
  CHECK(e.c().stale_served == 1);
  REQUIRE(e.store.lookups.size() == 1);
  CHECK(e.store.lookups[0].refresh);
  CHECK(e.store.lookups[0].fresh_above_ms == 10'000);
  CHECK(isToken(e.store.lookups[0].token));
  CHECK(e.engine->inflight() == 1);
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 4'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 1);
  CHECK(e.c().stale_served == 2);
  CHECK(e.store.lookups.size() == 1);

  SUBCASE("refresh fills") {
    e.store.answer(0, LKind::kLeaseWon);
    REQUIRE(e.origin.requests.size() == 1);
    CHECK(e.origin.requests[0].path == "/v1/users/42");
    CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 3'000) == HitAction::kServeStale);
    CHECK(e.c().refreshes == 1);
    e.origin.complete(0, OKind::kValue, "fresh");
    REQUIRE(e.store.commits.size() == 1);
    CHECK(e.store.commits[0].token == e.store.lookups[0].token);
    CHECK(e.store.commits[0].ttl_ms == 52'500 + 10'000);
    CHECK(e.c().fills == 1);
  }
  SUBCASE("another corral refreshes: end quietly") {
    e.store.answer(0, LKind::kLeaseHeld);
    CHECK(e.c().lease_losses == 1);
    CHECK(e.timer.pending() == 0);  // no polling without waiters
    CHECK(e.origin.requests.empty());
  }
  SUBCASE("someone refreshed it already") {
    e.store.answer(0, LKind::kValue, "fresh");
    CHECK(e.origin.requests.empty());
  }
  SUBCASE("a miss joins the refresh") {
    e.miss(p, 1);
    CHECK(e.c().coalesced == 1);
    e.store.answer(0, LKind::kLeaseHeld);  // now it has a waiter: it polls
    CHECK(e.timer.pending() == 2);         // deadline + poll
    e.timer.advance(5);
    REQUIRE(e.store.lookups.size() == 2);
    CHECK(e.store.lookups[1].refresh);
    e.store.answer(1, LKind::kValue, "fresh");
    REQUIRE(e.got.size() == 1);
    checkValue(e.got[0], 1, "fresh");
  }
  CHECK(e.engine->inflight() == 0);
  CHECK(e.timer.pending() == 0);
  // Done: the next stale hit starts a new refresh.
  CHECK(e.engine->onHit(p, "user:42", "/v1/users/42", 2'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 2);
  CHECK(e.store.lookups.back().fresh_above_ms == 2'000);
}

TEST_CASE("fill: stale_if_error past soft expiry makes the client wait for the refresh") {
  Env e;
  FillPolicy p = e.policy();
  p.sie_ms = 5'000;
  CHECK(e.engine->onHit(p, "user:42", "/p", 5'001) == HitAction::kServe);
  CHECK(e.engine->onHit(p, "user:42", "/p", 5'000) == HitAction::kWaitRefresh);
  CHECK(e.engine->onHit(p, "user:42", "/p", 1) == HitAction::kWaitRefresh);
  // With both windows: within swr serve stale, beyond it (up to sie) wait.
  p.swr_ms = 2'000;
  CHECK(e.engine->onHit(p, "user:42", "/p", 3'500) == HitAction::kServeStale);
  CHECK(e.engine->onHit(p, "user:42", "/p", 2'999) == HitAction::kWaitRefresh);
  CHECK(e.c().refreshes == 1);
  CHECK(e.c().stale_served == 1);
  CHECK(e.store.lookups.size() == 1);  // only the SWR refresh
}

// One fill of `latency_ms` under policy p (local), to feed the latency average.
void fillWithLatency(Env& e, const FillPolicy& p, int64_t latency_ms, OKind kind = OKind::kValue) {
  e.miss(p, 0, "lat:" + std::to_string(e.origin.requests.size()));
  e.store.answerLast(LKind::kMissing);
  e.timer.advance(latency_ms);
  e.origin.complete(e.origin.requests.size() - 1, kind, "x");
}

TEST_CASE("fill: deltaMs is a moving average of fill latency (alpha 0.2)") {
  Env e;
  const FillPolicy p = e.policy();
  CHECK(e.engine->deltaMs("users") == 0.0);
  CHECK(e.engine->deltaMs("unknown") == 0.0);
  fillWithLatency(e, p, 100);
  CHECK(e.engine->deltaMs("users") == doctest::Approx(100.0));
  fillWithLatency(e, p, 200);
  CHECK(e.engine->deltaMs("users") == doctest::Approx(120.0));
  fillWithLatency(e, p, 50, OKind::kNotFound);
  CHECK(e.engine->deltaMs("users") == doctest::Approx(106.0));
  fillWithLatency(e, p, 5, OKind::kError);  // not a sample
  CHECK(e.engine->deltaMs("users") == doctest::Approx(106.0));
  CHECK(e.c().fills == 4);
  CHECK(e.engine->deltaMs("other") == 0.0);
}

TEST_CASE("fill: xfetch refreshes early with probability exp(-remaining / (delta * beta))") {
  Env e;
  FillPolicy p = e.policy();
  p.xfetch = true;
  p.beta = 2.0;
  fillWithLatency(e, p, 50);  // delta 50 ms; delta * beta = 100
  REQUIRE(e.engine->deltaMs("users") == doctest::Approx(50.0));
  const size_t lookups = e.store.lookups.size();
  const int calls = e.random.calls;
  // remaining 100 ms: threshold exp(-1) = 0.3679
  e.random.queue = {0.37};
  CHECK(e.engine->onHit(p, "user:42", "/p", 100) == HitAction::kServe);
  CHECK(e.random.calls == calls + 1);
  CHECK(e.c().refreshes == 0);
  CHECK(e.store.lookups.size() == lookups);

  e.random.queue = {0.36};
  CHECK(e.engine->onHit(p, "user:42", "/p", 100) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 1);
  CHECK(e.c().stale_served == 0);  // the value is still fresh
  REQUIRE(e.store.lookups.size() == lookups + 1);
  CHECK(e.store.lookups.back().refresh);
  CHECK(e.store.lookups.back().fresh_above_ms == 100);

  // While that refresh runs, no draw and no second refresh.
  const int calls2 = e.random.calls;
  CHECK(e.engine->onHit(p, "user:42", "/p", 90) == HitAction::kServe);
  CHECK(e.random.calls == calls2);
  CHECK(e.c().refreshes == 1);

  // Far from expiry the probability is tiny: exp(-10) = 4.5e-5.
  e.random.queue = {0.0001};
  CHECK(e.engine->onHit(p, "user:7", "/p", 1'000) == HitAction::kServe);
  e.random.queue = {0.00004};
  CHECK(e.engine->onHit(p, "user:7", "/p", 1'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 2);

  // U = 0 always refreshes (no log of zero).
  e.random.queue = {0.0};
  CHECK(e.engine->onHit(p, "user:8", "/p", 1'000'000) == HitAction::kServeStale);
  CHECK(e.c().refreshes == 3);
}

}  // namespace
}  // namespace corral::policies
