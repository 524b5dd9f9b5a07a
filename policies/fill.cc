// The fill engine: cache-aside fills with single-flight, over Store / Origin / Timer / Clock /
// Random (see fill.h for the flow and the interfaces).
//
//   onMiss ──(audit)──> done(nil), would_fill++
//     │ (local | distributed: a flight for the key exists) ──> attach waiter, coalesced++
//     v
//   Flight ──> [lookup] ──value──> answer all            ┐
//     ^           │ ──negative──> nil to all             │ every step carries (flight id,
//     │ poll      │ ──error──> stale or on_error         │ step); a reply for a flight that
//     │ (2..10ms) │ ──lease held──> [wait] ──────────────┤ ended, or for an older step, is
//     └───────────┘ ──won / missing──> [origin]          │ dropped
//                      ──200──> commit (async), answer   │
//                      ──404──> commitNegative, nil      │
//                      ──304──> extend, stale to waiters │
//                      ──error──> release, stale/on_error┘
//   Each flight has its own deadline timer (lookup/wait phase: wait_ms + margin; origin phase:
//   origin timeout + margin), so it ends even if neither the store nor the origin answers.
//
// Re-entrancy: Store, Origin and waiter callbacks may run synchronously (inside the call that
// started them) and may call back into the engine. So a flight is held by shared_ptr across
// every outgoing call, removed from every index before its waiters are called, and found again
// by id (never by a saved pointer) when a reply comes back.
#include "policies/fill.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policies/fill_flight.h"
#include "policies/fill_freshness.h"

namespace corral::policies {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;
// Slack past the origin timeout (the origin's own timer should fire first and report
// "timeout") and past the last lease lookup (the store's command timeout should answer).
constexpr int64_t kDeadlineMarginMs = 100;
using fill_internal::kPollFirstMs;  // lease-wait polling backoff: 2, 4, 8, 10, 10, ...
// Small on purpose: a loser learns of the winner's value at most this late (p99 target: origin
// latency + 20 ms), and a poll is one cheap script call on the primary.
constexpr int64_t kPollMaxMs = 10;
// With a watcher (setWaitWatcher: Redis tells this corral when the key changes), a change wakes
// the waiter at once and polls are only the safety net: 20, 40, 80, 100, 100, ... ms.
constexpr int64_t kWatchedPollFirstMs = 20;
constexpr int64_t kWatchedPollMaxMs = 100;
constexpr double kDeltaAlpha = 0.2;  // weight of the newest sample in the latency average

// Reasons end up in a one-line error reply: no CR or LF.
std::string oneLine(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return s;
}

}  // namespace

using fill_internal::Flight;
using fill_internal::Phase;
using fill_internal::PolicyState;
using fill_internal::Waiter;

struct FillEngine::Impl {
  Impl(Store& s, Timer& t, const Clock& c, Random& r) : store(s), timer(t), clock(c), random(r) {}

  Store& store;
  Timer& timer;
  const Clock& clock;
  Random& random;
  // Callbacks hold a weak_ptr to this: once the engine is gone they do nothing.
  std::shared_ptr<int> alive = std::make_shared<int>(0);

  std::unordered_map<std::string, PolicyState> policies;  // never erased: pointers stay valid
  std::unordered_map<uint64_t, std::shared_ptr<Flight>> flights;
  std::unordered_map<std::string, std::vector<uint64_t>> by_key;  // data key -> flight ids
  std::unordered_map<uint64_t, uint64_t> waiter_flight;           // attached waiter -> flight
  uint64_t next_flight = 1;
  uint64_t next_waiter = 1;

  PolicyState& state(const std::string& name) {
    auto [it, inserted] = policies.try_emplace(name);
    if (inserted && source) {
      if (FillCounters* c = source(name)) it->second.counters = c;
    }
    return it->second;
  }
  std::function<FillCounters*(const std::string&)> source;
  std::function<void(std::string_view)> watcher;  // setWaitWatcher
  FlightObserver* observer = nullptr;             // setFlightObserver

