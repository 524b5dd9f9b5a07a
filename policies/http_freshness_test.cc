#include "policies/http_freshness.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>

namespace corral::policies {
namespace {

// 1994-11-06T08:49:37Z, the RFCs' example date.
constexpr int64_t kExampleUnix = 784111777;
constexpr int64_t kNowMs = kExampleUnix * 1000;

HttpFreshness cc(const std::string& value, const std::string& age = {}) {
  HttpCacheHeaders h;
  h.cache_control = value;
  h.age = age;
  return parseHttpFreshness(h, kNowMs);
}

}  // namespace

TEST_CASE("http dates: the three forms, and junk") {
  CHECK(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT") == kExampleUnix);
  CHECK(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT") == kExampleUnix);
  CHECK(parseHttpDate("Sun Nov  6 08:49:37 1994") == kExampleUnix);
  CHECK(parseHttpDate("Thu, 01 Jan 1970 00:00:00 GMT") == 0);
  CHECK(parseHttpDate("Sat, 29 Feb 2020 23:59:59 GMT") == 1583020799);
  CHECK(parseHttpDate("Wednesday, 01-Jan-25 00:00:00 GMT") == 1735689600);  // 25 -> 2025
  CHECK(parseHttpDate("  Sun, 06 Nov 1994 08:49:37 GMT ") == kExampleUnix);
  CHECK_FALSE(parseHttpDate("0"));
  CHECK_FALSE(parseHttpDate(""));
  CHECK_FALSE(parseHttpDate("-1"));
  CHECK_FALSE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC"));
  CHECK_FALSE(parseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"));
  CHECK_FALSE(parseHttpDate("Sun, 06 Nov 1994 24:49:37 GMT"));
  CHECK_FALSE(parseHttpDate("Sun, 6 Nov 1994 08:49:37 GMT"));
  CHECK_FALSE(parseHttpDate("Sun, 06 Nov 1994 08:49 GMT"));
}

TEST_CASE("max-age and s-maxage set the lifetime; s-maxage wins") {
  CHECK(cc("max-age=60").fresh_ms == 60'000);
  CHECK(cc("s-maxage=5, max-age=60").fresh_ms == 5'000);
  CHECK(cc("max-age=60, s-maxage=5").fresh_ms == 5'000);
  CHECK(cc("max-age=0").fresh_ms == 0);
  CHECK(cc("public").fresh_ms == std::nullopt);  // no lifetime: the policy's default
  CHECK(cc("").fresh_ms == std::nullopt);
}

TEST_CASE("directive names are case-insensitive, values may be quoted, spaces are allowed") {
  CHECK(cc("Max-Age=60").fresh_ms == 60'000);
  CHECK(cc("MAX-AGE=60").fresh_ms == 60'000);
  CHECK(cc("max-age=\"60\"").fresh_ms == 60'000);
  CHECK(cc("  public ,  max-age=60  ").fresh_ms == 60'000);
  CHECK(cc("S-MaxAge=7").fresh_ms == 7'000);
  CHECK(cc("s-max-age=7").fresh_ms == std::nullopt);  // not a directive this cache knows
  CHECK(cc("S-MAXAGE=7").fresh_ms == 7'000);
  CHECK(cc("NO-STORE").no_store);
  CHECK(cc("No-Cache").no_cache);
  // A comma inside a quoted value does not split the directives.
  const HttpFreshness q = cc("ext=\"a, max-age=1\", max-age=30");
  CHECK(q.fresh_ms == 30'000);
}

TEST_CASE("invalid or duplicate lifetimes make the answer stale, never fresher") {
  CHECK(cc("max-age=abc").fresh_ms == 0);
  CHECK(cc("max-age=-5").fresh_ms == 0);
  CHECK(cc("max-age=1.5").fresh_ms == 0);
  CHECK(cc("max-age=").fresh_ms == 0);
  CHECK(cc("max-age").fresh_ms == 0);
  CHECK(cc("max-age=\"60").fresh_ms == 0);  // unterminated quote
  CHECK(cc("max-age=60, max-age=120").fresh_ms == 0);
  CHECK(cc("max-age=60, max-age=60").fresh_ms == 60'000);  // the same value twice is one value
  // An invalid s-maxage does not fall back to max-age.
  CHECK(cc("s-maxage=x, max-age=60").fresh_ms == 0);
  // Huge numbers are capped at 2^31 seconds instead of overflowing.
  CHECK(cc("max-age=99999999999999999999999").fresh_ms == (int64_t{1} << 31) * 1000);
}

TEST_CASE("Age is subtracted; an Age above the lifetime leaves nothing") {
  CHECK(cc("max-age=60", "10").fresh_ms == 50'000);
  CHECK(cc("max-age=60", "60").fresh_ms == 0);
  CHECK(cc("max-age=60", "600").fresh_ms == 0);
  CHECK(cc("max-age=60", "junk").fresh_ms == 60'000);  // an unreadable Age is ignored
  CHECK(cc("public", "10").fresh_ms == std::nullopt);  // Age alone gives no lifetime
}

TEST_CASE("Expires minus Date, or minus the time received") {
  HttpCacheHeaders h;
  h.expires = "Sun, 06 Nov 1994 08:50:37 GMT";
  h.date = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(parseHttpFreshness(h, 0).fresh_ms == 60'000);  // Date given: the clock is not used
  h.date.clear();
  CHECK(parseHttpFreshness(h, kNowMs + 20'000).fresh_ms == 40'000);
  h.date = "not a date";
  CHECK(parseHttpFreshness(h, kNowMs).fresh_ms == 60'000);
  h.age = "15";
  CHECK(parseHttpFreshness(h, kNowMs).fresh_ms == 45'000);
  h.age.clear();
  h.expires = "Sun, 06 Nov 1994 08:40:00 GMT";  // in the past
  CHECK(parseHttpFreshness(h, kNowMs).fresh_ms == 0);
  h.expires = "0";  // invalid: already expired
  CHECK(parseHttpFreshness(h, kNowMs).fresh_ms == 0);
  h.expires = "Sun, 06 Nov 1994 08:50:37 GMT";
  h.cache_control = "max-age=5";  // max-age beats Expires
  CHECK(parseHttpFreshness(h, kNowMs).fresh_ms == 5'000);
}

TEST_CASE("no-store, private, no-cache and their qualified forms") {
  CHECK(cc("no-store").no_store);
  CHECK(cc("private, max-age=60").no_store);
  CHECK_FALSE(cc("private=\"Set-Cookie\", max-age=60").no_store);
  CHECK_FALSE(cc("public, max-age=60").no_store);
  const HttpFreshness nc = cc("no-cache, max-age=60");
  CHECK(nc.no_cache);
  CHECK_FALSE(nc.no_store);
  CHECK(nc.fresh_ms == 60'000);  // the caller makes it stale; the lifetime is still reported
  CHECK_FALSE(cc("no-cache=\"Set-Cookie\"").no_cache);
  CHECK_FALSE(cc("x-no-cache").no_cache);
}

TEST_CASE("stale-while-revalidate and stale-if-error windows") {
  const HttpFreshness f = cc("max-age=60, stale-while-revalidate=30, stale-if-error=600");
  CHECK(f.swr_ms == 30'000);
  CHECK(f.sie_ms == 600'000);
  CHECK(cc("max-age=60").swr_ms == std::nullopt);
  CHECK(cc("stale-while-revalidate=x").swr_ms == std::nullopt);
  CHECK(cc("stale-if-error=5, stale-if-error=6").sie_ms == std::nullopt);
  CHECK(cc("Stale-While-Revalidate=\"12\"").swr_ms == 12'000);
  CHECK(cc("stale-while-revalidate=30").fresh_ms == std::nullopt);
}

TEST_CASE("validators: ETag first, else a Last-Modified that parses") {
  HttpCacheHeaders h;
  CHECK(httpValidator(h).empty());
  h.last_modified = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(httpValidator(h) == "LSun, 06 Nov 1994 08:49:37 GMT");
  h.etag = "\"v1\"";
  CHECK(httpValidator(h) == "E\"v1\"");
  h.etag = "W/\"weak\"";
  CHECK(httpValidator(h) == "EW/\"weak\"");
  h.etag = "\"a\r\nX-Evil: 1\"";  // never sent back as a header
  CHECK(httpValidator(h) == "LSun, 06 Nov 1994 08:49:37 GMT");
  h.etag.clear();
  h.last_modified = "yesterday";
  CHECK(httpValidator(h).empty());
}

}  // namespace corral::policies
