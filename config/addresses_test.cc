// Listen and upstream addresses, redis:// URLs and their passwords (addresses.cc).
#include <doctest/doctest.h>

#include "config/test_helpers.h"
#include "config/values.h"

namespace corral::config {
namespace {

using namespace testing;

// The parsers without their reasons (the loader tests check those, with positions).
std::optional<ListenAddress> listenOf(std::string_view s) {
  return detail::listenWithReason(s, /*allow_port_zero=*/true, nullptr);
}
std::optional<UpstreamAddress> upstreamOf(std::string_view s) {
  auto p = detail::upstreamWithReason(s, nullptr);
  if (!p) return std::nullopt;
  return p->addr;
}

TEST_CASE("listenWithReason: host:port, [v6]:port, unix:/path") {
  auto a = listenOf("127.0.0.1:6380");
  REQUIRE(a);
  CHECK(a->kind == ListenAddress::Kind::kTcp);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 6380);
  CHECK(a->text == "127.0.0.1:6380");

  auto v6 = listenOf("[::1]:7000");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 7000);
  CHECK(v6->text == "[::1]:7000");

  auto zone = listenOf("[fe80::1%eth0]:1");
  REQUIRE(zone);
  CHECK(zone->host == "fe80::1%eth0");

  auto any = listenOf("0.0.0.0:0");  // port 0: the kernel picks one
  REQUIRE(any);
  CHECK(any->port == 0);

  auto name = listenOf("redis-cache.default.svc:6379");
  REQUIRE(name);
  CHECK(name->host == "redis-cache.default.svc");

  auto u = listenOf("unix:/run/corral.sock");
  REQUIRE(u);
  CHECK(u->kind == ListenAddress::Kind::kUnix);
  CHECK(u->path == "/run/corral.sock");
  CHECK(u->text == "unix:/run/corral.sock");

  CHECK(listenOf("unix:/" + std::string(106, 'a')));  // 107 bytes: the limit
  for (const std::string& bad : {std::string(""),
                                 std::string("127.0.0.1"),
                                 std::string(":6380"),
                                 std::string("h:"),
                                 std::string("h:65536"),
                                 std::string("h:-1"),
                                 std::string("h:x"),
                                 std::string("::1:6380"),
                                 std::string("[::1]"),
                                 std::string("[::1]6380"),
                                 std::string("[::1:6380"),
                                 std::string("[zz::1]:1"),
                                 std::string("300.1.1.1:1"),
                                 std::string("1.2.3.4.5:1"),
                                 std::string("bad host:1"),
                                 std::string("unix:"),
                                 std::string("unix:relative.sock"),
                                 std::string("unix:/" + std::string(107, 'a')),
                                 std::string("redis://h:1"),
                                 std::string("unix:/a\0b", 9)}) {
    CAPTURE(bad);
    CHECK_FALSE(listenOf(bad).has_value());
  }
}

TEST_CASE("upstreamWithReason: plain, unix and redis:// URLs") {
  auto plain = upstreamOf("10.0.0.5:6379");
  REQUIRE(plain);
  CHECK(plain->addr.host == "10.0.0.5");
  CHECK(plain->addr.port == 6379);
  CHECK(plain->text == "10.0.0.5:6379");
  CHECK(plain->user.empty());
  CHECK(plain->password.empty());
  CHECK(plain->db == 0);

  CHECK_FALSE(upstreamOf("10.0.0.5:0"));  // an upstream needs a real port

  auto u = upstreamOf("unix:/var/run/redis.sock");
  REQUIRE(u);
  CHECK(u->addr.kind == ListenAddress::Kind::kUnix);
  CHECK(u->addr.path == "/var/run/redis.sock");

  auto full = upstreamOf("redis://alice:s3cret@cache:6390/2");
  REQUIRE(full);
  CHECK(full->addr.host == "cache");
  CHECK(full->addr.port == 6390);
  CHECK(full->user == "alice");
  CHECK(full->password == "s3cret");
  CHECK(full->db == 2);
  CHECK(full->text == "redis://alice:***@cache:6390/2");
  CHECK(full->addr.text == "redis://alice:***@cache:6390/2");

  // Percent-encoding in user and password; '@' and ':' inside the password.
  auto enc = upstreamOf("redis://us%65r:p%40ss%3Aw%2Fd@[::1]:7000");
  REQUIRE(enc);
  CHECK(enc->user == "user");
  CHECK(enc->password == "p@ss:w/d");
  CHECK(enc->addr.host == "::1");
  CHECK(enc->text == "redis://us%65r:***@[::1]:7000");

  auto no_port = upstreamOf("REDIS://cache");
  REQUIRE(no_port);
  CHECK(no_port->addr.port == 6379);
  CHECK(no_port->db == 0);

  auto pw_only = upstreamOf("redis://:pw@h:1/");
  REQUIRE(pw_only);
  CHECK(pw_only->user.empty());
  CHECK(pw_only->password == "pw");
  CHECK(pw_only->text == "redis://:***@h:1/");

  auto user_only = upstreamOf("redis://bob@h:1/1000000");
  REQUIRE(user_only);
  CHECK(user_only->user == "bob");
  CHECK(user_only->password.empty());
  CHECK(user_only->db == 1000000);
  CHECK(user_only->text == "redis://bob@h:1/1000000");

  for (const char* bad :
       {"rediss://", "http://h:1", "redis://", "redis://u:p@", "redis://h:1/1000001",
        "redis://h:1/-1", "redis://h:1/x", "redis://h:1?db=2", "redis://h:1/2#x",
        "redis://u:p%zz@h:1", "redis://u%4@h:1", "redis://h:0", "redis://::1:7000", ""}) {
    const std::string text = bad;
    CAPTURE(text);
    CHECK_FALSE(upstreamOf(bad).has_value());
  }
}