  std::shared_ptr<Flight> find(uint64_t id) const {
    auto it = flights.find(id);
    return it == flights.end() ? nullptr : it->second;
  }

  bool anyFlight(std::string_view key) const {
    return by_key.find(std::string(key)) != by_key.end();
  }

  Flight* joinable(std::string_view key) const {
    auto it = by_key.find(std::string(key));
    if (it == by_key.end()) return nullptr;
    for (uint64_t id : it->second) {
      auto f = flights.find(id);
      if (f != flights.end() && f->second->joinable) return f->second.get();
    }
    return nullptr;
  }

  template <class F>
  auto guarded(F f) {
    return [w = std::weak_ptr<int>(alive), f = std::move(f)](auto&&... args) mutable {
      if (w.expired()) return;
      f(std::forward<decltype(args)>(args)...);
    };
  }

  void cancelTimers(Flight& f) {
    if (f.deadline_timer) timer.cancel(*f.deadline_timer);
    if (f.poll_timer) timer.cancel(*f.poll_timer);
    f.deadline_timer.reset();
    f.poll_timer.reset();
  }

  void armDeadline(Flight& f, int64_t delay_ms) {
    if (f.deadline_timer) timer.cancel(*f.deadline_timer);
    f.deadline_timer =
        timer.after(std::max<int64_t>(delay_ms, 0), guarded([this, id = f.id] { onDeadline(id); }));
  }

  // Creates a flight (with its first waiter, if any) and starts its lookup.
  void startFlight(const FillPolicy& p, std::string_view key, const std::string& path, bool refresh,
                   int64_t fresh_above_ms, std::optional<Waiter> waiter) {
    auto f = std::make_shared<Flight>();
    f->id = next_flight++;
    f->policy = p;
    f->state = &state(p.name);
    f->path = path;
    f->keys = p.names.keys(key);
    f->keys.hash = p.decode.hash();
    f->joinable = p.single_flight != config::SingleFlight::kOff;
    f->refresh = refresh;
    f->fresh_above_ms = fresh_above_ms;
    if (refresh || p.single_flight == config::SingleFlight::kDistributed)
      f->token = newLeaseToken(random);
    f->wait_deadline_ns = clock.monoNs() + p.wait_ms * kNsPerMs;
    if (waiter) {
      waiter_flight[waiter->id] = f->id;
      f->waiters.push_back(std::move(*waiter));
    }
    flights[f->id] = f;
    by_key[f->keys.data].push_back(f->id);
    // The lookup / lease-wait phase ends at wait_ms; the margin covers the last lookup.
    armDeadline(*f, p.wait_ms + kDeadlineMarginMs);
    issueLookup(f);
  }

  void issueLookup(const std::shared_ptr<Flight>& f) {
    f->phase = Phase::kLookup;
    const uint64_t step = ++f->step;
    auto cb = guarded([this, id = f->id, step](LookupResult r) { onLookup(id, step, r); });
    if (f->refresh) {
      store.refreshLookup(f->keys, f->token, f->policy.lock_ttl_ms, f->fresh_above_ms,
                          std::move(cb));
    } else {
      store.lookup(f->keys, f->token, f->policy.lock_ttl_ms,
                   f->policy.single_flight == config::SingleFlight::kDistributed, std::move(cb));
    }
  }

