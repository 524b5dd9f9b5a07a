// The scalar parsers behind the loader (values.cc) and the address parsers (addresses.cc); also
// used for command-line values that read like config values (`corral doctor --scan-time 5s`). Each
// *WithReason parser returns nullopt on bad input and, when why is not null, sets *why to the rule
// the value broke ("must not be negative"), ready for an error. They are pure: no YAML, no I/O (the
// environment is read by the loader, not here).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace corral::config::detail {

// ---- rules quoted in errors -------------------------------------------------------------------

inline constexpr const char* kDurationRule = "must be a duration like 250ms, 1.5s or 5m";
inline constexpr const char* kSizeRule = "must be a size like 4096, 64KiB or 16MiB";
inline constexpr const char* kBoolRule = "must be true or false";
inline constexpr const char* kRateRule = "must be a rate like 100/s, 6000/m or 5/250ms";
inline constexpr const char* kJitterRule = "must be a fraction like 0.1 or a percentage like 10%";
inline constexpr const char* kNameRule = "must be 1 to 128 characters of A-Z a-z 0-9 _ . : -";

// Largest Redis database number accepted, in URLs (redis://h:1/2) and in upstream.db.
inline constexpr int64_t kMaxDb = 1000000;

// ---- characters and digits (values.cc) --------------------------------------------------------

bool isDigit(char c);
bool isAlpha(char c);  // ASCII letters only
char lowerAscii(char c);
std::string lowerAscii(std::string_view s);
// The whole of s as decimal digits; nullopt on anything else. *overflow: too big for a uint64.
std::optional<uint64_t> parseDigits(std::string_view s, bool* overflow);
size_t leadingDigits(std::string_view s);

// ---- numbers, durations, sizes, rates (values.cc) ---------------------------------------------

// "250ms", "1.5s", "2m", "0.5h", "7d", or a bare "0"; whole milliseconds only (values.cc says why).
std::optional<Millis> durationWithReason(std::string_view s, std::string* why);
// "4096", "64KiB", "10kb" (1000-based). No fractions.
std::optional<uint64_t> sizeWithReason(std::string_view s, std::string* why);
// "0", "0.1", "12.5": at most 9 digits on each side of the point; no sign or exponent.
std::optional<double> parseDecimal(std::string_view s);
// ttl.jitter: "10%" or "0.1", in [0, 1).
std::optional<double> jitterWithReason(std::string_view s, std::string* why);

struct Rate {
  uint64_t count = 0;
  Millis period{0};
};
// "100/s", "6000/m", "5/250ms": a count per period; a bare unit means one of it.
std::optional<Rate> rateWithReason(std::string_view s, std::string* why);

// ---- names (values.cc) ------------------------------------------------------------------------

// Policy, rate-limit and origin names: [A-Za-z0-9_.:-]{1,128}.
bool isValidName(std::string_view s);
// A placeholder name of a key template, as in key_by's capture:<name>: [A-Za-z_][A-Za-z0-9_]*.
bool isIdentifier(std::string_view s);
// "get", "config|set", "json.get": see the definition.
bool isValidCommandName(std::string_view s);
bool isValidEnvName(std::string_view s);
// An auth user name: printable bytes, no spaces.
bool isValidUserName(std::string_view s);
// 64 hex digits (either case) -> a SHA-256 digest; false on any other input.
bool decodeSha256Hex(std::string_view s, std::array<uint8_t, 32>* out);

// ---- addresses and URLs (addresses.cc) --------------------------------------------------------

// "host:port", "[v6]:port" or "unix:/path". Port 0 (pick a free one) only when allowed.
std::optional<ListenAddress> listenWithReason(std::string_view s, bool allow_port_zero,
                                              std::string* why);

// An upstream address plus which credentials its URL carried, so the loader can fill the rest
// from upstream.user/password/db field by field.
struct ParsedUpstream {
  UpstreamAddress addr;
  bool has_user = false;
  bool has_password = false;
  bool has_db = false;
};
// "host:port", "unix:/path" or "redis://[user[:password]@]host[:port][/db]" (percent-decoded).
std::optional<ParsedUpstream> upstreamWithReason(std::string_view s, std::string* why);

// origins.*.base_url: http://host[:port][/prefix], returned with the scheme lower-cased and any
// trailing '/' dropped.
std::optional<std::string> httpUrlWithReason(std::string_view s, std::string* why);

// "scheme://user:password@host" -> "scheme://user:***@host"; safe on malformed input.
std::string maskPassword(std::string_view s);

// Two addresses that reach the same server (exact match only: names are not resolved).
bool sameEndpoint(const ListenAddress& a, const ListenAddress& b);

// ---- HTTP request headers of origins (origin_fields.cc) ---------------------------------------

// An HTTP header name (RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~).
bool isHttpToken(std::string_view s);
// A value read from a file or the environment, without the surrounding spaces and line ends a
// secret file usually ends with.
std::string_view trimHeaderValue(std::string_view s);
// Why s cannot be sent as a header value (a CR, LF or other control byte would break the
// request), or nullptr. The value itself is never part of the reason: it may be a secret.
const char* headerValueProblem(std::string_view s);

}  // namespace corral::config::detail
