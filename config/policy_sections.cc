// The policy sections as they are walked: origins, global, rate limits (global and per policy),
// defaults, policies and the entries of policy_files. Each policy field is parsed through the
// table in policy_fields.cc; merging defaults and the rules between fields come after the walk
// (policy_merge.cc).
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

namespace {

constexpr int64_t kMaxBurst = 1000000000;
constexpr int64_t kMaxInFlight = 1000000;

}  // namespace

bool Loader::commandList(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                         bool allow_categories, std::vector<std::string>* out,
                         std::vector<Located<std::string>>* located) {
  const char* list_rule = allow_categories
                              ? "must be a list of command names (GET, CONFIG|SET) or @read, @write"
                              : "must be a list of command names like GET or CONFIG|SET";
  const char* item_rule = allow_categories
                              ? "must be a command name like GET or CONFIG|SET, or @read or @write"
                              : "must be a command name like GET or CONFIG|SET";
  if (!value.IsSequence()) {
    failValue(key, value, path, list_rule);
    return false;
  }
  bool ok = true;
  std::vector<std::string> names;
  std::vector<std::string> paths;
  size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    const YAML::Node item = *it;
    std::string p = indexPath(path, i);
    const std::string* s = scalar(key, item, p, item_rule);
    if (s == nullptr) {
      ok = false;
      continue;
    }
    std::string name = lowerAscii(*s);
    bool valid = name.empty() || name[0] != '@'
                     ? isValidCommandName(name)
                     : allow_categories && (name == "@read" || name == "@write");
    if (!valid) {
      ok = false;
      failValue(key, item, p, item_rule);
      continue;
    }
    auto dup = std::find(names.begin(), names.end(), name);
    if (dup != names.end()) {
      ok = false;
      failValue(key, item, p, "duplicate of " + paths[static_cast<size_t>(dup - names.begin())]);
      continue;
    }
    if (located != nullptr) located->push_back(Located<std::string>{name, item.Mark(), p});
    names.push_back(std::move(name));
    paths.push_back(std::move(p));
  }
  *out = std::move(names);
  return ok;
}

bool Loader::fillCommands(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                          std::vector<std::string>* out) {
  static constexpr const char* kRule = "must be a list of GET, MGET, GETEX, HGETALL, HGET";
  static constexpr std::string_view kFillable[] = {"get", "mget", "getex", "hgetall", "hget"};
  if (!value.IsSequence()) {
    failValue(key, value, path, kRule);
    return false;
  }
  if (value.size() == 0) {
    fail(value.Mark(), path, "must list at least one command", "[]");
    return false;
  }
  std::vector<std::string> names;
  if (!commandList(key, value, path, /*allow_categories=*/false, &names)) return false;
  bool ok = true;
  size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    std::string name = lowerAscii(it->Scalar());
    if (std::find(std::begin(kFillable), std::end(kFillable), name) == std::end(kFillable)) {
      ok = false;
      failValue(key, *it, indexPath(path, i), "must be one of GET, MGET, GETEX, HGETALL, HGET");
    }
  }
  if (ok) *out = std::move(names);
  return ok;
}

