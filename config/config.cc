// Loader and validator for corral's YAML configuration.
//
//   file --readFile--> text --YAML::LoadAll--> node tree
//     --Loader::walk: one handler per known key, visited in file order--> Config slices + errors
//                     (auth.users: each user checked as a whole, its password_env read, here)
//     --Loader::crossCheck: rules that need several keys (primary vs replicas, backoff min/max,
//                           password_env, listen clashes), credentials copied into addresses
//     --stable sort by position--> LoadResult {config or every error}
//
// yaml-cpp throws (syntax errors, its depth guard, bad_alloc); every throw is caught in this file
// and becomes a ConfigError, so the public API never throws. Scalars are parsed by our own strict
// parsers instead of yaml-cpp's as<T>(), so "5 parsecs", "0x10" or "1.5s" are errors with a
// reason rather than silently accepted or truncated.
#include "config/config.h"

#include <arpa/inet.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <utility>

namespace corral::config {

std::string ConfigError::format() const {
  std::string out = file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

namespace {

// Values echoed in "(got ...)" are capped so a pasted certificate does not flood the log.
constexpr size_t kMaxGotBytes = 80;
// A config file is small; anything bigger is a mistake (a log file, a binary).
constexpr size_t kMaxFileBytes = size_t{16} << 20;
// sizeof(sockaddr_un::sun_path) is 108 on Linux, including the terminating NUL.
constexpr size_t kMaxUnixPathBytes = 107;
constexpr int64_t kMaxDb = 1000000;
constexpr uint16_t kDefaultRedisPort = 6379;
constexpr int64_t kMaxWorkers = 64;
constexpr int64_t kMaxPoolSize = 64;
// Byte limits below 1KiB are almost certainly a forgotten unit ("max_request_bytes: 64").
constexpr uint64_t kMinByteLimit = 1024;
// Deeper nesting would let a reply drive the codec's recursion; Redis itself never nests deeply.
constexpr int64_t kMaxReplyDepth = 1024;
constexpr const char* kDefaultListen = "127.0.0.1:6380";

constexpr const char* kDurationRule = "must be a duration like 250ms or 5s";
constexpr const char* kSizeRule = "must be a size like 4096, 64KiB or 16MiB";

bool isDigit(char c) { return c >= '0' && c <= '9'; }

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lowerAscii(c);
  return out;
}

// Parses a non-empty run of decimal digits (the whole of s). nullopt on anything else; sets
// *overflow when the digits do not fit in a uint64.
std::optional<uint64_t> parseDigits(std::string_view s, bool* overflow) {
  *overflow = false;
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!isDigit(c)) return std::nullopt;
    auto d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) {
      *overflow = true;
      return std::nullopt;
    }
    v = v * 10 + d;
  }
  return v;
}

size_t leadingDigits(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && isDigit(s[n])) ++n;
  return n;
}

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

// Replaces the password of a "scheme://user:password@host" string with "***". Works on
// malformed input too (it is used for error messages), so it takes the last '@' as the end of
// the user info: a password may contain an unencoded '@' or '/', a host never does.
std::string maskPassword(std::string_view s) {
  size_t scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) return std::string(s);
  size_t start = scheme_end + 3;
  size_t at = s.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(s);
  size_t colon = s.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(s);
  return std::string(s.substr(0, colon + 1)) + "***" + std::string(s.substr(at));
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

// ---- scalar parsers, each with the reason it refused --------------------------------------

std::optional<Millis> durationWithReason(std::string_view s, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Millis> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (!s.empty() && s[0] == '-' && s.size() > 1 && isDigit(s[1]))
    return fail("must not be negative");
  size_t n = leadingDigits(s);
  if (n == 0) return fail(kDurationRule);
  std::string_view unit = s.substr(n);
  int64_t mult = 0;
  if (unit == "ms") {
    mult = 1;
  } else if (unit == "s") {
    mult = 1000;
  } else if (unit == "m") {
    mult = int64_t{60} * 1000;
  } else if (unit == "h") {
    mult = int64_t{60} * 60 * 1000;
  } else if (unit.empty()) {
    // "0" needs no unit; any other bare number is ambiguous (500 what?).
    if (s.find_first_not_of('0') == std::string_view::npos) return Millis{0};
    return fail("must have a unit (ms, s, m or h), like 250ms or 5s");
  } else {
    return fail(kDurationRule);
  }
  bool overflow = false;
  auto v = parseDigits(s.substr(0, n), &overflow);
  if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / mult)) {
    return fail("is too large");
  }
  return Millis{static_cast<int64_t>(*v) * mult};
}

