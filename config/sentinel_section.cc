// upstream.sentinel: where the sentinels are and what they call the primary. The walk checks
// each key; crossCheckSentinel() the rules against the rest of `upstream` (exactly one of
// `primary` and `sentinel`, no `replicas` beside it, no sentinel at corral's own address) and
// builds the address template every data connection is made from (proxy/sentinel fills in the
// host and port the sentinels name).
#include <cstdlib>
#include <string>
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

namespace {

constexpr const char* kAddressRule = "must be host:port, [ipv6]:port or unix:/path";
constexpr Millis kMinPoll{100};
constexpr Millis kMaxPoll{60000};

}  // namespace

void Loader::walkSentinel(const YAML::Node& key, const YAML::Node& value, const std::string& path) {
  sentinel_mark_ = key.Mark();
  if (!value.IsMap() && !value.IsNull()) {
    return failValue(key, value, path,
                     "must be a mapping like {master: mymaster, addresses: [10.0.0.1:26379]}");
  }
  SentinelConfig s;
  bool master_seen = false;
  bool addresses_seen = false;
  auto address = [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
    const std::string* text = scalar(k, v, p, kAddressRule);
    if (text == nullptr) return;
    std::string why;
    auto a = listenWithReason(*text, /*allow_port_zero=*/false, &why);
    if (!a) return failValue(k, v, p, why);
    for (const auto& seen : sentinel_addresses_) {
      if (sameEndpoint(seen.value, *a)) {
        return fail(v.Mark(), p, "duplicate of " + seen.path, quoteForError(*text));
      }
    }
    sentinel_addresses_.push_back(Located<ListenAddress>{*a, v.Mark(), p});
    s.addresses.push_back(std::move(*a));
  };
  std::vector<Key> keys = {
      {"master",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule =
             "must be the name the sentinels monitor the primary under: 1 to 128 of "
             "A-Z a-z 0-9 _ . : -";
         master_seen = true;
         const std::string* name = scalar(k, v, p, kRule);
         if (name == nullptr) return;
         if (!isValidName(*name)) return failValue(k, v, p, kRule);
         s.master = *name;
       }},
      {"addresses",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         addresses_seen = true;
         if (v.IsScalar()) return address(k, v, p);
         if (!v.IsSequence())
           return failValue(k, v, p, "must be an address or a list of addresses");
         if (v.size() == 0) return fail(v.Mark(), p, "must list at least one sentinel", "[]");
         size_t i = 0;
         for (auto it = v.begin(); it != v.end(); ++it, ++i) address(k, *it, indexPath(p, i));
       }},
      {"user", [&](const YAML::Node& k, const YAML::Node& v,
                   const std::string& p) { string(k, v, p, &s.user); }},
      {"password",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         // Only the type is described on error: the value is a secret.
         if (!v.IsScalar()) return failValue(k, v, p, "must be a string");
         s.password = v.Scalar();
         if (!s.password.empty()) sentinel_password_mark_ = v.Mark();
       }},
      {"password_env",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule =
             "must be the name of an environment variable, like SENTINEL_PASSWORD";
         const std::string* name = scalar(k, v, p, kRule);
         if (name == nullptr) return;
         if (!isValidEnvName(*name)) return failValue(k, v, p, kRule);
         s.password_env = *name;
         sentinel_password_env_ = Located<std::string>{*name, v.Mark(), p};
       }},
      {"poll_interval",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         Millis d{0};
         if (!duration(k, v, p, /*allow_zero=*/false, &d)) return;
         if (d < kMinPoll || d > kMaxPoll) {
           return failValue(k, v, p, "must be from 100ms to 60s");
         }
         s.poll_interval = d;
       }},
  };
  walkMap(value, path, keys);
  const YAML::Mark at = where(key, value);
  if (!master_seen) {
    fail(at, path + ".master",
         "is required: the name the sentinels monitor the primary under, like mymaster");
  }
  if (!addresses_seen) {
    fail(at, path + ".addresses", "is required: the sentinels, like [10.0.0.1:26379]");
  }
  cfg_.upstream.sentinel = std::move(s);
}

void Loader::resolvePasswordEnv(const std::optional<YAML::Mark>& password_mark,
                                const std::optional<Located<std::string>>& env, const char* other,
                                std::string* password) {
  if (!env) return;
  if (password_mark) {
    fail(env->mark, env->path, std::string("cannot be used together with ") + other);
  } else if (const char* value = std::getenv(env->value.c_str()); value == nullptr) {
    fail(env->mark, env->path, "environment variable " + env->value + " is not set");
  } else if (*value == '\0') {
    fail(env->mark, env->path, "environment variable " + env->value + " is empty");
  } else {
    *password = value;
  }
}

bool Loader::crossCheckSentinel() {
  if (!sentinel_mark_ || !cfg_.upstream.sentinel) return false;
  UpstreamConfig& u = cfg_.upstream;
  if (primary_seen_) {
    fail(*sentinel_mark_, "upstream.sentinel",
         "cannot be used together with upstream.primary (the sentinels name the primary)");
  }
  if (!replicas_.empty()) {
    fail(replicas_[0].mark, replicas_[0].path,
         "cannot be used with upstream.sentinel (the sentinels report the replicas)",
         quoteForError(replicas_[0].value.addr.text));
  }
  for (const auto& a : sentinel_addresses_) {
    for (const auto& l : listen_) {
      if (sameEndpoint(a.value, l.value)) {
        fail(a.mark, a.path, "is corral's own address " + l.path, quoteForError(a.value.text));
        break;
      }
    }
  }
  resolvePasswordEnv(sentinel_password_mark_, sentinel_password_env_, "upstream.sentinel.password",
                     &u.sentinel->password);
  // The template of every data connection: upstream's credentials and db, and no address until
  // the sentinels name one.
  UpstreamAddress t;
  t.user = u.user;
  t.password = u.password;
  t.db = u.db;
  t.text = "sentinel:" + u.sentinel->master;
  t.addr.text = t.text;
  u.primary = std::move(t);
  return true;
}

}  // namespace corral::config::detail
