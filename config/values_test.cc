// The scalar parsers: durations, sizes, jitter (values.cc).
#include "config/values.h"

#include <doctest/doctest.h>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

// The parsers without their reasons (the loader tests check those, with positions).
std::optional<Millis> durationOf(std::string_view s) {
  return detail::durationWithReason(s, nullptr);
}
std::optional<uint64_t> sizeOf(std::string_view s) { return detail::sizeWithReason(s, nullptr); }

TEST_CASE("durationWithReason accepts a number with ms, s, m, h or d, and a bare 0") {
  struct Case {
    const char* in;
    int64_t ms;
  };
  for (const Case& c :
       {Case{"0", 0}, Case{"00", 0}, Case{"0ms", 0}, Case{"250ms", 250}, Case{"5s", 5000},
        Case{"2m", 120000}, Case{"1h", 3600000}, Case{"7d", 604800000},
        Case{"9223372036854775807ms", INT64_MAX}, Case{"2562047788015h", 2562047788015 * 3600000},
        // Decimals: exact, in integers.
        Case{"0.5s", 500}, Case{"1.5m", 90000}, Case{"2.25h", 8100000}, Case{"0.1s", 100},
        Case{"0.001s", 1}, Case{"1.50s", 1500}, Case{"1.0ms", 1}, Case{"0.0s", 0},
        Case{"1.5d", 129600000}, Case{"3.000000000s", 3000},
        Case{"9223372036854775.807s", INT64_MAX}}) {
    const std::string in = c.in;
    CAPTURE(in);
    auto d = durationOf(c.in);
    REQUIRE(d.has_value());
    CHECK(d->count() == c.ms);
  }
  for (const char* bad : {"",
                          "5",
                          "500",
                          "-1s",
                          "5 s",
                          "5S",
                          "5sec",
                          "s",
                          "ms",
                          "+5s",
                          "0x10s",
                          "1w",
                          "5us",
                          "9223372036854775808ms",
                          "2562047788016h",
                          "99999999999999999999h",
                          ".5s",
                          "5.s",
                          "5.",
                          "1.5",
                          "0.0",
                          "1,5s",
                          "1.5.5s",
                          "1e3ms",
                          "0.1ms",
                          "1.5ms",
                          "0.0005s",
                          "1.0001s",
                          "0.0000000001s",
                          "9223372036854775.808s"}) {
    const std::string text = bad;
    CAPTURE(text);
    CHECK_FALSE(durationOf(bad).has_value());
  }
}

TEST_CASE("durations finer than a millisecond are errors that say so") {
  const std::string up = "upstream:\n  primary: h:1\n";
  checkErrorCases({
      {up + "  connect_timeout: 0.5ms\n",
       {"t.yaml:3:20: upstream.connect_timeout: must be a whole number of milliseconds (corral "
        "keeps no finer durations) (got 0.5ms)"}},
      {up + "  connect_timeout: 0.0001s\n",
       {"t.yaml:3:20: upstream.connect_timeout: must be a whole number of milliseconds (corral "
        "keeps no finer durations) (got 0.0001s)"}},
      {up + "  connect_timeout: 1.0000000001s\n",
       {"t.yaml:3:20: upstream.connect_timeout: must have at most 9 digits after the point "
        "(got 1.0000000001s)"}},
      {up + "  connect_timeout: 1.5\n",
       {"t.yaml:3:20: upstream.connect_timeout: must have a unit (ms, s, m, h or d), like 250ms "
        "or 5s (got 1.5)"}},
      {up + "  connect_timeout: 5.s\n",
       {"t.yaml:3:20: upstream.connect_timeout: must be a duration like 250ms, 1.5s or 5m "
        "(got 5.s)"}},
      // "0.0s" is 0, refused like "0" where a key needs more.
      {up + "  command_timeout: 0.0s\n",
       {"t.yaml:3:20: upstream.command_timeout: must be greater than 0 (got 0.0s)"}},
  });
  // Decimals reach every duration key, and rates' periods too.
  Config c = mustLoad(
      "upstream: {primary: h:1, connect_timeout: 0.25s, command_timeout: 1.5s}\n"
      "global: {rate_limits: [{name: l, rate: 5/0.5s}]}\n"
      "policies: [{name: p, match: \"p:<id>\", ttl: {default: 1.5h, max: 2.5d}}]\n");
  CHECK(c.upstream.connect_timeout == Millis{250});
  CHECK(c.upstream.command_timeout == Millis{1500});
  REQUIRE(c.policy.global.rate_limits.size() == 1);
  CHECK(c.policy.global.rate_limits[0].period == Millis{500});
  REQUIRE(c.policy.policies.size() == 1);
  CHECK(c.policy.policies[0].ttl.default_ttl == Millis{5400000});
  CHECK(c.policy.policies[0].ttl.max == Millis{216000000});
}

