// listen, workers, upstream, admin, limits, auth, log: defaults, every key, every error
// (proxy_sections.cc and the root table in loader.cc).
#include <doctest/doctest.h>

#include <array>
#include <cctype>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

TEST_CASE("defaults when keys are absent") {
  Config c = mustLoad(kPrimary);
  CHECK(c.source == "t.yaml");
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].kind == ListenAddress::Kind::kTcp);
  CHECK(c.listen[0].host == "127.0.0.1");
  CHECK(c.listen[0].port == 6380);
  CHECK(c.listen[0].text == "127.0.0.1:6380");
  CHECK(c.workers == 1);
  CHECK(c.upstream.primary.addr.host == "127.0.0.1");
  CHECK(c.upstream.primary.addr.port == 6379);
  CHECK(c.upstream.primary.text == "127.0.0.1:6379");
  CHECK(c.upstream.replicas.empty());
  CHECK(c.upstream.read_from == ReadFrom::kPrimary);
  CHECK(c.upstream.connect_timeout == Millis{500});
  CHECK(c.upstream.command_timeout == Millis{1000});
  CHECK(c.upstream.pool_size == 1);
  CHECK(c.upstream.user.empty());
  CHECK(c.upstream.password.empty());
  CHECK(c.upstream.password_env.empty());
  CHECK(c.upstream.db == 0);
  CHECK(c.upstream.reconnect_min == Millis{50});
  CHECK(c.upstream.reconnect_max == Millis{2000});
  CHECK_FALSE(c.admin.listen.has_value());
  CHECK(c.limits.max_clients == 10000);
  CHECK(c.limits.max_request_bytes == 64ull << 20);
  CHECK(c.limits.max_args == 1048576);
  CHECK(c.limits.max_bulk_bytes == 512ull << 20);
  CHECK(c.limits.max_inline_bytes == 64u << 10);
  CHECK(c.limits.max_pending == 1024);
  CHECK(c.limits.max_output_bytes == 64ull << 20);
  CHECK(c.limits.max_pending_bytes == 64ull << 20);
  CHECK(c.limits.max_reply_bytes == 512ull << 20);
  CHECK(c.limits.pubsub_hard_bytes == 32ull << 20);
  CHECK(c.limits.pubsub_soft_bytes == 8ull << 20);
  CHECK(c.limits.pubsub_soft_time == std::chrono::seconds(60));
  CHECK(c.limits.max_reply_depth == 128);
  CHECK(c.log.level == "info");
  CHECK(c.shutdown_timeout == Millis{5000});
  CHECK(c.auth.users.empty());
  CHECK(c.auth.mode == AuthMode::kPassthrough);  // no users: Redis checks AUTH
  CHECK(c.auth.passthrough.unauthenticated == Unauthenticated::kUpstream);
  CHECK(c.auth.passthrough.cache_ttl == Millis{10000});
  CHECK(c.auth.passthrough.cache_entries == 10000);
  CHECK(c.auth.passthrough.max_users == 64);
  CHECK(c.auth.passthrough.pool_size == 1);
  CHECK(c.auth.passthrough.idle_timeout == Millis{60000});
  CHECK(c.auth.passthrough.max_checks == 16);

  // Empty sections are empty mappings.
  Config e =
      mustLoad("admin:\nlimits:\nlog:\nauth:\nupstream:\n  primary: h:1\n  reconnect_backoff:\n");
  CHECK_FALSE(e.admin.listen.has_value());
  CHECK(e.auth.users.empty());
  CHECK(e.upstream.reconnect_max == Millis{2000});
}