std::optional<uint64_t> sizeWithReason(std::string_view s, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<uint64_t> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (!s.empty() && s[0] == '-' && s.size() > 1 && isDigit(s[1]))
    return fail("must not be negative");
  size_t n = leadingDigits(s);
  if (n == 0) return fail(kSizeRule);
  std::string_view unit = s.substr(n);
  // Binary units are what limits are usually meant in; kb/mb/gb are SI (1000-based). Note that
  // redis.conf reads "1kb" as 1024: the README says so and recommends KiB/MiB/GiB.
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},
      {"B", 1},
      {"KiB", uint64_t{1} << 10},
      {"MiB", uint64_t{1} << 20},
      {"GiB", uint64_t{1} << 30},
      {"TiB", uint64_t{1} << 40},
      {"kb", 1000},
      {"kB", 1000},
      {"KB", 1000},
      {"mb", 1000 * 1000},
      {"MB", 1000 * 1000},
      {"gb", 1000 * 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
  };
  uint64_t mult = 0;
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) mult = factor;
  }
  if (mult == 0) return fail(kSizeRule);
  bool overflow = false;
  auto v = parseDigits(s.substr(0, n), &overflow);
  if (!v || *v > std::numeric_limits<uint64_t>::max() / mult) return fail("is too large");
  return *v * mult;
}

bool isValidIpv6(std::string_view s) {
  // A zone index ("fe80::1%eth0") is allowed; inet_pton does not know it.
  size_t pct = s.find('%');
  std::string_view addr = s.substr(0, pct);
  if (pct != std::string_view::npos && pct + 1 == s.size()) return false;
  std::string z(addr);
  unsigned char buf[16];
  return inet_pton(AF_INET6, z.c_str(), buf) == 1;
}

bool isValidHost(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  bool dotted_numeric = true;
  for (char c : h) {
    bool ok = isDigit(c) || (lowerAscii(c) >= 'a' && lowerAscii(c) <= 'z') || c == '-' ||
              c == '.' || c == '_';
    if (!ok) return false;
    if (!isDigit(c) && c != '.') dotted_numeric = false;
  }
  if (dotted_numeric) {
    // Looks like an IPv4 literal, so it must be one: catch 300.1.1.1 and 127.0.0.1.1 here.
    std::string z(h);
    unsigned char buf[4];
    return inet_pton(AF_INET, z.c_str(), buf) == 1;
  }
  return true;
}

// Parses "host:port" or "[v6]:port" into out->host/port. default_port is used when the port is
// absent (redis:// URLs only).
bool hostPortWithReason(std::string_view s, bool allow_port_zero,
                        std::optional<uint16_t> default_port, ListenAddress* out,
                        std::string* why) {
  auto fail = [&](std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return false;
  };
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos)
      return fail("IPv6 address needs a closing ], as in [::1]:port");
    host = s.substr(1, close - 1);
    if (!isValidIpv6(host)) return fail("is not a valid IPv6 address");
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return fail("must be [ipv6]:port");
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = s.rfind(':');
    if (colon != std::string_view::npos) {
      host = s.substr(0, colon);
      port_text = s.substr(colon + 1);
      has_port = true;
      if (host.find(':') != std::string_view::npos) {
        return fail("IPv6 addresses need brackets, as in [::1]:port");
      }
    } else {
      host = s;
    }
    if (host.empty()) return fail("needs a host before the port");
    if (!isValidHost(host)) return fail("is not a valid host name or IP address");
  }
  uint16_t port = 0;
  if (!has_port) {
    if (!default_port) return fail("needs a port, as in host:port");
    port = *default_port;
  } else {
    bool overflow = false;
    auto v = parseDigits(port_text, &overflow);
    uint64_t lo = allow_port_zero ? 0 : 1;
    if (!v || *v < lo || *v > 65535) {
      return fail(allow_port_zero ? "port must be a number from 0 to 65535"
                                  : "port must be a number from 1 to 65535");
    }
    port = static_cast<uint16_t>(*v);
  }
  out->kind = ListenAddress::Kind::kTcp;
  out->host = std::string(host);
  out->port = port;
  return true;
}