  void onLookup(uint64_t id, uint64_t step, const LookupResult& r) {
    std::shared_ptr<Flight> f = find(id);
    if (!f || f->step != step || f->phase != Phase::kLookup) return;
    FillCounters& c = *f->state->counters;
    switch (r.kind) {
      case LookupResult::Kind::kValue: {
        FillOutcome o;
        o.kind = FillOutcome::Kind::kValue;
        o.value = r.value;
        answer(id, &o, {});
        return;
      }
      case LookupResult::Kind::kNegative: {
        c.negative_hits += countAttached(*f);
        FillOutcome o;  // nil
        answer(id, &o, {});
        return;
      }
      case LookupResult::Kind::kLeaseWon:
        ++c.lease_wins;
        if (f->refresh && f->policy.ttl_from_origin) f->validator = metaValidator(r.validator);
        callOrigin(f);
        return;
      case LookupResult::Kind::kMissing:
        callOrigin(f);
        return;
      case LookupResult::Kind::kLeaseHeld:
        ++c.lease_losses;
        if (f->waiters.empty()) {
          // A refresh (or a flight whose clients all left): another corral is filling the key;
          // nobody here needs the value, so end quietly.
          answer(id, nullptr, {});
          return;
        }
        if (clock.monoNs() >= f->wait_deadline_ns) {
          ++c.wait_timeouts;
          answer(id, nullptr, "lease wait timed out");
          return;
        }
        if (watcher) {
          // Each wait asks again: Redis tells of one change per read of the key.
          if (f->backoff_ms == kPollFirstMs) {  // its first wait
            f->backoff_ms = kWatchedPollFirstMs;
          }
          watcher(f->keys.data);
        }
        schedulePoll(*f);
        return;
      case LookupResult::Kind::kError:
        ++c.store_errors;
        answer(id, nullptr, "store " + (r.error.empty() ? std::string("error") : r.error));
        return;
    }
  }

  void schedulePoll(Flight& f) {
    f.phase = Phase::kWait;
    const uint64_t step = ++f.step;
    const int64_t left_ns = f.wait_deadline_ns - clock.monoNs();
    const int64_t left_ms = (left_ns + kNsPerMs - 1) / kNsPerMs;  // poll at or after the deadline
    const int64_t delay = std::min(f.backoff_ms, left_ms);
    f.backoff_ms = std::min(f.backoff_ms * 2, watcher ? kWatchedPollMaxMs : kPollMaxMs);
    f.poll_timer = timer.after(delay, guarded([this, id = f.id, step] { onPoll(id, step); }));
  }

  // The key of these waiting flights changed (or may have): each looks now, not at its poll.
  void pollNow(const std::vector<std::shared_ptr<Flight>>& due) {
    for (const std::shared_ptr<Flight>& f : due) {
      if (f->poll_timer) timer.cancel(*f->poll_timer);
      f->poll_timer.reset();
      issueLookup(f);
    }
  }

  void onPoll(uint64_t id, uint64_t step) {
    std::shared_ptr<Flight> f = find(id);
    if (!f || f->step != step || f->phase != Phase::kWait) return;
    f->poll_timer.reset();
    // The poll at the wait deadline is the last one: if it does not win the lease either,
    // onLookup sees the deadline has passed and gives up.
    issueLookup(f);
  }

  void callOrigin(const std::shared_ptr<Flight>& f) {
    f->phase = Phase::kOrigin;
    const uint64_t step = ++f->step;
    ++f->state->counters->fills;
    f->origin_start_ns = clock.monoNs();
    armDeadline(*f, f->policy.origin_timeout_ms + kDeadlineMarginMs);
    if (f->policy.origin == nullptr) {
      onOrigin(f->id, step, OriginResult{OriginResult::Kind::kError, {}, "no origin", {}});
      return;
    }
    f->policy.origin->fetchConditional(  // no validator (most fills): a plain GET
        f->path, f->validator,
        guarded([this, id = f->id, step](OriginResult r) { onOrigin(id, step, std::move(r)); }));
  }

  void recordLatency(Flight& f) {
    const double sample =
        static_cast<double>(clock.monoNs() - f.origin_start_ns) / static_cast<double>(kNsPerMs);
    PolicyState& s = *f.state;
    s.delta_ms = s.has_delta ? (1.0 - kDeltaAlpha) * s.delta_ms + kDeltaAlpha * sample : sample;
    s.has_delta = true;
    s.counters->observeLatency(static_cast<int64_t>(sample * 1000.0));
  }

  void releaseLease(const Flight& f) {
    if (!f.token.empty()) store.release(f.keys, f.token);
  }

