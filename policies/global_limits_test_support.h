// Fakes for tests of global rate limits: a timer whose callbacks run when the test says, and a
// store holding one GCRA state per key whose takes are answered when the test says.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policies/credit_lease.h"
#include "policies/fill.h"
#include "policies/global_limits.h"

namespace corral::policies::testing {

struct FakeTimer final : Timer {
  std::vector<std::pair<int64_t, std::function<void()>>> due;  // delay_ms, callback
  uint64_t after(int64_t delay_ms, std::function<void()> cb) override {
    due.emplace_back(delay_ms, std::move(cb));
    return due.size();
  }
  void cancel(uint64_t) override {}
  void fireAll() {
    auto d = std::move(due);
    due.clear();
    for (auto& [ms, cb] : d) cb();
  }
};

struct FakeLimitStore final : LimitStore {
  std::map<std::string, int64_t> tat;  // by state key
  struct Pending {
    std::string key;
    GcraParams p;
    int64_t want;
    std::function<void(bool, const GcraGrant&)> done;
  };
  std::deque<Pending> pending;
  bool down = false;
  int64_t live = 4;
  void take(std::string_view key, const GcraParams& p, int64_t want,
            std::function<void(bool, const GcraGrant&)> done) override {
    pending.push_back({std::string(key), p, want, std::move(done)});
  }
  void heartbeat(std::string_view, int64_t, std::function<void(int64_t)> done) override {
    done(down ? -1 : live);
  }
  // Answers every take sent so far, as the state was at `at` (ns).
  void deliver(int64_t at) {
    auto batch = std::move(pending);
    pending.clear();
    for (Pending& t : batch) {
      if (down) {
        t.done(false, {});
        continue;
      }
      t.done(true, gcraTake(tat[t.key], at, t.p, t.want));
    }
  }
};

}  // namespace corral::policies::testing