std::optional<ListenAddress> listenWithReason(std::string_view s, bool allow_port_zero,
                                              std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<ListenAddress> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (s.empty()) return fail("must not be empty");
  ListenAddress a;
  a.text = std::string(s);
  if (s.substr(0, 5) == "unix:") {
    std::string_view path = s.substr(5);
    if (path.empty()) return fail("unix socket needs a path, like unix:/run/corral.sock");
    if (path[0] != '/')
      return fail("unix socket path must be absolute, like unix:/run/corral.sock");
    if (path.find('\0') != std::string_view::npos)
      return fail("unix socket path contains a NUL byte");
    if (path.size() > kMaxUnixPathBytes) return fail("unix socket path is longer than 107 bytes");
    a.kind = ListenAddress::Kind::kUnix;
    a.path = std::string(path);
    return a;
  }
  if (s.find("://") != std::string_view::npos) {
    return fail("must be host:port, [ipv6]:port or unix:/path, not a URL");
  }
  if (!hostPortWithReason(s, allow_port_zero, std::nullopt, &a, why)) return std::nullopt;
  return a;
}

// Decodes %XX escapes; nullopt on a truncated or non-hex escape.
std::optional<std::string> percentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (isDigit(c)) return c - '0';
    char l = lowerAscii(c);
    if (l >= 'a' && l <= 'f') return l - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]);
    int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>((hi << 4) | lo);
    i += 2;
  }
  return out;
}

// An upstream address plus which credentials its URL carried, so the loader can fill the rest
// from upstream.user/password/db field by field.
struct ParsedUpstream {
  UpstreamAddress addr;
  bool has_user = false;
  bool has_password = false;
  bool has_db = false;
};

std::optional<ParsedUpstream> upstreamWithReason(std::string_view s, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<ParsedUpstream> {
    if (why != nullptr) *why = std::move(reason);
    return std::nullopt;
  };
  ParsedUpstream p;
  size_t scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) {
    auto a = listenWithReason(s, /*allow_port_zero=*/false, why);
    if (!a) return std::nullopt;
    p.addr.addr = std::move(*a);
    p.addr.text = std::string(s);
    return p;
  }
  std::string scheme = lowerAscii(s.substr(0, scheme_end));
  if (scheme == "rediss") return fail("rediss:// (TLS) is not supported by this version of corral");
  if (scheme != "redis") {
    return fail("must be host:port, unix:/path or redis://[user[:password]@]host:port[/db]");
  }
  std::string_view rest = s.substr(scheme_end + 3);
  size_t at = rest.rfind('@');
  std::string_view host_and_path = rest;
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    host_and_path = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    auto user = percentDecode(userinfo.substr(0, colon));
    std::optional<std::string> password;
    if (colon != std::string_view::npos) password = percentDecode(userinfo.substr(colon + 1));
    if (!user || (colon != std::string_view::npos && !password)) {
      return fail("bad percent-encoding in the user or password (use %XX)");
    }
    p.has_user = !user->empty();
    p.addr.user = std::move(*user);
    if (password) {
      p.has_password = true;
      p.addr.password = std::move(*password);
    }
  }
  size_t slash = host_and_path.find('/');
  std::string_view host_port = host_and_path.substr(0, slash);
  if (host_port.find_first_of("?#") != std::string_view::npos ||
      (slash != std::string_view::npos &&
       host_and_path.find_first_of("?#", slash) != std::string_view::npos)) {
    return fail("query strings and fragments are not supported in redis:// URLs");
  }
  if (host_port.empty()) return fail("needs a host, as in redis://host:port");
  if (!hostPortWithReason(host_port, /*allow_port_zero=*/false, kDefaultRedisPort, &p.addr.addr,
                          why)) {
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    std::string_view db = host_and_path.substr(slash + 1);
    if (!db.empty()) {
      bool overflow = false;
      auto v = parseDigits(db, &overflow);
      if (!v || *v > static_cast<uint64_t>(kMaxDb)) {
        return fail("database must be a number from 0 to 1000000, as in redis://host:port/2");
      }
      p.addr.db = static_cast<int>(*v);
      p.has_db = true;
    }
  }
  p.addr.text = maskPassword(s);
  p.addr.addr.text = p.addr.text;
  return p;
}

