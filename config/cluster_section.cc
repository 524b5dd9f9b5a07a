// upstream.cluster: a Redis Cluster behind corral. The walk checks each key; crossCheckCluster()
// checks the rules against the rest of `upstream` and finishes the section:
//
//   seeds, user, password(_env), tls, ... --walk--> ClusterConfig (as written)
//   upstream.user/password, upstream.tls  --crossCheckCluster--> credentials and tls settled,
//                                            seeds completed, primary = template "cluster"
//
// Rules: not with upstream.primary, upstream.replicas or upstream.sentinel (the cluster names its
// nodes); upstream.db and a seed's /db must be 0 (a cluster has only database 0); seeds carry
// no credentials (every node gets the same ones), are distinct and none is corral itself.
#include <string>
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

namespace {

constexpr Millis kMinRefresh{100};
constexpr Millis kMaxRefresh{600000};
constexpr int64_t kMaxRefreshesPerSecond = 100;

}  // namespace

void Loader::walkCluster(const YAML::Node& key, const YAML::Node& value, const std::string& path) {
  cluster_mark_ = key.Mark();
  if (!value.IsMap() && !value.IsNull()) {
    return failValue(key, value, path, "must be a mapping like {seeds: [10.0.0.1:6379]}");
  }
  ClusterConfig c;
  bool seeds_seen = false;
  auto seed = [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
    auto s = upstreamAddress(k, v, p);
    if (!s) return;
    const std::string got = quoteForError(s->value.addr.text);  // password already masked
    if (s->value.addr.addr.kind == ListenAddress::Kind::kUnix) {
      return fail(v.Mark(), p, "must be host:port or a redis[s]:// URL: cluster nodes talk TCP",
                  got);
    }
    if (s->value.has_user || s->value.has_password) {
      return fail(v.Mark(), p,
                  "must not carry credentials: every node gets the same, from "
                  "upstream.cluster.user and password (or upstream.user and password)",
                  got);
    }
    if (s->value.addr.db != 0) {
      return fail(v.Mark(), p, "must use database 0: a cluster has only database 0", got);
    }
    for (const auto& seen : cluster_seeds_) {
      if (sameEndpoint(seen.value.addr.addr, s->value.addr.addr)) {
        return fail(v.Mark(), p, "duplicate of " + seen.path, got);
      }
    }
    cluster_seeds_.push_back(std::move(*s));
  };
  std::vector<Key> keys = {
      {"seeds",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         seeds_seen = true;
         if (v.IsScalar()) return seed(k, v, p);
         if (!v.IsSequence())
           return failValue(k, v, p, "must be an address or a list of addresses");
         if (v.size() == 0) return fail(v.Mark(), p, "must list at least one node", "[]");
         size_t i = 0;
         for (auto it = v.begin(); it != v.end(); ++it, ++i) seed(k, *it, indexPath(p, i));
       }},
      {"user",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         cluster_user_seen_ = true;
         string(k, v, p, &c.user);
       }},
      {"password",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         cluster_password_seen_ = true;
         // Only the type is described on error: the value is a secret.
         if (!v.IsScalar()) return failValue(k, v, p, "must be a string");
         c.password = v.Scalar();
         if (!c.password.empty()) cluster_password_mark_ = v.Mark();
       }},
      {"password_env",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule =
             "must be the name of an environment variable, like REDIS_PASSWORD";
         cluster_password_seen_ = true;
         const std::string* name = scalar(k, v, p, kRule);
         if (name == nullptr) return;
         if (!isValidEnvName(*name)) return failValue(k, v, p, kRule);
         c.password_env = *name;
         cluster_password_env_ = Located<std::string>{*name, v.Mark(), p};
       }},
      {"tls",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         if (boolean(k, v, p, &c.tls)) cluster_tls_ = Located<bool>{c.tls, v.Mark(), p};
       }},
      {"read_from",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         ReadFrom r = ReadFrom::kPrimary;
         if (!readFrom(k, v, p, &r)) return;
         c.read_from = r;
         cluster_read_from_mark_ = v.Mark();
       }},
      {"refresh_interval",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         Millis d{0};
         if (!duration(k, v, p, /*allow_zero=*/false, &d)) return;
         if (d < kMinRefresh || d > kMaxRefresh) {
           return failValue(k, v, p, "must be from 100ms to 10m");
         }
         c.refresh_interval = d;
       }},
      {"max_refreshes_per_second",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, kMaxRefreshesPerSecond,
                 [&](int64_t n) { c.max_refreshes_per_second = static_cast<int>(n); });
       }},
      {"expose", [&](const YAML::Node& k, const YAML::Node& v,
                     const std::string& p) { boolean(k, v, p, &c.expose); }},
  };
  walkMap(value, path, keys);
  if (!seeds_seen) {
    fail(where(key, value), path + ".seeds",
         "is required: the nodes to learn the cluster from, like [10.0.0.1:6379]");
  }
  cfg_.upstream.cluster = std::move(c);
}

