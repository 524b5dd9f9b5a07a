// origins.<name>.headers, .retry and .breaker (origin_fields.cc).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config/test_helpers.h"
#include "config/values.h"

namespace corral::config {
namespace {

using namespace testing;

const std::string kOrigin = "origins:\n  a:\n    base_url: http://h\n";

TEST_CASE("origin headers: literal, env and file values; defaults off") {
  ScopedEnv env("CORRAL_TEST_TOKEN", "  Bearer s3cret\n");
  TempDir dir;
  const std::string file = dir.write("key", "k3y-from-file\n");
  Config c = mustLoad(kOrigin +
                      "    headers:\n"
                      "      X-Tenant: acme\n"
                      "      Authorization: {env: CORRAL_TEST_TOKEN}\n"
                      "      X-Api-Key: {file: " +
                      file + "}\n" + kPrimary);
  const OriginSpec& o = c.policy.origins.at(0);
  REQUIRE(o.headers.size() == 3);
  CHECK(o.headers[0].name == "X-Tenant");
  CHECK(o.headers[0].source == OriginHeader::Source::kLiteral);
  CHECK(o.headers[0].value == "acme");
  CHECK(o.headers[1].source == OriginHeader::Source::kEnv);
  CHECK(o.headers[1].value == "Bearer s3cret");  // trimmed
  CHECK(o.headers[2].source == OriginHeader::Source::kFile);
  CHECK(o.headers[2].file == file);
  CHECK(o.headers[2].value == "k3y-from-file");
  CHECK_FALSE(o.retry.enabled);
  CHECK_FALSE(o.breaker.enabled);
}

TEST_CASE("origin retry and breaker: defaults and every knob") {
  Config d = mustLoad(kOrigin + "    retry:\n    breaker: {}\n" + kPrimary);
  const OriginSpec& od = d.policy.origins.at(0);
  CHECK(od.retry.enabled);
  CHECK(od.retry.attempts == 3);
  CHECK(od.retry.budget == doctest::Approx(0.1));
  CHECK(od.retry.min_per_second == 3);
  CHECK(od.retry.backoff_base == Millis{20});
  CHECK(od.retry.backoff_max == Millis{500});
  CHECK(od.retry.per_try_timeout == Millis{0});
  CHECK(od.breaker.enabled);
  CHECK(od.breaker.failures == 5);
  CHECK(od.breaker.open_for == Millis{5000});
  CHECK(od.breaker.half_open_probes == 1);

  Config c = mustLoad(
      "origins:\n  a:\n    base_url: http://h\n    timeout: 2s\n"
      "    retry: {attempts: 4, budget: 20%, min_per_second: 0, backoff: 10ms..1s, "
      "per_try_timeout: 400ms}\n"
      "    breaker: {failures: 3, open_for: 250ms, half_open_probes: 2}\n" +
      std::string(kPrimary));
  const OriginSpec& o = c.policy.origins.at(0);
  CHECK(o.retry.attempts == 4);
  CHECK(o.retry.budget == doctest::Approx(0.2));
  CHECK(o.retry.min_per_second == 0);
  CHECK(o.retry.backoff_base == Millis{10});
  CHECK(o.retry.backoff_max == Millis{1000});
  CHECK(o.retry.per_try_timeout == Millis{400});
  CHECK(o.breaker.failures == 3);
  CHECK(o.breaker.open_for == Millis{250});
  CHECK(o.breaker.half_open_probes == 2);
}

TEST_CASE("origin headers, retry, breaker: every rule, with its exact error") {
  const std::string p = kPrimary;
  ScopedEnv unset("CORRAL_TEST_UNSET", nullptr);
  ScopedEnv bad("CORRAL_TEST_BAD", "line1\nline2");
  checkErrorCases({
      {kOrigin + "    headers: [a]\n" + p,
       {"t.yaml:4:14: origins.a.headers: must be a mapping of header names to a string, {env: "
        "NAME} or {file: /path} (got a list)"}},
      {kOrigin + "    headers: {'X A': b}\n" + p,
       {"t.yaml:4:15: origins.a.headers.X A: must be an HTTP header name (letters, digits, - and "
        "_) (got X A)"}},
      {kOrigin + "    headers: {Host: b}\n" + p,
       {"t.yaml:4:15: origins.a.headers.Host: is set by corral itself and cannot be replaced"}},
      {kOrigin + "    headers: {X-A: b, x-a: c}\n" + p,
       {"t.yaml:4:23: origins.a.headers.x-a: is already set as X-A (names ignore case)"}},
      {kOrigin + "    headers: {X-A: {env: CORRAL_TEST_UNSET}}\n" + p,
       {"t.yaml:4:26: origins.a.headers.X-A.env: names a variable that is not set (got "
        "CORRAL_TEST_UNSET)"}},
      // The value is a secret: the error gives its size only.
      {kOrigin + "    headers: {X-A: {env: CORRAL_TEST_BAD}}\n" + p,
       {"t.yaml:4:20: origins.a.headers.X-A: value holds a line break (one line only) (got a "
        "value of 11 bytes)"}},
      {kOrigin + "    headers: {X-A: {file: /nonexistent/corral-secret}}\n" + p,
       {"t.yaml:4:27: origins.a.headers.X-A.file: cannot read (No such file or directory) (got "
        "/nonexistent/corral-secret)"}},
      {kOrigin + "    headers: {X-A: {path: /x}}\n" + p,
       {"t.yaml:4:20: origins.a.headers.X-A: must be a string, {env: NAME} or {file: /path} "
        "(got a mapping)"}},
      {kOrigin + "    retry: {attempts: 0}\n" + p,
       {"t.yaml:4:23: origins.a.retry.attempts: must be an integer from 1 to 10 (got 0)"}},
      {kOrigin + "    retry: {backoff: 20ms}\n" + p,
       {"t.yaml:4:22: origins.a.retry.backoff: must be a range of durations like 20ms..500ms "
        "(got 20ms)"}},
      {kOrigin + "    retry: {backoff: 500ms..20ms}\n" + p,
       {"t.yaml:4:22: origins.a.retry.backoff: must be a range from a duration > 0 to a larger "
        "one (got 500ms..20ms)"}},
      {kOrigin + "    retry: {budget: 150%}\n" + p,
       {"t.yaml:4:21: origins.a.retry.budget: must be less than 100% (as a fraction, less than 1) "
        "(got 150%)"}},
      {kOrigin + "    timeout: 1s\n    retry: {per_try_timeout: 2s}\n" + p,
       {"t.yaml:3:5: origins.a.retry.per_try_timeout: must not be longer than the origin's "
        "timeout, which bounds the whole fill (got 2000ms)"}},
      {kOrigin + "    breaker: {failures: 0, open_for: 0, tries: 1}\n" + p,
       {"t.yaml:4:25: origins.a.breaker.failures: must be an integer from 1 to 1000000 (got 0)",
        "t.yaml:4:38: origins.a.breaker.open_for: must be greater than 0 (got 0)",
        "t.yaml:4:41: origins.a.breaker.tries: unknown key"}},
  });
}

TEST_CASE("header value checks") {
  using detail::headerValueProblem;
  using detail::isHttpToken;
  using detail::trimHeaderValue;
  CHECK(isHttpToken("X-Api_Key.1"));
  CHECK_FALSE(isHttpToken(""));
  CHECK_FALSE(isHttpToken("X:A"));
  CHECK(trimHeaderValue(" \tv a\r\n") == "v a");
  CHECK(headerValueProblem("Bearer a\tb") == nullptr);
  CHECK(headerValueProblem("a\rb") != nullptr);
  CHECK(headerValueProblem(std::string("a\0b", 3)) != nullptr);
}

}  // namespace
}  // namespace corral::config