// Two addresses that reach the same server (exact match only: we do not resolve names).
bool sameEndpoint(const ListenAddress& a, const ListenAddress& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == ListenAddress::Kind::kUnix) return a.path == b.path;
  return a.port == b.port && lowerAscii(a.host) == lowerAscii(b.host);
}

bool isValidEnvName(std::string_view s) {
  if (s.empty() || isDigit(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return isDigit(c) || c == '_' || (lowerAscii(c) >= 'a' && lowerAscii(c) <= 'z');
  });
}

// Decodes 64 hex digits (either case) into a SHA-256 digest; false on any other input.
bool decodeSha256Hex(std::string_view s, std::array<uint8_t, 32>* out) {
  if (s.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (isDigit(c)) return c - '0';
    char l = lowerAscii(c);
    if (l >= 'a' && l <= 'f') return l - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(s[2 * i]);
    int lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return true;
}

// An auth user name is one AUTH argument and appears in logs: printable, no spaces.
bool isValidUserName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;
  });
}

std::string joinPath(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

std::string indexPath(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string formatMillis(Millis d) { return std::to_string(d.count()) + "ms"; }

// A value with where it was written, for checks that run after the walk.
template <typename T>
struct Located {
  T value;
  YAML::Mark mark;
  std::string path;
};

// ---- the loader ---------------------------------------------------------------------------

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  // Parses and validates text. May throw (yaml-cpp, bad_alloc): the caller catches.
  void run(const std::string& text);

  // Adds one error; used by the caller for exceptions and file errors too.
  void fail(const YAML::Mark& mark, std::string path, std::string rule,
            std::optional<std::string> got = std::nullopt);

  LoadResult finish();

 private:
  using Handler =
      std::function<void(const YAML::Node& key, const YAML::Node& value, const std::string& path)>;
  struct Key {
    std::string_view name;
    Handler handle;
  };

  // Where to point at a value: an empty value's own mark is the next token, so use the key's.
  static YAML::Mark where(const YAML::Node& key, const YAML::Node& value) {
    return value.IsNull() ? key.Mark() : value.Mark();
  }
  static std::string describe(const YAML::Node& v);
  // Like describe(), but a scalar is described by its size only: the value is a secret.
  static std::string describeSecret(const YAML::Node& v);
  void failValue(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                 std::string rule) {
    fail(where(key, value), path, std::move(rule), describe(value));
  }

  // Visits node's keys in file order. False when node is neither a mapping nor empty.
  bool walkMap(const YAML::Node& node, const std::string& prefix, const std::vector<Key>& keys,
               const std::vector<std::string_view>& later_keys = {});

  // Typed leaves. Each reports its own error and leaves *out untouched on failure.
  const std::string* scalar(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                            const char* rule);
  bool duration(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                bool allow_zero, Millis* out);
  void integer(const YAML::Node& key, const YAML::Node& value, const std::string& path, int64_t min,
               int64_t max, const std::function<void(int64_t)>& set);
  void size(const YAML::Node& key, const YAML::Node& value, const std::string& path, uint64_t min,
            uint64_t max, const std::function<void(uint64_t)>& set);
  void string(const YAML::Node& key, const YAML::Node& value, const std::string& path,
              std::string* out);
  std::optional<Located<ListenAddress>> listenAddress(const YAML::Node& key,
                                                      const YAML::Node& value,
                                                      const std::string& path);
  std::optional<Located<ParsedUpstream>> upstreamAddress(const YAML::Node& key,
                                                         const YAML::Node& value,
                                                         const std::string& path);

  void walkRoot(const YAML::Node& root);
  void walkListen(const YAML::Node& key, const YAML::Node& value, const std::string& path);
  bool walkUpstream(const YAML::Node& value, const std::string& path);
  void walkLimits(const YAML::Node& value, const std::string& path);
  void walkAuth(const YAML::Node& value, const std::string& path);
  void walkAuthUser(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    std::map<std::string, std::string>* names);
  void crossCheck();

  std::string file_;
  std::vector<ConfigError> errors_;
  Config cfg_;

  // Collected during the walk for crossCheck().
  YAML::Mark root_mark_ = YAML::Mark::null_mark();
  std::optional<YAML::Mark> upstream_mark_;
  // The root or upstream was not a mapping: already reported, so "primary is required" is noise.
  bool upstream_unusable_ = false;
  bool listen_seen_ = false;
  std::vector<Located<ListenAddress>> listen_;
  std::optional<Located<ListenAddress>> admin_listen_;
  bool primary_seen_ = false;
  std::optional<Located<ParsedUpstream>> primary_;
  std::vector<Located<ParsedUpstream>> replicas_;
  std::optional<YAML::Mark> read_from_mark_;
  std::optional<YAML::Mark> password_mark_;
  std::optional<Located<std::string>> password_env_;
  std::optional<Located<std::string>> reconnect_min_;  // as written, when given and valid
  std::optional<Located<std::string>> reconnect_max_;
};

void Loader::fail(const YAML::Mark& mark, std::string path, std::string rule,
                  std::optional<std::string> got) {
  ConfigError e;
  e.file = file_;
  // yaml-cpp marks are 0-based; null_mark() is -1, which becomes the documented "0 = unknown".
  e.line = mark.line >= 0 ? mark.line + 1 : 0;
  e.col = mark.column >= 0 ? mark.column + 1 : 0;
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

bool Loader::walkMap(const YAML::Node& node, const std::string& prefix,
                     const std::vector<Key>& keys,
                     const std::vector<std::string_view>& later_keys) {
  // An empty section ("upstream:") is an empty mapping: required-key checks then report it.
  if (node.IsNull()) return true;
  if (!node.IsMap()) {
    fail(node.Mark(), prefix.empty() ? "(root)" : prefix,
         prefix.empty() ? "the file must be a mapping of settings" : "must be a mapping",
         describe(node));
    return false;
  }
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
    auto known =
        std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
    if (known != keys.end()) {
      known->handle(key, value, path);
      continue;
    }
    if (std::find(later_keys.begin(), later_keys.end(), name) != later_keys.end()) {
      fail(key.Mark(), path, "not supported by this version of corral yet");
      continue;
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
    for (std::string_view k : later_keys) consider(k);
    if (best.empty()) {
      fail(key.Mark(), path, "unknown key");
    } else {
      fail(key.Mark(), path, "unknown key (did you mean " + std::string(best) + "?)");
    }
  }
  return true;
}

const std::string* Loader::scalar(const YAML::Node& key, const YAML::Node& value,
                                  const std::string& path, const char* rule) {
  if (!value.IsScalar()) {
    failValue(key, value, path, rule);
    return nullptr;
  }
  return &value.Scalar();
}

bool Loader::duration(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                      bool allow_zero, Millis* out) {
  const std::string* s = scalar(key, value, path, kDurationRule);
  if (s == nullptr) return false;
  std::string why;
  auto d = durationWithReason(*s, &why);
  if (!d) {
    failValue(key, value, path, why);
    return false;
  }
  if (!allow_zero && d->count() == 0) {
    failValue(key, value, path, "must be greater than 0");
    return false;
  }
  *out = *d;
  return true;
}

void Loader::integer(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                     int64_t min, int64_t max, const std::function<void(int64_t)>& set) {
  std::string rule =
      "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  const std::string* s = scalar(key, value, path, rule.c_str());
  if (s == nullptr) return;
  std::string_view digits = *s;
  bool negative = !digits.empty() && digits[0] == '-';
  if (negative) digits.remove_prefix(1);
  bool overflow = false;
  auto v = parseDigits(digits, &overflow);
  if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return failValue(key, value, path, rule);
  }
  int64_t n = negative ? -static_cast<int64_t>(*v) : static_cast<int64_t>(*v);
  if (n < min || n > max) return failValue(key, value, path, rule);
  set(n);
}

void Loader::size(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                  uint64_t min, uint64_t max, const std::function<void(uint64_t)>& set) {
  const std::string* s = scalar(key, value, path, kSizeRule);
  if (s == nullptr) return;
  std::string why;
  auto v = sizeWithReason(*s, &why);
  if (!v) return failValue(key, value, path, why);
  if (*v < min) {
    return failValue(key, value, path,
                     min == kMinByteLimit ? "must be at least 1KiB (is a unit missing?)"
                                          : "must be at least " + std::to_string(min));
  }
  if (*v > max) {
    return failValue(key, value, path, "must be at most " + std::to_string(max) + " bytes");
  }
  set(*v);
}

void Loader::string(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    std::string* out) {
  const std::string* s = scalar(key, value, path, "must be a string");
  if (s != nullptr) *out = *s;
}

std::optional<Located<ListenAddress>> Loader::listenAddress(const YAML::Node& key,
                                                            const YAML::Node& value,
                                                            const std::string& path) {
  const std::string* s = scalar(key, value, path, "must be host:port, [ipv6]:port or unix:/path");
  if (s == nullptr) return std::nullopt;
  std::string why;
  auto a = listenWithReason(*s, /*allow_port_zero=*/true, &why);
  if (!a) {
    failValue(key, value, path, why);
    return std::nullopt;
  }
  return Located<ListenAddress>{std::move(*a), value.Mark(), path};
}

std::optional<Located<ParsedUpstream>> Loader::upstreamAddress(const YAML::Node& key,
                                                               const YAML::Node& value,
                                                               const std::string& path) {
  if (!value.IsScalar()) {
    failValue(key, value, path,
              "must be host:port, unix:/path or redis://[user[:password]@]host:port[/db]");
    return std::nullopt;
  }
  std::string why;
  auto p = upstreamWithReason(value.Scalar(), &why);
  if (!p) {
    // Never echo a password, even from a malformed URL.
    fail(value.Mark(), path, why, quoteForError(maskPassword(value.Scalar())));
    return std::nullopt;
  }
  return Located<ParsedUpstream>{std::move(*p), value.Mark(), path};
}

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
      {"read_from",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule = "must be one of primary, replica, prefer_replica";
         const std::string* s = scalar(k, v, p, kRule);
         if (s == nullptr) return;
         if (*s == "primary") {
           u.read_from = ReadFrom::kPrimary;
         } else if (*s == "replica") {
           u.read_from = ReadFrom::kReplica;
         } else if (*s == "prefer_replica") {
           u.read_from = ReadFrom::kPreferReplica;
         } else {
           return failValue(k, v, p, kRule);
         }
         read_from_mark_ = v.Mark();
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
         integer(k, v, p, 0, kMaxDb, [&](int64_t n) { u.db = static_cast<int>(n); });
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
  };
  return walkMap(node, prefix, keys);
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
      {"pubsub_hard_bytes", bytes64(&l.pubsub_hard_bytes)},
      {"pubsub_soft_bytes", bytes64(&l.pubsub_soft_bytes)},
      {"pubsub_soft_time",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/true, &l.pubsub_soft_time);
       }},
      {"max_reply_depth",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         integer(k, v, p, 1, kMaxReplyDepth,
                 [&](int64_t n) { l.max_reply_depth = static_cast<uint32_t>(n); });
       }},
  };
  walkMap(node, prefix, keys);
}

