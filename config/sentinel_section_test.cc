// upstream.sentinel (sentinel_section.cc): every key, the template address, every error at its
// position, and no secret in any error.
#include <doctest/doctest.h>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

TEST_CASE("upstream.sentinel: every key is parsed, the primary becomes a template") {
  Config c = mustLoad(R"(
upstream:
  sentinel:
    master: mymaster
    addresses: [10.0.0.1:26379, "[::1]:26380", "unix:/run/sentinel.sock"]
    user: watcher
    password: s3cret
    poll_interval: 250ms
  user: app
  password: apppw
  db: 2
  read_from: replica
)");
  REQUIRE(c.upstream.sentinel.has_value());
  const SentinelConfig& s = *c.upstream.sentinel;
  CHECK(s.master == "mymaster");
  REQUIRE(s.addresses.size() == 3);
  CHECK(s.addresses[0].host == "10.0.0.1");
  CHECK(s.addresses[0].port == 26379);
  CHECK(s.addresses[1].host == "::1");
  CHECK(s.addresses[1].port == 26380);
  CHECK(s.addresses[2].kind == ListenAddress::Kind::kUnix);
  CHECK(s.addresses[2].path == "/run/sentinel.sock");
  CHECK(s.user == "watcher");
  CHECK(s.password == "s3cret");
  CHECK(s.poll_interval == Millis{250});
  // The data nodes' credentials and db come from upstream.*, the address from the sentinels.
  CHECK(c.upstream.primary.addr.host.empty());
  CHECK(c.upstream.primary.text == "sentinel:mymaster");
  CHECK(c.upstream.primary.user == "app");
  CHECK(c.upstream.primary.password == "apppw");
  CHECK(c.upstream.primary.db == 2);
  CHECK(c.upstream.replicas.empty());
  CHECK(c.upstream.read_from == ReadFrom::kReplica);  // no replicas entry needed

  Config d = mustLoad("upstream:\n  sentinel: {master: m, addresses: h:1}\n");
  REQUIRE(d.upstream.sentinel.has_value());
  CHECK(d.upstream.sentinel->addresses.size() == 1);
  CHECK(d.upstream.sentinel->poll_interval == Millis{1000});
  CHECK(d.upstream.sentinel->password.empty());
  CHECK_FALSE(mustLoad(kPrimary).upstream.sentinel.has_value());
}

TEST_CASE("upstream.sentinel.password_env is read at load") {
  ScopedEnv env("CORRAL_TEST_SENTINEL_PW", "from-env");
  Config c = mustLoad(
      "upstream:\n  sentinel: {master: m, addresses: [h:1], password_env: "
      "CORRAL_TEST_SENTINEL_PW}\n");
  CHECK(c.upstream.sentinel->password == "from-env");
  CHECK(c.upstream.sentinel->password_env == "CORRAL_TEST_SENTINEL_PW");
  CHECK(c.upstream.primary.password.empty());  // the sentinels' password is theirs alone
}

TEST_CASE("a policy may read from replicas when Sentinel reports them") {
  Config c = mustLoad(
      "upstream:\n  sentinel: {master: m, addresses: [h:1]}\n"
      "policies:\n  - {name: p, match: 'a:<id>', routing: {read_from: replica}}\n");
  REQUIRE(c.policy.policies.size() == 1);
}

TEST_CASE("upstream.sentinel: each error at its position") {
  const std::string s = "upstream:\n  sentinel:\n";  // line 3 is the first free line
  checkErrorCases({
      {"upstream:\n  primary: h:1\n  sentinel: {master: m, addresses: [h:2]}\n",
       {"t.yaml:3:3: upstream.sentinel: cannot be used together with upstream.primary (the "
        "sentinels name the primary)"}},
      {"upstream:\n  sentinel: {master: m, addresses: [h:2]}\n  replicas: [h:3]\n",
       {"t.yaml:3:14: upstream.replicas[0]: cannot be used with upstream.sentinel (the sentinels "
        "report the replicas) (got h:3)"}},
      {s + "    master: m\n",
       {"t.yaml:3:5: upstream.sentinel.addresses: is required: the sentinels, like "
        "[10.0.0.1:26379]"}},
      {"upstream:\n  sentinel:\n",
       {"t.yaml:2:3: upstream.sentinel.master: is required: the name the sentinels monitor the "
        "primary under, like mymaster",
        "t.yaml:2:3: upstream.sentinel.addresses: is required: the sentinels, like "
        "[10.0.0.1:26379]"}},
      {"upstream: {sentinel: [h:1]}\n",
       {"t.yaml:1:22: upstream.sentinel: must be a mapping like {master: mymaster, addresses: "
        "[10.0.0.1:26379]} (got a list)"}},
      {s + "    master: m\n    addresses: []\n",
       {"t.yaml:4:16: upstream.sentinel.addresses: must list at least one sentinel (got [])"}},
      {s + "    master: m\n    addresses: [h:1, H:1, 'h:0', 'redis://h:2']\n",
       {"t.yaml:4:22: upstream.sentinel.addresses[1]: duplicate of "
        "upstream.sentinel.addresses[0] (got H:1)",
        "t.yaml:4:27: upstream.sentinel.addresses[2]: port must be a number from 1 to 65535 "
        "(got h:0)",
        "t.yaml:4:34: upstream.sentinel.addresses[3]: must be host:port, [ipv6]:port, "
        "tls://host:port or unix:/path (got redis://h:2)"}},
      {s + "    master: 'my master'\n    addresses: [h:1]\n",
       {"t.yaml:3:13: upstream.sentinel.master: must be the name the sentinels monitor the "
        "primary under: 1 to 128 of A-Z a-z 0-9 _ . : - (got my master)"}},
      {s + "    master: m\n    addresses: [h:1]\n    poll_interval: 50ms\n",
       {"t.yaml:5:20: upstream.sentinel.poll_interval: must be from 100ms to 60s (got 50ms)"}},
      {s + "    master: m\n    addresses: [h:1]\n    pol_interval: 1s\n",
       {"t.yaml:5:5: upstream.sentinel.pol_interval: unknown key (did you mean poll_interval?)"}},
      {"upstream:\n  sentinel: {master: m, addresses: [127.0.0.1:6380]}\n",
       {"t.yaml:2:37: upstream.sentinel.addresses[0]: is corral's own address listen (default) "
        "(got 127.0.0.1:6380)"}},
      {s + "    master: m\n    addresses: [h:1]\n    password: pw\n    password_env: X_PW\n",
       {"t.yaml:6:19: upstream.sentinel.password_env: cannot be used together with "
        "upstream.sentinel.password"}},
      {s + "    master: m\n    addresses: [h:1]\n    password_env: CORRAL_TEST_UNSET_SENTINEL\n",
       {"t.yaml:5:19: upstream.sentinel.password_env: environment variable "
        "CORRAL_TEST_UNSET_SENTINEL is not set"}},
      // A password of the wrong type is described by its type only.
      {s + "    master: m\n    addresses: [h:1]\n    password: [hunter2]\n",
       {"t.yaml:5:15: upstream.sentinel.password: must be a string (got a list)"}},
  });
}

TEST_CASE("--print-addresses lists the sentinels, not a primary") {
  Config c = mustLoad(
      "listen: 127.0.0.1:7000\nupstream:\n  sentinel: {master: m, addresses: [h:1, "
      "'unix:/s'], password: pw}\n");
  CHECK(addressLines(c) ==
        "listen 127.0.0.1:7000\nsentinel h:1 password\nsentinel unix:/s password\n");
}

}  // namespace
}  // namespace corral::config
