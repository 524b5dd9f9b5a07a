// corral: flags, config, workers, signals. No request logic lives here.
//
//   main thread: config -> listeners -> N workers (threads) -> admin HTTP + signals loop
//   SIGTERM/SIGINT: workers drain (stop accepting, finish in-flight replies) -> exit 0
//   every second: idle rate-limit buckets dropped; admin::Reloader::poll() (files changed?)
//   SIGHUP: admin::Reloader::reload(), which applies log level, limits and policies through the
//   callbacks set up here, or keeps the running config when the file is invalid
//   `corral doctor ...`, `corral health ...` (argv[1]): handed to doctor/ before anything else
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/logging.h"
#include "doctor/doctor.h"
#include "proxy/admin/admin.h"
#include "proxy/admin/reload.h"
#include "proxy/loop/clock.h"
#include "proxy/net/listen.h"
#include "proxy/net/worker.h"
#include "proxy/sentinel/monitor.h"
#include "proxy/tls/context.h"

namespace {

struct Options {
  std::string config_path = "config/corral.yaml";
  std::string check_path;
  std::string print_path;
  std::string log_level;
  std::string ready_file;
  bool version = false;
  bool help = false;
};

constexpr const char* kUsage =
    "usage: corral [--config FILE] [--log-level LEVEL] [--ready-file PATH]\n"
    "       corral --check-config FILE\n"
    "       corral --print-addresses FILE\n"
    "       corral --version\n"
    "%s"
    "\n"
    "  --config FILE           proxy settings (default config/corral.yaml)\n"
    "  --check-config FILE     validate FILE, print every error, exit 0 (valid) or 1\n"
    "  --print-addresses FILE  validate FILE like --check-config, then print the addresses it\n"
    "                          resolves to, one 'ROLE ADDRESS' line each: listen, admin,\n"
    "                          primary, replica (ADDRESS: host:port, [v6]:port or unix:/path;\n"
    "                          a third word 'password' when corral sends that upstream one)\n"
    "  --log-level LEVEL       trace|debug|info|warn|error|critical|off (overrides log.level)\n"
    "  --ready-file PATH       once listening, write 'listen HOST:PORT' lines to PATH\n"
    "  --version               print the version\n"
    "%s";

bool parseArgs(int argc, char** argv, Options& o, std::string& err) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& dst) {
      if (auto eq = a.find('='); eq != std::string::npos) {
        dst = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= argc) {
        err = a + " needs a value";
        return false;
      }
      dst = argv[++i];
      return true;
    };
    auto is = [&](const char* flag) {
      return a == flag || a.rfind(std::string(flag) + "=", 0) == 0;
    };
    if (is("--config") || a == "-c") {
      if (!value(o.config_path)) return false;
    } else if (is("--check-config") || a == "-t") {
      if (!value(o.check_path)) return false;
    } else if (is("--print-addresses")) {
      if (!value(o.print_path)) return false;
    } else if (is("--log-level")) {
      if (!value(o.log_level)) return false;
    } else if (is("--ready-file")) {
      if (!value(o.ready_file)) return false;
    } else if (a == "--version" || a == "-v") {
      o.version = true;
    } else if (a == "--help" || a == "-h") {
      o.help = true;
    } else {
      err = "unknown argument: " + a;
      return false;
    }
  }
  return true;
}

// --check-config (print_addresses false) and --print-addresses: exit 0 or 1.
int checkConfig(const std::string& path, bool print_addresses) {
  corral::policies::Registry registry;
  corral::admin::Loaded r = corral::admin::loadAndCompile(path, registry);
  if (!r.errors.empty()) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), r.errors.size());
    return 1;
  }
  if (!print_addresses && !r.refused_by_check.empty()) {
    for (const auto& e : r.refused_by_check) std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "%s: loads, but refused: %zu setting(s) for tests only\n", path.c_str(),
                 r.refused_by_check.size());
    return 1;
  }
  if (print_addresses) {
    std::printf("%s", corral::config::addressLines(*r.config).c_str());
  } else {
    std::printf("%s: ok\n", path.c_str());
  }
  return 0;
}