TEST_CASE("every key is parsed") {
  Config c = mustLoad(R"(
listen: ["0.0.0.0:7000", "[::1]:7001", "unix:/tmp/corral.sock", "127.0.0.1:0", "127.0.0.1:0"]
workers: 8
upstream:
  primary: 10.0.0.1:6379
  replicas: [10.0.0.2:6379, "unix:/run/r.sock"]
  read_from: prefer_replica
  connect_timeout: 250ms
  command_timeout: 2m
  pool_size: 4
  max_dedicated: 9
  user: corral
  password: hunter2
  db: 3
  reconnect_backoff: {min: 10ms, max: 1h}
admin: {listen: "[::]:9121"}
limits:
  max_clients: 5
  max_request_bytes: 1KiB
  max_args: 3
  max_bulk_bytes: 10kb
  max_inline_bytes: 4096
  max_pending: 1
  max_output_bytes: 2GiB
  pubsub_hard_bytes: 3MiB
  pubsub_soft_bytes: 2MiB
  pubsub_soft_time: 5s
  max_reply_depth: 1024
  max_reply_bytes: 1MiB
  max_pending_bytes: 2MiB
log: {level: debug}
shutdown_timeout: 0
)");
  REQUIRE(c.listen.size() == 5);
  CHECK(c.listen[0].host == "0.0.0.0");
  CHECK(c.listen[0].port == 7000);
  CHECK(c.listen[1].host == "::1");
  CHECK(c.listen[2].kind == ListenAddress::Kind::kUnix);
  CHECK(c.listen[2].path == "/tmp/corral.sock");
  CHECK(c.listen[3].port == 0);
  CHECK(c.workers == 8);
  CHECK(c.upstream.primary.text == "10.0.0.1:6379");
  REQUIRE(c.upstream.replicas.size() == 2);
  CHECK(c.upstream.replicas[0].addr.host == "10.0.0.2");
  CHECK(c.upstream.replicas[1].addr.path == "/run/r.sock");
  CHECK(c.upstream.read_from == ReadFrom::kPreferReplica);
  CHECK(c.upstream.connect_timeout == Millis{250});
  CHECK(c.upstream.command_timeout == Millis{120000});
  CHECK(c.upstream.pool_size == 4);
  CHECK(c.upstream.max_dedicated == 9);
  CHECK(c.upstream.user == "corral");
  CHECK(c.upstream.password == "hunter2");
  CHECK(c.upstream.db == 3);
  CHECK(c.upstream.reconnect_min == Millis{10});
  CHECK(c.upstream.reconnect_max == Millis{3600000});
  REQUIRE(c.admin.listen.has_value());
  CHECK(c.admin.listen->host == "::");
  CHECK(c.admin.listen->port == 9121);
  CHECK(c.limits.max_clients == 5);
  CHECK(c.limits.max_request_bytes == 1024);
  CHECK(c.limits.max_args == 3);
  CHECK(c.limits.max_bulk_bytes == 10000);
  CHECK(c.limits.max_inline_bytes == 4096);
  CHECK(c.limits.max_pending == 1);
  CHECK(c.limits.max_output_bytes == 2ull << 30);
  CHECK(c.limits.pubsub_hard_bytes == 3ull << 20);
  CHECK(c.limits.pubsub_soft_bytes == 2ull << 20);
  CHECK(c.limits.pubsub_soft_time == std::chrono::seconds(5));
  CHECK(c.limits.max_reply_depth == 1024);
  CHECK(c.limits.max_reply_bytes == 1ull << 20);
  CHECK(c.limits.max_pending_bytes == 2ull << 20);
  CHECK(c.log.level == "debug");
  CHECK(c.shutdown_timeout == Millis{0});

  // A single string for listen and replicas; read_from replica.
  Config s = mustLoad(
      "listen: unix:/tmp/c.sock\nupstream: {primary: h:1, replicas: h:2, read_from: replica}\n");
  REQUIRE(s.listen.size() == 1);
  CHECK(s.listen[0].path == "/tmp/c.sock");
  REQUIRE(s.upstream.replicas.size() == 1);
  CHECK(s.upstream.replicas[0].addr.port == 2);
  CHECK(s.upstream.read_from == ReadFrom::kReplica);

  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    const std::string name = level;
    CAPTURE(name);
    CHECK(mustLoad(std::string("log: {level: ") + level + "}\n" + kPrimary).log.level == level);
  }
  CHECK(mustLoad(std::string(kPrimary)).log.format == "text");
  CHECK(mustLoad(std::string("log: {format: json}\n") + kPrimary).log.format == "json");
}

