// Parsing of Cache-Control, Expires, Date and Age for fills (see http_freshness.h).
//
//   Cache-Control --split on ',' outside quotes--> name[=value] --lower-cased name-->
//     s-maxage / max-age / stale-* : delta-seconds (duplicates with another value: invalid)
//     no-store / private / no-cache: flags (qualified forms ignored)
//   lifetime = s-maxage | max-age | Expires - Date | none;  fresh = lifetime - Age
#include "policies/http_freshness.h"

#include <array>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corral::policies {

namespace {

// RFC 9111 1.2.2: a delta-seconds too large to hold is 2^31.
constexpr int64_t kDeltaCap = int64_t{1} << 31;
constexpr int64_t kMsPerS = 1000;

bool isSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// delta-seconds = 1*DIGIT, capped at 2^31; nullopt for anything else ("", "-1", "1.5", "1 0").
std::optional<int64_t> deltaSeconds(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
    if (v > kDeltaCap) v = kDeltaCap;
  }
  return v;
}

// A directive's value without its quotes (quoted-pair escapes removed). *ok false on a quoted
// string that does not end.
std::string unquote(std::string_view v, bool* ok) {
  *ok = true;
  if (v.empty() || v.front() != '"') return std::string(v);
  std::string out;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      out.push_back(v[++i]);
    } else if (v[i] == '"') {
      *ok = i + 1 == v.size();
      return out;
    } else {
      out.push_back(v[i]);
    }
  }
  *ok = false;
  return out;
}

// One numeric directive: its first value, and whether it was invalid (a bad number, or a second
// occurrence with another value).
struct Seconds {
  std::optional<int64_t> value;
  bool seen = false;
  bool invalid = false;
  void add(std::optional<int64_t> v) {
    if (!v || (seen && value != v)) invalid = true;
    if (!seen) value = v;
    seen = true;
  }
  std::optional<int64_t> get() const {
    if (invalid) return std::nullopt;
    return value;
  }
};

struct Directives {
  Seconds s_maxage, max_age, swr, sie;
  bool no_store = false;
  bool no_cache = false;
};

Directives parseCacheControl(std::string_view cc) {
  Directives d;
  size_t i = 0;
  while (i <= cc.size()) {
    // One element: up to the next ',' that is not inside a quoted string.
    size_t j = i;
    bool quoted = false;
    for (; j < cc.size(); ++j) {
      if (quoted && cc[j] == '\\') {
        ++j;
      } else if (cc[j] == '"') {
        quoted = !quoted;
      } else if (!quoted && cc[j] == ',') {
        break;
      }
    }
    std::string_view elem = trim(cc.substr(i, j > cc.size() ? cc.size() - i : j - i));
    i = j + 1;
    if (elem.empty()) continue;
    const size_t eq = elem.find('=');
    const std::string_view name = trim(elem.substr(0, eq));
    const bool has_value = eq != std::string_view::npos;
    bool ok = true;
    const std::string value = has_value ? unquote(trim(elem.substr(eq + 1)), &ok) : std::string();
    const std::optional<int64_t> secs =
        has_value && ok ? deltaSeconds(value) : std::optional<int64_t>();
    if (iequals(name, "s-maxage")) {
      d.s_maxage.add(secs);
    } else if (iequals(name, "max-age")) {
      d.max_age.add(secs);
    } else if (iequals(name, "stale-while-revalidate")) {
      d.swr.add(secs);
    } else if (iequals(name, "stale-if-error")) {
      d.sie.add(secs);
    } else if (iequals(name, "no-store")) {
      d.no_store = true;
    } else if (iequals(name, "private")) {
      // private="Set-Cookie" only keeps those fields out of a shared cache.
      if (!has_value) d.no_store = true;
    } else if (iequals(name, "no-cache")) {
      if (!has_value) d.no_cache = true;
    }
    // Anything else (public, must-revalidate, immutable, extensions) changes nothing here.
  }
  return d;
}

int monthIndex(std::string_view m) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (m == kMonths[i]) return static_cast<int>(i);
  }
  return -1;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t daysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool number(std::string_view s, size_t digits, int64_t* out) {
  if (s.size() != digits) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// "HH:MM:SS"
bool clock(std::string_view s, int64_t* secs) {
  int64_t h = 0;
  int64_t m = 0;
  int64_t sec = 0;
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  if (!number(s.substr(0, 2), 2, &h) || !number(s.substr(3, 2), 2, &m) ||
      !number(s.substr(6, 2), 2, &sec)) {
    return false;
  }
  if (h > 23 || m > 59 || sec > 60) return false;  // 60: a leap second
  *secs = h * 3600 + m * 60 + sec;
  return true;
}

std::optional<int64_t> civil(int64_t y, int month, int64_t d, int64_t secs) {
  if (month < 0 || d < 1 || d > 31) return std::nullopt;
  return daysFromCivil(y, month + 1, d) * 86400 + secs;
}

}  // namespace

