#include "proxy/admin/admin.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

#include "proxy/commands/command_table.h"
#include "proxy/upstream/upstream.h"

namespace corral::admin {
namespace {

void reply(evhttp_request* req, int code, const char* reason, const std::string& body,
           const char* type) {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", type);
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, code, reason, buf);
  evbuffer_free(buf);
}

void onRequest(evhttp_request* req, void* arg) {
  auto* self = static_cast<AdminServer*>(arg);
  const char* uri = evhttp_request_get_uri(req);
  std::string path = uri != nullptr ? uri : "/";
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
  if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
    reply(req, 405, "Method Not Allowed", "method not allowed\n", "text/plain");
  } else if (path == "/health") {
    reply(req, 200, "OK", "ok\n", "text/plain");
  } else if (path == "/ready") {
    // Ready means every worker has a primary connection past its handshake: a Redis that
    // answers the handshake with NOAUTH or WRONGPASS is as unavailable as one that is down.
    if (self->ready()) {
      reply(req, 200, "OK", "ready\n", "text/plain");
    } else {
      reply(req, 503, "Service Unavailable", "primary unavailable (down or handshake refused)\n",
            "text/plain");
    }
  } else if (path == "/metrics") {
    reply(req, 200, "OK", self->metricsText(), "text/plain; version=0.0.4");
  } else if (path == "/policies") {
    reply(req, 200, "OK", self->policiesJson(), "application/json");
  } else {
    reply(req, 404, "Not Found", "not found\n", "text/plain");
  }
}

}  // namespace

AdminServer::AdminServer(event_base* base, net::SharedState& shared, ProcessInfo info)
    : shared_(shared), info_(std::move(info)), http_(evhttp_new(base)) {
  evhttp_set_gencb(http_, &onRequest, this);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
}

std::string AdminServer::policiesJson() const {
  std::shared_ptr<const policies::PolicySet> set = shared_.policies();
  if (set == nullptr) return "{\"global\":null,\"policies\":[],\"files\":[]}\n";
  return set->describeJson() + "\n";
}

AdminServer::~AdminServer() {
  if (http_ != nullptr) evhttp_free(http_);
}

std::string AdminServer::listen(const config::ListenAddress& addr, std::string& err) {
  if (addr.kind != config::ListenAddress::Kind::kTcp) {
    err = "admin.listen must be host:port";
    return "";
  }
  evhttp_bound_socket* s = evhttp_bind_socket_with_handle(http_, addr.host.c_str(), addr.port);
  if (s == nullptr) {
    err = std::strerror(errno);
    return "";
  }
  evutil_socket_t fd = evhttp_bound_socket_get_fd(s);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  const bool v6 = addr.host.find(':') != std::string::npos;
  return (v6 ? "[" + addr.host + "]" : addr.host) + ":" + std::to_string(port);
}

bool AdminServer::ready() const {
  for (const auto& b : shared_.stats.blocks) {
    if (b->primary_ready.get() == 0) return false;
  }
  return true;
}