void Loader::walkAuth(const YAML::Node& node, const std::string& prefix) {
  std::vector<Key> keys = {
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
  if (ok) cfg_.auth.users.push_back(std::move(user));
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
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) {
         std::vector<Key> admin = {
             {"listen", [&](const YAML::Node& k2, const YAML::Node& v2,
                            const std::string& p2) { admin_listen_ = listenAddress(k2, v2, p2); }},
         };
         walkMap(v, p, admin);
       }},
      {"limits",
       [&](const YAML::Node&, const YAML::Node& v, const std::string& p) { walkLimits(v, p); }},
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
         };
         walkMap(v, p, log);
       }},
      {"shutdown_timeout",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/true, &cfg_.shutdown_timeout);
       }},
  };
  // Sections that later versions of corral read: a clear error beats silently ignoring them.
  static const std::vector<std::string_view> kLater = {"policies", "policy_files", "origins",
                                                       "global", "defaults"};
  if (!walkMap(root, "", keys, kLater)) upstream_unusable_ = true;
}

void Loader::crossCheck() {
  // listen: default when absent; clashes between our own addresses.
  if (!listen_seen_) {
    // The default takes part in the clash checks below like a written address.
    listen_.push_back(Located<ListenAddress>{*listenWithReason(kDefaultListen, true, nullptr),
                                             YAML::Mark::null_mark(), "listen (default)"});
    cfg_.listen.push_back(listen_.back().value);
  } else {
    for (size_t i = 0; i < listen_.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        // Port 0 asks the kernel for a free port, so two of them never clash.
        if (listen_[i].value.port != 0 && sameEndpoint(listen_[i].value, listen_[j].value)) {
          fail(listen_[i].mark, listen_[i].path, "duplicate of " + listen_[j].path,
               quoteForError(listen_[i].value.text));
          break;
        }
      }
      cfg_.listen.push_back(listen_[i].value);
    }
  }
  if (admin_listen_) {
    for (const auto& l : listen_) {
      if (admin_listen_->value.port != 0 && sameEndpoint(admin_listen_->value, l.value)) {
        fail(admin_listen_->mark, admin_listen_->path, "is the same address as " + l.path,
             quoteForError(admin_listen_->value.text));
        break;
      }
    }
    cfg_.admin.listen = admin_listen_->value;
  }

  UpstreamConfig& u = cfg_.upstream;
  if (!primary_seen_ && !upstream_unusable_) {
    fail(upstream_mark_.value_or(root_mark_), "upstream.primary",
         "is required: the Redis server to proxy to, like 127.0.0.1:6379");
  }
  if (u.read_from == ReadFrom::kReplica && replicas_.empty() && read_from_mark_) {
    fail(*read_from_mark_, "upstream.read_from", "needs at least one upstream.replicas entry",
         "replica");
  }

  // Every upstream, primary first; each must be a distinct server and none may be ourselves.
  std::vector<Located<ParsedUpstream>*> all;
  if (primary_) all.push_back(&*primary_);
  for (auto& r : replicas_) all.push_back(&r);
  for (size_t i = 0; i < all.size(); ++i) {
    const Located<ParsedUpstream>& a = *all[i];
    bool reported = false;
    for (size_t j = 0; j < i && !reported; ++j) {
      if (sameEndpoint(a.value.addr.addr, all[j]->value.addr.addr)) {
        fail(a.mark, a.path, "is the same server as " + all[j]->path,
             quoteForError(a.value.addr.text));
        reported = true;
      }
    }
    for (size_t j = 0; j < listen_.size() && !reported; ++j) {
      if (sameEndpoint(a.value.addr.addr, listen_[j].value)) {
        fail(a.mark, a.path,
             "is corral's own address " + listen_[j].path + "; corral would proxy to itself",
             quoteForError(a.value.addr.text));
        reported = true;
      }
    }
  }

  // Credentials: password and password_env are two ways to say one thing.
  if (password_env_) {
    if (password_mark_) {
      fail(password_env_->mark, password_env_->path,
           "cannot be used together with upstream.password");
    } else if (const char* env = std::getenv(password_env_->value.c_str()); env == nullptr) {
      fail(password_env_->mark, password_env_->path,
           "environment variable " + password_env_->value + " is not set");
    } else if (*env == '\0') {
      fail(password_env_->mark, password_env_->path,
           "environment variable " + password_env_->value + " is empty");
    } else {
      u.password = env;
    }
  }

  // Report at whichever bound was written (max when both were): the other one is a default.
  if (u.reconnect_min > u.reconnect_max) {
    if (reconnect_max_) {
      fail(reconnect_max_->mark, reconnect_max_->path,
           "must not be less than reconnect_backoff.min (" + formatMillis(u.reconnect_min) + ")",
           quoteForError(reconnect_max_->value));
    } else if (reconnect_min_) {
      fail(reconnect_min_->mark, reconnect_min_->path,
           "must not be more than reconnect_backoff.max (" + formatMillis(u.reconnect_max) + ")",
           quoteForError(reconnect_min_->value));
    }
  }

  // Make each address self-contained: URL credentials win field by field, upstream.* fills in.
  auto complete = [&](const ParsedUpstream& p) {
    UpstreamAddress a = p.addr;
    if (!p.has_user) a.user = u.user;
    if (!p.has_password) a.password = u.password;
    if (!p.has_db) a.db = u.db;
    return a;
  };
  if (primary_) u.primary = complete(primary_->value);
  for (const auto& r : replicas_) u.replicas.push_back(complete(r.value));
}

