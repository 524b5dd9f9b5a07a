// What the admin endpoint says about Sentinel (upstream.sentinel): the /ready verdict and its
// text, and the corral_sentinel_* metrics. Pure functions of the monitor's Status, so each
// answer is tested as text (sentinel_status_test.cc).
#pragma once

#include <cstdint>
#include <string>

#include "proxy/net/prometheus.h"
#include "proxy/sentinel/topology.h"

namespace corral::admin {

// /ready with Sentinel: false (503) while no primary is known, while a failover is under way
// (the primary is fenced) or while the workers' primary connections are not ready
// (`primary_ready` false); true otherwise, also with every sentinel unreachable (corral keeps
// serving the last primary they named, and the text says so). *body is the reply text.
bool sentinelReady(const sentinel::Status& s, bool primary_ready, std::string* body);

// corral_sentinel_* families; now_ms is the monotonic clock of Status::last_answer_ms.
void writeSentinelMetrics(net::PromWriter& w, const sentinel::Status& s, int64_t now_ms);

}  // namespace corral::admin
