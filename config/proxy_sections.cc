// The proxy's own sections: listen, upstream, limits and auth. (admin is in admin_section.cc;
// log has one key and sits in the root table, loader.cc; rules between keys: cross_check.cc.)
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

namespace {

constexpr int64_t kMaxPoolSize = 64;
// Deeper nesting would let a reply drive the codec's recursion; Redis itself never nests deeply.
constexpr int64_t kMaxReplyDepth = 1024;

}  // namespace

void Loader::walkListen(const YAML::Node& key, const YAML::Node& value, const std::string& path) {
  listen_seen_ = true;
  if (value.IsScalar()) {
    if (auto a = listenAddress(key, value, path)) listen_.push_back(std::move(*a));
    return;
  }
  if (!value.IsSequence()) {
    return failValue(key, value, path, "must be an address or a list of addresses");
  }
  if (value.size() == 0) {
    return fail(value.Mark(), path, "must list at least one address", "[]");
  }
  size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    if (auto a = listenAddress(key, *it, indexPath(path, i))) listen_.push_back(std::move(*a));
  }
}

bool Loader::walkUpstream(const YAML::Node& node, const std::string& prefix) {
  UpstreamConfig& u = cfg_.upstream;
  std::vector<Key> keys = {
      {"primary",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         primary_seen_ = true;
         primary_ = upstreamAddress(k, v, p);
       }},
      {"replicas",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         if (v.IsScalar()) {
           if (auto r = upstreamAddress(k, v, p)) replicas_.push_back(std::move(*r));
           return;
         }
         if (!v.IsSequence())
           return failValue(k, v, p, "must be an address or a list of addresses");
         size_t i = 0;
         for (auto it = v.begin(); it != v.end(); ++it, ++i) {
           if (auto r = upstreamAddress(k, *it, indexPath(p, i)))
             replicas_.push_back(std::move(*r));
         }
       }},
      {"sentinel", [&](const YAML::Node& k, const YAML::Node& v,
                       const std::string& p) { walkSentinel(k, v, p); }},
      {"cluster", [&](const YAML::Node& k, const YAML::Node& v,
                      const std::string& p) { walkCluster(k, v, p); }},
      {"read_from",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         if (readFrom(k, v, p, &u.read_from)) read_from_mark_ = v.Mark();
       }},
      {"connect_timeout",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/false, &u.connect_timeout);
       }},
      {"command_timeout",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/false, &u.command_timeout);
       }},
      {"pool_size",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, kMaxPoolSize, [&](int64_t n) { u.pool_size = static_cast<int>(n); });
       }},
      {"max_dedicated",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, 100000, [&](int64_t n) { u.max_dedicated = static_cast<int>(n); });
       }},
      {"user", [&](const YAML::Node& k, const YAML::Node& v,
                   const std::string& p) { string(k, v, p, &u.user); }},
      {"password",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         // Only the type is described on error: the value is a secret.
         if (!v.IsScalar()) return failValue(k, v, p, "must be a string");
         u.password = v.Scalar();
         if (!u.password.empty()) password_mark_ = v.Mark();
       }},
      {"password_env",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule =
             "must be the name of an environment variable, like REDIS_PASSWORD";
         const std::string* s = scalar(k, v, p, kRule);
         if (s == nullptr) return;
         if (!isValidEnvName(*s)) return failValue(k, v, p, kRule);
         u.password_env = *s;
         password_env_ = Located<std::string>{*s, v.Mark(), p};
       }},
      {"db",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 0, kMaxDb, [&](int64_t n) {
           u.db = static_cast<int>(n);
           db_ = Located<int64_t>{n, v.Mark(), p};
         });
       }},
      {"reconnect_backoff",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) {
         std::vector<Key> backoff = {
             {"min",
              [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
                if (duration(k2, v2, p2, /*allow_zero=*/false, &u.reconnect_min)) {
                  reconnect_min_ = Located<std::string>{v2.Scalar(), v2.Mark(), p2};
                }
              }},
             {"max",
              [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
                if (duration(k2, v2, p2, /*allow_zero=*/false, &u.reconnect_max)) {
                  reconnect_max_ = Located<std::string>{v2.Scalar(), v2.Mark(), p2};
                }
              }},
         };
         walkMap(v, p, backoff);
       }},
      {"tls",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) { walkTlsClient(v, p); }},
  };
  return walkMap(node, prefix, keys);
}