TEST_CASE("credentials: URL fields win one by one, upstream.* fills in the rest") {
  Config c = mustLoad(R"(
upstream:
  primary: "redis://alice:p%40ss@h:7/5"
  replicas: ["h2:8", "redis://:only@h3:9", "redis://carol@h4:1", "redis://h5:1/0"]
  user: bob
  password: base
  db: 2
)");
  const UpstreamConfig& u = c.upstream;
  CHECK(u.primary.user == "alice");
  CHECK(u.primary.password == "p@ss");
  CHECK(u.primary.db == 5);
  CHECK(u.primary.text == "redis://alice:***@h:7/5");
  REQUIRE(u.replicas.size() == 4);
  CHECK(u.replicas[0].user == "bob");
  CHECK(u.replicas[0].password == "base");
  CHECK(u.replicas[0].db == 2);
  CHECK(u.replicas[1].user == "bob");  // the URL names no user
  CHECK(u.replicas[1].password == "only");
  CHECK(u.replicas[1].db == 2);
  CHECK(u.replicas[1].text == "redis://:***@h3:9");
  CHECK(u.replicas[2].user == "carol");
  CHECK(u.replicas[2].password == "base");
  CHECK(u.replicas[3].db == 0);  // an explicit /0 wins over upstream.db
  CHECK(u.replicas[3].user == "bob");
}

TEST_CASE("password_env is read at load time") {
  const std::string yaml =
      "upstream:\n  primary: h:1\n  replicas: [h:2]\n"
      "  password_env: CORRAL_TEST_PASSWORD\n";
  SUBCASE("set") {
    ScopedEnv env("CORRAL_TEST_PASSWORD", "from-env");
    Config c = mustLoad(yaml);
    CHECK(c.upstream.password_env == "CORRAL_TEST_PASSWORD");
    CHECK(c.upstream.password == "from-env");
    CHECK(c.upstream.primary.password == "from-env");
    CHECK(c.upstream.replicas[0].password == "from-env");
  }
  SUBCASE("unset") {
    ScopedEnv env("CORRAL_TEST_PASSWORD", nullptr);
    CHECK(errorsOf(yaml) ==
          std::vector<std::string>{"t.yaml:4:17: upstream.password_env: environment variable "
                                   "CORRAL_TEST_PASSWORD is not set"});
  }
  SUBCASE("empty") {
    ScopedEnv env("CORRAL_TEST_PASSWORD", "");
    CHECK(errorsOf(yaml) ==
          std::vector<std::string>{"t.yaml:4:17: upstream.password_env: environment variable "
                                   "CORRAL_TEST_PASSWORD is empty"});
  }
  SUBCASE("together with password") {
    ScopedEnv env("CORRAL_TEST_PASSWORD", "from-env");
    CHECK(errorsOf(yaml + "  password: x\n") ==
          std::vector<std::string>{"t.yaml:4:17: upstream.password_env: cannot be used together "
                                   "with upstream.password"});
  }
}

