// admin: listen (also in proxy_sections_test.cc), token_env and ready_when.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using testing::checkErrorCases;
using testing::errorsOf;
using testing::kPrimary;
using testing::mustLoad;
using testing::ScopedEnv;

TEST_CASE("admin: no token and ready_when upstream by default") {
  Config c = mustLoad(std::string("admin: {listen: 127.0.0.1:9121}\n") + kPrimary);
  CHECK(c.admin.token_env.empty());
  CHECK(c.admin.token.empty());
  CHECK(c.admin.ready_when == ReadyWhen::kUpstream);
}

TEST_CASE("admin.token_env reads the token from the environment") {
  ScopedEnv token("CORRAL_TEST_ADMIN_TOKEN", "s3cret-token");
  Config c = mustLoad(std::string("admin:\n  listen: 127.0.0.1:9121\n"
                                  "  token_env: CORRAL_TEST_ADMIN_TOKEN\n") +
                      kPrimary);
  CHECK(c.admin.token_env == "CORRAL_TEST_ADMIN_TOKEN");
  CHECK(c.admin.token == "s3cret-token");
}

TEST_CASE("admin.ready_when takes upstream or serving") {
  CHECK(mustLoad(std::string("admin: {ready_when: serving}\n") + kPrimary).admin.ready_when ==
        ReadyWhen::kServing);
  CHECK(mustLoad(std::string("admin: {ready_when: upstream}\n") + kPrimary).admin.ready_when ==
        ReadyWhen::kUpstream);
}

TEST_CASE("admin.token_env and ready_when: every error") {
  const std::string p = kPrimary;
  checkErrorCases({
      {"admin: {token_env: CORRAL_TEST_UNSET_ADMIN}\n" + p,
       {"t.yaml:1:20: admin.token_env: environment variable CORRAL_TEST_UNSET_ADMIN is not set"}},
      {"admin: {token_env: 'not a name'}\n" + p,
       {"t.yaml:1:20: admin.token_env: must be the name of an environment variable, like "
        "CORRAL_ADMIN_TOKEN (got not a name)"}},
      {"admin: {token_env: [A]}\n" + p,
       {"t.yaml:1:20: admin.token_env: must be the name of an environment variable, like "
        "CORRAL_ADMIN_TOKEN (got a list)"}},
      {"admin: {ready_when: redis}\n" + p,
       {"t.yaml:1:21: admin.ready_when: must be one of upstream, serving (got redis)"}},
      {"admin: {ready_wen: serving}\n" + p,
       {"t.yaml:1:9: admin.ready_wen: unknown key (did you mean ready_when?)"}},
  });
}

TEST_CASE("an empty admin.token_env variable is an error, and no error quotes a token") {
  {
    ScopedEnv empty("CORRAL_TEST_EMPTY_ADMIN", "");
    CHECK(errorsOf("admin: {token_env: CORRAL_TEST_EMPTY_ADMIN}\n" + std::string(kPrimary)) ==
          std::vector<std::string>{
              "t.yaml:1:20: admin.token_env: environment variable CORRAL_TEST_EMPTY_ADMIN is "
              "empty"});
  }
  // A config with other errors still never shows the token's value.
  ScopedEnv token("CORRAL_TEST_ADMIN_TOKEN2", "do-not-print-me");
  std::vector<std::string> errors = errorsOf(
      "admin: {token_env: CORRAL_TEST_ADMIN_TOKEN2, ready_when: 7}\n" + std::string(kPrimary));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("do-not-print-me") == std::string::npos);
}

}  // namespace
}  // namespace corral::config
