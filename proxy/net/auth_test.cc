// Authenticator: each way a password can be configured, the "default" user, wrong and unknown
// credentials, binary passwords, and the path from YAML to a successful check.
#include "proxy/net/auth.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "config/config.h"

namespace corral::net {
namespace {

config::AuthUser plainUser(std::string name, std::string password) {
  config::AuthUser u;
  u.name = std::move(name);
  u.password = std::move(password);
  return u;
}

config::AuthUser shaUser(std::string name, const Sha256Digest& digest) {
  config::AuthUser u;
  u.name = std::move(name);
  u.sha256 = digest;
  u.has_sha = true;
  return u;
}

// SHA-256("s3cret"), from `printf %s s3cret | sha256sum`.
constexpr Sha256Digest kS3cretSha256 = {
    0x1e, 0xc1, 0xc2, 0x6b, 0x50, 0xd5, 0xd3, 0xc5, 0x8d, 0x95, 0x83, 0x18, 0x1a, 0xf8, 0x07, 0x66,
    0x55, 0xfe, 0x00, 0x75, 0x6b, 0xf7, 0x28, 0x59, 0x40, 0xba, 0x36, 0x70, 0xf9, 0x9f, 0xcb, 0xa0};

TEST_CASE("auth: no users means disabled, and nothing checks") {
  Authenticator a{config::AuthConfig{}};
  CHECK_FALSE(a.enabled());
  CHECK(a.passthrough());  // the default: Redis checks
  CHECK_FALSE(a.gate());
  CHECK_FALSE(a.check("", ""));
  CHECK_FALSE(a.check("default", ""));
  CHECK_FALSE(a.check("default", "anything"));
}

TEST_CASE("auth: the modes, and who must authenticate first") {
  config::AuthConfig cfg;
  cfg.mode = config::AuthMode::kOff;
  Authenticator off(cfg);
  CHECK_FALSE(off.enabled());
  CHECK_FALSE(off.passthrough());
  CHECK_FALSE(off.gate());
  cfg.mode = config::AuthMode::kPassthrough;
  cfg.passthrough.unauthenticated = config::Unauthenticated::kRefuse;
  Authenticator refuse(cfg);
  CHECK(refuse.passthrough());
  CHECK(refuse.gate());
  CHECK_FALSE(refuse.enabled());
  CHECK_FALSE(refuse.check("default", ""));
}

TEST_CASE("auth: plain and SHA-256 passwords, named users and default") {
  config::AuthConfig cfg;
  cfg.users.push_back(plainUser("app", "s3cret"));
  cfg.users.push_back(shaUser("ops", kS3cretSha256));
  cfg.users.push_back(plainUser("default", "dflt"));
  Authenticator a(cfg);
  REQUIRE(a.enabled());
  CHECK(a.gate());
  CHECK_FALSE(a.passthrough());

  CHECK(a.check("app", "s3cret"));
  CHECK(a.check("ops", "s3cret"));  // the configured digest is SHA-256 of the same password
  CHECK(a.check("default", "dflt"));
  CHECK(a.check("", "dflt"));  // AUTH <password>

  CHECK_FALSE(a.check("app", "s3cre"));
  CHECK_FALSE(a.check("app", "s3cret "));
  CHECK_FALSE(a.check("app", "S3cret"));
  CHECK_FALSE(a.check("app", ""));
  CHECK_FALSE(a.check("app", "dflt"));    // another user's password
  CHECK_FALSE(a.check("APP", "s3cret"));  // names are case-sensitive, as in Redis
  CHECK_FALSE(a.check("ops", "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"));
  CHECK_FALSE(a.check("", "s3cret"));
  CHECK_FALSE(a.check("nobody", "s3cret"));
  CHECK_FALSE(a.check("nobody", ""));
  CHECK_FALSE(a.check(std::string_view("app\0", 4), "s3cret"));
}

TEST_CASE("auth: without a default user, a one-argument AUTH never succeeds") {
  config::AuthConfig cfg;
  cfg.users.push_back(plainUser("app", "s3cret"));
  Authenticator a(cfg);
  CHECK(a.enabled());
  CHECK(a.check("app", "s3cret"));
  CHECK_FALSE(a.check("", "s3cret"));
  CHECK_FALSE(a.check("default", "s3cret"));
}

TEST_CASE("auth: passwords are bytes, NUL and CRLF included") {
  const std::string binary("p\0w\r\n\xff", 6);
  config::AuthConfig cfg;
  cfg.users.push_back(plainUser("bin", binary));
  Authenticator a(cfg);
  CHECK(a.check("bin", binary));
  CHECK_FALSE(a.check("bin", "p"));  // not cut at the NUL
  CHECK_FALSE(a.check("bin", binary.substr(0, 5)));
}

TEST_CASE("auth: the authenticator does not depend on the config after construction") {
  Authenticator* a = nullptr;
  {
    config::AuthConfig cfg;
    cfg.users.push_back(plainUser("app", "s3cret"));
    a = new Authenticator(cfg);
    cfg.users[0].password = "changed";
  }
  CHECK(a->check("app", "s3cret"));
  delete a;
}

TEST_CASE("auth: digestsEqual looks at every byte") {
  Sha256Digest x = kS3cretSha256;
  CHECK(digestsEqual(x, kS3cretSha256));
  for (size_t i = 0; i < x.size(); ++i) {
    CAPTURE(i);
    Sha256Digest y = x;
    y[i] ^= 0x01;
    CHECK_FALSE(digestsEqual(x, y));
    y[i] ^= 0x81;  // now differs only in the top bit
    CHECK_FALSE(digestsEqual(x, y));
  }
}

TEST_CASE("auth: from YAML to a check, in each of the three forms") {
  ::setenv("CORRAL_AUTH_TEST_PW", "from-env", 1);
  config::LoadResult r = config::loadConfigText(
      "upstream: {primary: 127.0.0.1:6379}\n"
      "auth:\n"
      "  users:\n"
      "    - {name: app, password: \"s3cret\"}\n"
      "    - {name: ops, password_sha256: "
      "1EC1C26B50D5D3C58D9583181AF8076655FE00756BF7285940BA3670F99FCBA0}\n"
      "    - {name: default, password_env: CORRAL_AUTH_TEST_PW}\n",
      "t.yaml");
  ::unsetenv("CORRAL_AUTH_TEST_PW");
  REQUIRE(r.errors.empty());
  REQUIRE(r.config.has_value());
  Authenticator a(r.config->auth);
  CHECK(a.enabled());
  CHECK(a.check("app", "s3cret"));
  CHECK(a.check("ops", "s3cret"));
  CHECK(a.check("", "from-env"));
  CHECK_FALSE(a.check("ops", "from-env"));
}

TEST_CASE("auth: error replies are Redis's own words") {
  CHECK(kNoAuthError == "NOAUTH Authentication required.");
  CHECK(kWrongPassError == "WRONGPASS invalid username-password pair or user is disabled.");
  // No leading '-' and no CRLF: Client::replyError() adds them.
  for (std::string_view e :
       {kNoAuthError, kWrongPassError, kHelloNoAuthError, kNoPasswordConfiguredError}) {
    CAPTURE(e);
    CHECK(e.front() != '-');
    CHECK(e.find('\r') == std::string_view::npos);
    CHECK(e.find('\n') == std::string_view::npos);
  }
}

}  // namespace
}  // namespace corral::net