TEST_CASE("each error names file:line:col, the key path, the rule and the value") {
  const std::string p = kPrimary;
  const std::string up = "upstream:\n  primary: h:1\n";  // line 3 is the first free line
  checkErrorCases({
      // workers
      {"workers: 0\n" + p, {"t.yaml:1:10: workers: must be an integer from 1 to 64 (got 0)"}},
      {"workers: 65\n" + p, {"t.yaml:1:10: workers: must be an integer from 1 to 64 (got 65)"}},
      {"workers: two\n" + p, {"t.yaml:1:10: workers: must be an integer from 1 to 64 (got two)"}},
      {"workers: 1.5\n" + p, {"t.yaml:1:10: workers: must be an integer from 1 to 64 (got 1.5)"}},
      {"workers: 0x10\n" + p, {"t.yaml:1:10: workers: must be an integer from 1 to 64 (got 0x10)"}},
      {"workers:\n" + p, {"t.yaml:1:1: workers: must be an integer from 1 to 64 (got nothing)"}},
      {"workers: [1]\n" + p,
       {"t.yaml:1:10: workers: must be an integer from 1 to 64 (got a list)"}},
      {"workers: \"\"\n" + p, {"t.yaml:1:10: workers: must be an integer from 1 to 64 (got \"\")"}},
      // listen
      {"listen: 127.0.0.1\n" + p,
       {"t.yaml:1:9: listen: needs a port, as in host:port (got 127.0.0.1)"}},
      {"listen: [127.0.0.1:6380, 'localhost:99999']\n" + p,
       {"t.yaml:1:26: listen[1]: port must be a number from 0 to 65535 (got localhost:99999)"}},
      {"listen: []\n" + p, {"t.yaml:1:9: listen: must list at least one address (got [])"}},
      {"listen: {a: 1}\n" + p,
       {"t.yaml:1:9: listen: must be an address or a list of addresses (got a mapping)"}},
      {"listen: ['::1:6380']\n" + p,
       {"t.yaml:1:10: listen[0]: IPv6 addresses need brackets, as in [::1]:port (got ::1:6380)"}},
      {"listen: '[::g]:6380'\n" + p,
       {"t.yaml:1:9: listen: is not a valid IPv6 address (got [::g]:6380)"}},
      {"listen: unix:run/c.sock\n" + p,
       {"t.yaml:1:9: listen: unix socket path must be absolute, like unix:/run/corral.sock "
        "(got unix:run/c.sock)"}},
      {"listen: 300.1.1.1:80\n" + p,
       {"t.yaml:1:9: listen: is not a valid host name or IP address (got 300.1.1.1:80)"}},
      {"listen: redis://x:1\n" + p,
       {"t.yaml:1:9: listen: must be host:port, [ipv6]:port, tls://host:port or unix:/path "
        "(got redis://x:1)"}},
      // upstream addresses
      {"upstream: [h:1]\n", {"t.yaml:1:11: upstream: must be a mapping (got a list)"}},
      {"upstream:\n  primary: 127.0.0.1\n",
       {"t.yaml:2:12: upstream.primary: needs a port, as in host:port (got 127.0.0.1)"}},
      {"upstream:\n  primary: h:0\n",
       {"t.yaml:2:12: upstream.primary: port must be a number from 1 to 65535 (got h:0)"}},
      {"upstream:\n  primary:\n",
       {"t.yaml:2:3: upstream.primary: must be host:port, unix:/path or "
        "redis[s]://[user[:password]@]host:port[/db] (got nothing)"}},
      {"upstream:\n  primary: redis://u:s3cret@h:1/99999999\n",
       {"t.yaml:2:12: upstream.primary: database must be a number from 0 to 1000000, as in "
        "redis://host:port/2 (got redis://u:***@h:1/99999999)"}},
      {"upstream:\n  primary: 'redis://u:p%zz@h:1'\n",
       {"t.yaml:2:12: upstream.primary: bad percent-encoding in the user or password (use %XX) "
        "(got redis://u:***@h:1)"}},
      {"upstream:\n  primary: http://h:1\n",
       {"t.yaml:2:12: upstream.primary: must be host:port, unix:/path or "
        "redis[s]://[user[:password]@]host:port[/db] (got http://h:1)"}},
      {up + "  replicas: {a: 1}\n",
       {"t.yaml:3:13: upstream.replicas: must be an address or a list of addresses "
        "(got a mapping)"}},
      // upstream scalars
      {up + "  read_from: replicas\n",
       {"t.yaml:3:14: upstream.read_from: must be one of primary, replica, prefer_replica "
        "(got replicas)"}},
      {up + "  connect_timeout: 5 parsecs\n",
       {"t.yaml:3:20: upstream.connect_timeout: must be a duration like 250ms, 1.5s or 5m "
        "(got 5 parsecs)"}},
      {up + "  command_timeout: 0\n",
       {"t.yaml:3:20: upstream.command_timeout: must be greater than 0 (got 0)"}},
      {up + "  command_timeout: 500\n",
       {"t.yaml:3:20: upstream.command_timeout: must have a unit (ms, s, m, h or d), like 250ms or "
        "5s (got 500)"}},
      {up + "  connect_timeout: -1s\n",
       {"t.yaml:3:20: upstream.connect_timeout: must not be negative (got -1s)"}},
      {up + "  connect_timeout: 99999999999999999999h\n",
       {"t.yaml:3:20: upstream.connect_timeout: is too large (got 99999999999999999999h)"}},
      {up + "  pool_size: 0\n",
       {"t.yaml:3:14: upstream.pool_size: must be an integer from 1 to 64 (got 0)"}},
      {up + "  db: -1\n",
       {"t.yaml:3:7: upstream.db: must be an integer from 0 to 1000000 (got -1)"}},
      {up + "  user: {a: 1}\n", {"t.yaml:3:9: upstream.user: must be a string (got a mapping)"}},
      {up + "  password: [a]\n", {"t.yaml:3:13: upstream.password: must be a string (got a list)"}},
      {up + "  password_env: 1BAD\n",
       {"t.yaml:3:17: upstream.password_env: must be the name of an environment variable, like "
        "REDIS_PASSWORD (got 1BAD)"}},
      {up + "  reconnect_backoff: {min: 0, max: 0}\n",
       {"t.yaml:3:28: upstream.reconnect_backoff.min: must be greater than 0 (got 0)",
        "t.yaml:3:36: upstream.reconnect_backoff.max: must be greater than 0 (got 0)"}},
      {up + "  reconnect_backoff: 1s\n",
       {"t.yaml:3:22: upstream.reconnect_backoff: must be a mapping (got 1s)"}},
      // admin
      {"admin: {listen: }\n" + p,
       {"t.yaml:1:9: admin.listen: must be host:port, [ipv6]:port, tls://host:port or "
        "unix:/path (got nothing)"}},
      {"admin: {listen: 'h'}\n" + p,
       {"t.yaml:1:17: admin.listen: needs a port, as in host:port (got h)"}},
      {"admin: 9121\n" + p, {"t.yaml:1:8: admin: must be a mapping (got 9121)"}},
      // limits
      {"limits: {max_clients: 0}\n" + p,
       {"t.yaml:1:23: limits.max_clients: must be an integer from 1 to 4294967295 (got 0)"}},
      {"limits: {max_args: 4294967296}\n" + p,
       {"t.yaml:1:20: limits.max_args: must be an integer from 1 to 4294967295 "
        "(got 4294967296)"}},
      {"limits: {max_request_bytes: 64}\n" + p,
       {"t.yaml:1:29: limits.max_request_bytes: must be at least 1KiB (is a unit missing?) "
        "(got 64)"}},
      {"limits: {max_request_bytes: 64Mb}\n" + p,
       {"t.yaml:1:29: limits.max_request_bytes: must be a size like 4096, 64KiB or 16MiB "
        "(got 64Mb)"}},
      {"limits: {max_bulk_bytes: -5}\n" + p,
       {"t.yaml:1:26: limits.max_bulk_bytes: must not be negative (got -5)"}},
      {"limits: {max_output_bytes: 99999999999999999999}\n" + p,
       {"t.yaml:1:28: limits.max_output_bytes: is too large (got 99999999999999999999)"}},
      {"limits: {max_inline_bytes: 4GiB}\n" + p,
       {"t.yaml:1:28: limits.max_inline_bytes: must be at most 4294967295 bytes (got 4GiB)"}},
      {"limits: {max_pending: 0}\n" + p,
       {"t.yaml:1:23: limits.max_pending: must be an integer from 1 to 4294967295 (got 0)"}},
      {"limits: {max_reply_bytes: 10}\n" + p,
       {"t.yaml:1:27: limits.max_reply_bytes: must be at least 1KiB (is a unit missing?) "
        "(got 10)"}},
      {"limits: {max_reply_depth: 2000}\n" + p,
       {"t.yaml:1:27: limits.max_reply_depth: must be an integer from 1 to 1024 (got 2000)"}},
      // log, shutdown_timeout
      {"log: {level: verbose}\n" + p,
       {"t.yaml:1:14: log.level: must be one of trace, debug, info, warn, error, critical, off "
        "(got verbose)"}},
      {"log: {format: logfmt}\n" + p,
       {"t.yaml:1:15: log.format: must be text or json (got logfmt)"}},
      {"shutdown_timeout: 5\n" + p,
       {"t.yaml:1:19: shutdown_timeout: must have a unit (ms, s, m, h or d), like 250ms or 5s "
        "(got 5)"}},
  });
}

