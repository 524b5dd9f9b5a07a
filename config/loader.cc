// Loader and validator for corral's YAML configuration: the entry points and the loader's core.
//
//   file --readWholeFile--> text --YAML::LoadAll--> node tree
//     --Loader::walkRoot: one handler per known key, visited in file order--> Config + errors
//         proxy_sections.cc: listen, upstream, limits, auth (each user checked as a whole)
//         policy_sections.cc: origins, global, defaults, policies (each policy field once, from
//                             the table in policy_fields.cc), policy_files entries
//     --Loader::readPolicyFiles (policy_files.cc): each policy_files entry (a file or a
//         directory of *.yaml) walked the same way, its marks reported in its own name
//     --Loader::finishPolicies (policy_merge.cc): defaults merged field by field into each
//         policy, rules between fields, origin names, required fields -> Config::policy
//     --Loader::crossCheck (cross_check.cc): rules that need several keys (primary vs replicas,
//         backoff min/max, password_env, listen clashes), credentials copied into addresses
//     --stable sort by file, then position--> LoadResult {config or every error}
//
// yaml-cpp throws (syntax errors, its depth guard, bad_alloc); every throw is caught in this file
// or in policy_files.cc and becomes a ConfigError, so the public API never throws. Scalars are
// parsed by our own strict parsers (values.cc, addresses.cc) instead of yaml-cpp's as<T>(), so
// "5 parsecs" or "0x10" are errors with a reason rather than silently accepted or truncated.
#include "config/loader.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <tuple>
#include <utility>

#include "config/config.h"

