// corral: flags, config, workers, signals. No request logic lives here.
//
//   main thread: config -> listeners -> N workers (threads) -> admin HTTP + signals loop
//   SIGTERM/SIGINT: workers drain (stop accepting, finish in-flight replies) -> exit 0
//   every second: idle rate-limit buckets dropped; config and policy files checked for changes
//   SIGHUP, or a change on disk of the config or a policy file (polled every second): reload;
//   apply log level, limits and policies; keep the old config and policies when invalid
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/logging.h"
#include "proxy/admin/admin.h"
#include "proxy/net/listen.h"
#include "proxy/net/worker.h"

namespace {

using corral::config::Config;

struct Options {
  std::string config_path = "config/corral.yaml";
  std::string check_path;
  std::string log_level;
  std::string ready_file;
  bool version = false;
  bool help = false;
};

constexpr const char* kUsage =
    "usage: corral [--config FILE] [--log-level LEVEL] [--ready-file PATH]\n"
    "       corral --check-config FILE\n"
    "       corral --version\n"
    "\n"
    "  --config FILE        proxy settings (default config/corral.yaml)\n"
    "  --check-config FILE  validate FILE, print every error, exit 0 (valid) or 1\n"
    "  --log-level LEVEL    trace|debug|info|warn|error|critical|off (overrides log.level)\n"
    "  --ready-file PATH    once listening, write 'listen HOST:PORT' lines to PATH\n"
    "  --version            print the version\n";

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

// Loads the file and compiles its policies (templates, ambiguity, captures): the checks a
// reload makes, so --check-config says yes exactly when a reload would. When the loader finds
// errors, what it could load is compiled too, so that one run reports both kinds, in file order.
corral::config::LoadResult loadAndCompile(const std::string& path,
                                          corral::policies::Registry& registry,
                                          std::shared_ptr<const corral::policies::PolicySet>* out) {
  corral::config::LoadResult r = corral::config::loadConfigFile(path);
  // Validate against a scratch registry first, so that a rejected file leaves no counters of
  // policies that never ran in /metrics.
  corral::policies::Registry scratch;
  std::vector<corral::config::ConfigError> compile_errors;
  const bool compiled =
      corral::policies::PolicySet::compile(r.policy, scratch, &compile_errors) != nullptr;
  if (!r.errors.empty() || !compiled) {
    r.errors.insert(r.errors.end(), compile_errors.begin(), compile_errors.end());
    corral::config::sortErrors(r.errors, r.files);
    r.config.reset();
    return r;
  }
  auto set = corral::policies::PolicySet::compile(r.config->policy, registry, &r.errors);
  if (out != nullptr) *out = std::move(set);
  return r;
}

int checkConfig(const std::string& path) {
  corral::policies::Registry registry;
  corral::config::LoadResult r = loadAndCompile(path, registry, nullptr);
  if (!r.errors.empty()) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), r.errors.size());
    return 1;
  }
  std::printf("%s: ok\n", path.c_str());
  return 0;
}

struct App {
  Options opts;
  Config cfg;
  std::unique_ptr<corral::net::SharedState> shared;
  std::vector<std::unique_ptr<corral::net::Worker>> workers;
  event_base* base = nullptr;
  std::shared_ptr<spdlog::logger> log;
  uint64_t reload_failures = 0;
  bool stopping = false;
  event* stop_poll = nullptr;
  event* watch = nullptr;
  std::string watch_signature;  // of the files a reload reads (see fileSignature)
};

// mtime, size and inode of the config file, every policy file and their directories (a
// directory changes when a file appears in it, or when Kubernetes swaps a ConfigMap's link).
std::string fileSignature(const Config& cfg, const std::string& config_path) {
  std::vector<std::string> paths{config_path};
  for (const std::string& f : cfg.policy.files) {
    paths.push_back(f);
    const size_t slash = f.rfind('/');
    paths.push_back(slash == std::string::npos ? "." : f.substr(0, slash + 1));
  }
  std::string sig;
  for (const std::string& p : paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      sig += p + ":missing;";
      continue;
    }
    sig += p + ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
           ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_ino) + ";";
  }
  return sig;
}