bool Loader::keyBy(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                   bool global, std::vector<KeyByPart>* out) {
  static constexpr const char* kRule =
      "must be a list of client, policy, command, key or capture:<name>";
  static constexpr const char* kPartRule =
      "must be one of client, policy, command, key or capture:<name>";
  if (!value.IsSequence()) {
    failValue(key, value, path, kRule);
    return false;
  }
  bool ok = true;
  std::vector<KeyByPart> parts;
  std::vector<std::string> paths;
  size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    const YAML::Node item = *it;
    std::string p = indexPath(path, i);
    const std::string* s = scalar(key, item, p, kPartRule);
    if (s == nullptr) {
      ok = false;
      continue;
    }
    KeyByPart part;
    if (*s == "client") {
      part.kind = KeyByPart::Kind::kClient;
    } else if (*s == "policy") {
      part.kind = KeyByPart::Kind::kPolicy;
    } else if (*s == "command") {
      part.kind = KeyByPart::Kind::kCommand;
    } else if (*s == "key") {
      part.kind = KeyByPart::Kind::kKey;
    } else if (s->rfind("capture:", 0) == 0) {
      part.kind = KeyByPart::Kind::kCapture;
      part.capture = s->substr(8);
      if (!isIdentifier(part.capture)) {
        ok = false;
        failValue(key, item, p,
                  "capture needs a placeholder name of the template, like capture:id");
        continue;
      }
      if (global) {
        ok = false;
        failValue(key, item, p,
                  "captures come from a policy's template, so global.rate_limits cannot use "
                  "them; use client, policy, command or key");
        continue;
      }
    } else {
      ok = false;
      failValue(key, item, p, kPartRule);
      continue;
    }
    auto dup = std::find_if(parts.begin(), parts.end(), [&](const KeyByPart& q) {
      return q.kind == part.kind && q.capture == part.capture;
    });
    if (dup != parts.end()) {
      ok = false;
      failValue(key, item, p, "duplicate of " + paths[static_cast<size_t>(dup - parts.begin())]);
      continue;
    }
    parts.push_back(std::move(part));
    paths.push_back(std::move(p));
  }
  *out = std::move(parts);
  return ok;
}

bool Loader::rateLimits(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                        bool global, std::vector<RateLimitSpec>* out) {
  // Like auth.users: `rate_limits:` alone looks half-written, so it is an error; write [].
  if (!value.IsSequence()) {
    failValue(key, value, path, "must be a list of rate limits");
    return false;
  }
  const size_t before = errors_.size();
  size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    const size_t errors_before = errors_.size();
    const size_t limits_before = out->size();
    walkRateLimit(key, *it, indexPath(path, i), global, out);
    // A policy's limit with errors leaves its rate_limits unset, so the policy has errors; a
    // global one is dropped alone from what the compiler checks (finishPolicies).
    if (global && errors_.size() != errors_before && out->size() != limits_before) {
      bad_global_limits_.push_back(limits_before);
    }
  }
  return errors_.size() == before;
}

void Loader::walkRateLimit(const YAML::Node& key, const YAML::Node& node, const std::string& path,
                           bool global, std::vector<RateLimitSpec>* out) {
  if (!node.IsMap()) {
    return failValue(key, node, path, "must be a mapping like {name: per_client, rate: 100/s}");
  }
  RateLimitSpec limit;
  limit.where = whereOf(node.Mark());
  limit.path = path;
  bool name_seen = false;
  bool rate_seen = false;
  bool burst_seen = false;
  bool unavailable_seen = false;
  YAML::Mark unavailable_at;
  std::vector<Key> keys = {
      {"name",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         name_seen = true;
         uniqueName(k, v, p, &limit_names_, &limit.name);
       }},
      {"rate",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         rate_seen = true;
         const std::string* s = scalar(k, v, p, kRateRule);
         if (s == nullptr) return;
         std::string why;
         auto r = rateWithReason(*s, &why);
         if (!r) return failValue(k, v, p, why);
         limit.count = r->count;
         limit.period = r->period;
       }},
      {"burst",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         burst_seen = true;
         int64_t n = 0;
         if (integerOk(k, v, p, 1, kMaxBurst, &n)) limit.burst = static_cast<uint64_t>(n);
       }},
      {"commands",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         commandList(k, v, p, /*allow_categories=*/true, &limit.commands);
       }},
      {"key_by", [&](const YAML::Node& k, const YAML::Node& v,
                     const std::string& p) { keyBy(k, v, p, global, &limit.key_by); }},
      {"scope",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule = "must be one of local, global";
         const std::string* s = scalar(k, v, p, kRule);
         if (s == nullptr) return;
         if (*s == "local") {
           limit.scope = LimitScope::kLocal;
         } else if (*s == "global") {
           limit.scope = LimitScope::kGlobal;
         } else {
           failValue(k, v, p, kRule);
         }
       }},
      {"on_unavailable",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         unavailable_seen = true;
         unavailable_at = k.Mark();
         choice(k, v, p,
                {{"local_share", OnUnavailable::kLocalShare},
                 {"allow", OnUnavailable::kAllow},
                 {"deny", OnUnavailable::kDeny}},
                &limit.on_unavailable);
       }},
      {"on_limit",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         choice(k, v, p, {{"reject", OnLimit::kReject}, {"shadow", OnLimit::kShadow}},
                &limit.on_limit);
       }},
  };
  walkMap(node, path, keys);
  if (!name_seen) fail(node.Mark(), path + ".name", "is required");
  if (!rate_seen) fail(node.Mark(), path + ".rate", "is required, like 100/s");
  if (!burst_seen) limit.burst = limit.count;
  if (unavailable_seen && limit.scope != LimitScope::kGlobal) {
    fail(unavailable_at, path + ".on_unavailable",
         "applies to scope global only (a local limit needs no shared state)");
  }
  out->push_back(std::move(limit));
}

