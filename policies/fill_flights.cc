// Single flight across workers: the process-wide table and one worker's side of it (the flow is
// drawn in fill_flights.h).
//
// Lifetimes: a follower's waiters live in its own worker's SharedFlights and are only ever
// called on that worker's thread; what crosses threads is the key, the generation and a shared,
// immutable FlightEnd, posted to the follower's loop. A posted task finds its SharedFlights
// through a weak token, so a task that runs after the worker's SharedFlights is gone does
// nothing. The table posts under its lock to attached workers only: detach() (under the same
// lock) is what makes a worker's Post unreachable before the worker goes.
#include "policies/fill_flights.h"

#include <algorithm>
#include <string>
#include <utility>

namespace corral::policies {

namespace {

// A leader's flight ends by its own deadlines: wait_ms + 100 ms for its lookup / lease wait,
// then origin_timeout_ms + 100 ms for the origin call (fill.cc). A follower that joined at the
// leader's start waits at most that long, plus this slack for the post between the loops.
constexpr int64_t kFollowerSlackMs = 250;
constexpr uint64_t kFollowerBit = uint64_t{1} << 63;

}  // namespace

// ---- FlightTable ----------------------------------------------------------------------------

void FlightTable::attach(uint32_t worker, Deliver deliver) {
  std::lock_guard<std::mutex> lock(mu_);
  if (workers_.size() <= worker) workers_.resize(worker + 1);
  workers_[worker] = std::move(deliver);
}

void FlightTable::detach(uint32_t worker) {
  std::lock_guard<std::mutex> lock(mu_);
  if (worker < workers_.size()) workers_[worker] = nullptr;
}

FlightTable::Joined FlightTable::join(std::string_view key, uint32_t worker) {
  std::string k(key);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(k);
  if (it == entries_.end()) {
    Entry e;
    e.leader = worker;
    e.gen = next_gen_++;
    const uint64_t gen = e.gen;
    entries_.emplace(std::move(k), std::move(e));
    size_.store(entries_.size(), std::memory_order_relaxed);
    return {true, gen};
  }
  Entry& e = it->second;
  if (e.leader == worker) return {true, e.gen};  // not expected: the worker knows its flights
  if (std::find(e.followers.begin(), e.followers.end(), worker) == e.followers.end()) {
    e.followers.push_back(worker);
  }
  return {false, e.gen};
}

size_t FlightTable::handOut(const std::string& key, const Entry& e,
                            const std::shared_ptr<const FlightEnd>& end) {
  size_t n = 0;
  for (uint32_t f : e.followers) {
    if (f < workers_.size() && workers_[f]) {
      workers_[f](key, e.gen, end);
      ++n;
    }
  }
  return n;
}

size_t FlightTable::finish(std::string_view key, uint32_t worker, uint64_t gen,
                           std::shared_ptr<const FlightEnd> end) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(std::string(key));
  if (it == entries_.end() || it->second.leader != worker || it->second.gen != gen) return 0;
  const std::string k = it->first;
  const Entry e = std::move(it->second);
  entries_.erase(it);
  size_.store(entries_.size(), std::memory_order_relaxed);
  return handOut(k, e, end);
}

void FlightTable::revoke(std::string_view key) {
  // Writes of fill policies' keys come here: with no flight anywhere, no lock.
  if (size_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(std::string(key));
  if (it != entries_.end()) it->second.revoked = true;
}

bool FlightTable::revoked(std::string_view key, uint64_t gen) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(std::string(key));
  return it != entries_.end() && it->second.gen == gen && it->second.revoked;
}

size_t FlightTable::abandon(uint32_t worker) {
  std::lock_guard<std::mutex> lock(mu_);
  auto gone = std::make_shared<FlightEnd>();  // kGone
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.leader != worker) {
      ++it;
      continue;
    }
    handOut(it->first, it->second, gone);
    it = entries_.erase(it);
    ++n;
  }
  size_.store(entries_.size(), std::memory_order_relaxed);
  return n;
}

// ---- SharedFlights --------------------------------------------------------------------------

SharedFlights::SharedFlights(FillEngine& engine, FlightTable& table, Timer& timer, uint32_t worker,
                             Post post)
    : engine_(engine), table_(table), timer_(timer), worker_(worker) {
  engine_.setFlightObserver(this);
  table_.attach(worker_,
                [this, w = std::weak_ptr<int>(alive_), post = std::move(post)](
                    const std::string& key, uint64_t gen, std::shared_ptr<const FlightEnd> end) {
                  post([this, w, key, gen, end = std::move(end)] {
                    if (!w.expired()) onRemoteEnd(key, gen, *end);
                  });
                });
}

SharedFlights::~SharedFlights() {
  table_.detach(worker_);
  table_.abandon(worker_);
  engine_.setFlightObserver(nullptr);
  for (auto& [key, g] : groups_) {
    if (g.timer) timer_.cancel(*g.timer);
  }
}

