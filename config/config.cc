// Loader and validator for corral's YAML configuration.
//
//   file --readFile--> text --YAML::LoadAll--> node tree
//     --Loader::walk: one handler per known key, visited in file order--> Config slices + errors
//                     (auth.users: each user checked as a whole, its password_env read, here)
//                     (origins, global, defaults and policies: each policy field once, from
//                      the table in Loader::policyFields())
//     --Loader::readPolicyFiles: each policy_files entry (file or directory of *.yaml) walked
//                                the same way, its marks reported in its own name
//     --Loader::finishPolicies: defaults merged field by field into each policy, rules between
//                               fields, origin names, required fields -> Config::policy
//     --Loader::crossCheck: rules that need several keys (primary vs replicas, backoff min/max,
//                           password_env, listen clashes), credentials copied into addresses
//     --stable sort by file, then position--> LoadResult {config or every error}
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
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <new>
#include <set>
#include <system_error>
#include <tuple>
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
  } else if (unit == "d") {
    mult = int64_t{24} * 60 * 60 * 1000;  // TTLs of cached objects are often days
  } else if (unit.empty()) {
    // "0" needs no unit; any other bare number is ambiguous (500 what?).
    if (s.find_first_not_of('0') == std::string_view::npos) return Millis{0};
    return fail("must have a unit (ms, s, m, h or d), like 250ms or 5s");
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

std::string formatWhere(const Where& w) {
  return w.file + ":" + std::to_string(w.line) + ":" + std::to_string(w.col);
}

// ---- policy scalars -----------------------------------------------------------------------

constexpr const char* kBoolRule = "must be true or false";
constexpr const char* kRateRule = "must be a rate like 100/s, 6000/m or 5/250ms";
constexpr const char* kJitterRule = "must be a fraction like 0.1 or a percentage like 10%";
constexpr const char* kNameRule = "must be 1 to 128 characters of A-Z a-z 0-9 _ . : -";
// Names (policies, limits, origins) appear in metrics labels, logs and error replies.
constexpr size_t kMaxNameBytes = 128;
constexpr int64_t kMaxPriority = 1000000;
constexpr uint64_t kMaxKeyBytesLimit = 65536;
constexpr int64_t kMaxBurst = 1000000000;
constexpr uint64_t kMaxRateCount = 1000000000;
constexpr int64_t kMaxInFlight = 1000000;
constexpr uint16_t kDefaultHttpPort = 80;

bool isAlpha(char c) { return lowerAscii(c) >= 'a' && lowerAscii(c) <= 'z'; }

// Policy, rate-limit and origin names: [A-Za-z0-9_.:-]{1,128}.
bool isValidName(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameBytes && std::all_of(s.begin(), s.end(), [](char c) {
    return isAlpha(c) || isDigit(c) || c == '_' || c == '.' || c == ':' || c == '-';
  });
}

// A placeholder name of a key template, as used by key_by's capture:<name>.
bool isIdentifier(std::string_view s) {
  return !s.empty() && !isDigit(s[0]) && std::all_of(s.begin(), s.end(), [](char c) {
    return isAlpha(c) || isDigit(c) || c == '_';
  });
}

// A command name ("get"), or a subcommand written "config|set" (Redis's ACL spelling): one or
// two words of [a-z0-9_.-] starting with a letter, joined by one '|'. '.' is for module commands
// (JSON.GET). config/ has no command table, so unknown names are not caught here.
bool isValidCommandName(std::string_view s) {
  size_t bar = s.find('|');
  auto word = [](std::string_view w) {
    return !w.empty() && isAlpha(w[0]) && std::all_of(w.begin(), w.end(), [](char c) {
      return isAlpha(c) || isDigit(c) || c == '_' || c == '.' || c == '-';
    });
  };
  if (bar == std::string_view::npos) return word(s);
  return word(s.substr(0, bar)) && word(s.substr(bar + 1));
}

// "0", "0.1", "12.5": digits with an optional fraction; no sign, exponent or spaces. Computed
// by hand rather than with strtod, whose decimal point depends on the locale.
std::optional<double> parseDecimal(std::string_view s) {
  size_t n = leadingDigits(s);
  if (n == 0 || n > 9) return std::nullopt;
  bool overflow = false;
  double v = static_cast<double>(*parseDigits(s.substr(0, n), &overflow));
  std::string_view frac = s.substr(n);
  if (frac.empty()) return v;
  if (frac[0] != '.') return std::nullopt;
  frac.remove_prefix(1);
  size_t m = leadingDigits(frac);
  if (m == 0 || m > 9 || m != frac.size()) return std::nullopt;
  double scale = 1;
  for (size_t i = 0; i < m; ++i) scale *= 10;
  return v + static_cast<double>(*parseDigits(frac, &overflow)) / scale;
}

// ttl.jitter: "10%" or a fraction "0.1", in [0, 1).
std::optional<double> jitterWithReason(std::string_view s, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<double> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (!s.empty() && s[0] == '-') return fail("must not be negative");
  bool percent = !s.empty() && s.back() == '%';
  auto d = parseDecimal(percent ? s.substr(0, s.size() - 1) : s);
  if (!d) return fail(kJitterRule);
  double f = percent ? *d / 100 : *d;
  // A jitter of 1 could cut a TTL to nothing: the key would never be stored.
  if (f >= 1) return fail("must be less than 100% (as a fraction, less than 1)");
  return f;
}

struct Rate {
  uint64_t count = 0;
  Millis period{0};
};

// "100/s", "6000/m", "5/250ms", "1000/h": a count per period, where a bare unit means one of it.
std::optional<Rate> rateWithReason(std::string_view s, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Rate> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return fail(kRateRule);
  bool overflow = false;
  auto count = parseDigits(s.substr(0, slash), &overflow);
  if (!count) return fail(overflow ? "count is too large" : kRateRule);
  if (*count == 0) return fail("must allow at least 1 request per period");
  if (*count > kMaxRateCount) return fail("count must be at most 1000000000");
  std::string_view per = s.substr(slash + 1);
  Millis period{0};
  if (per == "ms") {
    period = Millis{1};
  } else if (per == "s") {
    period = Millis{1000};
  } else if (per == "m") {
    period = Millis{60 * 1000};
  } else if (per == "h") {
    period = Millis{60 * 60 * 1000};
  } else {
    auto d = durationWithReason(per, nullptr);
    if (!d) return fail(kRateRule);
    period = *d;
  }
  if (period.count() == 0) return fail("period must be greater than 0");
  if (period > Millis{24 * 60 * 60 * 1000}) return fail("period must be at most 24h");
  // The limiter spends period / count per request in nanoseconds; keep that at least 1us.
  if (*count > static_cast<uint64_t>(period.count()) * 1000) {
    return fail("must be at most 1000000 per second");
  }
  return Rate{*count, period};
}

// origins.*.base_url: http://host[:port][/prefix]. Returns the URL with the scheme lower-cased
// and any trailing '/' dropped, so that base_url + fill.path never holds "//".
std::optional<std::string> httpUrlWithReason(std::string_view s, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<std::string> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  static constexpr const char* kUrlRule = "must be an http:// URL like http://127.0.0.1:8080";
  size_t scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) return fail(kUrlRule);
  std::string scheme = lowerAscii(s.substr(0, scheme_end));
  if (scheme == "https") return fail("https origins are not supported by this version of corral");
  if (scheme != "http") return fail(kUrlRule);
  std::string_view rest = s.substr(scheme_end + 3);
  for (char c : rest) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return fail("must not contain spaces or control characters");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return fail("query strings and fragments are not supported in origin URLs");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return fail("user info (user@host) is not supported in origin URLs");
  }
  if (authority.empty()) return fail("needs a host, as in http://host:port");
  ListenAddress a;
  if (!hostPortWithReason(authority, /*allow_port_zero=*/false, kDefaultHttpPort, &a, why)) {
    return std::nullopt;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return "http://" + std::string(authority) + std::string(path);
}

