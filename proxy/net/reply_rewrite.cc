// Client: replies corral changes on the way back: INFO gains a "# Proxy" section, CONFIG GET
// loses corral's upstream secrets, EXEC of a transaction corral refused a command of answers
// EXECABORT.
#include "proxy/loop/clock.h"
#include "proxy/net/client.h"
#include "proxy/net/metrics_table.h"
#include "proxy/net/redact.h"
#include "proxy/net/worker.h"

namespace corral::net {

std::string Client::rewriteReply(Rewrite rewrite, std::string_view reply) {
  std::string out;
  if (rewrite == Rewrite::kExecAbort) {
    if (!reply.empty() && reply[0] == '-') return std::string(reply);  // DISCARD failed: say so
    return "-EXECABORT Transaction discarded because of previous errors.\r\n";
  }
  if (rewrite == Rewrite::kConfigGet) {
    if (!redactConfigGetReply(reply, out)) out.assign(reply);
    return out;
  }
  // INFO: a bulk string "$<len>\r\n<text>\r\n" (RESP3 may send a verbatim "=<len>\r\ntxt:").
  if (reply.empty() || (reply[0] != '$' && reply[0] != '=')) return std::string(reply);
  const size_t hdr = reply.find("\r\n");
  if (hdr == std::string_view::npos || reply.size() < hdr + 4) return std::string(reply);
  std::string text(reply.substr(hdr + 2, reply.size() - hdr - 4));
  if (!text.empty()) {
    if (text.back() != '\n') text.append("\r\n");
    text.append("\r\n");
  }
  appendProxyInfo(text);
  out.push_back(reply[0]);
  out.append(std::to_string(text.size()));
  out.append("\r\n");
  out.append(text);
  out.append("\r\n");
  return out;
}

void Client::appendProxyInfo(std::string& text) {
  const SharedState& sh = worker_.shared();
  const Stats& st = sh.stats;
  auto line = [&text](std::string_view k, const std::string& v) {
    text.append(k);
    text.push_back(':');
    text.append(v);
    text.append("\r\n");
  };
  text.append("# Proxy\r\n");
  // What is not a counter; every counter comes from the metrics table below.
  line("corral_version", CORRAL_VERSION);
  line("corral_uptime_in_seconds", std::to_string((loop::monotonicMs() - sh.started_ms) / 1000));
  line("corral_upstream_primary", worker_.upstreamConfig().primary.text);
  // This worker's view, live (the counters are refreshed by the worker's tick only).
  line("corral_upstream_primary_status",
       worker_.primaryReady() || st.sum(&Stats::Worker::primary_ready) > 0 ? "up" : "down");
  line("corral_upstream_replicas", std::to_string(worker_.upstreamConfig().replicas.size()));
  line("corral_upstream_connections_ready",
       std::to_string(st.sum(&Stats::Worker::upstreams_ready)) + "/" +
           std::to_string(st.sum(&Stats::Worker::upstreams_total)));
  appendProxyInfoLines(st, text);
}

}  // namespace corral::net