void Loader::walkOrigins(const YAML::Node& key, const YAML::Node& node, const std::string& prefix) {
  static constexpr const char* kRule =
      "must be a mapping of origin names to {base_url, timeout, max_in_flight, headers, retry, "
      "breaker}";
  static constexpr const char* kOriginRule =
      "must be a mapping like {base_url: \"http://127.0.0.1:8080\", timeout: 1s}";
  if (node.IsNull()) return;
  if (!node.IsMap()) return failValue(key, node, prefix, kRule);
  // The keys are names the operator chose, so each one is checked here instead of in a table.
  eachKey(node, prefix, [&](const YAML::Node& k, const YAML::Node& v, const std::string& path) {
    const std::string& name = k.Scalar();
    if (!isValidName(name)) {
      return fail(k.Mark(), path, "origin names must be 1 to 128 characters of A-Z a-z 0-9 _ . : -",
                  quoteForError(name));
    }
    if (!v.IsMap() && !v.IsNull()) return failValue(k, v, path, kOriginRule);
    OriginSpec o;
    o.name = name;
    o.where = whereOf(where(k, v));
    bool url_seen = false;
    std::vector<Key> keys = {
        {"base_url",
         [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
           url_seen = true;
           const std::string* s = scalar(k2, v2, p2, "must be an http:// URL like http://h:8080");
           if (s == nullptr) return;
           std::string why;
           auto url = httpUrlWithReason(*s, &why);
           if (!url) return failValue(k2, v2, p2, why);
           o.base_url = std::move(*url);
         }},
        {"timeout",
         [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
           duration(k2, v2, p2, /*allow_zero=*/false, &o.timeout);
         }},
        {"ca_file", [&](const YAML::Node& k2, const YAML::Node& v2,
                        const std::string& p2) { tlsFile(k2, v2, p2, &o.ca_file); }},
        {"max_in_flight",
         [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
           int64_t n = 0;
           if (integerOk(k2, v2, p2, 1, kMaxInFlight, &n))
             o.max_in_flight = static_cast<uint32_t>(n);
         }},
        {"headers", [&](const YAML::Node& k2, const YAML::Node& v2,
                        const std::string& p2) { originHeaders(k2, v2, p2, &o.headers); }},
        {"retry", [&](const YAML::Node& k2, const YAML::Node& v2,
                      const std::string& p2) { originRetry(k2, v2, p2, &o.retry); }},
        {"breaker", [&](const YAML::Node& k2, const YAML::Node& v2,
                        const std::string& p2) { originBreaker(k2, v2, p2, &o.breaker); }},
    };
    walkMap(v, path, keys);
    if (o.retry.per_try_timeout > o.timeout) {
      fail(where(k, v), path + ".retry.per_try_timeout",
           "must not be longer than the origin's timeout, which bounds the whole fill",
           formatMillis(o.retry.per_try_timeout));
    }
    if (!url_seen) fail(where(k, v), path + ".base_url", "is required, like http://127.0.0.1:8080");
    cfg_.policy.origins.push_back(std::move(o));
  });
}