// Reads a whole file, at most kMaxFileBytes. On failure returns the reason: "cannot read (No
// such file or directory)" or "is larger than 16MiB".
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

// A value with where it was written, for checks that run after the walk.
template <typename T>
struct Located {
  T value;
  YAML::Mark mark;
  std::string path;
};

// One policy field (ttl.min, fill.origin, ...) as written in one layer.
struct Written {
  Where where;       // of the value
  std::string text;  // the value as written, for messages
  std::string path;  // the full key path: "policies[2].ttl.min", "defaults.ttl.min"
};

// One layer of policy fields: a policy, a policy file's `defaults:` or the main `defaults:`.
// Layers are parsed on their own and merged field by field afterwards (Loader::apply), which is
// the YAML deep merge: nested mappings merge key by key, lists and scalars replace. Each value
// is checked once, in the layer that wrote it, so an error in `defaults:` is reported once, at
// its own position, however many policies inherit it.
struct PolicyBody {
  PolicySpec spec;
  std::string prefix = "defaults";  // error path of the mapping: "policies[2]", "defaults"
  Where where;                      // of the mapping
  int file_defaults = -1;           // policies: index of their file's defaults, -1 = none
  std::map<std::string, Written, std::less<>> set;  // field -> where, for valid values
  std::set<std::string, std::less<>> written;       // every field written, valid or not

  bool has(std::string_view field) const { return set.find(field) != set.end(); }
  // Written but invalid: already reported, so checks that need the field stay quiet.
  bool bad(std::string_view field) const {
    return written.find(field) != written.end() && !has(field);
  }
};