bool Loader::readFrom(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                      ReadFrom* out) {
  return choice(key, value, path,
                {{"primary", ReadFrom::kPrimary},
                 {"replica", ReadFrom::kReplica},
                 {"prefer_replica", ReadFrom::kPreferReplica}},
                out);
}

void Loader::walkLimits(const YAML::Node& node, const std::string& prefix) {
  Limits& l = cfg_.limits;
  constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();
  constexpr uint64_t kU64 = std::numeric_limits<uint64_t>::max();
  auto count32 = [&](uint32_t* field, int64_t min) {
    return [this, field, min](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
      integer(k, v, p, min, static_cast<int64_t>(kU32),
              [field](int64_t n) { *field = static_cast<uint32_t>(n); });
    };
  };
  auto bytes32 = [&](uint32_t* field) {
    return [this, field](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
      size(k, v, p, kMinByteLimit, kU32,
           [field](uint64_t n) { *field = static_cast<uint32_t>(n); });
    };
  };
  auto bytes64 = [&](uint64_t* field) {
    return [this, field](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
      size(k, v, p, kMinByteLimit, kU64, [field](uint64_t n) { *field = n; });
    };
  };
  std::vector<Key> keys = {
      {"max_clients", count32(&l.max_clients, 1)},
      {"max_request_bytes", bytes64(&l.max_request_bytes)},
      {"max_args", count32(&l.max_args, 1)},
      {"max_bulk_bytes", bytes64(&l.max_bulk_bytes)},
      {"max_inline_bytes", bytes32(&l.max_inline_bytes)},
      {"max_pending", count32(&l.max_pending, 1)},
      {"max_output_bytes", bytes64(&l.max_output_bytes)},
      {"max_pending_bytes", bytes64(&l.max_pending_bytes)},
      {"max_reply_bytes", bytes64(&l.max_reply_bytes)},
      {"pubsub_hard_bytes", bytes64(&l.pubsub_hard_bytes)},
      {"pubsub_soft_bytes", bytes64(&l.pubsub_soft_bytes)},
      {"pubsub_soft_time",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/true, &l.pubsub_soft_time);
       }},
      // Deprecated, ignored (config.h); still checked so that a mistyped value is reported.
      {"max_reply_depth",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, kMaxReplyDepth,
                 [&](int64_t n) { l.max_reply_depth = static_cast<uint32_t>(n); });
       }},
  };
  walkMap(node, prefix, keys);
}

void Loader::walkAuth(const YAML::Node& node, const std::string& prefix) {
  AuthConfig& a = cfg_.auth;
  std::optional<AuthMode> mode;
  YAML::Mark mode_mark;
  std::string mode_path;
  std::vector<Key> keys = {
      {"mode",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         if (choiceOpt(k, v, p,
                       {{"passthrough", AuthMode::kPassthrough},
                        {"users", AuthMode::kUsers},
                        {"off", AuthMode::kOff}},
                       &mode)) {
           mode_mark = v.Mark();
           mode_path = p;
         }
       }},
      {"passthrough", [&](const YAML::Node&, const YAML::Node& v,
                          const std::string& p) { walkPassthrough(v, p); }},
      {"users",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         // An empty list is how auth is switched off explicitly; `users:` alone is more likely
         // a half-written section, so it is an error rather than a silent "off".
         if (!v.IsSequence()) return failValue(k, v, p, "must be a list of users");
         std::map<std::string, std::string> names;  // name -> path of its first user
         size_t i = 0;
         for (auto it = v.begin(); it != v.end(); ++it, ++i) {
           walkAuthUser(k, *it, indexPath(p, i), &names);
         }
       }},
  };
  walkMap(node, prefix, keys);
  // Listing users means corral checks them, unless a mode says otherwise (then it is an error:
  // users that would never be asked are a mistake, not a setting).
  a.mode = mode.value_or(a.users.empty() ? AuthMode::kPassthrough : AuthMode::kUsers);
  if (mode && *mode == AuthMode::kUsers && a.users.empty() && !users_failed_) {
    fail(mode_mark, mode_path, "users needs at least one entry in auth.users", "users");
  } else if (mode && *mode != AuthMode::kUsers && !a.users.empty()) {
    fail(mode_mark, mode_path, "must be users when auth.users lists users",
         *mode == AuthMode::kOff ? "off" : "passthrough");
  }
}