TEST_CASE("sizeWithReason accepts bytes, binary units and 1000-based kb/mb/gb") {
  struct Case {
    const char* in;
    uint64_t bytes;
  };
  for (const Case& c :
       {Case{"0", 0}, Case{"512", 512}, Case{"512B", 512}, Case{"16KiB", 16384},
        Case{"64MiB", 64ull << 20}, Case{"1GiB", 1ull << 30}, Case{"2TiB", 2ull << 40},
        Case{"10kb", 10000}, Case{"10kB", 10000}, Case{"10KB", 10000}, Case{"3mb", 3000000},
        Case{"3MB", 3000000}, Case{"2gb", 2000000000}, Case{"2GB", 2000000000},
        Case{"18446744073709551615", UINT64_MAX}}) {
    const std::string in = c.in;
    CAPTURE(in);
    auto s = sizeOf(c.in);
    REQUIRE(s.has_value());
    CHECK(*s == c.bytes);
  }
  for (const char* bad : {"", "-1", "1.5MiB", "16 MiB", "16mib", "16k", "16M", "KiB", "16KIB",
                          "0x10", "18446744073709551616", "16777216TiB", "1e6"}) {
    const std::string text = bad;
    CAPTURE(text);
    CHECK_FALSE(sizeOf(bad).has_value());
  }
}

TEST_CASE("ttl.jitter: a percentage or a fraction, at least 0 and below 1") {
  struct Case {
    const char* in;
    double value;
  };
  for (const Case& c :
       {Case{"0", 0}, Case{"0%", 0}, Case{"10%", 0.1}, Case{"12.5%", 0.125}, Case{"99%", 0.99},
        Case{"0.1", 0.1}, Case{"0.25", 0.25}, Case{"0.9", 0.9}, Case{"0.999", 0.999}}) {
    const std::string in = c.in;
    CAPTURE(in);
    Config cfg =
        mustLoad("policies: [{name: a, match: a, ttl: {jitter: '" + in + "'}}]\n" + kPrimary);
    CHECK(cfg.policy.policies[0].ttl.jitter == doctest::Approx(c.value));
  }
  struct Bad {
    const char* in;
    const char* why;
  };
  for (const Bad& b : {Bad{"100%", "must be less than 100% (as a fraction, less than 1)"},
                       Bad{"1", "must be less than 100% (as a fraction, less than 1)"},
                       Bad{"1.0", "must be less than 100% (as a fraction, less than 1)"},
                       Bad{"150%", "must be less than 100% (as a fraction, less than 1)"},
                       Bad{"-0.1", "must not be negative"}, Bad{"-5%", "must not be negative"},
                       Bad{"10 %", "must be a fraction like 0.1 or a percentage like 10%"},
                       Bad{".1", "must be a fraction like 0.1 or a percentage like 10%"},
                       Bad{"1e-1", "must be a fraction like 0.1 or a percentage like 10%"},
                       Bad{"%", "must be a fraction like 0.1 or a percentage like 10%"},
                       Bad{"ten", "must be a fraction like 0.1 or a percentage like 10%"}}) {
    const std::string in = b.in;
    CAPTURE(in);
    CHECK(errorsOf("policies: [{name: a, match: a, ttl: {jitter: '" + in + "'}}]\n" + kPrimary) ==
          std::vector<std::string>{"t.yaml:1:46: policies[0].ttl.jitter: " + std::string(b.why) +
                                   " (got " + in + ")"});
  }
}

}  // namespace
}  // namespace corral::config
