// Loading the config file for startup, reloads and --check-config, and the live reload itself.
//
//   SIGHUP ---------------------------------> Reloader::reload(why)
//   every second -> Reloader::poll(): the watched files' signature changed? -> reload("file
//   changed") reload: loadAndCompile(path) --errors--> log each, count a failure, keep the running
//   config
//                                --ok-----> warn about keys that need a restart; apply log,
//                                           limits and policies through the callbacks; watch the
//                                           new config's files
//
// No libevent and no threads here: main owns the signal and the timer and calls in, all on the
// main thread, which is what lets reload_test drive it with temporary files and fake callbacks.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "policies/engine.h"

namespace corral::admin {

// A config file, loaded and its policies compiled: both set, or every error.
struct Loaded {
  std::optional<config::Config> config;
  std::shared_ptr<const policies::PolicySet> policies;
  // The loader's and the policy compiler's errors, merged in file order. When the loader finds
  // errors, what it could load is compiled too, so that one run reports both kinds.
  std::vector<config::ConfigError> errors;
  // Settings corral runs with but --check-config refuses (LoadResult::refused_by_check).
  std::vector<config::ConfigError> refused_by_check;
};

// Loads path and compiles its policies: the checks a reload makes, so --check-config says yes
// exactly when a reload would. The policies are compiled against a scratch registry first and
// against `registry` only when everything is valid, so a rejected file leaves no counters of
// policies that never ran in /metrics.
Loaded loadAndCompile(const std::string& path, policies::Registry& registry);

// The state on disk of what a reload reads: mtime (ns), size and inode of the config file, of
// each policy file and its directory, and of each directory policy_files names (a directory
// changes when a file appears in it, or when Kubernetes swaps a ConfigMap's link). A missing
// path is part of the signature too. Equal signatures: nothing to reload.
std::string fileSignature(const std::string& config_path, const config::PolicyConfig& policy);

// The sections a reload cannot apply to a running process, by key ("listen", "upstream", ...),
// that differ between a and b: listeners, workers, upstream connections, the admin endpoint and
// the client logins are set up once at startup.
std::vector<std::string> changesNeedingRestart(const config::Config& a, const config::Config& b);

// What /metrics says of reloads (corral_config_reload_failures_total,
// corral_config_last_reload_success, corral_config_last_reload_success_timestamp_seconds).
struct ReloadStatus {
  uint64_t failures = 0;        // reloads refused since startup
  bool last_ok = true;          // the last load was applied (startup's load counts)
  int64_t last_ok_unix_ms = 0;  // when the config in force was loaded, ms since the epoch
};

// Reloads the config file on demand (SIGHUP) and when its files change (poll). Not thread-safe:
// every call comes from the main thread.
class Reloader {
 public:
  // What a successful reload applies, in this order. Each callback must be set.
  struct Apply {
    std::function<void(const config::LogConfig&)> log;
    std::function<void(const config::Limits&)> limits;
    std::function<void(std::shared_ptr<const policies::PolicySet>)> policies;
  };

  // running: the config the process started with (loaded from config_path). registry: where
  // the policies of each reload are compiled; it must outlive the Reloader.
  Reloader(std::string config_path, config::Config running, policies::Registry& registry,
           Apply apply);

  // Loads the file now. Valid: applies it and returns true. Invalid: logs every error, counts a
  // failure, keeps the running config and returns false. why is logged ("SIGHUP").
  bool reload(std::string_view why);

  // Reloads when the watched files changed since the last load or poll; returns whether it
  // tried. A broken edit is tried (and reported) once, not on every poll until it is fixed.
  bool poll();

  // The config in force: startup's listen, workers, upstream, admin and auth, with the log,
  // limits, shutdown_timeout and policy sections of the last valid load.
  const config::Config& running() const { return running_; }
  // Reloads refused since startup (corral_config_reload_failures_total).
  uint64_t failures() const { return failures_; }
  // Failures, and whether and when the last load succeeded (startup is the first success).
  ReloadStatus status() const { return {failures_, last_ok_, last_ok_unix_ms_}; }

 private:
  std::string path_;
  config::Config running_;
  policies::Registry& registry_;
  Apply apply_;
  std::string signature_;
  uint64_t failures_ = 0;
  bool last_ok_ = true;
  int64_t last_ok_unix_ms_ = 0;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace corral::admin
