// Client: replies corral changes on the way back: INFO gains a "# Proxy" section, CONFIG GET
// loses corral's upstream secrets, EXEC of a transaction corral refused a command of answers
// EXECABORT.
#include "commands/command_table.h"
#include "proxy/loop/clock.h"
#include "proxy/net/client.h"
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
  uint64_t requests = 0, forwarded = 0, local = 0, upstream_errors = 0, refused = 0;
  uint64_t dedicated = 0, ready = 0, total = 0, primary_ready = 0;
  for (const auto& b : sh.stats.blocks) {
    requests += b->requests.get();
    forwarded += b->forwarded.get();
    local += b->local_replies.get();
    upstream_errors += b->upstream_errors.get();
    refused += b->refused_commands.get();
    dedicated += b->dedicated.get();
    ready += b->upstreams_ready.get();
    total += b->upstreams_total.get();
    primary_ready += b->primary_ready.get();
  }
  auto line = [&text](std::string_view k, const std::string& v) {
    text.append(k);
    text.push_back(':');
    text.append(v);
    text.append("\r\n");
  };
  text.append("# Proxy\r\n");
  line("corral_version", CORRAL_VERSION);
  line("corral_uptime_in_seconds", std::to_string((loop::monotonicMs() - sh.started_ms) / 1000));
  line("corral_connected_clients", std::to_string(sh.clients.load(std::memory_order_relaxed)));
  line("corral_dedicated_connections", std::to_string(dedicated));
  line("corral_upstream_primary", worker_.upstreamConfig().primary.text);
  // This worker's view, live (the counters are refreshed by the worker's tick only).
  line("corral_upstream_primary_status",
       worker_.primaryReady() || primary_ready > 0 ? "up" : "down");
  line("corral_upstream_replicas", std::to_string(worker_.upstreamConfig().replicas.size()));
  line("corral_upstream_connections_ready", std::to_string(ready) + "/" + std::to_string(total));
  line("corral_requests", std::to_string(requests));
  line("corral_requests_forwarded", std::to_string(forwarded));
  line("corral_local_replies", std::to_string(local));
  line("corral_upstream_errors", std::to_string(upstream_errors));
  line("corral_refused_commands", std::to_string(refused));
  // Per-command calls, like Redis's "# Commandstats" (top-level commands only).
  const auto all = commands::allCommands();
  for (size_t i = 0; i < all.size() && i < Stats::kCommandSlots; ++i) {
    uint64_t calls = 0;
    for (const auto& b : sh.stats.blocks) calls += b->per_command[i].get();
    if (calls == 0) continue;
    std::string k = "corral_cmdstat_";
    k.append(all[i].name);
    line(k, "calls=" + std::to_string(calls));
  }
}

}  // namespace corral::net