// SHA-256("abc") (FIPS 180-4, appendix B.1), as config.h's AuthUser::sha256 must hold it.
constexpr const char* kAbcSha256Hex =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr std::array<uint8_t, 32> kAbcSha256 = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

TEST_CASE("auth.users: a plain password, a SHA-256 or an environment variable") {
  ScopedEnv env("CORRAL_TEST_AUTH_PASSWORD", "from-env");
  std::string upper = kAbcSha256Hex;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  Config c = mustLoad(std::string(kPrimary) + R"(auth:
  users:
    - {name: app, password: "s3cret"}
    - {name: ops, password_sha256: )" +
                      kAbcSha256Hex + R"(}
    - {name: OPS, password_sha256: )" +
                      upper + R"(}
    - {name: default, password_env: CORRAL_TEST_AUTH_PASSWORD}
    - name: "x@y:z"
      password: "with spaces and \r\n"
)");
  REQUIRE(c.auth.users.size() == 5);
  const AuthUser& app = c.auth.users[0];
  CHECK(app.name == "app");
  CHECK(app.password == "s3cret");
  CHECK_FALSE(app.has_sha);
  CHECK(app.password_env.empty());
  const AuthUser& ops = c.auth.users[1];
  CHECK(ops.name == "ops");
  CHECK(ops.password.empty());
  CHECK(ops.has_sha);
  CHECK(ops.sha256 == kAbcSha256);
  const AuthUser& ops_upper = c.auth.users[2];
  CHECK(ops_upper.name == "OPS");  // names are case-sensitive, as in Redis ACLs
  CHECK(ops_upper.has_sha);
  CHECK(ops_upper.sha256 == kAbcSha256);
  const AuthUser& def = c.auth.users[3];
  CHECK(def.name == "default");
  CHECK(def.password == "from-env");
  CHECK(def.password_env == "CORRAL_TEST_AUTH_PASSWORD");
  CHECK_FALSE(def.has_sha);
  CHECK(c.auth.users[4].name == "x@y:z");
  CHECK(c.auth.users[4].password == "with spaces and \r\n");

  // An empty list, or an empty section, switches auth off.
  CHECK(mustLoad(std::string(kPrimary) + "auth: {users: []}\n").auth.users.empty());
  CHECK(mustLoad(std::string(kPrimary) + "auth: {}\n").auth.users.empty());
}