  void onOrigin(uint64_t id, uint64_t step, OriginResult r) {
    std::shared_ptr<Flight> f = find(id);
    if (!f || f->step != step || f->phase != Phase::kOrigin) return;
    FillCounters& c = *f->state->counters;
    const FillPolicy& p = f->policy;
    if (observer && f->joinable && observer->revokedElsewhere(f->keys.data)) f->revoked = true;
    decodeOriginBody(p.decode, r);  // json-field, hash: may turn a 200 into an error or a 404
    switch (r.kind) {
      case OriginResult::Kind::kValue: {
        recordLatency(*f);
        FillOutcome o;
        o.kind = FillOutcome::Kind::kValue;
        o.value = std::move(r.body);
        c.origin_bytes += o.value.size();
        const FillTtl t = fillTtl(p, r.headers, clock.unixMs(), random);
        if ((p.max_value_bytes > 0 && o.value.size() > p.max_value_bytes) || f->revoked ||
            !t.store) {
          ++c.not_stored;
          releaseLease(*f);
        } else if (p.ttl_from_origin) {
          store.commitValidated(f->keys, f->token, o.value, t.ttl_ms,
                                encodeMeta(t, httpValidator(r.headers)), commitDone(f->state));
        } else {
          store.commit(f->keys, f->token, o.value, t.ttl_ms, commitDone(f->state));
        }
        // Waiters are answered now, not when the commit is acknowledged. A later lookup on
        // the same connection runs after the commit in Redis, so it sees the value.
        answer(id, &o, {});
        return;
      }
      case OriginResult::Kind::kNotFound: {
        recordLatency(*f);
        if (!f->revoked && p.negative_ttl_ms > 0) {
          store.commitNegative(f->keys, f->token, p.negative_ttl_ms, commitDone(f->state));
        } else {
          releaseLease(*f);
        }
        FillOutcome o;  // nil
        answer(id, &o, {});
        return;
      }
      case OriginResult::Kind::kNotModified:
        onNotModified(f, r.headers);
        return;
      case OriginResult::Kind::kError:
        // Not recorded in delta: an immediate "overloaded" would pull it toward zero.
        ++c.fill_errors;
        releaseLease(*f);
        answer(id, nullptr, r.error.empty() ? std::string("error") : r.error);
        return;
    }
  }

  // 304 to a refresh: the stored value is current. Its TTL (and its meta key's, with the 304's
  // windows and validator, if any) moves only while that value is still the one validated.
  // Waiters (stale-if-error) get their stale value, which is that value.
  void onNotModified(const std::shared_ptr<Flight>& f, const HttpCacheHeaders& h) {
    recordLatency(*f);
    const FillTtl t = fillTtl(f->policy, h, clock.unixMs(), random);
    const std::string v = httpValidator(h);
    if (f->validator.empty() || f->revoked || !t.store) {
      releaseLease(*f);  // a 304 we did not ask for, or one that says "do not keep it"
    } else {
      store.extend(f->keys, f->token, t.ttl_ms, encodeMeta(t, v.empty() ? f->validator : v),
                   guarded([s = f->state](bool ok) { s->counters->revalidated += ok ? 1 : 0; }));
    }
    answer(f->id, nullptr, f->validator.empty() ? "status 304" : "not modified");
  }

  std::function<void(bool)> commitDone(PolicyState* s) {
    return guarded([s](bool written) {
      if (!written) ++s->counters->not_stored;
    });
  }

  void onDeadline(uint64_t id) {
    std::shared_ptr<Flight> f = find(id);
    if (!f) return;
    f->deadline_timer.reset();
    FillCounters& c = *f->state->counters;
    // A lease our lookup may still take, or the one the origin call holds: give it back.
    releaseLease(*f);
    if (f->phase == Phase::kOrigin) {
      ++c.fill_errors;
      answer(id, nullptr, "timeout");
    } else if (f->phase == Phase::kWait) {
      ++c.wait_timeouts;  // not expected: the last poll is due before this deadline
      answer(id, nullptr, "lease wait timed out");
    } else {
      ++c.store_errors;
      answer(id, nullptr, "store timeout");
    }
  }