// ---- the loader ---------------------------------------------------------------------------

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)), cur_file_(file_) {
    file_rank_.emplace(file_, 0);
  }

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

  // ---- policies: origins, global, defaults, policies, policy_files ----
  using ParseFn = bool (*)(Loader&, PolicySpec&, const YAML::Node& key, const YAML::Node& value,
                           const std::string& path);
  using CopyFn = void (*)(PolicySpec& to, const PolicySpec& from);
  // Every field of a policy, declared once: how to parse it, how to merge it.
  struct PolicyField {
    std::string_view path;  // "mode", "ttl.min": section.key
    ParseFn parse;
    CopyFn copy;
    const char* not_in_defaults = nullptr;  // set: refused under defaults:, for this reason
  };
  static const std::vector<PolicyField>& policyFields();

  Where whereOf(const YAML::Mark& mark) const;
  void failAt(const Where& where, std::string path, std::string rule,
              std::optional<std::string> got = std::nullopt);
  bool boolean(const YAML::Node& key, const YAML::Node& value, const std::string& path, bool* out);
  // One of the given words; the rule lists them.
  template <typename E>
  bool choice(const YAML::Node& key, const YAML::Node& value, const std::string& path,
              std::initializer_list<std::pair<std::string_view, E>> options, E* out) {
    std::string rule = "must be one of ";
    for (const auto& o : options) {
      if (&o != options.begin()) rule += ", ";
      rule += o.first;
    }
    const std::string* s = scalar(key, value, path, rule.c_str());
    if (s == nullptr) return false;
    for (const auto& o : options) {
      if (*s == o.first) {
        *out = o.second;
        return true;
      }
    }
    failValue(key, value, path, rule);
    return false;
  }
  template <typename E>
  bool choiceOpt(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                 std::initializer_list<std::pair<std::string_view, E>> options,
                 std::optional<E>* out) {
    E e{};
    if (!choice(key, value, path, options, &e)) return false;
    *out = e;
    return true;
  }
  bool durationOpt(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                   std::optional<Millis>* out);
  bool integerOk(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                 int64_t min, int64_t max, int64_t* out);
  bool sizeOk(const YAML::Node& key, const YAML::Node& value, const std::string& path, uint64_t min,
              uint64_t max, uint64_t* out);
  bool jitter(const YAML::Node& key, const YAML::Node& value, const std::string& path, double* out);
  bool positiveNumber(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                      double* out);
  // A name unique within *seen (name -> "path at file:line:col" of its first use).
  bool uniqueName(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                  std::map<std::string, std::string>* seen, std::string* out);
  bool commandList(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                   bool allow_categories, std::vector<std::string>* out,
                   std::vector<Located<std::string>>* located = nullptr);
  bool fillCommands(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    std::vector<std::string>* out);
  bool keyBy(const YAML::Node& key, const YAML::Node& value, const std::string& path, bool global,
             std::vector<KeyByPart>* out);
  bool rateLimits(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                  bool global, std::vector<RateLimitSpec>* out);
  void walkRateLimit(const YAML::Node& key, const YAML::Node& node, const std::string& path,
                     bool global, std::vector<RateLimitSpec>* out);
  void walkOrigins(const YAML::Node& key, const YAML::Node& value, const std::string& path);
  void walkGlobal(const YAML::Node& value, const std::string& path);
  void walkDefaults(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    PolicyBody* body);
  void walkPolicyBody(const YAML::Node& node, const std::string& prefix, bool is_defaults,
                      PolicyBody* body);
  void walkPolicies(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    int file_defaults);
  void walkPolicyFiles(const YAML::Node& key, const YAML::Node& value, const std::string& path);
  void readPolicyFiles();
  void readPolicyFile(const std::string& name, const Located<std::string>& entry,
                      std::map<std::string, std::string>* read);
  static void apply(PolicyBody* merged, const PolicyBody& top);
  void checkLayer(const PolicyBody& body, const std::set<std::string, std::less<>>& origins);
  void checkConsistency(const PolicyBody& merged, const PolicyBody& top);
  void checkComplete(const PolicyBody& merged, const PolicyBody& top);
  void finishPolicies();

  std::string file_;      // the main config file
  std::string cur_file_;  // the file being walked: file_ or a policy file; marks refer to it
  std::map<std::string, size_t> file_rank_;  // file -> order read, to sort errors
  std::vector<ConfigError> errors_;
  Config cfg_;

  // Policies, collected during the walk; merged and checked by finishPolicies().
  PolicyBody main_defaults_;
  std::vector<PolicyBody> file_defaults_;  // one per policy file read (empty if it has none)
  std::vector<PolicyBody> policy_bodies_;  // inline ones first, then files in reading order
  std::vector<Located<std::string>> policy_file_entries_;
  std::map<std::string, std::string> policy_names_;  // name -> "path at file:line:col"
  std::map<std::string, std::string> limit_names_;   // across global and every policy

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
      {"max_reply_bytes", bytes64(&l.max_reply_bytes)},
      {"pubsub_hard_bytes", bytes64(&l.pubsub_hard_bytes)},
      {"pubsub_soft_bytes", bytes64(&l.pubsub_soft_bytes)},
      {"pubsub_soft_time",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/true, &l.pubsub_soft_time);
       }},
      // Deprecated, ignored (config.h); still checked so that a typo'd value is reported.
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