uint64_t SharedFlights::onMiss(const FillPolicy& p, std::string_view key, const std::string& path,
                               const std::string* stale, FillEngine::Done done) {
  if (p.audit || p.single_flight == config::SingleFlight::kOff || stopped_) {
    return engine_.onMiss(p, key, path, stale, std::move(done));
  }
  std::string k(key);
  if (leading_.find(k) == leading_.end()) {
    auto g = groups_.find(k);
    if (g == groups_.end()) {
      const FlightTable::Joined j = table_.join(key, worker_);
      if (j.lead) {
        // Before onMiss: the flight may end inside it (an origin that refuses at once).
        leading_[k] = Leading{j.gen, &engine_.counters(p.name)};
      } else {
        Group fresh;
        fresh.gen = j.gen;
        fresh.origin_name = p.origin_name;
        fresh.on_error = p.on_error;
        fresh.counters = &engine_.counters(p.name);
        const int64_t bound = p.wait_ms + p.origin_timeout_ms + kFollowerSlackMs;
        fresh.timer = timer_.after(bound, [this, w = std::weak_ptr<int>(alive_), k, gen = j.gen] {
          if (!w.expired()) onGroupDeadline(k, gen);
        });
        g = groups_.emplace(k, std::move(fresh)).first;
      }
    }
    if (g != groups_.end()) {
      Group& grp = g->second;
      ++grp.counters->coalesced;
      ++grp.counters->worker_waits;
      Waiter wt;
      wt.id = kFollowerBit | next_waiter_++;
      wt.done = std::move(done);
      if (stale != nullptr) wt.stale = *stale;
      waiter_key_[wt.id] = k;
      grp.waiters.push_back(std::move(wt));
      return grp.waiters.back().id;
    }
  }
  return engine_.onMiss(p, key, path, stale, std::move(done));
}

void SharedFlights::detach(uint64_t waiter) {
  if ((waiter & kFollowerBit) == 0) {
    engine_.detach(waiter);
    return;
  }
  auto it = waiter_key_.find(waiter);
  if (it == waiter_key_.end()) return;
  auto g = groups_.find(it->second);
  waiter_key_.erase(it);
  if (g != groups_.end()) {
    std::erase_if(g->second.waiters, [waiter](const Waiter& w) { return w.id == waiter; });
  }
}

void SharedFlights::revoke(std::string_view key) {
  engine_.revoke(key);
  table_.revoke(key);
}

void SharedFlights::stop() {
  stopped_ = true;
  leading_.clear();
  table_.abandon(worker_);
}

size_t SharedFlights::followers() const { return waiter_key_.size(); }

void SharedFlights::onFlightEnd(std::string_view key, const FillOutcome* o,
                                const FillOutcome& failed) {
  auto it = leading_.find(std::string(key));
  if (it == leading_.end()) return;  // a flight of this worker only (a background refresh)
  const Leading lead = it->second;
  leading_.erase(it);
  auto end = std::make_shared<FlightEnd>();
  end->kind = o != nullptr ? FlightEnd::Kind::kAnswered : FlightEnd::Kind::kFailed;
  end->outcome = o != nullptr ? *o : failed;
  const size_t woken = table_.finish(key, worker_, lead.gen, std::move(end));
  lead.counters->worker_wakes += woken;
}

bool SharedFlights::revokedElsewhere(std::string_view key) {
  auto it = leading_.find(std::string(key));
  return it != leading_.end() && table_.revoked(key, it->second.gen);
}

void SharedFlights::onRemoteEnd(const std::string& key, uint64_t gen, const FlightEnd& end) {
  auto it = groups_.find(key);
  if (it == groups_.end() || it->second.gen != gen) return;  // ended by its deadline already
  Group g = std::move(it->second);
  groups_.erase(it);
  if (g.timer) timer_.cancel(*g.timer);
  answer(g, end, "leader stopped");
}

void SharedFlights::onGroupDeadline(const std::string& key, uint64_t gen) {
  auto it = groups_.find(key);
  if (it == groups_.end() || it->second.gen != gen) return;
  Group g = std::move(it->second);
  groups_.erase(it);
  ++g.counters->wait_timeouts;
  answer(g, FlightEnd{}, "timeout");
}

void SharedFlights::answer(Group& g, const FlightEnd& end, std::string_view reason) {
  FillOutcome own;  // this worker's on_error answer (nil by default)
  if (g.on_error == config::FillOnError::kError) {
    own.kind = FillOutcome::Kind::kError;
    own.error = "FILLERR " + g.origin_name + " " + std::string(reason);
  }
  const std::weak_ptr<int> w = alive_;
  for (Waiter& waiter : g.waiters) {
    // A waiter that detached (maybe from an earlier waiter's callback) is not called.
    if (w.expired() || waiter_key_.erase(waiter.id) == 0) continue;
    if (end.kind == FlightEnd::Kind::kAnswered) {
      waiter.done(end.outcome);
    } else if (waiter.stale) {
      ++g.counters->stale_served;
      FillOutcome s;
      s.kind = FillOutcome::Kind::kValue;
      s.value = std::move(*waiter.stale);
      waiter.done(s);
    } else {
      waiter.done(end.kind == FlightEnd::Kind::kFailed ? end.outcome : own);
    }
  }
}

}  // namespace corral::policies
