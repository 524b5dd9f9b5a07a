// Retries with a budget and the circuit breaker around an origin (see origin_guard.h).
#include "policies/origin_guard.h"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <utility>

namespace corral::policies {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;

OriginResult errorResult(std::string reason) {
  OriginResult r;
  r.kind = OriginResult::Kind::kError;
  r.error = std::move(reason);
  return r;
}

// "status 503" -> 503; 0 when the reason is not a status.
int statusOf(std::string_view error) {
  constexpr std::string_view kStatus = "status ";
  if (!error.starts_with(kStatus)) return 0;
  int code = 0;
  for (char c : error.substr(kStatus.size())) {
    if (c < '0' || c > '9' || code > 999) return 0;
    code = code * 10 + (c - '0');
  }
  return code;
}

}  // namespace

OriginBreaker::Outcome GuardedOrigin::classify(const OriginResult& r) {
  using O = OriginBreaker::Outcome;
  if (r.kind != OriginResult::Kind::kError) return O::kSuccess;  // 200, 304, 404
  const std::string_view e = r.error;
  if (const int code = statusOf(e); code != 0) {
    return code >= 500 || code == 429 ? O::kFailure : O::kSuccess;
  }
  // Nothing reached the origin: our bulkhead, a path or URL we refused, memory.
  if (e == "overloaded" || e == "bad path" || e == "bad base_url" || e == "out of memory" ||
      e == "no origin") {
    return O::kNeutral;
  }
  // It answered, with more than we take: alive, and asking again would not help.
  if (e == "body too large" || e == "headers too large") return O::kSuccess;
  return O::kFailure;  // timeout, connect failed, connection reset/closed, resolve failed, TLS
}

int64_t GuardedOrigin::backoffMs(const config::OriginRetrySpec& spec, uint32_t n, double u) {
  int64_t d = std::max<int64_t>(1, spec.backoff_base.count());
  const int64_t cap = std::max(d, static_cast<int64_t>(spec.backoff_max.count()));
  for (uint32_t i = 1; i < n && d < cap; ++i) d *= 2;
  d = std::min(d, cap);
  if (!(u >= 0.0 && u < 1.0)) u = 0.0;
  // "Equal jitter": never less than half the step, so retries of many fills spread out without
  // any of them retrying at once.
  return d / 2 + static_cast<int64_t>(u * static_cast<double>(d - d / 2));
}

GuardedOrigin::GuardedOrigin(AttemptOrigin& inner, OriginHealth& health,
                             const config::OriginSpec& spec, Timer& timer, const Clock& clock,
                             Random& random)
    : inner_(inner), health_(health), spec_(spec), timer_(timer), clock_(clock), random_(random) {
  if (spec_.retry.enabled) health_.retry_used.store(true, std::memory_order_relaxed);
  if (spec_.breaker.enabled) health_.breaker_used.store(true, std::memory_order_relaxed);
}

GuardedOrigin::~GuardedOrigin() {
  for (auto& [id, c] : calls_) {
    if (c.backoff_timer) timer_.cancel(*c.backoff_timer);
  }
}

void GuardedOrigin::fetch(const std::string& path, std::function<void(OriginResult)> done) {
  fetchConditional(path, {}, std::move(done));
}

void GuardedOrigin::fetchConditional(const std::string& path, const std::string& validator,
                                     std::function<void(OriginResult)> done) {
  const uint64_t id = next_id_++;
  Call& c = calls_[id];
  c.path = path;
  c.validator = validator;
  c.done = std::move(done);
  c.deadline_ns = clock_.monoNs() + spec_.timeout.count() * kNsPerMs;
  startAttempt(id);
}

void GuardedOrigin::startAttempt(uint64_t id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  Call& c = it->second;
  c.backoff_timer.reset();
  const int64_t now = clock_.monoNs();
  const OriginBreaker::Admit admit = health_.breaker.admit(spec_.breaker, now);
  if (admit == OriginBreaker::Admit::kReject) {
    // A retry that meets an open breaker ends with the answer it was retrying.
    if (c.attempts > 0) ++health_.retry_breaker_open;
    finish(id, c.last ? std::move(*c.last) : errorResult("open"));
    return;
  }
  c.probe = admit == OriginBreaker::Admit::kProbe;
  if (++c.attempts == 1 && spec_.retry.enabled) health_.budget.recordRequest(now);
  int64_t timeout_ms = std::max<int64_t>(1, (c.deadline_ns - now + kNsPerMs - 1) / kNsPerMs);
  if (spec_.retry.enabled && spec_.retry.per_try_timeout.count() > 0) {
    timeout_ms = std::min<int64_t>(timeout_ms, spec_.retry.per_try_timeout.count());
  }
  const uint32_t n = c.attempts;
  auto w = std::weak_ptr<int>(alive_);
  // c may be gone after this call (a synchronous answer finishes it): do not touch it.
  inner_.attempt(c.path, c.validator, timeout_ms, [this, w, id, n](OriginResult r) {
    if (w.expired()) return;
    auto found = calls_.find(id);
    if (found == calls_.end() || found->second.attempts != n) return;
    onAnswer(id, std::move(r));
  });
}