TEST_CASE("auth.mode and auth.passthrough: every key, and the mode users imply") {
  const std::string p = kPrimary;
  Config c = mustLoad(p + R"(auth:
  mode: passthrough
  passthrough:
    unauthenticated: refuse
    cache_ttl: 0
    cache_entries: 5
    max_users: 3
    pool_size: 2
    idle_timeout: 1500ms
    max_checks: 7
)");
  CHECK(c.auth.mode == AuthMode::kPassthrough);
  const PassthroughConfig& pt = c.auth.passthrough;
  CHECK(pt.unauthenticated == Unauthenticated::kRefuse);
  CHECK(pt.cache_ttl == Millis{0});
  CHECK(pt.cache_entries == 5);
  CHECK(pt.max_users == 3);
  CHECK(pt.pool_size == 2);
  CHECK(pt.idle_timeout == Millis{1500});
  CHECK(pt.max_checks == 7);
  CHECK(mustLoad(p + "auth: {mode: off}\n").auth.mode == AuthMode::kOff);
  // Users listed: corral checks them, with or without the mode written.
  CHECK(mustLoad(p + "auth: {users: [{name: a, password: b}]}\n").auth.mode == AuthMode::kUsers);
  CHECK(mustLoad(p + "auth: {users: [{name: a, password: b}], mode: users}\n").auth.mode ==
        AuthMode::kUsers);
  CHECK(mustLoad(p + "auth: {users: []}\n").auth.mode == AuthMode::kPassthrough);
}