  size_t countAttached(const Flight& f) const {
    size_t n = 0;
    for (const Waiter& w : f.waiters) n += waiter_flight.count(w.id);
    return n;
  }

  // Ends flight id and answers its waiters: with *o when o is set, else each waiter with its
  // stale value if it has one (stale_served++) or by on_error with `reason`.
  void answer(uint64_t id, const FillOutcome* o, const std::string& reason) {
    auto it = flights.find(id);
    if (it == flights.end()) return;
    std::shared_ptr<Flight> f = std::move(it->second);
    flights.erase(it);
    auto k = by_key.find(f->keys.data);
    if (k != by_key.end()) {
      std::erase(k->second, id);
      if (k->second.empty()) by_key.erase(k);
    }
    cancelTimers(*f);

    FillOutcome failed;
    if (o == nullptr && f->policy.on_error == config::FillOnError::kError) {
      failed.kind = FillOutcome::Kind::kError;
      failed.error = oneLine("FILLERR " + f->policy.origin_name + " " + reason);
    }
    if (observer != nullptr && f->joinable) observer->onFlightEnd(f->keys.data, o, failed);
    std::weak_ptr<int> w = alive;
    for (Waiter& waiter : f->waiters) {
      // A waiter that detached (maybe from an earlier waiter's callback) is not called.
      if (w.expired() || waiter_flight.erase(waiter.id) == 0) continue;
      if (o != nullptr) {
        waiter.done(*o);
      } else if (waiter.stale) {
        ++f->state->counters->stale_served;
        FillOutcome s;
        s.kind = FillOutcome::Kind::kValue;
        s.value = std::move(*waiter.stale);
        waiter.done(s);
      } else {
        waiter.done(failed);
      }
    }
  }
};

FillEngine::FillEngine(Store& store, Timer& timer, const Clock& clock, Random& random)
    : impl_(std::make_unique<Impl>(store, timer, clock, random)) {}

FillEngine::~FillEngine() {
  // Pending waiters are dropped without a call (the worker is shutting down); replies and
  // timers that still arrive find the engine gone (weak_ptr) and do nothing.
  for (auto& [id, f] : impl_->flights) impl_->cancelTimers(*f);
}

uint64_t FillEngine::onMiss(const FillPolicy& p, std::string_view key, const std::string& path,
                            const std::string* stale, Done done) {
  Impl& m = *impl_;
  const uint64_t wid = m.next_waiter++;
  if (p.audit) {
    // Audit decides and counts but never fills: the client gets what Redis gave.
    ++m.state(p.name).counters->would_fill;
    FillOutcome o;
    if (stale != nullptr) {
      o.kind = FillOutcome::Kind::kValue;
      o.value = *stale;
    }
    done(o);
    return wid;
  }
  Waiter w;
  w.id = wid;
  w.done = std::move(done);
  if (stale != nullptr) w.stale = *stale;
  if (p.single_flight != config::SingleFlight::kOff) {
    if (Flight* f = m.joinable(key)) {
      ++f->state->counters->coalesced;
      m.waiter_flight[wid] = f->id;
      f->waiters.push_back(std::move(w));
      return wid;
    }
  }
  // With a stale value the data key still exists: it must be replaced, not SET NX. Under
  // ttl.from_origin the value's window is its own, unknown here: always refresh.
  const bool refresh = stale != nullptr;
  m.startFlight(p, key, path, refresh, p.ttl_from_origin ? INT64_MAX : p.window_ms(), std::move(w));
  return wid;
}

void FillEngine::detach(uint64_t waiter) {
  Impl& m = *impl_;
  auto it = m.waiter_flight.find(waiter);
  if (it == m.waiter_flight.end()) return;
  const uint64_t fid = it->second;
  m.waiter_flight.erase(it);
  if (std::shared_ptr<Flight> f = m.find(fid)) {
    std::erase_if(f->waiters, [waiter](const Waiter& w) { return w.id == waiter; });
  }
}