// ---- policies -----------------------------------------------------------------------------

bool Loader::boolean(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                     bool* out) {
  // Strict: yaml-cpp would also take yes/no/on/off/y/n, which read as words in this file.
  const std::string* s = scalar(key, value, path, kBoolRule);
  if (s == nullptr) return false;
  if (*s == "true") {
    *out = true;
  } else if (*s == "false") {
    *out = false;
  } else {
    failValue(key, value, path, kBoolRule);
    return false;
  }
  return true;
}

bool Loader::durationOpt(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                         std::optional<Millis>* out) {
  Millis d{0};
  if (!duration(key, value, path, /*allow_zero=*/false, &d)) return false;
  *out = d;
  return true;
}

bool Loader::integerOk(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                       int64_t min, int64_t max, int64_t* out) {
  bool ok = false;
  integer(key, value, path, min, max, [&](int64_t n) {
    *out = n;
    ok = true;
  });
  return ok;
}

bool Loader::sizeOk(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    uint64_t min, uint64_t max, uint64_t* out) {
  bool ok = false;
  size(key, value, path, min, max, [&](uint64_t n) {
    *out = n;
    ok = true;
  });
  return ok;
}

bool Loader::jitter(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    double* out) {
  const std::string* s = scalar(key, value, path, kJitterRule);
  if (s == nullptr) return false;
  std::string why;
  auto j = jitterWithReason(*s, &why);
  if (!j) {
    failValue(key, value, path, why);
    return false;
  }
  *out = *j;
  return true;
}

bool Loader::positiveNumber(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                            double* out) {
  static constexpr const char* kRule = "must be a number greater than 0, like 1.0";
  const std::string* s = scalar(key, value, path, kRule);
  if (s == nullptr) return false;
  auto d = parseDecimal(*s);
  if (!d || *d <= 0) {
    failValue(key, value, path, kRule);
    return false;
  }
  *out = *d;
  return true;
}

bool Loader::uniqueName(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                        std::map<std::string, std::string>* seen, std::string* out) {
  const std::string* s = scalar(key, value, path, kNameRule);
  if (s == nullptr) return false;
  if (!isValidName(*s)) {
    failValue(key, value, path, kNameRule);
    return false;
  }
  auto [first, inserted] = seen->emplace(*s, path + " at " + formatWhere(whereOf(value.Mark())));
  if (!inserted) {
    failValue(key, value, path, "duplicate of " + first->second);
    return false;
  }
  *out = *s;
  return true;
}

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
  static constexpr const char* kRule = "must be a list of GET, MGET, GETEX, HGETALL";
  static constexpr std::string_view kFillable[] = {"get", "mget", "getex", "hgetall"};
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
      failValue(key, *it, indexPath(path, i), "must be one of GET, MGET, GETEX, HGETALL");
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
  size_t before = errors_.size();
  size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    walkRateLimit(key, *it, indexPath(path, i), global, out);
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
  bool name_seen = false;
  bool rate_seen = false;
  bool burst_seen = false;
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
           failValue(k, v, p,
                     "scope global (a limit shared by every corral) is not supported by this "
                     "version of corral yet; use local");
         } else {
           failValue(k, v, p, kRule);
         }
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
  out->push_back(std::move(limit));
}

void Loader::walkOrigins(const YAML::Node& key, const YAML::Node& node, const std::string& prefix) {
  static constexpr const char* kRule =
      "must be a mapping of origin names to {base_url, timeout, max_in_flight}";
  static constexpr const char* kOriginRule =
      "must be a mapping like {base_url: \"http://127.0.0.1:8080\", timeout: 1s}";
  if (node.IsNull()) return;
  if (!node.IsMap()) return failValue(key, node, prefix, kRule);
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node k = it->first;
    const YAML::Node v = it->second;
    if (!k.IsScalar()) {
      fail(k.Mark(), prefix, "keys must be plain names", describe(k));
      continue;
    }
    const std::string& name = k.Scalar();
    std::string path = joinPath(prefix, name);
    auto [first, inserted] = seen.emplace(name, k.Mark());
    if (!inserted) {
      fail(k.Mark(), path,
           "duplicate key (first set at line " + std::to_string(first->second.line + 1) + ")");
      continue;
    }
    if (!isValidName(name)) {
      fail(k.Mark(), path, "origin names must be 1 to 128 characters of A-Z a-z 0-9 _ . : -",
           quoteForError(name));
      continue;
    }
    if (!v.IsMap() && !v.IsNull()) {
      failValue(k, v, path, kOriginRule);
      continue;
    }
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
        {"max_in_flight",
         [&](const YAML::Node& k2, const YAML::Node& v2, const std::string& p2) {
           int64_t n = 0;
           if (integerOk(k2, v2, p2, 1, kMaxInFlight, &n))
             o.max_in_flight = static_cast<uint32_t>(n);
         }},
    };
    walkMap(v, path, keys);
    if (!url_seen) fail(where(k, v), path + ".base_url", "is required, like http://127.0.0.1:8080");
    cfg_.policy.origins.push_back(std::move(o));
  }
}