void Loader::walkGlobal(const YAML::Node& node, const std::string& prefix) {
  GlobalSpec& g = cfg_.policy.global;
  std::optional<Located<std::string>> secret;
  std::optional<Located<std::string>> secret_env;
  std::vector<Located<std::string>> denied;
  std::vector<Located<std::string>> audited;
  std::vector<Key> keys = {
      {"unmatched_keys",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         choice(k, v, p,
                {{"allow", UnmatchedKeys::kAllow},
                 {"audit", UnmatchedKeys::kAudit},
                 {"reject", UnmatchedKeys::kReject}},
                &g.unmatched_keys);
       }},
      {"unknown_commands",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         choiceOpt(k, v, p,
                   {{"forward", UnknownCommands::kForward}, {"reject", UnknownCommands::kReject}},
                   &g.unknown_commands);
       }},
      {"commands",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) {
         std::vector<Key> commands = {
             {"deny",
              [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
                commandList(k2, v2, p2, /*allow_categories=*/false, &g.deny_commands, &denied);
              }},
             {"audit",
              [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
                commandList(k2, v2, p2, /*allow_categories=*/false, &g.audit_commands, &audited);
              }},
         };
         walkMap(v, p, commands);
       }},
      {"rate_limits", [&](const YAML::Node& k, const YAML::Node& v,
                          const std::string& p) { rateLimits(k, v, p, true, &g.rate_limits); }},
      {"near_cache",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) {
         std::vector<Key> near = {
             {"max_bytes",
              [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
                uint64_t n = 0;
                if (sizeOk(k2, v2, p2, kMinByteLimit, std::numeric_limits<uint64_t>::max(), &n)) {
                  g.near_cache_max_bytes = n;
                }
              }},
         };
         walkMap(v, p, near);
       }},
      // The key of fills' internal key names (policies/fill.h), shared by the deployment.
      {"fill_secret",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         // Only the type and length are described on error: the value is a secret.
         if (!v.IsScalar()) return failValue(k, v, p, "must be a string");
         secret = Located<std::string>{v.Scalar(), v.Mark(), p};
       }},
      {"fill_secret_env",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule =
             "must be the name of an environment variable, like CORRAL_FILL_SECRET";
         const std::string* s = scalar(k, v, p, kRule);
         if (s == nullptr) return;
         if (!isValidEnvName(*s)) return failValue(k, v, p, kRule);
         secret_env = Located<std::string>{*s, v.Mark(), p};
       }},
  };
  walkMap(node, prefix, keys);
  if (secret && secret_env) {
    fail(secret_env->mark, secret_env->path, "cannot be used together with fill_secret");
  } else if (secret_env) {
    const char* value = std::getenv(secret_env->value.c_str());
    if (value == nullptr) {
      fail(secret_env->mark, secret_env->path,
           "environment variable " + secret_env->value + " is not set");
    } else if (*value == '\0') {
      fail(secret_env->mark, secret_env->path,
           "environment variable " + secret_env->value + " is empty");
    } else {
      secret = Located<std::string>{value, secret_env->mark, secret_env->path};
    }
  }
  // 16 bytes at the least: the secret keys a digest that must not be guessed.
  constexpr size_t kMinSecretBytes = 16;
  if (secret && secret->value.size() < kMinSecretBytes) {
    fail(secret->mark, secret->path,
         "must be at least 16 bytes; use 32 random characters, the same on every corral",
         std::to_string(secret->value.size()) + " bytes");
  } else if (secret) {
    g.fill_secret = secret->value;
  }
  // A denied command never runs, so auditing it too is a contradiction, not a combination.
  for (const auto& a : audited) {
    for (const auto& d : denied) {
      if (a.value == d.value) {
        fail(a.mark, a.path, "is also denied by " + d.path + "; a command is denied or audited",
             quoteForError(a.value));
        break;
      }
    }
  }
}

