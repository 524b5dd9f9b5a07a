#include "proxy/admin/admin.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string_view>
#include <vector>

#include "proxy/admin/access.h"
#include "proxy/admin/dashboard.h"
#include "proxy/admin/process_metrics.h"
#include "proxy/admin/sentinel_status.h"
#include "proxy/loop/clock.h"
#include "proxy/net/metrics_table.h"
#include "proxy/net/prometheus.h"
#include "proxy/tls/context.h"

namespace corral::admin {
namespace {

void reply(evhttp_request* req, int code, const char* reason, std::string_view body,
           const char* type) {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", type);
  if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
    // evhttp would write a body given on a HEAD request, and adds no Content-Length to the
    // reply of one: GET's length, and no body (RFC 9110 9.3.2).
    evhttp_add_header(headers, "Content-Length", std::to_string(body.size()).c_str());
    evhttp_send_reply(req, code, reason, nullptr);
    return;
  }
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
  const evhttp_cmd_type method = evhttp_request_get_command(req);
  if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
    reply(req, 405, "Method Not Allowed", "method not allowed\n", "text/plain");
  } else if (path == "/health") {
    reply(req, 200, "OK", "ok\n", "text/plain");
  } else if (path == "/ready") {
    // Ready means every worker has a primary connection past its handshake: a Redis that
    // answers the handshake with NOAUTH or WRONGPASS is as unavailable as one that is down.
    // With Sentinel, also a known primary that is not being failed over (sentinel_status.h).
    // admin.ready_when: serving answers for corral alone (access.h).
    std::string body;
    if (self->ready(&body)) {
      reply(req, 200, "OK", body, "text/plain");
    } else {
      reply(req, 503, "Service Unavailable", body, "text/plain");
    }
  } else if (path == "/metrics") {
    reply(req, 200, "OK", self->metricsText(), "text/plain; version=0.0.4");
  } else if (path == "/policies") {
    // With admin.token_env the policies (templates, limits, file paths) are for the bearer of
    // the token only; the token is never logged.
    const char* auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!bearerAuthorized(auth, self->settings().token)) {
      evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                        "Bearer realm=\"corral\"");
      reply(req, 401, "Unauthorized", "unauthorized: /policies needs the admin token\n",
            "text/plain");
    } else {
      reply(req, 200, "OK", self->policiesJson(), "application/json");
    }
  } else if (path == "/dashboard") {
    addDashboardHeaders(evhttp_request_get_output_headers(req));
    reply(req, 200, "OK", dashboardHtml(), "text/html; charset=utf-8");
  } else {
    reply(req, 404, "Not Found", "not found\n", "text/plain");
  }
}

}  // namespace