void Loader::walkGlobal(const YAML::Node& node, const std::string& prefix) {
  GlobalSpec& g = cfg_.policy.global;
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
  };
  walkMap(node, prefix, keys);
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
  if (!value.IsMap()) {
    return failValue(key, value, path,
                     "must be a mapping of policy fields, like {ttl: {jitter: 10%}}");
  }
  walkPolicyBody(value, path, /*is_defaults=*/true, body);
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
    walkPolicyBody(item, body.prefix, /*is_defaults=*/false, &body);
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

void Loader::readPolicyFiles() {
  namespace fs = std::filesystem;
  const fs::path base = fs::path(file_).parent_path();
  std::map<std::string, std::string> read;  // file -> the policy_files entry that read it
  for (const Located<std::string>& entry : policy_file_entries_) {
    fs::path p(entry.value);
    if (p.is_relative() && !base.empty()) p = base / p;
    p = p.lexically_normal();
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (ec) {
      fail(entry.mark, entry.path, "cannot read " + p.string() + " (" + ec.message() + ")");
      continue;
    }
    if (fs::is_regular_file(st)) {
      readPolicyFile(p.string(), entry, &read);
      continue;
    }
    if (!fs::is_directory(st)) {
      fail(entry.mark, entry.path, "is neither a file nor a directory", quoteForError(p.string()));
      continue;
    }
    // A directory: its *.yaml and *.yml files (not hidden ones, not subdirectories), by name.
    // Symlinks are followed, so a Kubernetes ConfigMap mount works.
    std::vector<std::string> names;
    fs::directory_iterator it(p, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      auto ends = [&](std::string_view ext) {
        return name.size() > ext.size() &&
               name.compare(name.size() - ext.size(), ext.size(), ext.data(), ext.size()) == 0;
      };
      if (name[0] == '.' || !(ends(".yaml") || ends(".yml"))) continue;
      std::error_code ec2;
      if (fs::is_regular_file(it->path(), ec2)) names.push_back(std::move(name));
    }
    if (ec) {
      fail(entry.mark, entry.path, "cannot read " + p.string() + " (" + ec.message() + ")");
      continue;
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) readPolicyFile((p / name).string(), entry, &read);
  }
}

void Loader::readPolicyFile(const std::string& name, const Located<std::string>& entry,
                            std::map<std::string, std::string>* read) {
  if (name == std::filesystem::path(file_).lexically_normal().string()) {
    return fail(entry.mark, entry.path, "names the main config file itself", quoteForError(name));
  }
  auto [first, inserted] = read->emplace(name, entry.path);
  if (!inserted) {
    return fail(entry.mark, entry.path, name + " is already read by " + first->second);
  }
  std::string text;
  if (auto err = readWholeFile(name, &text)) {
    return fail(entry.mark, entry.path, name + ": " + *err);
  }
  cfg_.policy.files.push_back(name);
  file_rank_.emplace(name, file_rank_.size());
  // Marks now refer to this file; back to the main file however this function is left.
  struct Restore {
    Loader* loader;
    ~Restore() { loader->cur_file_ = loader->file_; }
  } restore{this};
  cur_file_ = name;
  int defaults_index = static_cast<int>(file_defaults_.size());
  file_defaults_.emplace_back();
  // A policy file that does not parse is reported in its own name; the others are still read.
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.size() > 1) {
      fail(docs[1].Mark(), "(yaml)",
           "the file holds more than one YAML document; corral reads one");
    } else {
      std::vector<Key> keys = {
          {"policies", [&](const YAML::Node& k, const YAML::Node& v,
                           const std::string& p) { walkPolicies(k, v, p, defaults_index); }},
          {"defaults",
           [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
             walkDefaults(k, v, p, &file_defaults_[static_cast<size_t>(defaults_index)]);
           }},
      };
      walkMap(docs.empty() ? YAML::Node() : docs[0], "", keys);
    }
  } catch (const YAML::DeepRecursion& e) {
    fail(e.mark, "(yaml)", "nested too deeply for the YAML parser");
  } catch (const YAML::Exception& e) {
    fail(e.mark, "(yaml)", escapeMessage(e.msg));
  }
}

void Loader::apply(PolicyBody* merged, const PolicyBody& top) {
  for (const PolicyField& f : policyFields()) {
    if (top.written.find(f.path) == top.written.end()) continue;
    f.copy(merged->spec, top.spec);
    merged->written.emplace(f.path);
    auto it = top.set.find(f.path);
    if (it != top.set.end()) {
      merged->set[std::string(f.path)] = it->second;
    } else if (auto old = merged->set.find(f.path); old != merged->set.end()) {
      merged->set.erase(old);
    }
  }
  merged->prefix = top.prefix;
  merged->where = top.where;
  merged->spec.where = top.where;
}