namespace corral::config {

std::string ConfigError::format() const {
  std::string out = file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

namespace detail {
namespace {

// Values echoed in "(got ...)" are capped so a pasted certificate does not flood the log.
constexpr size_t kMaxGotBytes = 80;
// A config file is small; anything bigger is a mistake (a log file, a binary).
constexpr size_t kMaxFileBytes = size_t{16} << 20;
constexpr int64_t kMaxWorkers = 64;

}  // namespace

// Escapes control bytes and caps the length, cutting only at a UTF-8 character boundary.
std::string quoteForError(std::string_view s) {
  if (s.empty()) return "\"\"";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    bool continuation = (c & 0xC0) == 0x80;
    // Finish a multi-byte character that started under the cap, but never run on for long.
    if (out.size() >= kMaxGotBytes && (!continuation || out.size() >= kMaxGotBytes + 3)) break;
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  if (i < s.size()) out += "...";
  return out;
}

// yaml-cpp quotes the offending character in some messages ("unknown escape character: \0").
std::string escapeMessage(std::string_view s) {
  std::string out = quoteForError(s);
  return out == "\"\"" ? "syntax error" : out;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so "wokrers" is
// one edit away from "workers".
size_t editDistance(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  const size_t m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = lowerAscii(a[i - 1]) == lowerAscii(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string joinPath(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

std::string indexPath(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string formatMillis(Millis d) { return std::to_string(d.count()) + "ms"; }

std::string formatWhere(const Where& w) {
  return w.file + ":" + std::to_string(w.line) + ":" + std::to_string(w.col);
}

std::optional<std::string> readWholeFile(const std::string& path, std::string* text) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::string("cannot read (") + std::strerror(errno) + ")";
  char buf[16384];
  int err = 0;
  bool too_big = false;
  while (true) {
    size_t n = std::fread(buf, 1, sizeof buf, f);
    text->append(buf, n);
    if (text->size() > kMaxFileBytes) {
      too_big = true;
      break;
    }
    if (n < sizeof buf) {
      if (std::ferror(f) != 0) err = errno;
      break;
    }
  }
  std::fclose(f);
  if (err != 0) return std::string("cannot read (") + std::strerror(err) + ")";
  if (too_big) return std::string("is larger than 16MiB");
  return std::nullopt;
}

Where Loader::whereOf(const YAML::Mark& mark) const {
  // yaml-cpp marks are 0-based; null_mark() is -1, which becomes the documented "0 = unknown".
  return Where{cur_file_, mark.line >= 0 ? mark.line + 1 : 0,
               mark.column >= 0 ? mark.column + 1 : 0};
}

void Loader::fail(const YAML::Mark& mark, std::string path, std::string rule,
                  std::optional<std::string> got) {
  failAt(whereOf(mark), std::move(path), std::move(rule), std::move(got));
}

// got is already quoted (describe(), quoteForError()).
void Loader::failAt(const Where& where, std::string path, std::string rule,
                    std::optional<std::string> got) {
  ConfigError e;
  e.file = where.file;
  e.line = where.line;
  e.col = where.col;
  e.path = std::move(path);
  e.message = std::move(rule);
  if (got) e.message += " (got " + *got + ")";
  errors_.push_back(std::move(e));
}

std::string Loader::describe(const YAML::Node& v) {
  switch (v.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return quoteForError(v.Scalar());
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string Loader::describeSecret(const YAML::Node& v) {
  if (!v.IsScalar()) return describe(v);
  if (v.Scalar().empty()) return "an empty string";
  return "a string of " + std::to_string(v.Scalar().size()) + " bytes";
}

void Loader::eachKey(const YAML::Node& node, const std::string& prefix, const Handler& visit) {
  std::map<std::string, YAML::Mark, std::less<>> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // Copies, not references: yaml-cpp's operator-> returns a temporary proxy.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      fail(key.Mark(), prefix.empty() ? "(root)" : prefix, "keys must be plain names",
           describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    std::string path = joinPath(prefix, name);
    auto [first, inserted] = seen.emplace(name, key.Mark());
    if (!inserted) {
      fail(key.Mark(), path,
           "duplicate key (first set at line " + std::to_string(first->second.line + 1) + ")");
      continue;
    }
    visit(key, value, path);
  }
}

bool Loader::walkMap(const YAML::Node& node, const std::string& prefix,
                     const std::vector<Key>& keys) {
  // An empty section ("upstream:") is an empty mapping: required-key checks then report it.
  if (node.IsNull()) return true;
  if (!node.IsMap()) {
    fail(node.Mark(), prefix.empty() ? "(root)" : prefix,
         prefix.empty() ? "the file must be a mapping of settings" : "must be a mapping",
         describe(node));
    return false;
  }
  eachKey(
      node, prefix, [&](const YAML::Node& key, const YAML::Node& value, const std::string& path) {
        const std::string& name = key.Scalar();
        auto known =
            std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
        if (known != keys.end()) {
          known->handle(key, value, path);
          return;
        }
        // Suggest the nearest known name, if it is a plausible typo.
        std::string_view best;
        size_t best_distance = 3;
        auto consider = [&](std::string_view candidate) {
          size_t d = editDistance(name, candidate);
          if (d < best_distance && 2 * d <= candidate.size()) {
            best = candidate;
            best_distance = d;
          }
        };
        for (const Key& k : keys) consider(k.name);
        if (best.empty()) {
          fail(key.Mark(), path, "unknown key");
        } else {
          fail(key.Mark(), path, "unknown key (did you mean " + std::string(best) + "?)");
        }
      });
  return true;
}

void Loader::walkRoot(const YAML::Node& root) {
  root_mark_ = root.Mark();
  std::vector<Key> keys = {
      {"listen", [&](const YAML::Node& k, const YAML::Node& v,
                     const std::string& p) { walkListen(k, v, p); }},
      {"workers",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, kMaxWorkers, [&](int64_t n) { cfg_.workers = static_cast<int>(n); });
       }},
      {"upstream",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         upstream_mark_ = where(k, v);
         if (!walkUpstream(v, p)) upstream_unusable_ = true;
       }},
      {"admin",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) { walkAdmin(v, p); }},
      {"limits",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) { walkLimits(v, p); }},
      {"tls",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) { walkTlsServer(v, p); }},
      {"auth",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) { walkAuth(v, p); }},
      {"log",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) {
         std::vector<Key> log = {
             {"level",
              [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
                static constexpr const char* kRule =
                    "must be one of trace, debug, info, warn, error, critical, off";
                static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                               "error", "critical", "off"};
                const std::string* s = scalar(k2, v2, p2, kRule);
                if (s == nullptr) return;
                if (std::find(std::begin(kLevels), std::end(kLevels), *s) == std::end(kLevels)) {
                  return failValue(k2, v2, p2, kRule);
                }
                cfg_.log.level = *s;
              }},
             {"format",
              [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
                static constexpr const char* kRule = "must be text or json";
                const std::string* s = scalar(k2, v2, p2, kRule);
                if (s == nullptr) return;
                if (*s != "text" && *s != "json") return failValue(k2, v2, p2, kRule);
                cfg_.log.format = *s;
              }},
         };
         walkMap(v, p, log);
       }},
      {"shutdown_timeout",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/true, &cfg_.shutdown_timeout);
       }},
      {"origins", [&](const YAML::Node& k, const YAML::Node& v,
                      const std::string& p) { walkOrigins(k, v, p); }},
      {"global",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) { walkGlobal(v, p); }},
      {"defaults", [&](const YAML::Node& k, const YAML::Node& v,
                       const std::string& p) { walkDefaults(k, v, p, &main_defaults_); }},
      {"policies", [&](const YAML::Node& k, const YAML::Node& v,
                       const std::string& p) { walkPolicies(k, v, p, /*file_defaults=*/-1); }},
      {"policy_files", [&](const YAML::Node& k, const YAML::Node& v,
                           const std::string& p) { walkPolicyFiles(k, v, p); }},
  };
  if (!walkMap(root, "", keys)) upstream_unusable_ = true;
}

