// The scalar parsers of the config loader: durations, sizes, numbers, jitter, rates and names.
// Pure functions over text (values.h has their contracts); the loader adds the key path and
// position. Hand-written rather than strtod/yaml-cpp's as<T>(), so "5 parsecs", "0x10" or "1e6"
// are errors with a reason, and nothing depends on the locale.
#include "config/values.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace corral::config {
namespace detail {
namespace {

// Names (policies, limits, origins) appear in metrics labels, logs and error replies.
constexpr size_t kMaxNameBytes = 128;
constexpr uint64_t kMaxRateCount = 1000000000;
// Digits after a decimal point (durations, jitter, numbers): more would be noise, and 9 keeps
// every computation within 64 bits.
constexpr size_t kMaxFractionDigits = 9;

}  // namespace

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
// ---- durations and sizes ---------------------------------------------------------------

// A number with an optional fraction and a unit: "250ms", "1.5s", "0.25h", "7d"; or a bare "0".
// corral keeps durations in whole milliseconds, so a value that is not one ("0.5ms", "1.0005s")
// is an error rather than rounded: rounding 0.1ms up makes it ten times longer, and rounding it
// down makes it 0, which several keys read as "off". Computed in integers, so "0.1s" is exactly
// 100ms.
std::optional<Millis> durationWithReason(std::string_view s, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Millis> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (!s.empty() && s[0] == '-' && s.size() > 1 && isDigit(s[1]))
    return fail("must not be negative");
  const size_t n = leadingDigits(s);
  if (n == 0) return fail(kDurationRule);
  std::string_view rest = s.substr(n);
  std::string_view fraction;  // the digits after the point, if any
  if (!rest.empty() && rest[0] == '.') {
    const size_t m = leadingDigits(rest.substr(1));
    if (m == 0) return fail(kDurationRule);  // "5.s"
    if (m > kMaxFractionDigits) return fail("must have at most 9 digits after the point");
    fraction = rest.substr(1, m);
    rest = rest.substr(1 + m);
  }
  const std::string_view unit = rest;
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
    if (fraction.empty() && s.find_first_not_of('0') == std::string_view::npos) return Millis{0};
    return fail("must have a unit (ms, s, m, h or d), like 250ms or 5s");
  } else {
    return fail(kDurationRule);
  }
  // The fraction in milliseconds: digits * mult / 10^digits, which must divide exactly. At most
  // 999999999 * 86400000 < 2^63, so this cannot overflow.
  int64_t fraction_ms = 0;
  if (!fraction.empty()) {
    bool unused = false;
    const auto digits = static_cast<int64_t>(*parseDigits(fraction, &unused));
    int64_t scale = 1;
    for (size_t i = 0; i < fraction.size(); ++i) scale *= 10;
    if (digits * mult % scale != 0) {
      return fail("must be a whole number of milliseconds (corral keeps no finer durations)");
    }
    fraction_ms = digits * mult / scale;
  }
  bool overflow = false;
  auto v = parseDigits(s.substr(0, n), &overflow);
  if (!v ||
      *v > static_cast<uint64_t>((std::numeric_limits<int64_t>::max() - fraction_ms) / mult)) {
    return fail("is too large");
  }
  return Millis{static_cast<int64_t>(*v) * mult + fraction_ms};
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

// ---- numbers, jitter, rates --------------------------------------------------------------

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
  if (m == 0 || m > kMaxFractionDigits || m != frac.size()) return std::nullopt;
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

// ---- names -------------------------------------------------------------------------------

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

}  // namespace detail

}  // namespace corral::config