void Loader::walkPassthrough(const YAML::Node& node, const std::string& prefix) {
  PassthroughConfig& pt = cfg_.auth.passthrough;
  std::vector<Key> keys = {
      {"unauthenticated",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         choice(k, v, p,
                {{"upstream", Unauthenticated::kUpstream}, {"refuse", Unauthenticated::kRefuse}},
                &pt.unauthenticated);
       }},
      {"cache_ttl",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/true, &pt.cache_ttl);
       }},
      {"cache_entries",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, 10000000,
                 [&](int64_t n) { pt.cache_entries = static_cast<uint32_t>(n); });
       }},
      {"max_users",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, 100000, [&](int64_t n) { pt.max_users = static_cast<uint32_t>(n); });
       }},
      {"pool_size",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, kMaxPoolSize, [&](int64_t n) { pt.pool_size = static_cast<int>(n); });
       }},
      {"idle_timeout",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/true, &pt.idle_timeout);
       }},
      {"max_checks",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, 10000, [&](int64_t n) { pt.max_checks = static_cast<uint32_t>(n); });
       }},
  };
  walkMap(node, prefix, keys);
}

void Loader::walkAuthUser(const YAML::Node& key, const YAML::Node& node, const std::string& path,
                          std::map<std::string, std::string>* names) {
  static constexpr const char* kUserRule =
      "must be a mapping like {name: app, password_env: APP_REDIS_PASSWORD}";
  // Not a mapping: the text may hold a password, so only its shape is shown.
  if (!node.IsMap()) return fail(where(key, node), path, kUserRule, describeSecret(node));
  AuthUser user;
  bool name_ok = false;
  bool name_seen = false;
  bool secret_ok = true;  // false once a password key was written but is unusable
  // The password keys written, in file order, so "more than one" is reported at the second.
  std::vector<std::pair<std::string_view, YAML::Mark>> sources;
  std::optional<Located<std::string>> env;
  std::vector<Key> keys = {
      {"name",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule = "must be a non-empty name without spaces";
         name_seen = true;
         const std::string* s = scalar(k, v, p, kRule);
         if (s == nullptr) return;
         if (!isValidUserName(*s)) return failValue(k, v, p, kRule);
         auto [first, inserted] = names->emplace(*s, p);
         if (!inserted) return failValue(k, v, p, "duplicate of " + first->second);
         user.name = *s;
         name_ok = true;
       }},
      {"password",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         sources.emplace_back("password", k.Mark());
         if (!v.IsScalar() || v.Scalar().empty()) {
           secret_ok = false;
           return fail(where(k, v), p, "must be a non-empty string", describeSecret(v));
         }
         user.password = v.Scalar();
       }},
      {"password_sha256",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         sources.emplace_back("password_sha256", k.Mark());
         if (!v.IsScalar() || !decodeSha256Hex(v.Scalar(), &user.sha256)) {
           secret_ok = false;
           std::string got = describeSecret(v);
           if (v.IsScalar() && v.Scalar().size() == 64) got += " with a non-hex character";
           return fail(where(k, v), p, "must be 64 hex digits, the SHA-256 of the password", got);
         }
         user.has_sha = true;
       }},
      {"password_env",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule =
             "must be the name of an environment variable, like APP_REDIS_PASSWORD";
         sources.emplace_back("password_env", k.Mark());
         const std::string* s = scalar(k, v, p, kRule);
         if (s == nullptr || !isValidEnvName(*s)) {
           secret_ok = false;
           if (s != nullptr) failValue(k, v, p, kRule);
           return;
         }
         env = Located<std::string>{*s, v.Mark(), p};
       }},
  };
  walkMap(node, path, keys);

  bool ok = name_ok && secret_ok;
  if (!name_seen) {
    ok = false;
    fail(node.Mark(), path + ".name", "is required");
  }
  if (sources.empty()) {
    ok = false;
    fail(node.Mark(), path, "needs one of password, password_sha256 or password_env");
  }
  for (size_t i = 1; i < sources.size(); ++i) {
    ok = false;
    fail(sources[i].second, joinPath(path, sources[i].first),
         "cannot be used together with " + std::string(sources[0].first));
  }
  // Read the variable only for an otherwise valid user, so one mistake gives one error.
  if (ok && env) {
    const char* value = std::getenv(env->value.c_str());
    if (value == nullptr) {
      ok = false;
      fail(env->mark, env->path, "environment variable " + env->value + " is not set");
    } else if (*value == '\0') {
      ok = false;
      fail(env->mark, env->path, "environment variable " + env->value + " is empty");
    } else {
      user.password = value;
      user.password_env = env->value;
    }
  }
  if (ok) {
    cfg_.auth.users.push_back(std::move(user));
  } else {
    users_failed_ = true;  // auth.mode: users is not also reported as having no users
  }
}

}  // namespace corral::config::detail