// Rules that need only what one layer wrote: each is reported once, where it was written.
void Loader::checkLayer(const PolicyBody& body, const std::set<std::string, std::less<>>& origins) {
  if (auto it = body.set.find("fill.origin"); it != body.set.end()) {
    if (origins.find(body.spec.fill.origin) == origins.end()) {
      failAt(it->second.where, it->second.path, "must name an entry of origins",
             quoteForError(it->second.text));
    }
  }
  if (auto it = body.set.find("routing.read_from"); it != body.set.end()) {
    if (body.spec.routing.read_from == PolicyReadFrom::kReplica && replicas_.empty()) {
      failAt(it->second.where, it->second.path, "needs at least one upstream.replicas entry",
             "replica");
    }
  }
}

// Order rules between fields (ttl.min <= ttl.default <= ttl.max) on a merged layer. A rule is
// reported only when `top` wrote one of its fields, at a field `top` wrote: when every field came
// from defaults, the check of the defaults themselves has reported it already.
void Loader::checkConsistency(const PolicyBody& merged, const PolicyBody& top) {
  const TtlSpec& t = merged.spec.ttl;
  auto less_eq = [&](std::string_view lo, const std::optional<Millis>& lo_value,
                     std::string_view hi, const std::optional<Millis>& hi_value, bool prefer_hi) {
    auto a = merged.set.find(lo);
    auto b = merged.set.find(hi);
    if (a == merged.set.end() || b == merged.set.end() || !lo_value || !hi_value) return;
    bool top_lo = top.has(lo);
    bool top_hi = top.has(hi);
    if ((!top_lo && !top_hi) || *lo_value <= *hi_value) return;
    bool at_hi = prefer_hi ? top_hi : !top_lo;
    const Written& at = at_hi ? b->second : a->second;
    const Written& other = at_hi ? a->second : b->second;
    std::string rule = at_hi ? "must not be less than " : "must not be more than ";
    rule += std::string(at_hi ? lo : hi) + " (" + quoteForError(other.text);
    if (!(at_hi ? top_lo : top_hi))
      rule += " from " + other.path + " at " + formatWhere(other.where);
    rule += ")";
    failAt(at.where, at.path, rule, quoteForError(at.text));
  };
  less_eq("ttl.min", t.min, "ttl.max", t.max, /*prefer_hi=*/true);
  less_eq("ttl.min", t.min, "ttl.default", t.default_ttl, /*prefer_hi=*/true);
  less_eq("ttl.default", t.default_ttl, "ttl.max", t.max, /*prefer_hi=*/false);
}

// Rules for a whole policy, defaults merged: required fields and fields that need others.
void Loader::checkComplete(const PolicyBody& merged, const PolicyBody& top) {
  // Point at the field when the policy wrote it, else at the policy (defaults wrote it).
  auto at = [&](std::string_view field) {
    auto it = top.set.find(field);
    return it != top.set.end() ? it->second.where : top.where;
  };
  if (top.written.find("name") == top.written.end()) {
    failAt(top.where, top.prefix + ".name", "is required");
  }
  if (top.written.find("match") == top.written.end()) {
    failAt(top.where, top.prefix + ".match", "is required, like \"user:<id:int>\"");
  }
  const PolicySpec& s = merged.spec;
  if (s.ttl.require && s.ttl.on_violation == TtlOnViolation::kFix && !s.ttl.default_ttl &&
      !merged.bad("ttl.default") && !merged.bad("ttl.on_violation")) {
    failAt(at("ttl.require"), top.prefix, "ttl.require with on_violation fix needs ttl.default");
  }
  if (!s.fill.origin.empty() && s.fill.path.empty() && !merged.bad("fill.path")) {
    failAt(at("fill.origin"), top.prefix + ".fill.path", "is required with fill.origin");
  }
  if (auto it = top.set.find("fill.path");
      it != top.set.end() && s.fill.origin.empty() && !merged.bad("fill.origin")) {
    failAt(it->second.where, it->second.path, "needs fill.origin", quoteForError(it->second.text));
  }
}

void Loader::finishPolicies() {
  std::set<std::string, std::less<>> origins;
  for (const OriginSpec& o : cfg_.policy.origins) origins.insert(o.name);
  checkLayer(main_defaults_, origins);
  checkConsistency(main_defaults_, main_defaults_);
  // Each policy file's defaults apply on top of the main ones, for that file's policies.
  std::vector<PolicyBody> file_defaults;
  for (const PolicyBody& fd : file_defaults_) {
    checkLayer(fd, origins);
    PolicyBody merged = main_defaults_;
    apply(&merged, fd);
    checkConsistency(merged, fd);
    file_defaults.push_back(std::move(merged));
  }
  for (const PolicyBody& p : policy_bodies_) {
    checkLayer(p, origins);
    PolicyBody merged =
        p.file_defaults < 0 ? main_defaults_ : file_defaults[static_cast<size_t>(p.file_defaults)];
    apply(&merged, p);
    checkConsistency(merged, p);
    checkComplete(merged, p);
    cfg_.policy.policies.push_back(std::move(merged.spec));
  }
}