bool Loader::crossCheckCluster() {
  if (!cluster_mark_ || !cfg_.upstream.cluster) return false;
  UpstreamConfig& u = cfg_.upstream;
  ClusterConfig& c = *u.cluster;
  if (sentinel_mark_) {
    fail(*cluster_mark_, "upstream.cluster",
         "cannot be used together with upstream.sentinel (write one: the cluster or the "
         "sentinels name the nodes)");
  }
  if (primary_seen_) {
    fail(*cluster_mark_, "upstream.cluster",
         "cannot be used together with upstream.primary (the cluster names its nodes)");
  }
  if (!replicas_.empty() && !sentinel_mark_) {  // with Sentinel too, that check said it already
    fail(replicas_[0].mark, replicas_[0].path,
         "cannot be used with upstream.cluster (the cluster reports the replicas)",
         quoteForError(replicas_[0].value.addr.text));
  }
  if (db_ && db_->value != 0) {
    fail(db_->mark, db_->path, "must be 0 with upstream.cluster: a cluster has only database 0",
         std::to_string(db_->value));
  }
  if (cluster_read_from_mark_ && read_from_mark_) {
    fail(*cluster_read_from_mark_, "upstream.cluster.read_from",
         "cannot be used together with upstream.read_from (write one)");
  }
  for (const auto& s : cluster_seeds_) {
    for (const auto& l : listen_) {
      if (sameEndpoint(s.value.addr.addr, l.value)) {
        fail(s.mark, s.path, "is corral's own address " + l.path + "; corral would proxy to itself",
             quoteForError(s.value.addr.text));
        break;
      }
    }
  }

  // TLS: a cluster is reached one way, so one rediss:// seed (or upstream.tls.enabled) means
  // every node; an explicit `tls: false` beside either is a contradiction, not a choice.
  const Located<ParsedUpstream>* rediss = nullptr;
  for (const auto& s : cluster_seeds_) {
    if (s.value.addr.addr.tls && rediss == nullptr) rediss = &s;
  }
  if (cluster_tls_ && !cluster_tls_->value) {
    if (rediss != nullptr) {
      fail(cluster_tls_->mark, cluster_tls_->path,
           "cannot be false with the rediss:// seed " + rediss->path, "false");
    } else if (u.tls.enabled) {
      fail(cluster_tls_->mark, cluster_tls_->path,
           "cannot be false with upstream.tls.enabled: true", "false");
    }
  }
  c.tls = c.tls || rediss != nullptr || u.tls.enabled;

  // Credentials: what upstream.cluster writes wins, upstream.* fills in (already read from
  // password_env by crossCheck()).
  resolvePasswordEnv(cluster_password_mark_, cluster_password_env_, "upstream.cluster.password",
                     &c.password);
  if (!cluster_user_seen_) c.user = u.user;
  if (!cluster_password_seen_) c.password = u.password;

  c.seeds.clear();
  for (const auto& s : cluster_seeds_) {
    UpstreamAddress a = s.value.addr;
    a.user = c.user;
    a.password = c.password;
    a.db = 0;
    a.addr.tls = c.tls;
    c.seeds.push_back(std::move(a));
  }
  // The template of every data connection: the nodes come from the slot map.
  UpstreamAddress t;
  t.user = c.user;
  t.password = c.password;
  t.db = 0;
  t.text = "cluster";
  t.addr.text = t.text;
  t.addr.tls = c.tls;
  u.primary = std::move(t);
  u.db = 0;
  return true;
}

}  // namespace corral::config::detail