void applyLogLevel(App& app, const Config& cfg) {
  const std::string& name = app.opts.log_level.empty() ? cfg.log.level : app.opts.log_level;
  if (auto lvl = corral::logging::parseLevel(name)) corral::logging::setLevel(*lvl);
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
  if (app->watch != nullptr) event_del(app->watch);
  app->log->info("shutting down signal={} timeout_ms={}", sig, app->cfg.shutdown_timeout.count());
  const int64_t deadline = corral::upstream::monotonicMs() + app->cfg.shutdown_timeout.count();
  for (auto& w : app->workers) w->postDrain(deadline);
  app->stop_poll = event_new(app->base, -1, EV_PERSIST, &onStopPoll, app);
  timeval tv{0, 20 * 1000};
  event_add(app->stop_poll, &tv);
}

void reload(App* app, const char* why) {
  std::shared_ptr<const corral::policies::PolicySet> policies;
  corral::config::LoadResult r =
      loadAndCompile(app->opts.config_path, app->shared->policy_registry, &policies);
  if (!r.errors.empty()) {
    ++app->reload_failures;
    for (const auto& e : r.errors) app->log->error("config reload rejected: {}", e.format());
    app->log->error("config reload failed file={} errors={}; keeping the running config",
                    app->opts.config_path, r.errors.size());
    return;
  }
  const Config& next = *r.config;
  // Listeners, workers and upstreams are fixed for the process's life: say so, keep them.
  if (next.workers != app->cfg.workers || next.listen.size() != app->cfg.listen.size() ||
      next.upstream.primary.text != app->cfg.upstream.primary.text ||
      next.upstream.replicas.size() != app->cfg.upstream.replicas.size()) {
    app->log->warn(
        "config reload: listen, workers and upstream changes need a restart; "
        "applying log level and limits only");
  }
  applyLogLevel(*app, next);
  app->cfg.limits = next.limits;
  app->cfg.log = next.log;
  app->cfg.shutdown_timeout = next.shutdown_timeout;
  app->shared->max_clients.store(next.limits.max_clients, std::memory_order_relaxed);
  for (auto& w : app->workers) w->postLimits(next.limits);
  app->cfg.policy = next.policy;
  app->shared->setPolicies(std::move(policies));
  app->watch_signature = fileSignature(app->cfg, app->opts.config_path);
  app->log->info("config reloaded file={} reason={} policies={} policy_files={}",
                 app->opts.config_path, why, next.policy.policies.size(), next.policy.files.size());
}

void onReload(evutil_socket_t, short, void* arg) { reload(static_cast<App*>(arg), "SIGHUP"); }

