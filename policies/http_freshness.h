// How long an origin's answer stays fresh, read from its HTTP caching headers (RFC 9111) as a
// shared cache reads them. Pure functions: no clock, no I/O (the caller passes "now").
//
//   Cache-Control: s-maxage=N (preferred) | max-age=N   -> lifetime N s
//   else Expires - Date (Date absent or bad: - now)      -> lifetime (<= 0: stale on arrival)
//   minus Age                                            -> what is left of the lifetime
//   stale-while-revalidate=N, stale-if-error=N           -> the windows after it
//   no-store, private                                    -> do not store (serve once)
//   no-cache                                             -> store, stale at once (revalidate)
//
// Rules followed (RFC 9111 sections 1.2.2, 4.2.1, 5.1-5.3): directive names are
// case-insensitive; a value may be a token or a quoted string; a directive that appears twice
// with different values, or whose value is not a delta-seconds number, makes the lifetime
// invalid, which counts as stale (lifetime 0); numbers above 2^31 are 2^31; an Expires that does
// not parse (e.g. "0") means already expired; the qualified forms `no-cache="field"` and
// `private="field"` restrict header fields only, so they do not stop the body being stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corral::policies {

// The raw header values that matter (each several lines joined by ", ", as RFC 9110 allows for
// list headers). Empty: absent.
struct HttpCacheHeaders {
  std::string cache_control;
  std::string expires;
  std::string date;
  std::string age;
  std::string etag;
  std::string last_modified;
};

struct HttpFreshness {
  bool no_store = false;  // no-store or (unqualified) private: serve, never store
  bool no_cache = false;  // store, but stale at once: revalidate before it counts as fresh
  // Freshness left, in ms, after Age; nullopt when no header gave a lifetime (the policy's
  // default applies). 0 when stale on arrival or the lifetime was invalid.
  std::optional<int64_t> fresh_ms;
  std::optional<int64_t> swr_ms;  // stale-while-revalidate=N
  std::optional<int64_t> sie_ms;  // stale-if-error=N
};

// Reads the caching headers of a response received at now_unix_ms.
HttpFreshness parseHttpFreshness(const HttpCacheHeaders& h, int64_t now_unix_ms);

// An HTTP-date (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete RFC 850
// "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994" forms) as Unix
// seconds; nullopt when it does not parse.
std::optional<int64_t> parseHttpDate(std::string_view s);

// The validator to revalidate with: the ETag if there is one (sent as If-None-Match), else the
// Last-Modified date (If-Modified-Since). Kept as one string: "E<etag>" or "L<date>"; empty when
// the response had neither (or a malformed one: a value with CR, LF or NUL is dropped).
std::string httpValidator(const HttpCacheHeaders& h);

}  // namespace corral::policies
