// The admin HTTP endpoint (libevent evhttp) on the main thread's loop:
//   GET /health   200 while the process runs
//   GET /ready    admin.ready_when upstream (default): 200 when every worker has a connected
//                 primary connection (with Sentinel: and the sentinels named it, and it is not
//                 being failed over), else 503; serving: 200 from start until the drain
//                 (access.h)
//   GET /metrics  Prometheus text: the per-worker counters of net::Stats, summed, the
//                 per-upstream series, the policy counters (policies::Registry), reload state
//                 and the standard process_* metrics (process_metrics.h)
//   GET /policies the policies in force, as JSON; with admin.token_env, only for
//                 "Authorization: Bearer <token>" (else 401)
//   GET /dashboard a live page over /metrics and /policies (dashboard.h)
// HEAD on each answers GET's status and headers (Content-Length included) without the body.
// It reads only relaxed atomics, so it never takes a lock the data path holds.
#pragma once

#include <event2/event.h>

#include <functional>
#include <string>

#include "config/config.h"
#include "proxy/admin/reload.h"
#include "proxy/net/worker.h"

struct evhttp;

namespace corral::admin {

// Extra process-level values the admin endpoint reports (owned by main).
struct ProcessInfo {
  std::string version;
  int64_t started_ms = 0;
  std::function<ReloadStatus()> reload_status;  // Reloader::status
  std::function<bool()> stopping;  // a SIGTERM started the drain (/ready with ready_when: serving)
};

class AdminServer {
 public:
  // settings: the admin section as loaded (token, ready_when), kept for the process's life (a
  // reload that changes it asks for a restart).
  AdminServer(event_base* base, net::SharedState& shared, ProcessInfo info,
              config::AdminConfig settings);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds addr (port 0 picks one); returns the bound "host:port" or "" with err set.
  std::string listen(const config::ListenAddress& addr, std::string& err);

  // Renders the Prometheus text (also used by tests).
  std::string metricsText() const;
  std::string policiesJson() const;
  // /ready: the verdict, and the reply text in *body.
  bool ready(std::string* body) const;
  const config::AdminConfig& settings() const { return settings_; }

 private:
  net::SharedState& shared_;
  ProcessInfo info_;
  config::AdminConfig settings_;
  evhttp* http_ = nullptr;
};

}  // namespace corral::admin