struct App {
  Options opts;
  std::unique_ptr<corral::net::SharedState> shared;
  std::unique_ptr<corral::sentinel::Monitor> sentinel;  // with upstream.sentinel
  std::vector<std::unique_ptr<corral::net::Worker>> workers;
  std::unique_ptr<corral::admin::Reloader> reloader;  // owns the running config
  event_base* base = nullptr;
  std::shared_ptr<spdlog::logger> log;
  bool stopping = false;
  event* stop_poll = nullptr;
  event* tick = nullptr;
};

void applyLogging(const Options& opts, const corral::config::LogConfig& log) {
  const std::string& name = opts.log_level.empty() ? log.level : opts.log_level;
  if (auto lvl = corral::logging::parseLevel(name)) corral::logging::setLevel(*lvl);
  if (auto fmt = corral::logging::parseFormat(log.format)) corral::logging::setFormat(*fmt);
}

void onStopPoll(evutil_socket_t, short, void* arg) {
  auto* app = static_cast<App*>(arg);
  for (auto& w : app->workers) {
    if (!w->finished()) return;
  }
  event_base_loopbreak(app->base);
}

void onTerminate(evutil_socket_t sig, short, void* arg) {
  auto* app = static_cast<App*>(arg);
  if (app->stopping) {
    app->log->warn("second signal: exiting now signal={}", sig);
    std::_Exit(0);
  }
  app->stopping = true;
  if (app->tick != nullptr) event_del(app->tick);
  const int64_t timeout_ms = app->reloader->running().shutdown_timeout.count();
  app->log->info("shutting down signal={} timeout_ms={}", sig, timeout_ms);
  const int64_t deadline = corral::loop::monotonicMs() + timeout_ms;
  for (auto& w : app->workers) w->postDrain(deadline);
  app->stop_poll = event_new(app->base, -1, EV_PERSIST, &onStopPoll, app);
  timeval tv{0, 20 * 1000};
  event_add(app->stop_poll, &tv);
}

// Certificates and keys: re-read when their files change (a rotated Kubernetes secret) or on
// SIGHUP. A file that does not load leaves the old context in force and is logged once.
void reloadTls(App* app, bool force) {
  struct Named {
    const char* name;
    corral::tls::Holder* holder;
  };
  for (Named h : {Named{"tls", app->shared->tls_server.get()},
                  Named{"upstream.tls", app->shared->tls_upstream.get()}}) {
    if (h.holder == nullptr) continue;
    bool changed = false;
    std::string err;
    if (!h.holder->reload(force, &changed, &err)) {
      app->log->error("TLS reload refused, old certificate kept section={} err=\"{}\"", h.name,
                      err);
    } else if (changed) {
      app->log->info("TLS certificate reloaded section={}", h.name);
    }
  }
}

void onReload(evutil_socket_t, short, void* arg) {
  auto* app = static_cast<App*>(arg);
  app->reloader->reload("SIGHUP");
  reloadTls(app, /*force=*/true);
}

void onTick(evutil_socket_t, short, void* arg) {
  auto* app = static_cast<App*>(arg);
  if (app->stopping) return;
  // Idle rate-limit buckets decide like fresh ones: drop them, so memory follows the clients
  // that are active now rather than every client ever seen.
  // (Workers' rate-limit clock is the same: loop::monotonicNs.)
  app->shared->policy_registry.limiter().sweep(corral::loop::monotonicNs());
  app->reloader->poll();
  reloadTls(app, /*force=*/false);
}