TEST_CASE("auth.mode and auth.passthrough errors") {
  const std::string p = kPrimary;
  checkErrorCases({
      {p + "auth: {mode: redis}\n",
       {"t.yaml:2:14: auth.mode: must be one of passthrough, users, off (got redis)"}},
      {p + "auth: {mode: users}\n",
       {"t.yaml:2:14: auth.mode: users needs at least one entry in auth.users (got users)"}},
      {p + "auth: {mode: passthrough, users: [{name: a, password: b}]}\n",
       {"t.yaml:2:14: auth.mode: must be users when auth.users lists users (got passthrough)"}},
      {p + "auth: {mode: off, users: [{name: a, password: b}]}\n",
       {"t.yaml:2:14: auth.mode: must be users when auth.users lists users (got off)"}},
      // A user with errors is reported once, not again as "no users".
      {p + "auth: {mode: users, users: [{name: a}]}\n",
       {"t.yaml:2:29: auth.users[0]: needs one of password, password_sha256 or password_env"}},
      {p + "auth: {passthrough: {unauthenticated: no}}\n",
       {"t.yaml:2:39: auth.passthrough.unauthenticated: must be one of upstream, refuse (got no)"}},
      {p + "auth: {passthrough: {cache_ttl: 10}}\n",
       {"t.yaml:2:33: auth.passthrough.cache_ttl: must have a unit (ms, s, m, h or d), like "
        "250ms or 5s (got 10)"}},
      {p + "auth: {passthrough: {max_users: 0, pool_size: 65, max_checks: 0, cache_entries: 0}}\n",
       {"t.yaml:2:33: auth.passthrough.max_users: must be an integer from 1 to 100000 (got 0)",
        "t.yaml:2:47: auth.passthrough.pool_size: must be an integer from 1 to 64 (got 65)",
        "t.yaml:2:63: auth.passthrough.max_checks: must be an integer from 1 to 10000 (got 0)",
        "t.yaml:2:81: auth.passthrough.cache_entries: must be an integer from 1 to 10000000 "
        "(got 0)"}},
      {p + "auth: {passthrough: {max_user: 3}}\n",
       {"t.yaml:2:22: auth.passthrough.max_user: unknown key (did you mean max_users?)"}},
  });
}