AdminServer::AdminServer(event_base* base, net::SharedState& shared, ProcessInfo info,
                         config::AdminConfig settings)
    : shared_(shared),
      info_(std::move(info)),
      settings_(std::move(settings)),
      http_(evhttp_new(base)) {
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

bool AdminServer::ready(std::string* body) const {
  if (settings_.ready_when == config::ReadyWhen::kServing) {
    return servingReady(info_.stopping && info_.stopping(), body);
  }
  bool primary = true;
  for (const auto& b : shared_.stats.blocks) {
    if (b->primary_ready.get() == 0) primary = false;
  }
  if (shared_.topology != nullptr) return sentinelReady(shared_.topology->status(), primary, body);
  *body = primary ? "ready\n" : "primary unavailable (down or handshake refused)\n";
  return primary;
}

std::string AdminServer::metricsText() const {
  std::string out;
  out.reserve(8192);
  net::PromWriter w(out);
  net::writePrometheus(shared_.stats, w);
  // Per upstream address and role (proxy/net/upstream_gauges.h).
  std::vector<std::vector<net::UpstreamGauges::Node>> nodes;
  nodes.reserve(shared_.stats.blocks.size());
  for (const auto& b : shared_.stats.blocks) nodes.push_back(b->upstream_nodes.snapshot());
  net::writeUpstreamMetrics(net::sumUpstreams(nodes), w);
  // Process-wide upstream counters (proxy/upstream/upstream.h), not per worker.
  const upstream::Counters& up = upstream::counters();
  w.header("corral_upstream_handshake_failures_total", net::MetricType::kCounter,
           "Upstream handshakes (AUTH, SELECT) refused by Redis.");
  w.sample("corral_upstream_handshake_failures_total",
           up.handshake_failures.load(std::memory_order_relaxed));
  w.header("corral_upstream_replies_too_large_total", net::MetricType::kCounter,
           "Replies over limits.max_reply_bytes, dropped (the request got an error).");
  w.sample("corral_upstream_replies_too_large_total",
           up.replies_too_large.load(std::memory_order_relaxed));
  w.header("corral_upstream_not_primary_total", net::MetricType::kCounter,
           "Upstream handshakes refused because ROLE named no primary (Sentinel).");
  w.sample("corral_upstream_not_primary_total", up.not_primary.load(std::memory_order_relaxed));
  if (shared_.topology != nullptr) {
    writeSentinelMetrics(w, shared_.topology->status(), loop::monotonicMs());
  }
  if (const net::ClusterBoard* b = shared_.cluster_board.get(); b != nullptr) {
    w.header("corral_cluster_refreshes_total", net::MetricType::kCounter,
             "Slot map refreshes started (CLUSTER SHARDS), all workers.");
    w.sample("corral_cluster_refreshes_total", b->refreshes());
    w.header("corral_cluster_refresh_failures_total", net::MetricType::kCounter,
             "Slot map refreshes that got no usable map.");
    w.sample("corral_cluster_refresh_failures_total", b->failures());
    w.header("corral_cluster_topology_changes_total", net::MetricType::kCounter,
             "Refreshes whose map differed from the one in force.");
    w.sample("corral_cluster_topology_changes_total", b->changes());
  }
  w.header("corral_upstream_tls_failures_total", net::MetricType::kCounter,
           "Upstream TLS handshakes or records refused (the log line says why).");
  w.sample("corral_upstream_tls_failures_total", up.tls_failures.load(std::memory_order_relaxed));
  w.header("corral_upstream_tls_resumed_total", net::MetricType::kCounter,
           "Upstream TLS handshakes that resumed an earlier session.");
  w.sample("corral_upstream_tls_resumed_total", up.tls_resumed.load(std::memory_order_relaxed));
  const tls::Counters& tc = tls::counters();
  w.header("corral_tls_reloads_total", net::MetricType::kCounter,
           "TLS certificates reloaded after their files changed.");
  w.sample("corral_tls_reloads_total", tc.reloads.load(std::memory_order_relaxed));
  w.header("corral_tls_reload_failures_total", net::MetricType::kCounter,
           "Changed TLS files refused (the old certificate stays in force).");
  w.sample("corral_tls_reload_failures_total", tc.reload_failures.load(std::memory_order_relaxed));
  shared_.policy_registry.appendMetrics(out);
  w.header("corral_config_reload_failures_total", net::MetricType::kCounter,
           "Config reloads rejected.");
  const ReloadStatus reload = info_.reload_status ? info_.reload_status() : ReloadStatus{};
  w.sample("corral_config_reload_failures_total", reload.failures);
  w.header("corral_config_last_reload_success", net::MetricType::kGauge,
           "1 when the last config load (startup or reload) was applied, 0 when it was refused.");
  w.sample("corral_config_last_reload_success", uint64_t{reload.last_ok ? 1u : 0u});
  w.header("corral_config_last_reload_success_timestamp_seconds", net::MetricType::kGauge,
           "When the config in force was loaded, in seconds since the Unix epoch.");
  w.sampleReal("corral_config_last_reload_success_timestamp_seconds",
               static_cast<double>(reload.last_ok_unix_ms) / 1000.0);
  w.header("corral_uptime_seconds", net::MetricType::kGauge, "Seconds since start.");
  w.sample("corral_uptime_seconds",
           static_cast<uint64_t>((loop::monotonicMs() - info_.started_ms) / 1000));
  w.header("corral_build_info", net::MetricType::kGauge, "Build version.");
  w.sample("corral_build_info", {{"version", info_.version}}, 1);
  if (const auto p = readProcessSample(); p.has_value()) writeProcessMetrics(*p, w);
  return out;
}

}  // namespace corral::admin
