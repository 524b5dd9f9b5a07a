#include "proxy/admin/sentinel_status.h"

namespace corral::admin {

bool sentinelReady(const sentinel::Status& s, bool primary_ready, std::string* body) {
  const std::string sentinels = std::to_string(s.reachable) + " of " +
                                std::to_string(s.sentinels.size()) + " sentinels reachable";
  if (!s.answered_once) {
    *body = "primary unknown: no sentinel has named the primary of " + s.master + " yet (" +
            sentinels + ")\n";
    return false;
  }
  if (s.fenced) {
    *body = "failover under way: primary " + s.primary +
            " takes no new requests until the sentinels name the new one (" + sentinels + ")\n";
    return false;
  }
  if (!primary_ready) {
    *body =
        "primary " + s.primary + " unavailable (down or handshake refused) (" + sentinels + ")\n";
    return false;
  }
  if (s.reachable == 0) {
    *body = "ready; sentinels unreachable (" + sentinels + "): serving the last known primary " +
            s.primary + "\n";
    return true;
  }
  *body =
      "ready; primary " + s.primary + " (sentinel master " + s.master + ", " + sentinels + ")\n";
  return true;
}

void writeSentinelMetrics(net::PromWriter& w, const sentinel::Status& s, int64_t now_ms) {
  using net::MetricType;
  w.header("corral_sentinel_up", MetricType::kGauge,
           "1 when the sentinel answered the last round of questions.");
  for (const auto& x : s.sentinels) {
    w.sample("corral_sentinel_up", {{"sentinel", x.address}}, x.reachable ? 1 : 0);
  }
  w.header("corral_sentinel_subscribed", MetricType::kGauge,
           "1 when corral's event subscription on the sentinel is confirmed and answers PING.");
  for (const auto& x : s.sentinels) {
    w.sample("corral_sentinel_subscribed", {{"sentinel", x.address}}, x.subscribed ? 1 : 0);
  }
  w.header("corral_sentinel_reachable", MetricType::kGauge,
           "Sentinels that answered the last round (0: serving the last known primary).");
  w.sample("corral_sentinel_reachable", s.reachable);
  w.header("corral_sentinel_primary", MetricType::kGauge,
           "The primary the sentinels name (1), by address; no sample while none is known.");
  if (s.answered_once) {
    w.sample("corral_sentinel_primary", {{"master", s.master}, {"address", s.primary}}, 1);
  }
  w.header("corral_sentinel_replicas", MetricType::kGauge,
           "Replicas the sentinels report fit to serve reads.");
  w.sample("corral_sentinel_replicas", s.replicas);
  w.header("corral_sentinel_failover_in_progress", MetricType::kGauge,
           "1 while a failover of the primary is under way (it takes no new requests).");
  w.sample("corral_sentinel_failover_in_progress", s.fenced ? 1 : 0);
  w.header("corral_sentinel_config_epoch", MetricType::kGauge,
           "Config epoch of the sentinels' answer corral follows.");
  w.sample("corral_sentinel_config_epoch", s.config_epoch);
  w.header("corral_sentinel_primary_switches_total", MetricType::kCounter,
           "Times the primary changed after the first one was named.");
  w.sample("corral_sentinel_primary_switches_total", s.switches);
  w.header("corral_sentinel_rounds_total", MetricType::kCounter,
           "Rounds of questions to the sentinels finished.");
  w.sample("corral_sentinel_rounds_total", s.rounds);
  w.header("corral_sentinel_events_total", MetricType::kCounter,
           "Sentinel events received about the master corral follows.");
  w.sample("corral_sentinel_events_total", s.events);
  w.header("corral_sentinel_last_answer_age_seconds", MetricType::kGauge,
           "Seconds since a sentinel last answered (absent before the first answer).");
  if (s.last_answer_ms >= 0) {
    w.sample("corral_sentinel_last_answer_age_seconds",
             static_cast<uint64_t>(std::max<int64_t>(now_ms - s.last_answer_ms, 0) / 1000));
  }
}

}  // namespace corral::admin