TEST_CASE("a password never appears in errors or in text") {
  for (const char* primary :
       {"redis://u:SECRETPW@h:1/x", "redis://u:SECRETPW@h:0", "redis://u:SECRETPW@",
        "redis://:SECRETPW@h:1?x", "redis://u:SEC/RETPW@h:1/99999999", "redis://u:SEC@RETPW@h:1/x",
        "rediss://u:SECRETPW@h:0"}) {
    const std::string text = primary;
    CAPTURE(text);
    std::vector<std::string> errors =
        errorsOf(std::string("upstream: {primary: '") + primary + "'}\n");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("SEC") == std::string::npos);
    CHECK(errors[0].find("***") != std::string::npos);
  }
  CHECK(errorsOf("upstream: {primary: h:1, password: {SECRETPW: 1}}\n")[0].find("SECRET") ==
        std::string::npos);
  Config c = mustLoad(
      "upstream: {primary: 'redis://u:SECRETPW@h:1', replicas: ['redis://u:SECRETPW@h:2']}\n");
  CHECK(c.upstream.primary.text.find("SECRET") == std::string::npos);
  CHECK(c.upstream.primary.addr.text.find("SECRET") == std::string::npos);
  CHECK(c.upstream.replicas[0].text == "redis://u:***@h:2");
}

TEST_CASE("endpointText and addressLines: addresses as a client dials them, no credentials") {
  CHECK(endpointText(*listenOf("127.0.0.1:6380")) == "127.0.0.1:6380");
  CHECK(endpointText(*listenOf("[::1]:0")) == "[::1]:0");
  CHECK(endpointText(*listenOf("unix:/run/c.sock")) == "unix:/run/c.sock");
  CHECK(endpointText(upstreamOf("redis://u:pw@Cache.internal/3")->addr) == "Cache.internal:6379");

  ScopedEnv env("CORRAL_TEST_ADDR_PASSWORD", "from-env");
  Config c = mustLoad(R"(listen: [127.0.0.1:6390, "unix:/tmp/corral.sock"]
admin: {listen: "[::1]:9121"}
upstream:
  primary: redis://app:s3cret@10.0.0.5/2
  replicas: [10.0.0.6:6380, "unix:/tmp/r.sock"]
  password_env: CORRAL_TEST_ADDR_PASSWORD
)");
  CHECK(addressLines(c) ==
        "listen 127.0.0.1:6390\n"
        "listen unix:/tmp/corral.sock\n"
        "admin [::1]:9121\n"
        "primary 10.0.0.5:6379 password\n"
        "replica 10.0.0.6:6380 password\n"
        "replica unix:/tmp/r.sock password\n");
  // The defaults: listen 127.0.0.1:6380, no admin, no password.
  CHECK(addressLines(mustLoad(kPrimary)) ==
        "listen 127.0.0.1:6380\n"
        "primary 127.0.0.1:6379\n");
}

}  // namespace
}  // namespace corral::config