TEST_CASE("auth.users errors: exact positions, and secrets are never echoed") {
  const std::string p = kPrimary;                     // line 1; auth starts on line 2
  const std::string users = p + "auth:\n  users:\n";  // line 4 is the first user
  ScopedEnv unset("CORRAL_TEST_AUTH_UNSET", nullptr);
  ScopedEnv empty("CORRAL_TEST_AUTH_EMPTY", "");
  const std::vector<ErrorCase> cases = {
      {p + "auth: [a]\n", {"t.yaml:2:7: auth: must be a mapping (got a list)"}},
      {p + "auth: {users: }\n", {"t.yaml:2:8: auth.users: must be a list of users (got nothing)"}},
      {p + "auth: {users: {name: a}}\n",
       {"t.yaml:2:15: auth.users: must be a list of users (got a mapping)"}},
      {p + "auth: {user: []}\n", {"t.yaml:2:8: auth.user: unknown key (did you mean users?)"}},
      {p + "auht: {}\n", {"t.yaml:2:1: auht: unknown key (did you mean auth?)"}},
      {users + "    - app\n",
       {"t.yaml:4:7: auth.users[0]: must be a mapping like {name: app, password_env: "
        "APP_REDIS_PASSWORD} (got a string of 3 bytes)"}},
      // name
      {users + "    - {password: s3cret}\n", {"t.yaml:4:7: auth.users[0].name: is required"}},
      {users + "    - {name: '', password: s3cret}\n",
       {"t.yaml:4:14: auth.users[0].name: must be a non-empty name without spaces (got \"\")"}},
      {users + "    - {name: 'a b', password: s3cret}\n",
       {"t.yaml:4:14: auth.users[0].name: must be a non-empty name without spaces (got a b)"}},
      {users + "    - {name: \"a\\tb\", password: s3cret}\n",
       {"t.yaml:4:14: auth.users[0].name: must be a non-empty name without spaces (got a\\tb)"}},
      {users + "    - {name: [a], password: s3cret}\n",
       {"t.yaml:4:14: auth.users[0].name: must be a non-empty name without spaces "
        "(got a list)"}},
      {users + "    - {name: app, password: a}\n    - {name: b, password: b}\n"
               "    - {name: app, password: c}\n",
       {"t.yaml:6:14: auth.users[2].name: duplicate of auth.users[0].name (got app)"}},
      // which password
      {users + "    - {name: app}\n",
       {"t.yaml:4:7: auth.users[0]: needs one of password, password_sha256 or password_env"}},
      {users + "    - {name: app, password: s3cret, password_env: APP_PW}\n",
       {"t.yaml:4:37: auth.users[0].password_env: cannot be used together with password"}},
      {users + "    - name: app\n      password_sha256: " + kAbcSha256Hex +
           "\n      password: s3cret\n      password_env: X\n",
       {"t.yaml:6:7: auth.users[0].password: cannot be used together with password_sha256",
        "t.yaml:7:7: auth.users[0].password_env: cannot be used together with password_sha256"}},
      {users + "    - {name: app, pasword: s3cret}\n",
       {"t.yaml:4:7: auth.users[0]: needs one of password, password_sha256 or password_env",
        "t.yaml:4:19: auth.users[0].pasword: unknown key (did you mean password?)"}},
      // password
      {users + "    - {name: app, password: ''}\n",
       {"t.yaml:4:29: auth.users[0].password: must be a non-empty string (got an empty "
        "string)"}},
      {users + "    - {name: app, password: }\n",
       {"t.yaml:4:19: auth.users[0].password: must be a non-empty string (got nothing)"}},
      {users + "    - {name: app, password: [s3cret]}\n",
       {"t.yaml:4:29: auth.users[0].password: must be a non-empty string (got a list)"}},
      // password_sha256
      {users + "    - {name: app, password_sha256: abc123}\n",
       {"t.yaml:4:36: auth.users[0].password_sha256: must be 64 hex digits, the SHA-256 of the "
        "password (got a string of 6 bytes)"}},
      {users + "    - {name: app, password_sha256: " + std::string(63, 'a') + "g}\n",
       {"t.yaml:4:36: auth.users[0].password_sha256: must be 64 hex digits, the SHA-256 of the "
        "password (got a string of 64 bytes with a non-hex character)"}},
      {users + "    - {name: app, password_sha256: " + std::string(65, 'a') + "}\n",
       {"t.yaml:4:36: auth.users[0].password_sha256: must be 64 hex digits, the SHA-256 of the "
        "password (got a string of 65 bytes)"}},
      {users + "    - {name: app, password_sha256: {a: 1}}\n",
       {"t.yaml:4:36: auth.users[0].password_sha256: must be 64 hex digits, the SHA-256 of the "
        "password (got a mapping)"}},
      // password_env
      {users + "    - {name: app, password_env: CORRAL_TEST_AUTH_UNSET}\n",
       {"t.yaml:4:33: auth.users[0].password_env: environment variable CORRAL_TEST_AUTH_UNSET "
        "is not set"}},
      {users + "    - {name: app, password_env: CORRAL_TEST_AUTH_EMPTY}\n",
       {"t.yaml:4:33: auth.users[0].password_env: environment variable CORRAL_TEST_AUTH_EMPTY "
        "is empty"}},
      {users + "    - {name: app, password_env: 'APP PW'}\n",
       {"t.yaml:4:33: auth.users[0].password_env: must be the name of an environment variable, "
        "like APP_REDIS_PASSWORD (got APP PW)"}},
      // several users, several errors, in file order
      {users + "    - {name: a, password: x}\n    - {name: 'b c', password_env: 9}\n",
       {"t.yaml:5:14: auth.users[1].name: must be a non-empty name without spaces (got b c)",
        "t.yaml:5:35: auth.users[1].password_env: must be the name of an environment variable, "
        "like APP_REDIS_PASSWORD (got 9)"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }

  // No error shows a password or a hash, whatever else is wrong with the user.
  const std::string hash = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdeF";
  for (const std::string& user :
       {std::string("{name: app, password: SECRETPW, password_sha256: ") + hash + "}",
        std::string("{name: app, password_sha256: ") + hash + ", password: SECRETPW}",
        std::string("{name: app, password_sha256: ") + hash + "0}",
        std::string("{name: app, password_sha256: ") + hash.substr(0, 63) + "x}",
        std::string("{name: 'a b', password: SECRETPW}"),
        std::string("{name: app, password: SECRETPW, password: SECRETPW}"),
        std::string("{name: app, password: SECRETPW, paswd: SECRETPW}"),
        std::string("{name: app, password: {SECRETPW: 1}}")}) {
    CAPTURE(user);
    std::string yaml = users;
    yaml += "    - " + user + "\n";
    std::vector<std::string> errors = errorsOf(yaml);
    REQUIRE_FALSE(errors.empty());
    for (const std::string& e : errors) {
      CAPTURE(e);
      CHECK(e.find("SECRET") == std::string::npos);
      CHECK(e.find("0123456789") == std::string::npos);
    }
  }
}

}  // namespace
}  // namespace corral::config
