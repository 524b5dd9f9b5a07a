// Parsers of the addresses in a config: where corral listens ("host:port", "[v6]:port",
// "unix:/path"), the Redis servers it proxies to (the same, or redis:// URLs with credentials
// and a database) and the HTTP origins of fills (http:// URLs). Contracts in values.h.
#include <arpa/inet.h>

#include <utility>

#include "config/values.h"

namespace corral::config {
namespace detail {
namespace {

// sizeof(sockaddr_un::sun_path) is 108 on Linux, including the terminating NUL.
constexpr size_t kMaxUnixPathBytes = 107;
constexpr uint16_t kDefaultRedisPort = 6379;
constexpr uint16_t kDefaultHttpPort = 80;

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

}  // namespace

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
  std::string_view host_port = s;
  if (s.size() > 6 && lowerAscii(s.substr(0, 6)) == "tls://") host_port = s.substr(6);
  if (host_port.find("://") != std::string_view::npos) {
    return fail("must be host:port, [ipv6]:port, tls://host:port or unix:/path");
  }
  if (!hostPortWithReason(host_port, allow_port_zero, std::nullopt, &a, why)) return std::nullopt;
  a.tls = host_port.size() != s.size();
  return a;
}

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
  if (scheme != "redis" && scheme != "rediss") {
    return fail("must be host:port, unix:/path or redis[s]://[user[:password]@]host:port[/db]");
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
  p.addr.addr.tls = scheme == "rediss";
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

// origins.*.base_url: http://host[:port][/prefix]. Returns the URL with the scheme lower-cased
// and any trailing '/' dropped, so that base_url + fill.path never holds "//".
std::optional<std::string> httpUrlWithReason(std::string_view s, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<std::string> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  static constexpr const char* kUrlRule =
      "must be an http:// or https:// URL like http://127.0.0.1:8080";
  size_t scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) return fail(kUrlRule);
  std::string scheme = lowerAscii(s.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return fail(kUrlRule);
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
  const uint16_t default_port = scheme == "https" ? 443 : kDefaultHttpPort;
  if (!hostPortWithReason(authority, /*allow_port_zero=*/false, default_port, &a, why)) {
    return std::nullopt;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return scheme + "://" + std::string(authority) + std::string(path);
}

}  // namespace detail

std::string endpointText(const ListenAddress& a) {
  if (a.kind == ListenAddress::Kind::kUnix) return "unix:" + a.path;
  const bool v6 = a.host.find(':') != std::string::npos;
  return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

std::string addressLines(const Config& cfg) {
  std::string out;
  for (const ListenAddress& l : cfg.listen) {
    out += "listen " + endpointText(l) + (l.tls ? " tls" : "") + "\n";
  }
  if (cfg.admin.listen) out += "admin " + endpointText(*cfg.admin.listen) + "\n";
  auto upstream = [&out](const char* role, const UpstreamAddress& u) {
    out += std::string(role) + " " + endpointText(u.addr) + (u.password.empty() ? "" : " password");
    if (u.addr.tls) out += " tls";
    out += "\n";
  };
  if (const auto& s = cfg.upstream.sentinel) {
    // The data nodes are whatever the sentinels name at run time.
    for (const ListenAddress& a : s->addresses) {
      out += "sentinel " + endpointText(a) + (s->password.empty() ? "" : " password") + "\n";
    }
    return out;
  }
  if (const auto& c = cfg.upstream.cluster) {
    // The seeds only: the other nodes are whatever the slot map names at run time.
    for (const UpstreamAddress& a : c->seeds) upstream("seed", a);
    return out;
  }
  upstream("primary", cfg.upstream.primary);
  for (const UpstreamAddress& r : cfg.upstream.replicas) upstream("replica", r);
  return out;
}

}  // namespace corral::config