void Loader::run(const std::string& text) {
  std::vector<YAML::Node> docs = YAML::LoadAll(text);
  if (docs.size() > 1) {
    fail(docs[1].Mark(), "(yaml)", "the file holds more than one YAML document; corral reads one");
    return;
  }
  walkRoot(docs.empty() ? YAML::Node() : docs[0]);
  crossCheck();
}

LoadResult Loader::finish() {
  LoadResult r;
  // Handlers run in file order, but cross-field checks run after; sort so the operator reads
  // the errors top to bottom. Stable, so errors at one position keep their order.
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.col) < std::pair(b.line, b.col);
  });
  r.errors = std::move(errors_);
  if (r.errors.empty()) {
    cfg_.source = file_;
    r.config = std::move(cfg_);
  }
  return r;
}

}  // namespace

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
    return LoadResult{std::nullopt,
                      {ConfigError{source_name, 0, 0, "(internal)", "out of memory"}}};
  }
}

LoadResult loadConfigFile(const std::string& path) {
  auto file_error = [&](std::string message) {
    LoadResult r;
    r.errors.push_back(ConfigError{path, 0, 0, "(file)", std::move(message)});
    return r;
  };
  try {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return file_error(std::string("cannot read (") + std::strerror(errno) + ")");
    std::string text;
    char buf[16384];
    int err = 0;
    bool too_big = false;
    while (true) {
      size_t n = std::fread(buf, 1, sizeof buf, f);
      text.append(buf, n);
      if (text.size() > kMaxFileBytes) {
        too_big = true;
        break;
      }
      if (n < sizeof buf) {
        if (std::ferror(f) != 0) err = errno;
        break;
      }
    }
    std::fclose(f);
    if (err != 0) return file_error(std::string("cannot read (") + std::strerror(err) + ")");
    if (too_big) return file_error("is larger than 16MiB; is it really a config file?");
    return loadConfigText(text, path);
  } catch (...) {
    return file_error("cannot read (out of memory)");
  }
}

std::optional<Millis> parseDuration(std::string_view s) { return durationWithReason(s, nullptr); }

std::optional<uint64_t> parseSize(std::string_view s) { return sizeWithReason(s, nullptr); }

std::optional<ListenAddress> parseListenAddress(std::string_view s) {
  return listenWithReason(s, /*allow_port_zero=*/true, nullptr);
}

std::optional<UpstreamAddress> parseUpstreamAddress(std::string_view s) {
  auto p = upstreamWithReason(s, nullptr);
  if (!p) return std::nullopt;
  return std::move(p->addr);
}

}  // namespace corral::config