std::optional<int64_t> parseHttpDate(std::string_view s) {
  s = trim(s);
  int64_t y = 0;
  int64_t d = 0;
  int64_t secs = 0;
  const size_t comma = s.find(',');
  if (comma == 3) {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (s.size() != 29 || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[25] != ' ' || s.substr(26) != "GMT") {
      return std::nullopt;
    }
    if (!number(s.substr(5, 2), 2, &d) || !number(s.substr(12, 4), 4, &y) ||
        !clock(s.substr(17, 8), &secs)) {
      return std::nullopt;
    }
    return civil(y, monthIndex(s.substr(8, 3)), d, secs);
  }
  if (comma != std::string_view::npos) {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year more than 50 years ahead is
    // in the past century (RFC 9110 5.6.7): here, 00-69 are 20xx.
    std::string_view r = s.substr(comma + 1);
    if (r.size() != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' ||
        r[19] != ' ' || r.substr(20) != "GMT") {
      return std::nullopt;
    }
    if (!number(r.substr(1, 2), 2, &d) || !number(r.substr(8, 2), 2, &y) ||
        !clock(r.substr(11, 8), &secs)) {
      return std::nullopt;
    }
    y += y < 70 ? 2000 : 1900;
    return civil(y, monthIndex(r.substr(4, 3)), d, secs);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ') {
    return std::nullopt;
  }
  std::string_view day = s.substr(8, 2);
  if (day[0] == ' ') day.remove_prefix(1);
  if (!number(day, day.size(), &d) || !clock(s.substr(11, 8), &secs) ||
      !number(s.substr(20, 4), 4, &y)) {
    return std::nullopt;
  }
  return civil(y, monthIndex(s.substr(4, 3)), d, secs);
}

HttpFreshness parseHttpFreshness(const HttpCacheHeaders& h, int64_t now_unix_ms) {
  HttpFreshness out;
  const Directives d = parseCacheControl(h.cache_control);
  out.no_store = d.no_store;
  out.no_cache = d.no_cache;
  if (auto v = d.swr.get()) out.swr_ms = *v * kMsPerS;
  if (auto v = d.sie.get()) out.sie_ms = *v * kMsPerS;

  // The lifetime, in ms (RFC 9111 4.2.1): s-maxage, then max-age, then Expires - Date. An
  // invalid directive that would have been used makes the response stale (0), rather than
  // falling through to a weaker source.
  std::optional<int64_t> lifetime;
  const Seconds* directive = d.s_maxage.seen ? &d.s_maxage : d.max_age.seen ? &d.max_age : nullptr;
  if (directive != nullptr) {
    lifetime = directive->get().value_or(0) * kMsPerS;
  } else if (!h.expires.empty()) {
    const std::optional<int64_t> expires = parseHttpDate(h.expires);
    const std::optional<int64_t> date = parseHttpDate(h.date);
    const int64_t base_ms = date ? *date * kMsPerS : now_unix_ms;
    lifetime = expires ? *expires * kMsPerS - base_ms : 0;  // "0" and other junk: expired
  }
  if (!lifetime) return out;
  int64_t fresh = *lifetime;
  if (!h.age.empty()) {
    // An Age that does not parse is ignored (a cache that sent it is broken, not the answer).
    if (const std::optional<int64_t> age = deltaSeconds(trim(h.age))) fresh -= *age * kMsPerS;
  }
  out.fresh_ms = fresh > 0 ? fresh : 0;
  return out;
}

std::string httpValidator(const HttpCacheHeaders& h) {
  auto clean = [](std::string_view v) {
    for (char c : v) {
      if (c == '\r' || c == '\n' || c == '\0') return false;
    }
    return !v.empty();
  };
  const std::string_view etag = trim(h.etag);
  if (clean(etag)) return "E" + std::string(etag);
  const std::string_view lm = trim(h.last_modified);
  // Only a date that parses: If-Modified-Since with junk would be ignored by the origin anyway.
  if (clean(lm) && parseHttpDate(lm)) return "L" + std::string(lm);
  return {};
}

}  // namespace corral::policies
