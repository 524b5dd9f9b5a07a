// origins.<name>.headers, .retry and .breaker: what an origin request carries and how a failing
// origin is treated (walked from walkOrigins in policy_sections.cc).
//
//   headers: {Authorization: {env: USERS_TOKEN}, X-Api-Key: {file: /run/secrets/key}, X-A: b}
//   retry:   {attempts: 3, budget: 10%, min_per_second: 3, backoff: 20ms..500ms,
//             per_try_timeout: 300ms}
//   breaker: {failures: 5, open_for: 5s, half_open_probes: 1}
//
// Header values are secrets: no error here quotes one (only its size or what is wrong with it).
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

namespace {

// Headers corral writes itself: replacing them would break the request or the connection reuse.
constexpr std::string_view kReservedHeaders[] = {
    "host",    "connection",       "content-length", "transfer-encoding", "keep-alive", "te",
    "upgrade", "proxy-connection", "trailer"};
constexpr int64_t kMaxAttempts = 10;
constexpr int64_t kMaxFloor = 1000000;
constexpr const char* kBackoffRule = "must be a range of durations like 20ms..500ms";

}  // namespace

bool isHttpToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (isDigit(c) || isAlpha(c)) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

std::string_view trimHeaderValue(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

const char* headerValueProblem(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r' || c == '\n') return "holds a line break (one line only)";
    if ((u < 0x20 && c != '\t') || u == 0x7f) return "holds a control character";
  }
  return nullptr;
}

void Loader::originHeaders(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                           std::vector<OriginHeader>* out) {
  static constexpr const char* kRule =
      "must be a mapping of header names to a string, {env: NAME} or {file: /path}";
  static constexpr const char* kValueRule = "must be a string, {env: NAME} or {file: /path}";
  if (value.IsNull()) return;
  if (!value.IsMap()) return failValue(key, value, path, kRule);
  std::map<std::string, std::string> seen;  // lower-cased name -> as first written
  eachKey(value, path, [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
    const std::string& name = k.Scalar();
    if (!isHttpToken(name)) {
      return fail(k.Mark(), p, "must be an HTTP header name (letters, digits, - and _)",
                  quoteForError(name));
    }
    const std::string lower = lowerAscii(name);
    for (std::string_view r : kReservedHeaders) {
      if (lower == r) return fail(k.Mark(), p, "is set by corral itself and cannot be replaced");
    }
    if (auto [it, inserted] = seen.emplace(lower, name); !inserted) {
      return fail(k.Mark(), p, "is already set as " + it->second + " (names ignore case)");
    }
    OriginHeader h;
    h.name = name;
    if (v.IsScalar()) {
      h.value = v.Scalar();
    } else if (v.IsMap() && v.size() == 1 && (v["env"] || v["file"])) {
      const bool env = static_cast<bool>(v["env"]);
      const YAML::Node src = env ? v["env"] : v["file"];
      const std::string sp = p + (env ? ".env" : ".file");
      if (!src.IsScalar() || src.Scalar().empty()) {
        return fail(where(k, src), sp,
                    env ? "must be the name of an environment variable, like USERS_TOKEN"
                        : "must be the path of a readable file",
                    describe(src));
      }
      if (env) {
        if (!isValidEnvName(src.Scalar())) {
          return fail(src.Mark(), sp, "must be the name of an environment variable",
                      quoteForError(src.Scalar()));
        }
        const char* e = std::getenv(src.Scalar().c_str());
        if (e == nullptr) {
          return fail(src.Mark(), sp, "names a variable that is not set",
                      quoteForError(src.Scalar()));
        }
        h.source = OriginHeader::Source::kEnv;
        h.value = std::string(trimHeaderValue(e));
      } else {
        h.source = OriginHeader::Source::kFile;
        h.file = src.Scalar();
        std::string text;
        if (auto why = readWholeFile(h.file, &text)) {
          return fail(src.Mark(), sp, *why, quoteForError(h.file));
        }
        h.value = std::string(trimHeaderValue(text));
      }
    } else {
      return fail(where(k, v), p, kValueRule, describeSecret(v));
    }
    if (const char* why = headerValueProblem(h.value)) {
      // Only the size: the value is a secret.
      return fail(where(k, v), p, std::string("value ") + why,
                  "a value of " + std::to_string(h.value.size()) + " bytes");
    }
    out->push_back(std::move(h));
  });
}

void Loader::originRetry(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                         OriginRetrySpec* out) {
  out->enabled = true;
  if (value.IsNull()) return;  // `retry:` alone: the defaults
  if (!value.IsMap()) {
    return failValue(key, value, path,
                     "must be a mapping like {attempts: 3, budget: 10%, backoff: 20ms..500ms}");
  }
  std::vector<Key> keys = {
      {"attempts",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         int64_t n = 0;
         if (integerOk(k, v, p, 1, kMaxAttempts, &n)) out->attempts = static_cast<uint32_t>(n);
       }},
      {"budget",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         // jitter's parser: a fraction in [0, 1) or a percentage below 100%.
         jitter(k, v, p, &out->budget);
       }},
      {"min_per_second",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         int64_t n = 0;
         if (integerOk(k, v, p, 0, kMaxFloor, &n)) out->min_per_second = static_cast<uint32_t>(n);
       }},
      {"backoff",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         const std::string* s = scalar(k, v, p, kBackoffRule);
         if (s == nullptr) return;
         const size_t dots = s->find("..");
         if (dots == std::string::npos) return failValue(k, v, p, kBackoffRule);
         std::string why;
         auto lo = durationWithReason(std::string_view(*s).substr(0, dots), &why);
         auto hi =
             lo ? durationWithReason(std::string_view(*s).substr(dots + 2), &why) : std::nullopt;
         if (!lo || !hi) return failValue(k, v, p, std::string(kBackoffRule) + ": " + why);
         if (lo->count() <= 0 || *hi < *lo) {
           return failValue(k, v, p, "must be a range from a duration > 0 to a larger one");
         }
         out->backoff_base = *lo;
         out->backoff_max = *hi;
       }},
      {"per_try_timeout",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/false, &out->per_try_timeout);
       }},
  };
  walkMap(value, path, keys);
}

void Loader::originBreaker(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                           OriginBreakerSpec* out) {
  out->enabled = true;
  if (value.IsNull()) return;
  if (!value.IsMap()) {
    return failValue(key, value, path,
                     "must be a mapping like {failures: 5, open_for: 5s, half_open_probes: 1}");
  }
  std::vector<Key> keys = {
      {"failures",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         int64_t n = 0;
         if (integerOk(k, v, p, 1, kMaxFloor, &n)) out->failures = static_cast<uint32_t>(n);
       }},
      {"open_for",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/false, &out->open_for);
       }},
      {"half_open_probes",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         int64_t n = 0;
         if (integerOk(k, v, p, 1, 1000, &n)) out->half_open_probes = static_cast<uint32_t>(n);
       }},
  };
  walkMap(value, path, keys);
}

}  // namespace corral::config::detail
