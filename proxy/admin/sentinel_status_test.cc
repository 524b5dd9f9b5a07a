// sentinel_status.h: /ready's verdict and text, and the metrics, from made-up Status values.
#include "proxy/admin/sentinel_status.h"

#include <doctest/doctest.h>

namespace corral::admin {
namespace {

sentinel::Status known() {
  sentinel::Status s;
  s.master = "mymaster";
  s.sentinels = {{"127.0.0.1:26379", true, true},
                 {"127.0.0.1:26380", true, false},
                 {"127.0.0.1:26381", false, false}};
  s.reachable = 2;
  s.answered_once = true;
  s.primary = "127.0.0.1:6379";
  s.replicas = 1;
  s.config_epoch = 3;
  s.switches = 1;
  s.rounds = 9;
  s.events = 4;
  s.last_answer_ms = 10000;
  return s;
}

}  // namespace

TEST_CASE("/ready with Sentinel: each state") {
  std::string body;
  sentinel::Status s = known();
  CHECK(sentinelReady(s, true, &body));
  CHECK(body ==
        "ready; primary 127.0.0.1:6379 (sentinel master mymaster, 2 of 3 sentinels reachable)\n");

  CHECK_FALSE(sentinelReady(s, false, &body));
  CHECK(body ==
        "primary 127.0.0.1:6379 unavailable (down or handshake refused) (2 of 3 sentinels "
        "reachable)\n");

  s.fenced = true;
  CHECK_FALSE(sentinelReady(s, true, &body));
  CHECK(body ==
        "failover under way: primary 127.0.0.1:6379 takes no new requests until the "
        "sentinels name the new one (2 of 3 sentinels reachable)\n");

  s = known();
  s.reachable = 0;  // every sentinel down: still serving, and saying so
  CHECK(sentinelReady(s, true, &body));
  CHECK(body ==
        "ready; sentinels unreachable (0 of 3 sentinels reachable): serving the last known "
        "primary 127.0.0.1:6379\n");

  s = sentinel::Status{};
  s.master = "m";
  s.sentinels = {{"h:1", false, false}};
  CHECK_FALSE(sentinelReady(s, true, &body));
  CHECK(body ==
        "primary unknown: no sentinel has named the primary of m yet (0 of 1 sentinels "
        "reachable)\n");
}

TEST_CASE("corral_sentinel_* metrics") {
  std::string out;
  net::PromWriter w(out);
  writeSentinelMetrics(w, known(), 12500);
  for (const char* line : {
           "corral_sentinel_up{sentinel=\"127.0.0.1:26379\"} 1\n",
           "corral_sentinel_up{sentinel=\"127.0.0.1:26381\"} 0\n",
           "corral_sentinel_subscribed{sentinel=\"127.0.0.1:26379\"} 1\n",
           "corral_sentinel_subscribed{sentinel=\"127.0.0.1:26380\"} 0\n",
           "corral_sentinel_reachable 2\n",
           "corral_sentinel_primary{master=\"mymaster\",address=\"127.0.0.1:6379\"} 1\n",
           "corral_sentinel_replicas 1\n",
           "corral_sentinel_failover_in_progress 0\n",
           "corral_sentinel_config_epoch 3\n",
           "corral_sentinel_primary_switches_total 1\n",
           "corral_sentinel_rounds_total 9\n",
           "corral_sentinel_events_total 4\n",
           "corral_sentinel_last_answer_age_seconds 2\n",
           "# TYPE corral_sentinel_primary_switches_total counter\n",
       }) {
    CAPTURE(line);
    CHECK(out.find(line) != std::string::npos);
  }
  // Nothing known yet: no primary sample, no answer age.
  std::string empty;
  net::PromWriter w2(empty);
  writeSentinelMetrics(w2, sentinel::Status{}, 0);
  CHECK(empty.find("corral_sentinel_primary{") == std::string::npos);
  CHECK(empty.find("\ncorral_sentinel_last_answer_age_seconds ") == std::string::npos);
  CHECK(empty.find("corral_sentinel_reachable 0\n") != std::string::npos);
}

}  // namespace corral::admin