void Loader::walkDefaults(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                          PolicyBody* body) {
  body->prefix = path;
  body->where = whereOf(where(key, value));
  if (value.IsNull()) return;
  const size_t before = errors_.size();
  if (value.IsMap()) {
    walkPolicyBody(value, path, /*is_defaults=*/true, body);
  } else {
    failValue(key, value, path, "must be a mapping of policy fields, like {ttl: {jitter: 10%}}");
  }
  body->errors += errors_.size() - before;
}

void Loader::walkPolicyBody(const YAML::Node& node, const std::string& prefix, bool is_defaults,
                            PolicyBody* body) {
  // Built from the field table: top-level fields are keys, "ttl.min" is key min of section ttl.
  auto leaf = [this, body, is_defaults](const PolicyField& f) -> Handler {
    return [this, body, is_defaults, &f](const YAML::Node& k, const YAML::Node& v,
                                         const std::string& p) {
      body->written.emplace(f.path);
      if (is_defaults && f.not_in_defaults != nullptr) {
        return fail(k.Mark(), p, f.not_in_defaults);
      }
      if (f.parse(*this, body->spec, k, v, p)) {
        body->set[std::string(f.path)] =
            Written{whereOf(where(k, v)), v.IsScalar() ? v.Scalar() : describe(v), p};
      }
    };
  };
  std::vector<Key> keys;
  std::vector<std::pair<std::string_view, std::vector<Key>>> sections;
  for (const PolicyField& f : policyFields()) {
    size_t dot = f.path.find('.');
    if (dot == std::string_view::npos) {
      keys.push_back({f.path, leaf(f)});
      continue;
    }
    std::string_view section = f.path.substr(0, dot);
    auto it = std::find_if(sections.begin(), sections.end(),
                           [&](const auto& s) { return s.first == section; });
    if (it == sections.end()) it = sections.insert(sections.end(), {section, {}});
    it->second.push_back({f.path.substr(dot + 1), leaf(f)});
  }
  // sections is complete: the references below stay valid.
  for (const auto& [section, sub] : sections) {
    keys.push_back({section, [this, &sub = sub](const YAML::Node&, const YAML::Node& v,
                                                const std::string& p) { walkMap(v, p, sub); }});
  }
  walkMap(node, prefix, keys);
}

void Loader::walkPolicies(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                          int file_defaults) {
  if (!value.IsSequence()) return failValue(key, value, path, "must be a list of policies");
  size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    const YAML::Node item = *it;
    PolicyBody body;
    body.prefix = indexPath(path, i);
    if (!item.IsMap()) {
      failValue(key, item, body.prefix,
                "must be a mapping like {name: users, match: \"user:<id:int>\"}");
      continue;
    }
    body.where = whereOf(item.Mark());
    body.file_defaults = file_defaults;
    const size_t before = errors_.size();
    walkPolicyBody(item, body.prefix, /*is_defaults=*/false, &body);
    body.errors = errors_.size() - before;
    policy_bodies_.push_back(std::move(body));
  }
}

void Loader::walkPolicyFiles(const YAML::Node& key, const YAML::Node& value,
                             const std::string& path) {
  static constexpr const char* kRule = "must be a path to a file or to a directory of *.yaml files";
  auto add = [&](const YAML::Node& item, const std::string& p) {
    const std::string* s = scalar(key, item, p, kRule);
    if (s == nullptr) return;
    if (s->empty() || s->find('\0') != std::string::npos) return failValue(key, item, p, kRule);
    policy_file_entries_.push_back(Located<std::string>{*s, item.Mark(), p});
  };
  if (value.IsScalar()) return add(value, path);
  if (!value.IsSequence()) {
    return failValue(key, value, path, "must be a path or a list of paths (files or directories)");
  }
  size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) add(*it, indexPath(path, i));
}

}  // namespace corral::config::detail
