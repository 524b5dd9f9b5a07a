// Loading and live reload of the config file (the flow is drawn in reload.h).
#include "proxy/admin/reload.h"

#include <sys/stat.h>

#include <chrono>
#include <utility>

#include "config/logging.h"

namespace corral::admin {
namespace {

// Wall-clock time: the reload timestamp is compared with other hosts' clocks (time() in PromQL).
int64_t unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool sameListen(const std::vector<config::ListenAddress>& a,
                const std::vector<config::ListenAddress>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].text != b[i].text) return false;
  }
  return true;
}

bool sameAddress(const config::UpstreamAddress& a, const config::UpstreamAddress& b) {
  return a.text == b.text && a.user == b.user && a.password == b.password && a.db == b.db;
}

bool sameSentinel(const std::optional<config::SentinelConfig>& a,
                  const std::optional<config::SentinelConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  if (a->master != b->master || a->user != b->user || a->password != b->password ||
      a->poll_interval != b->poll_interval || a->addresses.size() != b->addresses.size()) {
    return false;
  }
  for (size_t i = 0; i < a->addresses.size(); ++i) {
    if (a->addresses[i].text != b->addresses[i].text) return false;
  }
  return true;
}

bool sameCluster(const std::optional<config::ClusterConfig>& a,
                 const std::optional<config::ClusterConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  if (a->seeds.size() != b->seeds.size()) return false;
  for (size_t i = 0; i < a->seeds.size(); ++i) {
    if (!sameAddress(a->seeds[i], b->seeds[i])) return false;
  }
  return a->tls == b->tls && a->read_from == b->read_from &&
         a->refresh_interval == b->refresh_interval &&
         a->max_refreshes_per_second == b->max_refreshes_per_second && a->expose == b->expose;
}

bool sameUpstream(const config::UpstreamConfig& a, const config::UpstreamConfig& b) {
  if (!sameAddress(a.primary, b.primary) || a.replicas.size() != b.replicas.size()) return false;
  if (!sameSentinel(a.sentinel, b.sentinel) || !sameCluster(a.cluster, b.cluster)) return false;
  for (size_t i = 0; i < a.replicas.size(); ++i) {
    if (!sameAddress(a.replicas[i], b.replicas[i])) return false;
  }
  // user, password and db are already folded into each address.
  return a.read_from == b.read_from && a.connect_timeout == b.connect_timeout &&
         a.command_timeout == b.command_timeout && a.pool_size == b.pool_size &&
         a.max_dedicated == b.max_dedicated && a.reconnect_min == b.reconnect_min &&
         a.reconnect_max == b.reconnect_max;
}

bool sameAuth(const config::AuthConfig& a, const config::AuthConfig& b) {
  const config::PassthroughConfig& p = a.passthrough;
  const config::PassthroughConfig& q = b.passthrough;
  if (a.mode != b.mode || p.unauthenticated != q.unauthenticated || p.cache_ttl != q.cache_ttl ||
      p.cache_entries != q.cache_entries || p.max_users != q.max_users ||
      p.pool_size != q.pool_size || p.idle_timeout != q.idle_timeout ||
      p.max_checks != q.max_checks) {
    return false;
  }
  if (a.users.size() != b.users.size()) return false;
  for (size_t i = 0; i < a.users.size(); ++i) {
    const config::AuthUser& x = a.users[i];
    const config::AuthUser& y = b.users[i];
    if (x.name != y.name || x.password != y.password || x.has_sha != y.has_sha ||
        x.sha256 != y.sha256) {
      return false;
    }
  }
  return true;
}

}  // namespace

Loaded loadAndCompile(const std::string& path, policies::Registry& registry) {
  config::LoadResult r = config::loadConfigFile(path);
  Loaded out;
  out.errors = std::move(r.errors);
  out.refused_by_check = std::move(r.refused_by_check);
  policies::Registry scratch;
  std::vector<config::ConfigError> compile_errors;
  const bool compiled = policies::PolicySet::compile(r.policy, scratch, &compile_errors) != nullptr;
  if (!out.errors.empty() || !compiled) {
    out.errors.insert(out.errors.end(), compile_errors.begin(), compile_errors.end());
    config::sortErrors(out.errors, r.files);
    return out;
  }
  out.policies = policies::PolicySet::compile(r.config->policy, registry, &out.errors);
  out.config = std::move(r.config);
  return out;
}

std::string fileSignature(const std::string& config_path, const config::PolicyConfig& policy) {
  std::vector<std::string> paths{config_path};
  for (const std::string& f : policy.files) {
    paths.push_back(f);
    const size_t slash = f.rfind('/');
    paths.push_back(slash == std::string::npos ? "." : f.substr(0, slash + 1));
  }
  paths.insert(paths.end(), policy.dirs.begin(), policy.dirs.end());
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

std::vector<std::string> changesNeedingRestart(const config::Config& a, const config::Config& b) {
  std::vector<std::string> changed;
  if (!sameListen(a.listen, b.listen)) changed.emplace_back("listen");
  if (a.workers != b.workers) changed.emplace_back("workers");
  if (!sameUpstream(a.upstream, b.upstream)) changed.emplace_back("upstream");
  if (a.admin.listen.has_value() != b.admin.listen.has_value() ||
      (a.admin.listen && a.admin.listen->text != b.admin.listen->text) ||
      a.admin.token != b.admin.token || a.admin.ready_when != b.admin.ready_when) {
    changed.emplace_back("admin");
  }
  if (!sameAuth(a.auth, b.auth)) changed.emplace_back("auth");
  return changed;
}

Reloader::Reloader(std::string config_path, config::Config running, policies::Registry& registry,
                   Apply apply)
    : path_(std::move(config_path)),
      running_(std::move(running)),
      registry_(registry),
      apply_(std::move(apply)),
      log_(logging::get("admin")) {
  signature_ = fileSignature(path_, running_.policy);
  last_ok_unix_ms_ = unixMs();
}

bool Reloader::reload(std::string_view why) {
  Loaded loaded = loadAndCompile(path_, registry_);
  if (!loaded.errors.empty()) {
    ++failures_;
    last_ok_ = false;
    for (const auto& e : loaded.errors) log_->error("config reload rejected: {}", e.format());
    log_->error("config reload failed file={} reason={} errors={}; keeping the running config",
                path_, why, loaded.errors.size());
    return false;
  }
  config::Config& next = *loaded.config;
  if (std::vector<std::string> changed = changesNeedingRestart(running_, next); !changed.empty()) {
    std::string keys;
    for (const std::string& k : changed) keys += (keys.empty() ? "" : ",") + k;
    log_->warn(
        "config reload: changes need a restart keys={}; applying log, limits, shutdown_timeout "
        "and policies only",
        keys);
  }
  running_.log = next.log;
  running_.limits = next.limits;
  running_.shutdown_timeout = next.shutdown_timeout;
  running_.policy = std::move(next.policy);
  apply_.log(running_.log);
  apply_.limits(running_.limits);
  apply_.policies(std::move(loaded.policies));
  signature_ = fileSignature(path_, running_.policy);
  last_ok_ = true;
  last_ok_unix_ms_ = unixMs();
  log_->info("config reloaded file={} reason={} policies={} policy_files={}", path_, why,
             running_.policy.policies.size(), running_.policy.files.size());
  return true;
}

bool Reloader::poll() {
  std::string sig = fileSignature(path_, running_.policy);
  if (sig == signature_) return false;
  // Remember it first: a broken edit is reported once, not every second until it is fixed.
  signature_ = std::move(sig);
  reload("file changed");
  return true;
}

}  // namespace corral::admin