std::string AdminServer::metricsText() const {
  struct Row {
    const char* name;
    const char* type;
    const char* help;
    net::Counter net::Stats::Worker::*field;
  };
  using W = net::Stats::Worker;
  static const Row kRows[] = {
      {"corral_connections_accepted_total", "counter", "Client connections accepted.",
       &W::connections_accepted},
      {"corral_connections_rejected_total", "counter", "Client connections refused (max_clients).",
       &W::connections_rejected},
      {"corral_requests_total", "counter", "Requests parsed.", &W::requests},
      {"corral_requests_forwarded_total", "counter", "Requests sent to an upstream.",
       &W::forwarded},
      {"corral_local_replies_total", "counter", "Requests answered by corral itself.",
       &W::local_replies},
      {"corral_upstream_errors_total", "counter",
       "Replies of -ERR corral: upstream unavailable/timeout.", &W::upstream_errors},
      {"corral_protocol_errors_total", "counter", "Malformed requests (connection closed).",
       &W::protocol_errors},
      {"corral_oversize_requests_total", "counter", "Requests over limits.max_request_bytes.",
       &W::oversize_requests},
      {"corral_refused_commands_total", "counter",
       "Connection-state commands refused by this version.", &W::refused_commands},
      {"corral_backpressure_pauses_total", "counter", "Times a client's reading was paused.",
       &W::backpressure_pauses},
      {"corral_pending_requests", "gauge", "Requests waiting for an upstream reply.", &W::pending},
      {"corral_clients", "gauge", "Connected clients.", &W::clients},
      {"corral_upstream_connections_ready", "gauge", "Upstream connections connected.",
       &W::upstreams_ready},
      {"corral_upstream_connections", "gauge", "Upstream connections configured.",
       &W::upstreams_total},
      {"corral_auth_failures_total", "counter", "AUTH attempts with wrong credentials.",
       &W::auth_failures},
      {"corral_slow_consumers_disconnected_total", "counter",
       "Subscribers (clients on their own connection) cut off at the limits.pubsub_* limits.",
       &W::slow_consumers},
      {"corral_dedicated_connections", "gauge",
       "Dedicated upstream connections held by clients (MULTI/WATCH, blocking commands).",
       &W::dedicated},
  };
  std::string out;
  out.reserve(4096);
  for (const Row& r : kRows) {
    uint64_t sum = 0;
    for (const auto& b : shared_.stats.blocks) sum += ((*b).*(r.field)).get();
    out += "# HELP ";
    out += r.name;
    out += ' ';
    out += r.help;
    out += "\n# TYPE ";
    out += r.name;
    out += ' ';
    out += r.type;
    out += '\n';
    out += r.name;
    out += ' ';
    out += std::to_string(sum);
    out += '\n';
  }
  // Process-wide upstream counters (proxy/upstream/upstream.h), not per worker.
  const upstream::Counters& up = upstream::counters();
  out +=
      "# HELP corral_upstream_handshake_failures_total Upstream handshakes (AUTH, SELECT) "
      "refused by Redis.\n# TYPE corral_upstream_handshake_failures_total counter\n";
  out += "corral_upstream_handshake_failures_total " +
         std::to_string(up.handshake_failures.load(std::memory_order_relaxed)) + "\n";
  out +=
      "# HELP corral_upstream_replies_too_large_total Replies over limits.max_reply_bytes, "
      "dropped (the request got an error).\n"
      "# TYPE corral_upstream_replies_too_large_total counter\n";
  out += "corral_upstream_replies_too_large_total " +
         std::to_string(up.replies_too_large.load(std::memory_order_relaxed)) + "\n";
  // Per command: calls and error replies (commands never called are left out).
  const auto cmds = commands::allCommands();
  std::string calls, errors;
  for (size_t i = 0; i < cmds.size() && i < net::Stats::kCommandSlots; ++i) {
    uint64_t n = 0;
    uint64_t e = 0;
    for (const auto& b : shared_.stats.blocks) {
      n += b->per_command[i].get();
      e += b->per_command_errors[i].get();
    }
    if (n == 0 && e == 0) continue;
    const std::string label = "{command=\"" + std::string(cmds[i].name) + "\"} ";
    calls += "corral_command_requests_total" + label + std::to_string(n) + "\n";
    errors += "corral_command_errors_total" + label + std::to_string(e) + "\n";
  }
  out += "# HELP corral_command_requests_total Requests by command.\n";
  out += "# TYPE corral_command_requests_total counter\n" + calls;
  out += "# HELP corral_command_errors_total Error replies by command (Redis's and corral's).\n";
  out += "# TYPE corral_command_errors_total counter\n" + errors;
  out += "# HELP corral_request_duration_seconds Forwarded requests, from read to reply.\n";
  out += "# TYPE corral_request_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= net::Stats::kLatencyBuckets; ++i) {
    for (const auto& b : shared_.stats.blocks) cumulative += b->latency_bucket[i].get();
    std::string le = "+Inf";
    if (i < net::Stats::kLatencyBuckets) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g",
                    static_cast<double>(net::Stats::kLatencyBoundsUs[i]) / 1e6);
      le = buf;
    }
    out += "corral_request_duration_seconds_bucket{le=\"" + le + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  uint64_t sum_us = 0;
  uint64_t count = 0;
  for (const auto& b : shared_.stats.blocks) {
    sum_us += b->latency_sum_us.get();
    count += b->latency_count.get();
  }
  char sum[48];
  std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(sum_us) / 1e6);
  out += std::string("corral_request_duration_seconds_sum ") + sum + "\n";
  out += "corral_request_duration_seconds_count " + std::to_string(count) + "\n";
  shared_.policy_registry.appendMetrics(out);
  out += "# HELP corral_config_reload_failures_total Config reloads rejected.\n";
  out += "# TYPE corral_config_reload_failures_total counter\n";
  out += "corral_config_reload_failures_total " +
         std::to_string(info_.reload_failures ? info_.reload_failures() : 0) + "\n";
  out += "# HELP corral_uptime_seconds Seconds since start.\n# TYPE corral_uptime_seconds gauge\n";
  out += "corral_uptime_seconds " +
         std::to_string((upstream::monotonicMs() - info_.started_ms) / 1000) + "\n";
  out += "# HELP corral_build_info Build version.\n# TYPE corral_build_info gauge\n";
  out += "corral_build_info{version=\"" + info_.version + "\"} 1\n";
  return out;
}

}  // namespace corral::admin
