// report.h: the exit code follows the worst finding; text and JSON carry every finding.
#include "doctor/report.h"

#include <doctest/doctest.h>

using namespace corral::doctor;

namespace {

Finding make(const char* check, Severity s) {
  Finding f;
  f.check = check;
  f.severity = s;
  f.seen = std::string("saw ") + check;
  if (s != Severity::kOk) f.action = std::string("fix ") + check;
  return f;
}

}  // namespace

TEST_CASE("exit code: 0 all ok (or nothing), 1 a warning, 2 an error") {
  Report r;
  CHECK(r.exitCode() == 0);
  r.add(make("a", Severity::kOk));
  CHECK(r.exitCode() == 0);
  r.add(make("b", Severity::kWarning));
  CHECK(r.exitCode() == 1);
  r.add(make("c", Severity::kError));
  CHECK(r.exitCode() == 2);
  r.add(make("d", Severity::kWarning));
  CHECK(r.exitCode() == 2);
  CHECK(r.worst() == Severity::kError);
}

TEST_CASE("text: worst first, evidence and action, summary line") {
  Report r;
  r.target = "127.0.0.1:6379";
  r.facts.emplace_back("version", "7.0.15");
  r.add(make("first_ok", Severity::kOk));
  Finding w = make("warned", Severity::kWarning);
  w.policy = "users";
  r.add(w);
  r.add(make("failed", Severity::kError));
  const std::string t = renderText(r);
  CHECK(t.rfind("corral doctor: 127.0.0.1:6379\n  version: 7.0.15\n", 0) == 0);
  const size_t e = t.find("[error]   failed");
  const size_t wa = t.find("[warning] warned (policy users)");
  const size_t o = t.find("[ok]      first_ok");
  REQUIRE(e != std::string::npos);
  REQUIRE(wa != std::string::npos);
  REQUIRE(o != std::string::npos);
  CHECK(e < wa);
  CHECK(wa < o);
  CHECK(t.find("action: fix failed") != std::string::npos);
  CHECK(t.find("summary: 1 error(s), 1 warning(s), 1 ok: errors (exit 2)") != std::string::npos);
}

TEST_CASE("json: one object, escaped strings, summary") {
  Report r;
  r.target = "unix:/tmp/r.sock";
  Finding f = make("keys", Severity::kWarning);
  f.seen = "key \"a\\b\"\n\x01";
  r.add(f);
  r.add(make("ok", Severity::kOk));
  const std::string j = renderJson(r);
  CHECK(
      j ==
      "{\"target\":\"unix:/tmp/r.sock\",\"facts\":{},\"findings\":["
      "{\"check\":\"keys\",\"severity\":\"warning\",\"policy\":null,"
      "\"seen\":\"key \\\"a\\\\b\\\"\\n\\u0001\",\"action\":\"fix keys\"},"
      "{\"check\":\"ok\",\"severity\":\"ok\",\"policy\":null,\"seen\":\"saw ok\",\"action\":\"\"}],"
      "\"summary\":{\"ok\":1,\"warning\":1,\"error\":0,\"exit_code\":1,\"status\":\"warnings\"}}"
      "\n");
}

TEST_CASE("shownKey: cut and escaped") {
  CHECK(shownKey("user:1") == "user:1");
  CHECK(shownKey(std::string(70, 'k'), 60) == std::string(60, 'k') + "...");
  CHECK(shownKey(std::string("a\nb\xff", 4)) == "a\\x0ab\\xff");
}