bool setUpTls(const corral::config::Config& cfg, corral::net::SharedState& shared,
              const std::shared_ptr<spdlog::logger>& log) {
  bool tls_listener = false;
  for (const auto& l : cfg.listen) tls_listener = tls_listener || l.tls;
  bool tls_upstream = cfg.upstream.primary.addr.tls || cfg.upstream.tls.enabled;
  for (const auto& r : cfg.upstream.replicas) tls_upstream = tls_upstream || r.addr.tls;
  if (cfg.upstream.sentinel) {
    for (const auto& s : cfg.upstream.sentinel->addresses) tls_upstream = tls_upstream || s.tls;
  }
  std::string err;
  if (tls_listener) {
    shared.tls_server = corral::tls::Holder::server(cfg.tls, &err);
    if (shared.tls_server == nullptr) {
      log->error("TLS setup failed section=tls err=\"{}\"", err);
      return false;
    }
    // Handshakes on their own thread, niced: under a reconnect storm the kernel runs the workers
    // (the established clients) first.
    shared.handshaker = std::make_unique<corral::net::Handshaker>(cfg.tls.handshake_timeout.count(),
                                                                  cfg.tls.handshake_nice);
    shared.handshaker->start();
  }
  if (tls_upstream) {
    shared.tls_upstream = corral::tls::Holder::client(cfg.upstream.tls, &err);
    if (shared.tls_upstream == nullptr) {
      log->error("TLS setup failed section=upstream.tls err=\"{}\"", err);
      return false;
    }
    if (cfg.upstream.tls.insecure) {
      log->warn(
          "upstream.tls.insecure: true: Redis's certificate and name are NOT checked "
          "(tests only)");
    }
  }
  return true;
}