FillEngine::HitAction FillEngine::onHit(const FillPolicy& p, std::string_view key,
                                        const std::string& path, int64_t pttl_ms,
                                        const ValueWindows* windows) {
  Impl& m = *impl_;
  if (pttl_ms < 0) return HitAction::kServe;  // no TTL: nothing to refresh
  PolicyState& s = m.state(p.name);
  const int64_t swr = windows != nullptr ? windows->swr_ms : p.swr_ms;
  const int64_t sie = windows != nullptr ? windows->sie_ms : p.sie_ms;
  const int64_t soft_remaining = pttl_ms - std::max(swr, sie);
  HitAction action = HitAction::kServe;
  bool start = false;
  if (soft_remaining <= 0) {
    if (swr > 0 && -soft_remaining <= swr) {
      action = HitAction::kServeStale;
      start = !m.anyFlight(key);
    } else if (sie > 0 && -soft_remaining <= sie) {
      action = HitAction::kWaitRefresh;
    }
  } else if (p.xfetch && p.beta > 0 && s.delta_ms > 0 && !m.anyFlight(key)) {
    // XFetch (Vattani et al.): refresh when -delta * beta * ln(U) >= remaining, written as
    // U <= exp(-remaining / (delta * beta)) so that U = 0 needs no log.
    const double u = m.random.uniform();
    if (u <= std::exp(-static_cast<double>(soft_remaining) / (s.delta_ms * p.beta))) {
      action = HitAction::kServeStale;
      start = true;
    }
  }
  if (p.audit) {
    // Audit never fills: count the refresh it would start and serve as Redis gave it.
    if (action != HitAction::kServe) ++s.counters->would_fill;
    return HitAction::kServe;
  }
  if (action == HitAction::kServeStale && soft_remaining <= 0) ++s.counters->stale_served;
  if (start) {
    ++s.counters->refreshes;
    // A value newer than the one seen here has a longer PTTL than pttl_ms has left.
    m.startFlight(p, key, path, /*refresh=*/true, pttl_ms, std::nullopt);
  }
  return action;
}

void FillEngine::revoke(std::string_view key) {
  Impl& m = *impl_;
  auto it = m.by_key.find(std::string(key));
  if (it == m.by_key.end()) return;
  for (uint64_t id : it->second) {
    if (std::shared_ptr<Flight> f = m.find(id)) f->revoked = true;
  }
}

void FillEngine::setWaitWatcher(std::function<void(std::string_view key)> watch) {
  impl_->watcher = std::move(watch);
}

void FillEngine::wake(std::string_view key) {
  Impl& m = *impl_;
  if (m.flights.empty()) return;
  auto it = m.by_key.find(std::string(key));
  if (it == m.by_key.end()) return;
  std::vector<std::shared_ptr<Flight>> due;
  for (uint64_t id : it->second) {
    std::shared_ptr<Flight> f = m.find(id);
    if (f && f->phase == Phase::kWait) due.push_back(std::move(f));
  }
  m.pollNow(due);
}

void FillEngine::wakeAll() {
  Impl& m = *impl_;
  std::vector<std::shared_ptr<Flight>> due;
  for (const auto& [id, f] : m.flights) {
    if (f->phase == Phase::kWait) due.push_back(f);
  }
  m.pollNow(due);
}

void FillEngine::setFlightObserver(FlightObserver* observer) { impl_->observer = observer; }

void FillEngine::setCounterSource(std::function<FillCounters*(const std::string&)> source) {
  impl_->source = std::move(source);
}

FillCounters& FillEngine::counters(const std::string& policy) {
  return *impl_->state(policy).counters;
}

size_t FillEngine::inflight() const { return impl_->flights.size(); }

double FillEngine::deltaMs(const std::string& policy) const {
  auto it = impl_->policies.find(policy);
  return it == impl_->policies.end() ? 0.0 : it->second.delta_ms;
}

}  // namespace corral::policies
