// Fakes for the fill engine's tests: the store and the origin hold every request until the test
// answers it; the timer runs on manual time (advance() also moves the clock); randomness comes
// from a queue. No sleeps, no threads. Shared by fill_test.cc and fill_refresh_test.cc.
#pragma once

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

#include "policies/fill.h"

namespace corral::policies::filltest {

using config::FillOnError;
using config::SingleFlight;
using LKind = LookupResult::Kind;
using OKind = OriginResult::Kind;
using FKind = FillOutcome::Kind;
using HitAction = FillEngine::HitAction;

// The names of user:42's lease and negative entry under kTestSecret (tests/support/fill_keys.py
// gives the same).
inline constexpr std::string_view kTestSecret = "0123456789abcdef-test-secret";
inline constexpr std::string_view kLease42 = "__corral:lease:{user:42}:665c778035415d28";
inline constexpr std::string_view kNegative42 = "__corral:neg:{user:42}:d68f8a4e0958b1f1";

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kT0 = 7'000 * kMs;  // a monotonic clock does not start at zero

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
    std::optional<std::string> meta;  // set by commitValidated
  };
  struct Extend {
    FillKeys keys;
    std::string token;
    int64_t ttl_ms = 0;
    std::string meta;
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
    commits.push_back({keys, token, value, ttl_ms, false, std::move(done), std::nullopt});
  }
  void commitNegative(const FillKeys& keys, const std::string& token, int64_t ttl_ms,
                      std::function<void(bool)> done) override {
    commits.push_back({keys, token, {}, ttl_ms, true, std::move(done), std::nullopt});
  }
  void release(const FillKeys& keys, const std::string& token) override {
    releases.push_back({keys, token});
  }
  void commitValidated(const FillKeys& keys, const std::string& token, const std::string& value,
                       int64_t ttl_ms, const std::string& meta,
                       std::function<void(bool)> done) override {
    commits.push_back({keys, token, value, ttl_ms, false, std::move(done), meta});
  }
  void extend(const FillKeys& keys, const std::string& token, int64_t ttl_ms,
              const std::string& meta, std::function<void(bool)> done) override {
    extends.push_back({keys, token, ttl_ms, meta, std::move(done)});
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
  // Answers lookup i: lease won, with what refreshLookup found in the meta key after the digest
  // ("<swr>:<sie>:<validator>").
  void answerWon(size_t i, std::string validator) {
    REQUIRE(i < lookups.size());
    REQUIRE(lookups[i].done);
    auto done = std::move(lookups[i].done);
    lookups[i].done = nullptr;
    LookupResult r;
    r.kind = LKind::kLeaseWon;
    r.validator = std::move(validator);
    done(r);
  }
  void answerLast(LKind kind, std::string value = {}) {
    REQUIRE(!lookups.empty());
    answer(lookups.size() - 1, kind, std::move(value));
  }

  std::vector<Lookup> lookups;
  std::vector<Commit> commits;
  std::vector<Release> releases;
  std::vector<Extend> extends;

 private:
  const FakeClock& clock_;
};

class FakeOrigin : public Origin {
 public:
  struct Request {
    std::string path;
    std::function<void(OriginResult)> done;
    std::string validator;  // fetchConditional's
  };
  void fetch(const std::string& path, std::function<void(OriginResult)> done) override {
    requests.push_back({path, std::move(done), {}});
  }
  void fetchConditional(const std::string& path, const std::string& validator,
                        std::function<void(OriginResult)> done) override {
    requests.push_back({path, std::move(done), validator});
  }
  // Answers request i with a whole OriginResult (headers, 304).
  void completeWith(size_t i, OriginResult r) {
    REQUIRE(i < requests.size());
    REQUIRE(requests[i].done);
    auto done = std::move(requests[i].done);
    requests[i].done = nullptr;
    done(std::move(r));
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
    p.names = FillKeyNames(kTestSecret);
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

inline void checkValue(const std::pair<int, FillOutcome>& g, int tag, const std::string& value) {
  CHECK(g.first == tag);
  CHECK(g.second.kind == FKind::kValue);
  CHECK(g.second.value == value);
}
inline void checkNil(const std::pair<int, FillOutcome>& g, int tag) {
  CHECK(g.first == tag);
  CHECK(g.second.kind == FKind::kNil);
}
inline void checkError(const std::pair<int, FillOutcome>& g, int tag, const std::string& error) {
  CHECK(g.first == tag);
  CHECK(g.second.kind == FKind::kError);
  CHECK(g.second.error == error);
}

inline bool isToken(const std::string& t) {
  if (t.size() != 32) return false;
  for (char ch : t) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

}  // namespace corral::policies::filltest