void Loader::run(const std::string& text) {
  std::vector<YAML::Node> docs = YAML::LoadAll(text);
  if (docs.size() > 1) {
    fail(docs[1].Mark(), "(yaml)", "the file holds more than one YAML document; corral reads one");
    return;
  }
  walkRoot(docs.empty() ? YAML::Node() : docs[0]);
  readPolicyFiles();
  finishPolicies();
  crossCheck();
}

LoadResult Loader::finish() {
  LoadResult r;
  r.files.push_back(file_);
  r.files.insert(r.files.end(), cfg_.policy.files.begin(), cfg_.policy.files.end());
  // Handlers run in file order, but cross-field checks run after; sort so the operator reads
  // the errors top to bottom: the main file, then each policy file in the order read.
  r.errors = std::move(errors_);
  sortErrors(r.errors, r.files);
  r.refused_by_check = std::move(refused_by_check_);
  // With errors, cfg_.policy holds only what the compiler can check (finishPolicies); if the
  // walk was cut short by an exception, that was never worked out, so there is nothing.
  if (policies_finished_) r.policy = cfg_.policy;
  if (r.errors.empty()) {
    cfg_.source = file_;
    r.config = std::move(cfg_);
  }
  return r;
}

}  // namespace detail

using detail::escapeMessage;
using detail::Loader;
using detail::quoteForError;
using detail::readWholeFile;

LoadResult loadConfigText(const std::string& text, const std::string& source_name) {
  Loader loader(source_name);
  try {
    loader.run(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp 0.7 gives this one the message "bad file"; say what happened instead.
    Loader syntax(source_name);
    // Its depth counts parser recursion, not YAML levels, so no number is quoted.
    syntax.fail(e.mark, "(yaml)", "nested too deeply for the YAML parser");
    return syntax.finish();
  } catch (const YAML::ParserException& e) {
    // A syntax error: the tree is unusable, so this is the only error.
    Loader syntax(source_name);
    syntax.fail(e.mark, "(yaml)", escapeMessage(e.msg));
    return syntax.finish();
  } catch (const YAML::Exception& e) {
    loader.fail(e.mark, "(yaml)", escapeMessage(e.msg));
  } catch (const std::bad_alloc&) {
    loader.fail(YAML::Mark::null_mark(), "(internal)", "out of memory while loading");
  } catch (const std::exception& e) {
    loader.fail(YAML::Mark::null_mark(), "(internal)",
                std::string("unexpected error: ") + e.what());
  } catch (...) {
    loader.fail(YAML::Mark::null_mark(), "(internal)", "unexpected error");
  }
  try {
    return loader.finish();
  } catch (...) {
    LoadResult r;
    r.errors.push_back(ConfigError{source_name, 0, 0, "(internal)", "out of memory"});
    return r;
  }
}

LoadResult loadConfigFile(const std::string& path) {
  auto file_error = [&](std::string message) {
    LoadResult r;
    r.errors.push_back(ConfigError{path, 0, 0, "(file)", std::move(message)});
    return r;
  };
  try {
    std::string text;
    if (auto err = readWholeFile(path, &text)) {
      if (err->rfind("cannot", 0) == 0) return file_error(*err);
      return file_error(*err + "; is it really a config file?");
    }
    return loadConfigText(text, path);
  } catch (...) {
    return file_error("cannot read (out of memory)");
  }
}

void sortErrors(std::vector<ConfigError>& errors, const std::vector<std::string>& files) {
  auto rank = [&](const std::string& file) {
    auto it = std::find(files.begin(), files.end(), file);
    return static_cast<size_t>(it - files.begin());  // files.size() when not found: last
  };
  std::stable_sort(errors.begin(), errors.end(), [&](const ConfigError& a, const ConfigError& b) {
    const size_t ra = rank(a.file);
    const size_t rb = rank(b.file);
    // The name only orders files that are not in `files`; the others have distinct ranks.
    return std::tie(ra, a.file, a.line, a.col) < std::tie(rb, b.file, b.line, b.col);
  });
}

ConfigError configError(const Where& where, std::string path, std::string rule,
                        std::optional<std::string> got) {
  ConfigError e{where.file, where.line, where.col, std::move(path), std::move(rule)};
  if (got) e.message += " (got " + quoteForError(*got) + ")";
  return e;
}

}  // namespace corral::config