void onWatch(evutil_socket_t, short, void* arg) {
  auto* app = static_cast<App*>(arg);
  if (app->stopping) return;
  // Idle rate-limit buckets decide like fresh ones: drop them, so memory follows the clients
  // that are active now rather than every client ever seen.
  // (Workers' rate-limit clock is the same: upstream::monotonicNs.)
  app->shared->policy_registry.limiter().sweep(corral::upstream::monotonicNs());
  std::string sig = fileSignature(app->cfg, app->opts.config_path);
  if (sig == app->watch_signature) return;
  // Remember it first: a broken edit is reported once, not every second until fixed.
  app->watch_signature = std::move(sig);
  reload(app, "file changed");
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
  if (!parseArgs(argc, argv, app.opts, err)) {
    std::fprintf(stderr, "corral: %s\n%s", err.c_str(), kUsage);
    return 2;
  }
  if (app.opts.help) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (app.opts.version) {
    std::printf("corral %s\n", CORRAL_VERSION);
    return 0;
  }
  if (!app.opts.check_path.empty()) return checkConfig(app.opts.check_path);
  if (!app.opts.log_level.empty() && !corral::logging::parseLevel(app.opts.log_level)) {
    std::fprintf(stderr, "corral: unknown log level '%s'\n", app.opts.log_level.c_str());
    return 2;
  }

  app.log = corral::logging::get("main");
  app.shared = std::make_unique<corral::net::SharedState>();
  std::shared_ptr<const corral::policies::PolicySet> policies;
  corral::config::LoadResult loaded =
      loadAndCompile(app.opts.config_path, app.shared->policy_registry, &policies);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "corral: invalid config %s\n", app.opts.config_path.c_str());
    return 1;
  }
  app.cfg = std::move(*loaded.config);
  applyLogLevel(app, app.cfg);

  ::signal(SIGPIPE, SIG_IGN);
  evthread_use_pthreads();  // workers are woken from this thread with event_active()

  auto sockets = corral::net::bindListeners(app.cfg.listen, app.cfg.workers, err);
  if (sockets.empty()) {
    app.log->error("listen failed err={}", err);
    return 1;
  }
  std::vector<std::string> ready_lines;
  for (const auto& s : sockets[0]) ready_lines.push_back("listen " + s.text);

  app.shared->setPolicies(std::move(policies));
  app.shared->stats.resize(static_cast<size_t>(app.cfg.workers));
  app.shared->max_clients.store(app.cfg.limits.max_clients);
  app.shared->started_ms = corral::upstream::monotonicMs();
  app.shared->auth = std::make_unique<corral::net::Authenticator>(app.cfg.auth);

  app.base = event_base_new();
  std::unique_ptr<corral::admin::AdminServer> admin;
  if (app.cfg.admin.listen) {
    corral::admin::ProcessInfo info{CORRAL_VERSION, corral::upstream::monotonicMs(),
                                    [&app] { return app.reload_failures; }};
    admin = std::make_unique<corral::admin::AdminServer>(app.base, *app.shared, info);
    std::string bound = admin->listen(*app.cfg.admin.listen, err);
    if (bound.empty()) {
      app.log->error("admin listen failed addr={} err={}", app.cfg.admin.listen->text, err);
      return 1;
    }
    ready_lines.push_back("admin " + bound);
  }

  for (int i = 0; i < app.cfg.workers; ++i) {
    app.workers.push_back(std::make_unique<corral::net::Worker>(
        i, app.cfg, *app.shared, std::move(sockets[static_cast<size_t>(i)])));
  }
  for (auto& w : app.workers) w->start();

  event* sigterm = evsignal_new(app.base, SIGTERM, &onTerminate, &app);
  event* sigint = evsignal_new(app.base, SIGINT, &onTerminate, &app);
  event* sighup = evsignal_new(app.base, SIGHUP, &onReload, &app);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);
  event_add(sighup, nullptr);
  app.watch_signature = fileSignature(app.cfg, app.opts.config_path);
  app.watch = event_new(app.base, -1, EV_PERSIST, &onWatch, &app);
  timeval watch_every{1, 0};
  event_add(app.watch, &watch_every);

  for (const auto& l : ready_lines) app.log->info("listening {}", l);
  app.log->info(
      "corral started version={} workers={} primary={} replicas={} policies={} policy_files={}",
      CORRAL_VERSION, app.cfg.workers, app.cfg.upstream.primary.text,
      app.cfg.upstream.replicas.size(), app.cfg.policy.policies.size(),
      app.cfg.policy.files.size());
  if (!app.opts.ready_file.empty() && !writeReadyFile(app.opts.ready_file, ready_lines)) {
    app.log->error("cannot write ready file path={}", app.opts.ready_file);
  }

  event_base_dispatch(app.base);

  for (auto& w : app.workers) w->join();
  app.workers.clear();
  admin.reset();
  event_free(sigterm);
  event_free(sigint);
  event_free(sighup);
  event_free(app.watch);
  if (app.stop_poll != nullptr) event_free(app.stop_poll);
  event_base_free(app.base);
  app.log->info("corral stopped");
  return 0;
}