void GuardedOrigin::onAnswer(uint64_t id, OriginResult r) {
  Call& c = calls_.at(id);
  const int64_t now = clock_.monoNs();
  const OriginBreaker::Outcome outcome = classify(r);
  health_.breaker.record(spec_.breaker, outcome, c.probe, now);
  c.probe = false;
  if (c.attempts > 1) {
    ++(outcome == OriginBreaker::Outcome::kSuccess ? health_.retry_success : health_.retry_failure);
  }
  const config::OriginRetrySpec& rs = spec_.retry;
  if (outcome != OriginBreaker::Outcome::kFailure || !rs.enabled || c.attempts >= rs.attempts) {
    return finish(id, std::move(r));
  }
  const int64_t delay_ms = backoffMs(rs, c.attempts, random_.uniform());
  // A retry needs its backoff and then some time to run before the deadline: at least the
  // backoff's base again, so that it is not sent only to time out at once.
  if (now + (delay_ms + rs.backoff_base.count()) * kNsPerMs >= c.deadline_ns) {
    ++health_.retry_out_of_time;
    return finish(id, std::move(r));
  }
  if (!health_.budget.tryRetry(rs, now)) return finish(id, std::move(r));
  c.last = std::move(r);
  auto w = std::weak_ptr<int>(alive_);
  c.backoff_timer = timer_.after(delay_ms, [this, w, id] {
    if (!w.expired()) startAttempt(id);
  });
}

void GuardedOrigin::finish(uint64_t id, OriginResult r) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  auto done = std::move(it->second.done);
  calls_.erase(it);
  done(std::move(r));  // last: it may call fetch again
}

void appendOriginMetrics(std::string& out, const std::deque<OriginHealth>& origins,
                         int64_t now_ns) {
  auto head = [&out](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto line = [&out](const char* name, const std::string& origin, const char* key,
                     const char* value, const std::string& number) {
    out += std::string(name) + "{origin=\"" + origin + "\"";
    if (key != nullptr) out += std::string(",") + key + "=\"" + value + "\"";
    out += "} " + number + "\n";
  };
  using S = OriginBreaker::State;
  constexpr S kStates[] = {S::kClosed, S::kOpen, S::kHalfOpen};
  head("corral_origin_retries_total", "counter",
       "Fill retries per origin by result: success or failure (the retry's own answer), "
       "out_of_time (due, but not made: the fill's deadline was too near), breaker_open (due, "
       "but not made: the breaker had opened).");
  for (const OriginHealth& h : origins) {
    if (!h.retry_used.load(std::memory_order_relaxed)) continue;
    line("corral_origin_retries_total", h.name, "result", "success",
         std::to_string(static_cast<uint64_t>(h.retry_success)));
    line("corral_origin_retries_total", h.name, "result", "failure",
         std::to_string(static_cast<uint64_t>(h.retry_failure)));
    line("corral_origin_retries_total", h.name, "result", "out_of_time",
         std::to_string(static_cast<uint64_t>(h.retry_out_of_time)));
    line("corral_origin_retries_total", h.name, "result", "breaker_open",
         std::to_string(static_cast<uint64_t>(h.retry_breaker_open)));
  }
  head("corral_origin_retry_budget_exhausted_total", "counter",
       "Retries not made because the origin's retry budget was spent.");
  for (const OriginHealth& h : origins) {
    if (!h.retry_used.load(std::memory_order_relaxed)) continue;
    line("corral_origin_retry_budget_exhausted_total", h.name, nullptr, nullptr,
         std::to_string(h.budget.exhausted()));
  }
  head("corral_origin_breaker_state", "gauge",
       "1 for the origin's current circuit breaker state (closed, open, half_open), else 0.");
  for (const OriginHealth& h : origins) {
    if (!h.breaker_used.load(std::memory_order_relaxed)) continue;
    const S now = h.breaker.state();
    for (S s : kStates) {
      line("corral_origin_breaker_state", h.name, "state", OriginBreaker::name(s),
           now == s ? "1" : "0");
    }
  }
  head("corral_origin_breaker_seconds_total", "counter",
       "Seconds the origin's circuit breaker has spent in each state.");
  for (const OriginHealth& h : origins) {
    if (!h.breaker_used.load(std::memory_order_relaxed)) continue;
    for (S s : kStates) {
      char v[32];
      std::snprintf(v, sizeof v, "%.3f", h.breaker.secondsIn(s, now_ns));
      line("corral_origin_breaker_seconds_total", h.name, "state", OriginBreaker::name(s), v);
    }
  }
  head("corral_origin_breaker_transitions_total", "counter",
       "Circuit breaker transitions per origin, by the state entered.");
  for (const OriginHealth& h : origins) {
    if (!h.breaker_used.load(std::memory_order_relaxed)) continue;
    for (S s : kStates) {
      line("corral_origin_breaker_transitions_total", h.name, "to", OriginBreaker::name(s),
           std::to_string(h.breaker.transitionsTo(s)));
    }
  }
  head("corral_origin_breaker_rejected_total", "counter",
       "Fill requests the open circuit breaker answered at once, without asking the origin.");
  for (const OriginHealth& h : origins) {
    if (!h.breaker_used.load(std::memory_order_relaxed)) continue;
    line("corral_origin_breaker_rejected_total", h.name, nullptr, nullptr,
         std::to_string(h.breaker.rejected()));
  }
}

}  // namespace corral::policies