bool writeReadyFile(const std::string& path, const std::vector<std::string>& lines) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return false;
    for (const auto& l : lines) f << l << '\n';
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  App app;
  std::string err;
  if (argc > 1 &&
      (std::string_view(argv[1]) == "doctor" || std::string_view(argv[1]) == "health")) {
    const std::vector<std::string> args(argv + 2, argv + argc);
    return std::string_view(argv[1]) == "doctor"
               ? corral::doctor::runDoctor(args, app.opts.config_path)
               : corral::doctor::runHealth(args, app.opts.config_path);
  }
  if (!parseArgs(argc, argv, app.opts, err)) {
    std::fprintf(stderr, "corral: %s\n", err.c_str());
    std::fprintf(stderr, kUsage, corral::doctor::kSubcommandUsage, corral::doctor::kSubcommandHelp);
    return 2;
  }
  if (app.opts.help) {
    std::printf(kUsage, corral::doctor::kSubcommandUsage, corral::doctor::kSubcommandHelp);
    return 0;
  }
  if (app.opts.version) {
    std::printf("corral %s\n", CORRAL_VERSION);
    return 0;
  }
  if (!app.opts.check_path.empty()) return checkConfig(app.opts.check_path, false);
  if (!app.opts.print_path.empty()) return checkConfig(app.opts.print_path, true);
  if (!app.opts.log_level.empty() && !corral::logging::parseLevel(app.opts.log_level)) {
    std::fprintf(stderr, "corral: unknown log level '%s'\n", app.opts.log_level.c_str());
    return 2;
  }

  app.log = corral::logging::get("main");
  app.shared = std::make_unique<corral::net::SharedState>();
  corral::admin::Loaded loaded =
      corral::admin::loadAndCompile(app.opts.config_path, app.shared->policy_registry);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "corral: invalid config %s\n", app.opts.config_path.c_str());
    return 1;
  }
  const corral::config::Config cfg = std::move(*loaded.config);
  applyLogging(app.opts, cfg.log);

  // Reloads keep listeners, workers and upstreams (they are set up once, below) and apply the
  // rest through these.
  corral::admin::Reloader::Apply apply;
  apply.log = [&app](const corral::config::LogConfig& log) { applyLogging(app.opts, log); };
  apply.limits = [&app](const corral::config::Limits& limits) {
    app.shared->max_clients.store(limits.max_clients, std::memory_order_relaxed);
    for (auto& w : app.workers) w->postLimits(limits);
  };
  apply.policies = [&app](std::shared_ptr<const corral::policies::PolicySet> set) {
    app.shared->setPolicies(std::move(set));
  };
  app.reloader = std::make_unique<corral::admin::Reloader>(
      app.opts.config_path, cfg, app.shared->policy_registry, std::move(apply));

  ::signal(SIGPIPE, SIG_IGN);
  evthread_use_pthreads();  // workers are woken from this thread with event_active()

  auto sockets = corral::net::bindListeners(cfg.listen, cfg.workers, err);
  if (sockets.empty()) {
    app.log->error("listen failed err={}", err);
    return 1;
  }
  std::vector<std::string> ready_lines;
  for (const auto& s : sockets[0]) ready_lines.push_back("listen " + s.text);

  app.shared->setPolicies(std::move(loaded.policies));
  app.shared->stats.resize(static_cast<size_t>(cfg.workers));
  app.shared->max_clients.store(cfg.limits.max_clients);
  app.shared->started_ms = corral::loop::monotonicMs();
  app.shared->auth = std::make_unique<corral::net::Authenticator>(cfg.auth);
  app.shared->verdicts = std::make_unique<corral::net::VerdictCache>(
      cfg.auth.passthrough.cache_entries, cfg.auth.passthrough.cache_ttl.count());
  if (!setUpTls(cfg, *app.shared, app.log)) return 1;

  app.base = event_base_new();
  std::unique_ptr<corral::admin::AdminServer> admin;
  if (cfg.admin.listen) {
    corral::admin::ProcessInfo info{CORRAL_VERSION, corral::loop::monotonicMs(),
                                    [&app] { return app.reloader->status(); },
                                    [&app] { return app.stopping; }};
    admin = std::make_unique<corral::admin::AdminServer>(app.base, *app.shared, info, cfg.admin);
    std::string bound = admin->listen(*cfg.admin.listen, err);
    if (bound.empty()) {
      app.log->error("admin listen failed addr={} err={}", cfg.admin.listen->text, err);
      return 1;
    }
    ready_lines.push_back("admin " + bound);
  }

  if (cfg.upstream.cluster) {
    const int64_t gap_ms = 1000 / std::max(1, cfg.upstream.cluster->max_refreshes_per_second);
    app.shared->cluster_board = std::make_unique<corral::net::ClusterBoard>(gap_ms);
  }
  if (cfg.upstream.sentinel) {
    app.sentinel = std::make_unique<corral::sentinel::Monitor>(*cfg.upstream.sentinel, cfg.upstream,
                                                               app.shared->tls_upstream.get());
    app.shared->topology = &app.sentinel->board();
    app.sentinel->start();  // returns after its first round of questions (bounded)
  }
  for (int i = 0; i < cfg.workers; ++i) {
    app.workers.push_back(std::make_unique<corral::net::Worker>(
        i, cfg, *app.shared, std::move(sockets[static_cast<size_t>(i)])));
  }
  for (auto& w : app.workers) w->start();

  event* sigterm = evsignal_new(app.base, SIGTERM, &onTerminate, &app);
  event* sigint = evsignal_new(app.base, SIGINT, &onTerminate, &app);
  event* sighup = evsignal_new(app.base, SIGHUP, &onReload, &app);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);
  event_add(sighup, nullptr);
  app.tick = event_new(app.base, -1, EV_PERSIST, &onTick, &app);
  timeval every_second{1, 0};
  event_add(app.tick, &every_second);

  for (const auto& l : ready_lines) app.log->info("listening {}", l);
  std::string primary = cfg.upstream.primary.text;
  size_t replicas = cfg.upstream.replicas.size();
  if (app.sentinel) {
    const corral::sentinel::Status s = app.sentinel->board().status();
    primary += "=" + (s.primary.empty() ? std::string("unknown") : s.primary);
    replicas = s.replicas;
  }
  app.log->info(
      "corral started version={} workers={} primary={} replicas={} policies={} policy_files={}",
      CORRAL_VERSION, cfg.workers, primary, replicas, cfg.policy.policies.size(),
      cfg.policy.files.size());
  if (!app.opts.ready_file.empty() && !writeReadyFile(app.opts.ready_file, ready_lines)) {
    app.log->error("cannot write ready file path={}", app.opts.ready_file);
  }

  event_base_dispatch(app.base);

  for (auto& w : app.workers) w->join();
  // The handshake thread and the monitor wake workers: they stop before the workers are freed.
  if (app.shared->handshaker) app.shared->handshaker->stop();
  if (app.sentinel) app.sentinel->stop();
  app.workers.clear();
  app.shared->topology = nullptr;
  app.sentinel.reset();
  admin.reset();
  event_free(sigterm);
  event_free(sigint);
  event_free(sighup);
  event_free(app.tick);
  if (app.stop_poll != nullptr) event_free(app.stop_poll);
  event_base_free(app.base);
  app.log->info("corral stopped");
  return 0;
}
