#include "proxy/wiring/policy_runtime.h"

#include <unistd.h>

#include <cstdio>
#include <random>

#include "config/logging.h"
#include "proxy/origin/origin.h"

namespace corral::wiring {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("policies");
  return logger;
}

// How this process is named in the global limits' heartbeat: host, pid and a random part (a
// restarted process with the same pid is another sidecar).
std::string sidecarId() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  std::random_device rd;
  char tail[32];
  std::snprintf(tail, sizeof tail, ":%d:%08x", static_cast<int>(::getpid()), rd());
  return std::string(host) + tail;
}

// Every setting of an origin: a reload that changes any of them gets a new HttpOrigin (and
// GuardedOrigin). Header values are part of it (a changed env value or literal); it is a map
// key, never logged.
std::string originIdentity(const config::OriginSpec& s) {
  std::string id = s.name + '\n' + s.base_url + '\n' + s.ca_file + '\n' +
                   std::to_string(s.timeout.count()) + '\n' + std::to_string(s.max_in_flight);
  for (const config::OriginHeader& h : s.headers) {
    id += '\n' + h.name + ':' + std::to_string(static_cast<int>(h.source)) + ':' +
          (h.source == config::OriginHeader::Source::kFile ? h.file : h.value);
  }
  const config::OriginRetrySpec& r = s.retry;
  id += "\nretry:" + std::to_string(r.enabled) + ',' + std::to_string(r.attempts) + ',' +
        std::to_string(r.budget) + ',' + std::to_string(r.min_per_second) + ',' +
        std::to_string(r.backoff_base.count()) + ',' + std::to_string(r.backoff_max.count()) + ',' +
        std::to_string(r.per_try_timeout.count());
  const config::OriginBreakerSpec& b = s.breaker;
  id += "\nbreaker:" + std::to_string(b.enabled) + ',' + std::to_string(b.failures) + ',' +
        std::to_string(b.open_for.count()) + ',' + std::to_string(b.half_open_probes);
  return id;
}

}  // namespace

PolicyRuntime::PolicyRuntime(event_base* base, evdns_base* dns, int worker_index,
                             policies::Registry& registry,
                             std::function<upstream::Connection*(std::string_view key)> primary,
                             policies::SharedFlights::Post post)
    : base_(base),
      dns_(dns),
      registry_(registry),
      random_(static_cast<uint64_t>(worker_index) * 0xbf58476d1ce4e5b9ull ^
              static_cast<uint64_t>(loop::monotonicNs())) {
  ctx_.clock = &clock_;
  ctx_.random = &random_;
  followup_sink_.registry = &registry;
  timer_ = std::make_unique<loop::LoopTimer>(base);
  store_ = std::make_unique<upstream::FillStore>(primary, *timer_);
  limit_store_ = std::make_unique<upstream::LimitStore>(std::move(primary), *timer_);
  global_limits_ =
      std::make_unique<policies::GlobalLimits>(*limit_store_, registry, clock_, *timer_);
  ctx_.global = global_limits_.get();
  if (worker_index == 0) global_limits_->beatHeartbeat(sidecarId());
  fill_engine_ = std::make_unique<policies::FillEngine>(*store_, *timer_, clock_, random_);
  fill_engine_->setCounterSource(
      [&registry](const std::string& policy) { return registry.fill(policy); });
  flights_ = std::make_unique<policies::SharedFlights>(*fill_engine_, registry.flights(), *timer_,
                                                       static_cast<uint32_t>(worker_index),
                                                       std::move(post));
  sync(nullptr);
}

PolicyRuntime::~PolicyRuntime() {
  // The engine first (its shared flights before it): its pending callbacks point at clients
  // and use the timers and origins.
  flights_.reset();
  fill_engine_.reset();
  guards_.clear();  // they cancel their backoff timers
  global_limits_.reset();
  limit_store_.reset();
  store_.reset();
  timer_.reset();
  origins_.clear();
}

void PolicyRuntime::sync(std::shared_ptr<const policies::PolicySet> set) {
  if (set == nullptr) {
    std::vector<config::ConfigError> errors;
    set = policies::PolicySet::compile(config::PolicyConfig{}, registry_, &errors);
  }
  set_ = std::move(set);
  // Cached by address: a new set may reuse a freed one's addresses. (Requests still holding an
  // older set keep it alive, so their entries, rebuilt on demand, cannot alias.)
  local_fill_.clear();
}

const policies::FillPolicy& PolicyRuntime::localFillPolicy(const policies::FillPolicy& shared,
                                                           const policies::PolicySet& set) {
  auto [cached, inserted] = local_fill_.try_emplace(&shared, shared);
  if (!inserted) return cached->second;
  // The origin comes from the set the policy belongs to: a request decided before a reload may
  // be answered after it, when the set in force no longer has that origin. compile() checked
  // that `set` has it; were it missing, the engine answers the fill as "no origin".
  const config::OriginSpec* spec = nullptr;
  for (const auto& o : set.origins()) {
    if (o.name == shared.origin_name) spec = &o;
  }
  if (spec == nullptr) return cached->second;
  std::string id = originIdentity(*spec);
  auto it = guards_.find(id);
  if (it == guards_.end()) {
    auto http = std::make_unique<origin::HttpOrigin>(base_, dns_, *spec);
    auto guard = std::make_unique<policies::GuardedOrigin>(*http, *registry_.origin(spec->name),
                                                           *spec, *timer_, clock_, random_);
    origins_.emplace(id, std::move(http));
    it = guards_.emplace(std::move(id), std::move(guard)).first;
  }
  cached->second.origin = it->second.get();
  return cached->second;
}

void PolicyRuntime::logAudit(int64_t now_ms, uint64_t client_id, std::string_view what) {
  if (now_ms - audit_logged_ms_ < 1000) {
    ++audit_suppressed_;
    return;
  }
  audit_logged_ms_ = now_ms;
  log()->info("policy audit client={} {} (+{} more since the last line)", client_id, what,
              audit_suppressed_);
  audit_suppressed_ = 0;
}

void PolicyRuntime::FollowupSink::onUpstreamReply(uint64_t, std::string_view reply) {
  if (!reply.empty() && reply[0] == '-') registry->followup_errors.add();
}

}  // namespace corral::wiring