const std::vector<Loader::PolicyField>& Loader::policyFields() {
  using N = const YAML::Node&;
  using P = const std::string&;
  using L = Loader&;
  using S = PolicySpec&;
  using C = const PolicySpec&;
  static const std::vector<PolicyField> kFields = {
      {"name",
       [](L l, S s, N k, N v, P p) { return l.uniqueName(k, v, p, &l.policy_names_, &s.name); },
       [](S d, C s) { d.name = s.name; },
       "is not allowed in defaults: each policy has its own name"},
      {"match",
       [](L l, S s, N k, N v, P p) {
         // The template itself is compiled (and its errors reported) by policies/.
         static constexpr const char* kRule = "must be a key template like \"user:<id:int>\"";
         const std::string* t = l.scalar(k, v, p, kRule);
         if (t == nullptr) return false;
         if (t->empty()) {
           l.failValue(k, v, p, kRule);
           return false;
         }
         s.match = *t;
         s.match_where = l.whereOf(v.Mark());
         return true;
       },
       [](S d, C s) {
         d.match = s.match;
         d.match_where = s.match_where;
       },
       "is not allowed in defaults: each policy has its own match"},
      {"mode",
       [](L l, S s, N k, N v, P p) {
         return l.choice(k, v, p,
                         {{"enforce", PolicyMode::kEnforce},
                          {"audit", PolicyMode::kAudit},
                          {"off", PolicyMode::kOff}},
                         &s.mode);
       },
       [](S d, C s) { d.mode = s.mode; }},
      {"priority",
       [](L l, S s, N k, N v, P p) {
         int64_t n = 0;
         if (!l.integerOk(k, v, p, -kMaxPriority, kMaxPriority, &n)) return false;
         s.priority = static_cast<int>(n);
         return true;
       },
       [](S d, C s) { d.priority = s.priority; }},
      {"rate_limits",
       [](L l, S s, N k, N v, P p) { return l.rateLimits(k, v, p, false, &s.rate_limits); },
       [](S d, C s) { d.rate_limits = s.rate_limits; },
       "is not allowed in defaults: limit names are unique, so a limit for every key belongs in "
       "global.rate_limits"},
      {"naming.max_key_bytes",
       [](L l, S s, N k, N v, P p) {
         uint64_t n = 0;
         if (!l.sizeOk(k, v, p, 1, kMaxKeyBytesLimit, &n)) return false;
         s.max_key_bytes = static_cast<uint32_t>(n);
         return true;
       },
       [](S d, C s) { d.max_key_bytes = s.max_key_bytes; }},
      {"ttl.default",
       [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.ttl.default_ttl); },
       [](S d, C s) { d.ttl.default_ttl = s.ttl.default_ttl; }},
      {"ttl.min", [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.ttl.min); },
       [](S d, C s) { d.ttl.min = s.ttl.min; }},
      {"ttl.max", [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.ttl.max); },
       [](S d, C s) { d.ttl.max = s.ttl.max; }},
      {"ttl.require", [](L l, S s, N k, N v, P p) { return l.boolean(k, v, p, &s.ttl.require); },
       [](S d, C s) { d.ttl.require = s.ttl.require; }},
      {"ttl.on_violation",
       [](L l, S s, N k, N v, P p) {
         return l.choice(k, v, p,
                         {{"fix", TtlOnViolation::kFix},
                          {"reject", TtlOnViolation::kReject},
                          {"audit", TtlOnViolation::kAudit}},
                         &s.ttl.on_violation);
       },
       [](S d, C s) { d.ttl.on_violation = s.ttl.on_violation; }},
      {"ttl.jitter", [](L l, S s, N k, N v, P p) { return l.jitter(k, v, p, &s.ttl.jitter); },
       [](S d, C s) { d.ttl.jitter = s.ttl.jitter; }},
      {"ttl.jitter_client",
       [](L l, S s, N k, N v, P p) { return l.boolean(k, v, p, &s.ttl.jitter_client); },
       [](S d, C s) { d.ttl.jitter_client = s.ttl.jitter_client; }},
      {"fill.origin",
       [](L l, S s, N k, N v, P p) {
         // Whether origins has this entry is checked after the walk (checkLayer).
         const std::string* t = l.scalar(k, v, p, "must be the name of an entry of origins");
         if (t == nullptr) return false;
         if (!isValidName(*t)) {
           l.failValue(k, v, p, "must be the name of an entry of origins");
           return false;
         }
         s.fill.origin = *t;
         return true;
       },
       [](S d, C s) { d.fill.origin = s.fill.origin; }},
      {"fill.path",
       [](L l, S s, N k, N v, P p) {
         static constexpr const char* kRule = "must be a path starting with /, like /v1/users/<id>";
         const std::string* t = l.scalar(k, v, p, kRule);
         if (t == nullptr) return false;
         bool clean = std::all_of(t->begin(), t->end(), [](char c) {
           auto u = static_cast<unsigned char>(c);
           return u > 0x20 && u != 0x7f;
         });
         if (t->empty() || (*t)[0] != '/' || !clean) {
           l.failValue(k, v, p, kRule);
           return false;
         }
         s.fill.path = *t;
         return true;
       },
       [](S d, C s) { d.fill.path = s.fill.path; }},
      {"fill.commands",
       [](L l, S s, N k, N v, P p) { return l.fillCommands(k, v, p, &s.fill.commands); },
       [](S d, C s) { d.fill.commands = s.fill.commands; }},
      {"fill.on_error",
       [](L l, S s, N k, N v, P p) {
         return l.choice(k, v, p, {{"nil", FillOnError::kNil}, {"error", FillOnError::kError}},
                         &s.fill.on_error);
       },
       [](S d, C s) { d.fill.on_error = s.fill.on_error; }},
      {"fill.max_value_bytes",
       [](L l, S s, N k, N v, P p) {
         uint64_t n = 0;
         if (!l.sizeOk(k, v, p, kMinByteLimit, std::numeric_limits<uint64_t>::max(), &n)) {
           return false;
         }
         s.fill.max_value_bytes = n;
         return true;
       },
       [](S d, C s) { d.fill.max_value_bytes = s.fill.max_value_bytes; }},
      {"negative.ttl",
       [](L l, S s, N k, N v, P p) {
         return l.duration(k, v, p, /*allow_zero=*/true, &s.negative_ttl);
       },
       [](S d, C s) { d.negative_ttl = s.negative_ttl; }},
      {"stampede.single_flight",
       [](L l, S s, N k, N v, P p) {
         return l.choiceOpt(k, v, p,
                            {{"off", SingleFlight::kOff},
                             {"local", SingleFlight::kLocal},
                             {"distributed", SingleFlight::kDistributed}},
                            &s.stampede.single_flight);
       },
       [](S d, C s) { d.stampede.single_flight = s.stampede.single_flight; }},
      {"stampede.lock_ttl",
       [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.stampede.lock_ttl); },
       [](S d, C s) { d.stampede.lock_ttl = s.stampede.lock_ttl; }},
      {"stampede.wait",
       [](L l, S s, N k, N v, P p) { return l.durationOpt(k, v, p, &s.stampede.wait); },
       [](S d, C s) { d.stampede.wait = s.stampede.wait; }},
      {"freshness.stale_while_revalidate",
       [](L l, S s, N k, N v, P p) {
         return l.duration(k, v, p, /*allow_zero=*/true, &s.freshness.stale_while_revalidate);
       },
       [](S d, C s) { d.freshness.stale_while_revalidate = s.freshness.stale_while_revalidate; }},
      {"freshness.stale_if_error",
       [](L l, S s, N k, N v, P p) {
         return l.duration(k, v, p, /*allow_zero=*/true, &s.freshness.stale_if_error);
       },
       [](S d, C s) { d.freshness.stale_if_error = s.freshness.stale_if_error; }},
      {"freshness.early_refresh",
       [](L l, S s, N k, N v, P p) {
         return l.choice(k, v, p, {{"off", false}, {"xfetch", true}}, &s.freshness.xfetch);
       },
       [](S d, C s) { d.freshness.xfetch = s.freshness.xfetch; }},
      {"freshness.early_refresh_beta",
       [](L l, S s, N k, N v, P p) { return l.positiveNumber(k, v, p, &s.freshness.beta); },
       [](S d, C s) { d.freshness.beta = s.freshness.beta; }},
      {"routing.read_from",
       [](L l, S s, N k, N v, P p) {
         return l.choiceOpt(k, v, p,
                            {{"primary", PolicyReadFrom::kPrimary},
                             {"replica", PolicyReadFrom::kReplica},
                             {"prefer_replica", PolicyReadFrom::kPreferReplica}},
                            &s.routing.read_from);
       },
       [](S d, C s) { d.routing.read_from = s.routing.read_from; }},
      {"routing.read_your_writes",
       [](L l, S s, N k, N v, P p) {
         return l.duration(k, v, p, /*allow_zero=*/true, &s.routing.read_your_writes);
       },
       [](S d, C s) { d.routing.read_your_writes = s.routing.read_your_writes; }},
  };
  return kFields;
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
  // Handlers run in file order, but cross-field checks run after; sort so the operator reads
  // the errors top to bottom: the main file, then each policy file in the order read. Stable,
  // so errors at one position keep their order.
  auto rank = [&](const std::string& file) {
    auto it = file_rank_.find(file);
    return it == file_rank_.end() ? file_rank_.size() : it->second;
  };
  std::stable_sort(errors_.begin(), errors_.end(), [&](const ConfigError& a, const ConfigError& b) {
    return std::tuple(rank(a.file), a.line, a.col) < std::tuple(rank(b.file), b.line, b.col);
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

ConfigError configError(const Where& where, std::string path, std::string rule,
                        std::optional<std::string> got) {
  ConfigError e{where.file, where.line, where.col, std::move(path), std::move(rule)};
  if (got) e.message += " (got " + quoteForError(*got) + ")";
  return e;
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
