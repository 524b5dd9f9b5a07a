// Tests for the config loader: the scalar parsers, every key, every error with its exact
// position, and the shipped config/corral.yaml.
#include "config/config.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#ifndef CORRAL_SOURCE_DIR
#error "config_test needs CORRAL_SOURCE_DIR (set in config/CMakeLists.txt)"
#endif

// Lets doctest print error lists when a comparison fails.
namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& v) {
    std::string out = "{";
    for (const std::string& s : v) out += "\n  \"" + s + "\"";
    out += v.empty() ? "}" : "\n}";
    return String(out.c_str());
  }
};
}  // namespace doctest

namespace corral::config {
namespace {

// The smallest valid file; appended to snippets that test something else.
constexpr const char* kPrimary = "upstream: {primary: 127.0.0.1:6379}\n";

std::vector<std::string> errorsOf(const std::string& yaml) {
  LoadResult r = loadConfigText(yaml, "t.yaml");
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.format());
  CHECK(r.config.has_value() == out.empty());
  return out;
}

// All errors on one line, so a failing REQUIRE shows them.
std::string joined(const LoadResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += e.format() + "\n";
  return out;
}

Config mustLoad(const std::string& yaml) {
  LoadResult r = loadConfigText(yaml, "t.yaml");
  INFO(joined(r));
  REQUIRE(r.errors.empty());
  REQUIRE(r.config.has_value());
  return *r.config;
}

// Sets an environment variable for the lifetime of one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

TEST_CASE("parseDuration accepts an integer with ms, s, m, h or d, and a bare 0") {
  struct Case {
    const char* in;
    int64_t ms;
  };
  for (const Case& c : {Case{"0", 0}, Case{"00", 0}, Case{"0ms", 0}, Case{"250ms", 250},
                        Case{"5s", 5000}, Case{"2m", 120000}, Case{"1h", 3600000},
                        Case{"7d", 604800000}, Case{"9223372036854775807ms", INT64_MAX},
                        Case{"2562047788015h", 2562047788015 * 3600000}}) {
    const std::string in = c.in;
    CAPTURE(in);
    auto d = parseDuration(c.in);
    REQUIRE(d.has_value());
    CHECK(d->count() == c.ms);
  }
  for (const char* bad :
       {"", "5", "500", "1.5s", "-1s", "5 s", "5S", "5sec", "s", "ms", "+5s", "0x10s", "1w", "5us",
        "9223372036854775808ms", "2562047788016h", "99999999999999999999h"}) {
    const std::string text = bad;
    CAPTURE(text);
    CHECK_FALSE(parseDuration(bad).has_value());
  }
}

TEST_CASE("parseSize accepts bytes, binary units and 1000-based kb/mb/gb") {
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
    auto s = parseSize(c.in);
    REQUIRE(s.has_value());
    CHECK(*s == c.bytes);
  }
  for (const char* bad : {"", "-1", "1.5MiB", "16 MiB", "16mib", "16k", "16M", "KiB", "16KIB",
                          "0x10", "18446744073709551616", "16777216TiB", "1e6"}) {
    const std::string text = bad;
    CAPTURE(text);
    CHECK_FALSE(parseSize(bad).has_value());
  }
}

TEST_CASE("parseListenAddress: host:port, [v6]:port, unix:/path") {
  auto a = parseListenAddress("127.0.0.1:6380");
  REQUIRE(a);
  CHECK(a->kind == ListenAddress::Kind::kTcp);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 6380);
  CHECK(a->text == "127.0.0.1:6380");

  auto v6 = parseListenAddress("[::1]:7000");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 7000);
  CHECK(v6->text == "[::1]:7000");

  auto zone = parseListenAddress("[fe80::1%eth0]:1");
  REQUIRE(zone);
  CHECK(zone->host == "fe80::1%eth0");

  auto any = parseListenAddress("0.0.0.0:0");  // port 0: the kernel picks one
  REQUIRE(any);
  CHECK(any->port == 0);

  auto name = parseListenAddress("redis-cache.default.svc:6379");
  REQUIRE(name);
  CHECK(name->host == "redis-cache.default.svc");

  auto u = parseListenAddress("unix:/run/corral.sock");
  REQUIRE(u);
  CHECK(u->kind == ListenAddress::Kind::kUnix);
  CHECK(u->path == "/run/corral.sock");
  CHECK(u->text == "unix:/run/corral.sock");

  CHECK(parseListenAddress("unix:/" + std::string(106, 'a')));  // 107 bytes: the limit
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
    CHECK_FALSE(parseListenAddress(bad).has_value());
  }
}

TEST_CASE("parseUpstreamAddress: plain, unix and redis:// URLs") {
  auto plain = parseUpstreamAddress("10.0.0.5:6379");
  REQUIRE(plain);
  CHECK(plain->addr.host == "10.0.0.5");
  CHECK(plain->addr.port == 6379);
  CHECK(plain->text == "10.0.0.5:6379");
  CHECK(plain->user.empty());
  CHECK(plain->password.empty());
  CHECK(plain->db == 0);

  CHECK_FALSE(parseUpstreamAddress("10.0.0.5:0"));  // an upstream needs a real port

  auto u = parseUpstreamAddress("unix:/var/run/redis.sock");
  REQUIRE(u);
  CHECK(u->addr.kind == ListenAddress::Kind::kUnix);
  CHECK(u->addr.path == "/var/run/redis.sock");

  auto full = parseUpstreamAddress("redis://alice:s3cret@cache:6390/2");
  REQUIRE(full);
  CHECK(full->addr.host == "cache");
  CHECK(full->addr.port == 6390);
  CHECK(full->user == "alice");
  CHECK(full->password == "s3cret");
  CHECK(full->db == 2);
  CHECK(full->text == "redis://alice:***@cache:6390/2");
  CHECK(full->addr.text == "redis://alice:***@cache:6390/2");

  // Percent-encoding in user and password; '@' and ':' inside the password.
  auto enc = parseUpstreamAddress("redis://us%65r:p%40ss%3Aw%2Fd@[::1]:7000");
  REQUIRE(enc);
  CHECK(enc->user == "user");
  CHECK(enc->password == "p@ss:w/d");
  CHECK(enc->addr.host == "::1");
  CHECK(enc->text == "redis://us%65r:***@[::1]:7000");

  auto no_port = parseUpstreamAddress("REDIS://cache");
  REQUIRE(no_port);
  CHECK(no_port->addr.port == 6379);
  CHECK(no_port->db == 0);

  auto pw_only = parseUpstreamAddress("redis://:pw@h:1/");
  REQUIRE(pw_only);
  CHECK(pw_only->user.empty());
  CHECK(pw_only->password == "pw");
  CHECK(pw_only->text == "redis://:***@h:1/");

  auto user_only = parseUpstreamAddress("redis://bob@h:1/1000000");
  REQUIRE(user_only);
  CHECK(user_only->user == "bob");
  CHECK(user_only->password.empty());
  CHECK(user_only->db == 1000000);
  CHECK(user_only->text == "redis://bob@h:1/1000000");

  for (const char* bad :
       {"rediss://h:1", "http://h:1", "redis://", "redis://u:p@", "redis://h:1/1000001",
        "redis://h:1/-1", "redis://h:1/x", "redis://h:1?db=2", "redis://h:1/2#x",
        "redis://u:p%zz@h:1", "redis://u%4@h:1", "redis://h:0", "redis://::1:7000", ""}) {
    const std::string text = bad;
    CAPTURE(text);
    CHECK_FALSE(parseUpstreamAddress(bad).has_value());
  }
}

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
  CHECK(c.limits.pubsub_hard_bytes == 32ull << 20);
  CHECK(c.limits.pubsub_soft_bytes == 8ull << 20);
  CHECK(c.limits.pubsub_soft_time == std::chrono::seconds(60));
  CHECK(c.limits.max_reply_depth == 128);
  CHECK(c.limits.max_reply_bytes == 512ull << 20);
  CHECK(c.log.level == "info");
  CHECK(c.shutdown_timeout == Millis{5000});
  CHECK(c.auth.users.empty());  // auth off

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

// One bad snippet -> the exact errors it must produce.
struct ErrorCase {
  std::string yaml;
  std::vector<std::string> errors;
};

TEST_CASE("each error names file:line:col, the key path, the rule and the value") {
  const std::string p = kPrimary;
  const std::string up = "upstream:\n  primary: h:1\n";  // line 3 is the first free line
  const std::vector<ErrorCase> cases = {
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
       {"t.yaml:1:9: listen: must be host:port, [ipv6]:port or unix:/path, not a URL "
        "(got redis://x:1)"}},
      {"listen: [a:1, a:1, b:0, b:0]\n" + p,
       {"t.yaml:1:15: listen[1]: duplicate of listen[0] (got a:1)"}},
      // upstream addresses
      {"upstream:\n  replicas: []\n",
       {"t.yaml:2:3: upstream.primary: is required: the Redis server to proxy to, like "
        "127.0.0.1:6379"}},
      {"workers: 1\n",
       {"t.yaml:1:1: upstream.primary: is required: the Redis server to proxy to, like "
        "127.0.0.1:6379"}},
      {"",
       {"t.yaml:0:0: upstream.primary: is required: the Redis server to proxy to, like "
        "127.0.0.1:6379"}},
      {"upstream: [h:1]\n", {"t.yaml:1:11: upstream: must be a mapping (got a list)"}},
      {"upstream:\n  primary: 127.0.0.1\n",
       {"t.yaml:2:12: upstream.primary: needs a port, as in host:port (got 127.0.0.1)"}},
      {"upstream:\n  primary: h:0\n",
       {"t.yaml:2:12: upstream.primary: port must be a number from 1 to 65535 (got h:0)"}},
      {"upstream:\n  primary:\n",
       {"t.yaml:2:3: upstream.primary: must be host:port, unix:/path or "
        "redis://[user[:password]@]host:port[/db] (got nothing)"}},
      {"upstream:\n  primary: redis://u:s3cret@h:1/99999999\n",
       {"t.yaml:2:12: upstream.primary: database must be a number from 0 to 1000000, as in "
        "redis://host:port/2 (got redis://u:***@h:1/99999999)"}},
      {"upstream:\n  primary: 'redis://u:p%zz@h:1'\n",
       {"t.yaml:2:12: upstream.primary: bad percent-encoding in the user or password (use %XX) "
        "(got redis://u:***@h:1)"}},
      {"upstream:\n  primary: rediss://h:1\n",
       {"t.yaml:2:12: upstream.primary: rediss:// (TLS) is not supported by this version of "
        "corral (got rediss://h:1)"}},
      {"upstream:\n  primary: http://h:1\n",
       {"t.yaml:2:12: upstream.primary: must be host:port, unix:/path or "
        "redis://[user[:password]@]host:port[/db] (got http://h:1)"}},
      {up + "  replicas: [h:2, H:1, h:2]\n",
       {"t.yaml:3:19: upstream.replicas[1]: is the same server as upstream.primary (got H:1)",
        "t.yaml:3:24: upstream.replicas[2]: is the same server as upstream.replicas[0] "
        "(got h:2)"}},
      {up + "  replicas: {a: 1}\n",
       {"t.yaml:3:13: upstream.replicas: must be an address or a list of addresses "
        "(got a mapping)"}},
      {"upstream: {primary: 127.0.0.1:6380}\n",
       {"t.yaml:1:21: upstream.primary: is corral's own address listen (default); corral would "
        "proxy to itself (got 127.0.0.1:6380)"}},
      {"listen: [a:1, unix:/s]\nupstream: {primary: h:1, replicas: ['unix:/s']}\n",
       {"t.yaml:2:37: upstream.replicas[0]: is corral's own address listen[1]; corral would "
        "proxy to itself (got unix:/s)"}},
      // upstream scalars
      {up + "  read_from: replicas\n",
       {"t.yaml:3:14: upstream.read_from: must be one of primary, replica, prefer_replica "
        "(got replicas)"}},
      {up + "  read_from: replica\n",
       {"t.yaml:3:14: upstream.read_from: needs at least one upstream.replicas entry "
        "(got replica)"}},
      {up + "  connect_timeout: 5 parsecs\n",
       {"t.yaml:3:20: upstream.connect_timeout: must be a duration like 250ms or 5s "
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
      {up + "  reconnect_backoff: {min: 3s, max: 1s}\n",
       {"t.yaml:3:37: upstream.reconnect_backoff.max: must not be less than "
        "reconnect_backoff.min (3000ms) (got 1s)"}},
      {up + "  reconnect_backoff: {min: 5s}\n",
       {"t.yaml:3:28: upstream.reconnect_backoff.min: must not be more than "
        "reconnect_backoff.max (2000ms) (got 5s)"}},
      {up + "  reconnect_backoff: {max: 10ms}\n",
       {"t.yaml:3:28: upstream.reconnect_backoff.max: must not be less than "
        "reconnect_backoff.min (50ms) (got 10ms)"}},
      {up + "  reconnect_backoff: {min: 0, max: 0}\n",
       {"t.yaml:3:28: upstream.reconnect_backoff.min: must be greater than 0 (got 0)",
        "t.yaml:3:36: upstream.reconnect_backoff.max: must be greater than 0 (got 0)"}},
      {up + "  reconnect_backoff: 1s\n",
       {"t.yaml:3:22: upstream.reconnect_backoff: must be a mapping (got 1s)"}},
      // admin
      {"admin: {listen: }\n" + p,
       {"t.yaml:1:9: admin.listen: must be host:port, [ipv6]:port or unix:/path (got nothing)"}},
      {"admin: {listen: 'h'}\n" + p,
       {"t.yaml:1:17: admin.listen: needs a port, as in host:port (got h)"}},
      {"admin: {listen: 127.0.0.1:6380}\n" + p,
       {"t.yaml:1:17: admin.listen: is the same address as listen (default) "
        "(got 127.0.0.1:6380)"}},
      {"listen: [x:5]\nadmin: {listen: X:5}\n" + p,
       {"t.yaml:2:17: admin.listen: is the same address as listen[0] (got X:5)"}},
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
      {"shutdown_timeout: 5\n" + p,
       {"t.yaml:1:19: shutdown_timeout: must have a unit (ms, s, m, h or d), like 250ms or 5s "
        "(got 5)"}},
      // structure
      {"- a\n", {"t.yaml:1:1: (root): the file must be a mapping of settings (got a list)"}},
      {"just text\n",
       {"t.yaml:1:1: (root): the file must be a mapping of settings (got just text)"}},
      {"workers: 1\nworkers: 2\n" + p,
       {"t.yaml:2:1: workers: duplicate key (first set at line 1)"}},
      {"? [a]\n: 1\n" + p, {"t.yaml:1:3: (root): keys must be plain names (got a list)"}},
      {"---\nworkers: 1\n---\nworkers: 2\n",
       {"t.yaml:4:1: (yaml): the file holds more than one YAML document; corral reads one"}},
      // syntax errors: one error, where yaml-cpp puts it
      {"workers: [1\nupstream: 2\n", {"t.yaml:2:9: (yaml): end of sequence flow not found"}},
      {"workers: b: c\n", {"t.yaml:1:11: (yaml): illegal map value"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
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

TEST_CASE("unknown keys are errors, with a suggestion for a near miss") {
  const std::string p = kPrimary;
  const std::vector<ErrorCase> cases = {
      {"wrkers: 2\n" + p, {"t.yaml:1:1: wrkers: unknown key (did you mean workers?)"}},
      {"Workers: 2\n" + p, {"t.yaml:1:1: Workers: unknown key (did you mean workers?)"}},
      {"lsiten: a:1\n" + p, {"t.yaml:1:1: lsiten: unknown key (did you mean listen?)"}},
      {"foo: 1\n" + p, {"t.yaml:1:1: foo: unknown key"}},
      {"x: 1\n" + p, {"t.yaml:1:1: x: unknown key"}},
      {"upstream:\n  primary: h:1\n  conect_timeout: 1s\n",
       {"t.yaml:3:3: upstream.conect_timeout: unknown key (did you mean connect_timeout?)"}},
      {"upstream:\n  primary: h:1\n  replica: [h:2]\n",
       {"t.yaml:3:3: upstream.replica: unknown key (did you mean replicas?)"}},
      {"upstream:\n  primary: h:1\n  reconnect_backoff: {mn: 1s}\n",
       {"t.yaml:3:23: upstream.reconnect_backoff.mn: unknown key (did you mean min?)"}},
      {"limits: {max_client: 5}\n" + p,
       {"t.yaml:1:10: limits.max_client: unknown key (did you mean max_clients?)"}},
      {"log: {levle: info, file: x}\n" + p,
       {"t.yaml:1:7: log.levle: unknown key (did you mean level?)",
        "t.yaml:1:20: log.file: unknown key"}},
      {"admin: {listen: 'h:1', port: 2}\n" + p, {"t.yaml:1:24: admin.port: unknown key"}},
      {"polices: []\n" + p, {"t.yaml:1:1: polices: unknown key (did you mean policies?)"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
}

// ---- policies: origins, global, defaults, policies, policy_files --------------------------

// The example of POLICIES.md, with two policies and every policy field written once.
constexpr const char* kPolicyExample = R"(listen: [127.0.0.1:6380]
workers: 1
upstream:
  primary: 127.0.0.1:6379
  replicas: [127.0.0.1:6381]
  read_from: primary
admin: {listen: 127.0.0.1:9121}
origins:
  users: {base_url: "http://127.0.0.1:8080", timeout: 300ms, max_in_flight: 64}
  catalog: {base_url: "HTTP://catalog.internal/api/v2/"}
global:
  unmatched_keys: audit
  commands: {deny: [FLUSHALL, FLUSHDB, KEYS, DEBUG], audit: [SCAN, config|set]}
  rate_limits:
    - {name: per_client, rate: 1000/s, key_by: [client, key]}
defaults: {ttl: {jitter: 10%}}
policies:
  - name: users
    match: "user:<id:int>"
    mode: enforce
    priority: 5
    naming: {max_key_bytes: 1KiB}
    ttl: {default: 10m, min: 1m, max: 1h, require: true, on_violation: fix, jitter: 0.2,
          jitter_client: true}
    fill: {origin: users, path: "/v1/users/<id>", commands: [GET, mget], on_error: error,
           max_value_bytes: 1MiB}
    negative: {ttl: 30s}
    stampede: {single_flight: distributed, lock_ttl: 2s, wait: 500ms}
    freshness: {stale_while_revalidate: 30s, stale_if_error: 5m, early_refresh: xfetch,
                early_refresh_beta: 1.5}
    routing: {read_from: prefer_replica, read_your_writes: 2s}
    rate_limits:
      - name: user_writes
        rate: 5/250ms
        burst: 20
        commands: [SET, "@write", CLIENT|KILL]
        key_by: [client, "capture:id", policy, command]
        scope: local
        on_limit: shadow
  - {name: sessions, match: "glob:sess:*", mode: audit}
)";

TEST_CASE("policies: the POLICIES.md example parses into exact values") {
  Config c = mustLoad(kPolicyExample);
  const PolicyConfig& pc = c.policy;
  CHECK(pc.files.empty());  // the main file is not listed

  REQUIRE(pc.origins.size() == 2);
  CHECK(pc.origins[0].name == "users");
  CHECK(pc.origins[0].base_url == "http://127.0.0.1:8080");
  CHECK(pc.origins[0].timeout == Millis{300});
  CHECK(pc.origins[0].max_in_flight == 64);
  CHECK(pc.origins[0].where.file == "t.yaml");
  CHECK(pc.origins[0].where.line == 9);
  CHECK(pc.origins[0].where.col == 10);
  CHECK(pc.origins[1].name == "catalog");
  CHECK(pc.origins[1].base_url == "http://catalog.internal/api/v2");  // scheme lowered, no '/'
  CHECK(pc.origins[1].timeout == Millis{1000});                       // defaults
  CHECK(pc.origins[1].max_in_flight == 64);

  CHECK(pc.global.unmatched_keys == UnmatchedKeys::kAudit);
  CHECK(pc.global.deny_commands ==
        std::vector<std::string>{"flushall", "flushdb", "keys", "debug"});
  CHECK(pc.global.audit_commands == std::vector<std::string>{"scan", "config|set"});
  REQUIRE(pc.global.rate_limits.size() == 1);
  const RateLimitSpec& g = pc.global.rate_limits[0];
  CHECK(g.name == "per_client");
  CHECK(g.count == 1000);
  CHECK(g.period == Millis{1000});
  CHECK(g.burst == 1000);  // default: the count
  CHECK(g.commands.empty());
  REQUIRE(g.key_by.size() == 2);
  CHECK(g.key_by[0].kind == KeyByPart::Kind::kClient);
  CHECK(g.key_by[1].kind == KeyByPart::Kind::kKey);
  CHECK(g.scope == LimitScope::kLocal);
  CHECK(g.on_limit == OnLimit::kReject);
  CHECK(g.where.line == 15);
  CHECK(g.where.col == 7);

  REQUIRE(pc.policies.size() == 2);
  const PolicySpec& u = pc.policies[0];
  CHECK(u.name == "users");
  CHECK(u.match == "user:<id:int>");
  CHECK(u.where.file == "t.yaml");
  CHECK(u.where.line == 18);
  CHECK(u.where.col == 5);
  CHECK(u.match_where.file == "t.yaml");
  CHECK(u.match_where.line == 19);
  CHECK(u.match_where.col == 12);
  CHECK(u.mode == PolicyMode::kEnforce);
  CHECK(u.priority == 5);
  CHECK(u.max_key_bytes == 1024);
  REQUIRE(u.ttl.default_ttl.has_value());
  CHECK(*u.ttl.default_ttl == Millis{600000});
  CHECK(u.ttl.min == Millis{60000});
  CHECK(u.ttl.max == Millis{3600000});
  CHECK(u.ttl.require);
  CHECK(u.ttl.on_violation == TtlOnViolation::kFix);
  CHECK(u.ttl.jitter == doctest::Approx(0.2));  // the policy's own, over the defaults' 10%
  CHECK(u.ttl.jitter_client);
  CHECK(u.fill.origin == "users");
  CHECK(u.fill.path == "/v1/users/<id>");
  CHECK(u.fill.commands == std::vector<std::string>{"get", "mget"});
  CHECK(u.fill.on_error == FillOnError::kError);
  CHECK(u.fill.max_value_bytes == uint64_t{1} << 20);
  CHECK(u.negative_ttl == Millis{30000});
  CHECK(u.stampede.single_flight == SingleFlight::kDistributed);
  CHECK(u.stampede.lock_ttl == Millis{2000});
  CHECK(u.stampede.wait == Millis{500});
  CHECK(u.freshness.stale_while_revalidate == Millis{30000});
  CHECK(u.freshness.stale_if_error == Millis{300000});
  CHECK(u.freshness.xfetch);
  CHECK(u.freshness.beta == doctest::Approx(1.5));
  CHECK(u.routing.read_from == PolicyReadFrom::kPreferReplica);
  CHECK(u.routing.read_your_writes == Millis{2000});
  REQUIRE(u.rate_limits.size() == 1);
  const RateLimitSpec& l = u.rate_limits[0];
  CHECK(l.name == "user_writes");
  CHECK(l.count == 5);
  CHECK(l.period == Millis{250});
  CHECK(l.burst == 20);
  CHECK(l.commands == std::vector<std::string>{"set", "@write", "client|kill"});
  REQUIRE(l.key_by.size() == 4);
  CHECK(l.key_by[0].kind == KeyByPart::Kind::kClient);
  CHECK(l.key_by[1].kind == KeyByPart::Kind::kCapture);
  CHECK(l.key_by[1].capture == "id");
  CHECK(l.key_by[2].kind == KeyByPart::Kind::kPolicy);
  CHECK(l.key_by[3].kind == KeyByPart::Kind::kCommand);
  CHECK(l.scope == LimitScope::kLocal);
  CHECK(l.on_limit == OnLimit::kShadow);
  CHECK(l.where.line == 33);
  CHECK(l.where.col == 9);

  // The second policy: everything it does not write is a built-in default (or defaults:).
  const PolicySpec& s = pc.policies[1];
  const PolicySpec none;
  CHECK(s.name == "sessions");
  CHECK(s.match == "glob:sess:*");
  CHECK(s.where.line == 40);
  CHECK(s.where.col == 5);
  CHECK(s.match_where.col == 29);
  CHECK(s.mode == PolicyMode::kAudit);
  CHECK(s.priority == 0);
  CHECK(s.max_key_bytes == 512);
  CHECK_FALSE(s.ttl.default_ttl.has_value());
  CHECK_FALSE(s.ttl.min.has_value());
  CHECK_FALSE(s.ttl.max.has_value());
  CHECK_FALSE(s.ttl.require);
  CHECK(s.ttl.on_violation == TtlOnViolation::kFix);
  CHECK(s.ttl.jitter == doctest::Approx(0.1));
  CHECK_FALSE(s.ttl.jitter_client);
  CHECK(s.fill.origin.empty());
  CHECK(s.fill.path.empty());
  CHECK(s.fill.commands == std::vector<std::string>{"get"});
  CHECK(s.fill.on_error == FillOnError::kNil);
  CHECK_FALSE(s.fill.max_value_bytes.has_value());
  CHECK(s.negative_ttl == Millis{0});
  CHECK_FALSE(s.stampede.single_flight.has_value());
  CHECK_FALSE(s.stampede.lock_ttl.has_value());
  CHECK_FALSE(s.stampede.wait.has_value());
  CHECK(s.freshness.stale_while_revalidate == Millis{0});
  CHECK(s.freshness.stale_if_error == Millis{0});
  CHECK_FALSE(s.freshness.xfetch);
  CHECK(s.freshness.beta == doctest::Approx(none.freshness.beta));
  CHECK_FALSE(s.routing.read_from.has_value());
  CHECK(s.routing.read_your_writes == Millis{0});
  CHECK(s.rate_limits.empty());
}

TEST_CASE("policies: no policy sections at all gives an empty PolicyConfig") {
  Config c = mustLoad(kPrimary);
  CHECK(c.policy.origins.empty());
  CHECK(c.policy.global.unmatched_keys == UnmatchedKeys::kAllow);
  CHECK(c.policy.global.deny_commands.empty());
  CHECK(c.policy.global.audit_commands.empty());
  CHECK(c.policy.global.rate_limits.empty());
  CHECK(c.policy.policies.empty());
  CHECK(c.policy.files.empty());
  // Empty sections are allowed where they are mappings.
  Config e = mustLoad(
      std::string("origins:\nglobal:\ndefaults:\npolicies: []\npolicy_files: []\n") + kPrimary);
  CHECK(e.policy.policies.empty());
}

TEST_CASE(
    "defaults merge into every policy: nested mappings key by key, policy wins, lists "
    "replace") {
  Config c = mustLoad(std::string(R"(origins: {o: {base_url: "http://o:80"}}
defaults:
  mode: audit
  priority: 3
  ttl: {default: 5m, max: 1h, jitter: 25%}
  fill: {origin: o, path: /d, commands: [GET, MGET]}
  routing: {read_your_writes: 1s}
policies:
  - {name: a, match: "a:<id>"}
  - name: b
    match: "b:<id>"
    mode: enforce
    ttl: {default: 1m, jitter_client: true}
    fill: {commands: [HGETALL]}
    routing: {read_your_writes: 0}
)") + kPrimary);
  REQUIRE(c.policy.policies.size() == 2);
  const PolicySpec& a = c.policy.policies[0];
  CHECK(a.mode == PolicyMode::kAudit);
  CHECK(a.priority == 3);
  CHECK(a.ttl.default_ttl == Millis{300000});
  CHECK(a.ttl.max == Millis{3600000});
  CHECK(a.ttl.jitter == doctest::Approx(0.25));
  CHECK(a.fill.origin == "o");
  CHECK(a.fill.path == "/d");
  CHECK(a.fill.commands == std::vector<std::string>{"get", "mget"});
  CHECK(a.routing.read_your_writes == Millis{1000});
  CHECK(a.where.line == 9);  // the policy's own position, not the defaults'

  const PolicySpec& b = c.policy.policies[1];
  CHECK(b.mode == PolicyMode::kEnforce);                          // policy wins
  CHECK(b.priority == 3);                                         // from defaults
  CHECK(b.ttl.default_ttl == Millis{60000});                      // policy wins inside ttl
  CHECK(b.ttl.max == Millis{3600000});                            // ... the rest of ttl merges
  CHECK(b.ttl.jitter == doctest::Approx(0.25));                   // ... from defaults
  CHECK(b.ttl.jitter_client);                                     // policy only
  CHECK(b.fill.origin == "o");                                    // fill merges too
  CHECK(b.fill.commands == std::vector<std::string>{"hgetall"});  // lists replace
  CHECK(b.routing.read_your_writes == Millis{0});                 // an explicit 0 wins too
}

TEST_CASE("defaults: errors are reported once, at their own position") {
  const std::string p = kPrimary;
  // Two policies inherit the bad jitter; it is reported once, under defaults.
  CHECK(errorsOf("defaults: {ttl: {jitter: 100%, min: 1h, max: 1m}}\n"
                 "policies: [{name: a, match: a}, {name: b, match: b}]\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:1:26: defaults.ttl.jitter: must be less than 100% (as a fraction, less than "
            "1) (got 100%)",
            "t.yaml:1:46: defaults.ttl.max: must not be less than ttl.min (1h) (got 1m)"});
  // A policy that breaks a rule with a value from defaults is told where that value came from.
  CHECK(errorsOf("defaults: {ttl: {max: 1m}}\n"
                 "policies: [{name: a, match: a, ttl: {min: 1h}}]\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:2:43: policies[0].ttl.min: must not be more than ttl.max (1m from "
            "defaults.ttl.max at t.yaml:1:23) (got 1h)"});
  // Fields that only a policy has are refused in defaults.
  CHECK(errorsOf("defaults: {name: x, match: y, priority: 1,\n"
                 "           rate_limits: [{name: l, rate: 1/s}]}\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:1:12: defaults.name: is not allowed in defaults: each policy has its own name",
            "t.yaml:1:21: defaults.match: is not allowed in defaults: each policy has its own "
            "match",
            "t.yaml:2:12: defaults.rate_limits: is not allowed in defaults: limit names are "
            "unique, so a limit for every key belongs in global.rate_limits"});
  CHECK(errorsOf("defaults: [ttl]\n" + p) ==
        std::vector<std::string>{"t.yaml:1:11: defaults: must be a mapping of policy fields, like "
                                 "{ttl: {jitter: 10%}} (got a list)"});
  CHECK(errorsOf("defaults: {tll: {}}\n" + p) ==
        std::vector<std::string>{"t.yaml:1:12: defaults.tll: unknown key (did you mean ttl?)"});
  // ttl.require from defaults: every policy without a default is told, at the policy.
  CHECK(errorsOf("defaults: {ttl: {require: true}}\n"
                 "policies:\n"
                 "  - {name: a, match: a, ttl: {default: 1m}}\n"
                 "  - {name: b, match: b}\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:4:5: policies[1]: ttl.require with on_violation fix needs ttl.default"});
}

TEST_CASE("policy fields: every rule, with its exact error") {
  const std::string p = kPrimary;
  // pol(x): one policy whose extra fields x start at line 2, column 32.
  auto pol = [&](const std::string& fields) {
    return "policies:\n  - {name: a, match: \"a:<id>\", " + fields + "}\n" + p;
  };
  const std::string orig = "origins: {o: {base_url: \"http://h:1\"}}\n";
  const std::vector<ErrorCase> cases = {
      // policies itself
      {"policies:\n" + p, {"t.yaml:1:1: policies: must be a list of policies (got nothing)"}},
      {"policies: {a: 1}\n" + p,
       {"t.yaml:1:11: policies: must be a list of policies (got a mapping)"}},
      {"policies: [x]\n" + p,
       {"t.yaml:1:12: policies[0]: must be a mapping like {name: users, match: "
        "\"user:<id:int>\"} (got x)"}},
      // name, match
      {"policies: [{match: a}]\n" + p, {"t.yaml:1:12: policies[0].name: is required"}},
      {"policies: [{name: a}]\n" + p,
       {"t.yaml:1:12: policies[0].match: is required, like \"user:<id:int>\""}},
      {"policies: [{name: 'a b', match: a}]\n" + p,
       {"t.yaml:1:19: policies[0].name: must be 1 to 128 characters of A-Z a-z 0-9 _ . : - "
        "(got a b)"}},
      {"policies: [{name: " + std::string(129, 'n') + ", match: a}]\n" + p,
       {"t.yaml:1:19: policies[0].name: must be 1 to 128 characters of A-Z a-z 0-9 _ . : - "
        "(got " +
        std::string(80, 'n') + "...)"}},
      {"policies: [{name: a, match: ''}]\n" + p,
       {"t.yaml:1:29: policies[0].match: must be a key template like \"user:<id:int>\" (got "
        "\"\")"}},
      {"policies: [{name: a, match: [x]}]\n" + p,
       {"t.yaml:1:29: policies[0].match: must be a key template like \"user:<id:int>\" (got a "
        "list)"}},
      // mode, priority, naming
      {pol("mode: strict"),
       {"t.yaml:2:38: policies[0].mode: must be one of enforce, audit, off (got strict)"}},
      {pol("priority: 1.5"),
       {"t.yaml:2:42: policies[0].priority: must be an integer from -1000000 to 1000000 (got "
        "1.5)"}},
      {pol("naming: {max_key_bytes: 0}"),
       {"t.yaml:2:56: policies[0].naming.max_key_bytes: must be at least 1 (got 0)"}},
      {pol("naming: {max_key_bytes: 65537}"),
       {"t.yaml:2:56: policies[0].naming.max_key_bytes: must be at most 65536 bytes (got "
        "65537)"}},
      {pol("naming: 5"), {"t.yaml:2:40: policies[0].naming: must be a mapping (got 5)"}},
      // ttl
      {pol("ttl: {default: 0}"),
       {"t.yaml:2:47: policies[0].ttl.default: must be greater than 0 (got 0)"}},
      {pol("ttl: {min: 5}"),
       {"t.yaml:2:43: policies[0].ttl.min: must have a unit (ms, s, m, h or d), like 250ms or 5s "
        "(got 5)"}},
      {pol("ttl: {require: yes}"),
       {"t.yaml:2:47: policies[0].ttl.require: must be true or false (got yes)"}},
      {pol("ttl: {jitter_client: 1}"),
       {"t.yaml:2:53: policies[0].ttl.jitter_client: must be true or false (got 1)"}},
      {pol("ttl: {on_violation: clamp}"),
       {"t.yaml:2:52: policies[0].ttl.on_violation: must be one of fix, reject, audit (got "
        "clamp)"}},
      {pol("ttl: {min: 1h, max: 1m}"),
       {"t.yaml:2:52: policies[0].ttl.max: must not be less than ttl.min (1h) (got 1m)"}},
      {pol("ttl: {default: 1s, min: 1m}"),
       {"t.yaml:2:47: policies[0].ttl.default: must not be less than ttl.min (1m) (got 1s)"}},
      {pol("ttl: {default: 2h, max: 1h}"),
       {"t.yaml:2:47: policies[0].ttl.default: must not be more than ttl.max (1h) (got 2h)"}},
      {pol("ttl: {require: true}"),
       {"t.yaml:2:47: policies[0]: ttl.require with on_violation fix needs ttl.default"}},
      // fill
      {pol("fill: {origin: nope, path: /x}"),
       {"t.yaml:2:47: policies[0].fill.origin: must name an entry of origins (got nope)"}},
      {orig + pol("fill: {origin: o}"),
       {"t.yaml:3:47: policies[0].fill.path: is required with fill.origin"}},
      {orig + pol("fill: {origin: o, path: v1/<id>}"),
       {"t.yaml:3:56: policies[0].fill.path: must be a path starting with /, like "
        "/v1/users/<id> (got v1/<id>)"}},
      {pol("fill: {path: /x}"), {"t.yaml:2:45: policies[0].fill.path: needs fill.origin (got /x)"}},
      {orig + pol("fill: {origin: o, path: /x, commands: [GET, SET]}"),
       {"t.yaml:3:76: policies[0].fill.commands[1]: must be one of GET, MGET, GETEX, HGETALL "
        "(got SET)"}},
      {orig + pol("fill: {origin: o, path: /x, commands: []}"),
       {"t.yaml:3:70: policies[0].fill.commands: must list at least one command (got [])"}},
      {orig + pol("fill: {origin: o, path: /x, commands: [get, GET]}"),
       {"t.yaml:3:76: policies[0].fill.commands[1]: duplicate of policies[0].fill.commands[0] "
        "(got GET)"}},
      {orig + pol("fill: {origin: o, path: /x, on_error: fail}"),
       {"t.yaml:3:70: policies[0].fill.on_error: must be one of nil, error (got fail)"}},
      {orig + pol("fill: {origin: o, path: /x, max_value_bytes: 100}"),
       {"t.yaml:3:77: policies[0].fill.max_value_bytes: must be at least 1KiB (is a unit "
        "missing?) (got 100)"}},
      // negative, stampede, freshness, routing
      {pol("negative: {ttl: -1s}"),
       {"t.yaml:2:48: policies[0].negative.ttl: must not be negative (got -1s)"}},
      {pol("stampede: {single_flight: global}"),
       {"t.yaml:2:58: policies[0].stampede.single_flight: must be one of off, local, "
        "distributed (got global)"}},
      {pol("stampede: {lock_ttl: 0}"),
       {"t.yaml:2:53: policies[0].stampede.lock_ttl: must be greater than 0 (got 0)"}},
      {pol("stampede: {wait: 1.5s}"),
       {"t.yaml:2:49: policies[0].stampede.wait: must be a duration like 250ms or 5s (got "
        "1.5s)"}},
      {pol("freshness: {stale_if_error: 5}"),
       {"t.yaml:2:60: policies[0].freshness.stale_if_error: must have a unit (ms, s, m, h or d), "
        "like 250ms or 5s (got 5)"}},
      {pol("freshness: {early_refresh: on}"),
       {"t.yaml:2:59: policies[0].freshness.early_refresh: must be one of off, xfetch (got on)"}},
      {pol("freshness: {early_refresh_beta: 0}"),
       {"t.yaml:2:64: policies[0].freshness.early_refresh_beta: must be a number greater than "
        "0, like 1.0 (got 0)"}},
      {pol("freshness: {early_refresh_beta: -1}"),
       {"t.yaml:2:64: policies[0].freshness.early_refresh_beta: must be a number greater than "
        "0, like 1.0 (got -1)"}},
      {pol("routing: {read_from: any}"),
       {"t.yaml:2:53: policies[0].routing.read_from: must be one of primary, replica, "
        "prefer_replica (got any)"}},
      {pol("routing: {read_from: replica}"),
       {"t.yaml:2:53: policies[0].routing.read_from: needs at least one upstream.replicas "
        "entry (got replica)"}},
      {pol("routing: {read_your_writes: 1w}"),
       {"t.yaml:2:60: policies[0].routing.read_your_writes: must be a duration like 250ms or "
        "5s (got 1w)"}},
      // unknown keys, in a policy and in its sections
      {pol("tll: {}"), {"t.yaml:2:32: policies[0].tll: unknown key (did you mean ttl?)"}},
      {pol("ttl: {defualt: 1s}"),
       {"t.yaml:2:38: policies[0].ttl.defualt: unknown key (did you mean default?)"}},
      {pol("fill: {origins: o}"),
       {"t.yaml:2:39: policies[0].fill.origins: unknown key (did you mean origin?)"}},
      {pol("cache: true"), {"t.yaml:2:32: policies[0].cache: unknown key"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
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

TEST_CASE("rate limits: rate forms, burst, commands, key_by") {
  struct Case {
    const char* in;
    uint64_t count;
    int64_t period_ms;
  };
  for (const Case& c :
       {Case{"100/s", 100, 1000}, Case{"6000/m", 6000, 60000}, Case{"5/250ms", 5, 250},
        Case{"1000/h", 1000, 3600000}, Case{"1/ms", 1, 1}, Case{"10/5s", 10, 5000},
        Case{"1/24h", 1, 86400000}, Case{"1000000/s", 1000000, 1000}}) {
    const std::string in = c.in;
    CAPTURE(in);
    Config cfg = mustLoad("global: {rate_limits: [{name: l, rate: '" + in + "'}]}\n" + kPrimary);
    const RateLimitSpec& l = cfg.policy.global.rate_limits[0];
    CHECK(l.count == c.count);
    CHECK(l.period == Millis{c.period_ms});
    CHECK(l.burst == c.count);
  }
  struct Bad {
    const char* in;
    const char* why;
  };
  for (const Bad& b :
       {Bad{"100", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"100/sec", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"/s", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"1.5/s", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"100 / s", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"5/250", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"-1/s", "must be a rate like 100/s, 6000/m or 5/250ms"},
        Bad{"0/s", "must allow at least 1 request per period"},
        Bad{"5/0ms", "period must be greater than 0"}, Bad{"1/25h", "period must be at most 24h"},
        Bad{"1000001/s", "must be at most 1000000 per second"},
        Bad{"2000000000/h", "count must be at most 1000000000"},
        Bad{"99999999999999999999/s", "count is too large"}}) {
    const std::string in = b.in;
    CAPTURE(in);
    CHECK(errorsOf("global: {rate_limits: [{name: l, rate: '" + in + "'}]}\n" + kPrimary) ==
          std::vector<std::string>{"t.yaml:1:40: global.rate_limits[0].rate: " +
                                   std::string(b.why) + " (got " + in + ")"});
  }

  const std::string p = kPrimary;
  // lim(x): a policy limit whose extra fields x start at line 2, column 60.
  auto lim = [&](const std::string& fields) {
    return "policies:\n  - {name: a, match: a, rate_limits: [{name: l, rate: 1/s, " + fields +
           "}]}\n" + p;
  };
  const std::vector<ErrorCase> cases = {
      {lim("burst: 0"),
       {"t.yaml:2:67: policies[0].rate_limits[0].burst: must be an integer from 1 to "
        "1000000000 (got 0)"}},
      {lim("commands: GET"),
       {"t.yaml:2:70: policies[0].rate_limits[0].commands: must be a list of command names "
        "(GET, CONFIG|SET) or @read, @write (got GET)"}},
      {lim("commands: ['config set', '@admin', '|get', GET, get]"),
       {"t.yaml:2:71: policies[0].rate_limits[0].commands[0]: must be a command name like GET "
        "or CONFIG|SET, or @read or @write (got config set)",
        "t.yaml:2:85: policies[0].rate_limits[0].commands[1]: must be a command name like GET "
        "or CONFIG|SET, or @read or @write (got @admin)",
        "t.yaml:2:95: policies[0].rate_limits[0].commands[2]: must be a command name like GET "
        "or CONFIG|SET, or @read or @write (got |get)",
        "t.yaml:2:108: policies[0].rate_limits[0].commands[4]: duplicate of "
        "policies[0].rate_limits[0].commands[3] (got get)"}},
      {lim("key_by: [client, ip, 'capture:1d', client]"),
       {"t.yaml:2:77: policies[0].rate_limits[0].key_by[1]: must be one of client, policy, "
        "command, key or capture:<name> (got ip)",
        "t.yaml:2:81: policies[0].rate_limits[0].key_by[2]: capture needs a placeholder name of "
        "the template, like capture:id (got capture:1d)",
        "t.yaml:2:95: policies[0].rate_limits[0].key_by[3]: duplicate of "
        "policies[0].rate_limits[0].key_by[0] (got client)"}},
      {lim("key_by: client"),
       {"t.yaml:2:68: policies[0].rate_limits[0].key_by: must be a list of client, policy, "
        "command, key or capture:<name> (got client)"}},
      {lim("scope: global"),
       {"t.yaml:2:67: policies[0].rate_limits[0].scope: scope global (a limit shared by every "
        "corral) is not supported by this version of corral yet; use local (got global)"}},
      {lim("scope: region"),
       {"t.yaml:2:67: policies[0].rate_limits[0].scope: must be one of local, global (got "
        "region)"}},
      {lim("on_limit: drop"),
       {"t.yaml:2:70: policies[0].rate_limits[0].on_limit: must be one of reject, shadow (got "
        "drop)"}},
      {lim("brust: 5"),
       {"t.yaml:2:60: policies[0].rate_limits[0].brust: unknown key (did you mean burst?)"}},
      {lim("key: client"), {"t.yaml:2:60: policies[0].rate_limits[0].key: unknown key"}},
      {"policies: [{name: a, match: a, rate_limits: [{burst: 2}]}]\n" + p,
       {"t.yaml:1:46: policies[0].rate_limits[0].name: is required",
        "t.yaml:1:46: policies[0].rate_limits[0].rate: is required, like 100/s"}},
      {"policies: [{name: a, match: a, rate_limits: [l]}]\n" + p,
       {"t.yaml:1:46: policies[0].rate_limits[0]: must be a mapping like {name: per_client, "
        "rate: 100/s} (got l)"}},
      {"policies: [{name: a, match: a, rate_limits: }]\n" + p,
       {"t.yaml:1:32: policies[0].rate_limits: must be a list of rate limits (got nothing)"}},
      // Global limits: no captures, since no template is known there.
      {"global: {rate_limits: [{name: g, rate: 1/s, key_by: [key, 'capture:id']}]}\n" + p,
       {"t.yaml:1:59: global.rate_limits[0].key_by[1]: captures come from a policy's template, "
        "so global.rate_limits cannot use them; use client, policy, command or key (got "
        "capture:id)"}},
      {"global: {rate_limits: [{name: g, rate: 1/s, scope: global}]}\n" + p,
       {"t.yaml:1:52: global.rate_limits[0].scope: scope global (a limit shared by every "
        "corral) is not supported by this version of corral yet; use local (got global)"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
}

TEST_CASE("names are unique: policies across all of them, limits across global and policies") {
  const std::string p = kPrimary;
  CHECK(errorsOf("policies:\n"
                 "  - {name: users, match: a}\n"
                 "  - {name: users, match: b}\n" +
                 p) ==
        std::vector<std::string>{
            "t.yaml:3:12: policies[1].name: duplicate of policies[0].name at t.yaml:2:12 (got "
            "users)"});
  CHECK(errorsOf("global: {rate_limits: [{name: l1, rate: 1/s}]}\n"
                 "policies:\n"
                 "  - {name: a, match: a, rate_limits: [{name: l2, rate: 1/s}]}\n"
                 "  - {name: b, match: b, rate_limits: [{name: l1, rate: 1/s}, {name: l2, rate: "
                 "1/s}]}\n" +
                 p) ==
        std::vector<std::string>{"t.yaml:4:46: policies[1].rate_limits[0].name: duplicate of "
                                 "global.rate_limits[0].name at t.yaml:1:31 (got l1)",
                                 "t.yaml:4:69: policies[1].rate_limits[1].name: duplicate of "
                                 "policies[0].rate_limits[0].name at t.yaml:3:46 (got l2)"});
}

TEST_CASE("origins and global: every rule, with its exact error") {
  const std::string p = kPrimary;
  const std::vector<ErrorCase> cases = {
      {"origins: [a]\n" + p,
       {"t.yaml:1:10: origins: must be a mapping of origin names to {base_url, timeout, "
        "max_in_flight} (got a list)"}},
      {"origins: {a: {timeout: 1s}}\n" + p,
       {"t.yaml:1:14: origins.a.base_url: is required, like "
        "http://127.0.0.1:8080"}},
      {"origins: {a: 'http://h'}\n" + p,
       {"t.yaml:1:14: origins.a: must be a mapping like {base_url: \"http://127.0.0.1:8080\", "
        "timeout: 1s} (got http://h)"}},
      {"origins: {'a b': {base_url: 'http://h'}}\n" + p,
       {"t.yaml:1:11: origins.a b: origin names must be 1 to 128 characters of A-Z a-z 0-9 _ . "
        ": - (got a b)"}},
      {"origins: {a: {base_url: 'https://h'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: https origins are not supported by this version of "
        "corral (got https://h)"}},
      {"origins: {a: {base_url: 'h:80'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: must be an http:// URL like http://127.0.0.1:8080 (got "
        "h:80)"}},
      {"origins: {a: {base_url: 'ftp://h'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: must be an http:// URL like http://127.0.0.1:8080 (got "
        "ftp://h)"}},
      {"origins: {a: {base_url: 'http://h:0'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: port must be a number from 1 to 65535 (got "
        "http://h:0)"}},
      {"origins: {a: {base_url: 'http://'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: needs a host, as in http://host:port (got http://)"}},
      {"origins: {a: {base_url: 'http://u:p@h'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: user info (user@host) is not supported in origin URLs "
        "(got http://u:p@h)"}},
      {"origins: {a: {base_url: 'http://h/x?y=1'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: query strings and fragments are not supported in "
        "origin URLs (got http://h/x?y=1)"}},
      {"origins: {a: {base_url: 'http://h/a b'}}\n" + p,
       {"t.yaml:1:25: origins.a.base_url: must not contain spaces or control characters (got "
        "http://h/a b)"}},
      {"origins: {a: {base_url: 'http://h', timeout: 0}}\n" + p,
       {"t.yaml:1:46: origins.a.timeout: must be greater than 0 (got 0)"}},
      {"origins: {a: {base_url: 'http://h', max_in_flight: 0}}\n" + p,
       {"t.yaml:1:52: origins.a.max_in_flight: must be an integer from 1 to 1000000 (got 0)"}},
      {"origins: {a: {base_url: 'http://h', timout: 1s}}\n" + p,
       {"t.yaml:1:37: origins.a.timout: unknown key (did you mean timeout?)"}},
      {"origins: {a: {base_url: 'http://h'}, a: {base_url: 'http://g'}}\n" + p,
       {"t.yaml:1:38: origins.a: duplicate key (first set at line 1)"}},
      // global
      {"global: {unmatched_keys: deny}\n" + p,
       {"t.yaml:1:26: global.unmatched_keys: must be one of allow, audit, reject (got deny)"}},
      {"global: {commands: {deny: FLUSHALL}}\n" + p,
       {"t.yaml:1:27: global.commands.deny: must be a list of command names like GET or "
        "CONFIG|SET (got FLUSHALL)"}},
      {"global: {commands: {deny: ['@write', 'config set']}}\n" + p,
       {"t.yaml:1:28: global.commands.deny[0]: must be a command name like GET or CONFIG|SET "
        "(got @write)",
        "t.yaml:1:38: global.commands.deny[1]: must be a command name like GET or CONFIG|SET "
        "(got config set)"}},
      {"global: {commands: {deny: [KEYS], audit: [SCAN, keys]}}\n" + p,
       {"t.yaml:1:49: global.commands.audit[1]: is also denied by global.commands.deny[0]; a "
        "command is denied or audited (got keys)"}},
      {"global: {commands: {aduit: [GET], allow: [GET]}}\n" + p,
       {"t.yaml:1:21: global.commands.aduit: unknown key (did you mean audit?)",
        "t.yaml:1:35: global.commands.allow: unknown key"}},
      {"global: {rate_limit: []}\n" + p,
       {"t.yaml:1:10: global.rate_limit: unknown key (did you mean rate_limits?)"}},
      {"global: {rate_limits: {}}\n" + p,
       {"t.yaml:1:23: global.rate_limits: must be a list of rate limits (got a mapping)"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
}

// A temporary directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/corral_policy_test_XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path_ = name;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes path()/name (creating directories on the way) and returns its full name.
  std::string write(const std::string& name, const std::string& text) const {
    std::string full = path_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path());
    std::FILE* f = std::fopen(full.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return full;
  }

 private:
  std::string path_;
};

std::vector<std::string> fileErrorsOf(const std::string& file) {
  LoadResult r = loadConfigFile(file);
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.format());
  CHECK(r.config.has_value() == out.empty());
  return out;
}

TEST_CASE("policy_files: files and directories, relative to the main file, in order") {
  TempDir dir;
  const std::string& d = dir.path();
  dir.write("extra.yaml", R"(policies:
  - {name: extra, match: "extra:<id>"}
)");
  // A directory: *.yaml and *.yml by name; other files, hidden files and subdirectories are not
  // read.
  dir.write("p/b.yml", "policies: [{name: b, match: b}]\n");
  dir.write("p/a.yaml", R"(defaults: {ttl: {max: 2h}, mode: audit}
policies:
  - {name: a1, match: a1, ttl: {min: 1s}}
  - {name: a2, match: a2, mode: enforce}
)");
  dir.write("p/notes.txt", "not yaml: [\n");
  dir.write("p/.hidden.yaml", "nonsense: 1\n");
  dir.write("p/sub/c.yaml", "nonsense: 1\n");
  dir.write("p/empty.yaml", "");
  const std::string main = dir.write("conf/corral.yaml", R"(upstream: {primary: h:1}
defaults: {ttl: {min: 5s, max: 1h, jitter: 20%}}
policies: [{name: inline, match: "in:<id>"}]
policy_files: [../p/, ../extra.yaml]
)");
  LoadResult r = loadConfigFile(main);
  INFO(joined(r));
  REQUIRE(r.config.has_value());
  const PolicyConfig& pc = r.config->policy;
  CHECK(pc.files == std::vector<std::string>{d + "/p/a.yaml", d + "/p/b.yml", d + "/p/empty.yaml",
                                             d + "/extra.yaml"});
  REQUIRE(pc.policies.size() == 5);
  CHECK(pc.policies[0].name == "inline");
  CHECK(pc.policies[0].where.file == main);
  CHECK(pc.policies[1].name == "a1");
  CHECK(pc.policies[2].name == "a2");
  CHECK(pc.policies[3].name == "b");
  CHECK(pc.policies[4].name == "extra");
  // where: the file each policy came from.
  CHECK(pc.policies[1].where.file == d + "/p/a.yaml");
  CHECK(pc.policies[1].where.line == 3);
  CHECK(pc.policies[1].where.col == 5);
  CHECK(pc.policies[1].match_where.file == d + "/p/a.yaml");
  CHECK(pc.policies[1].match_where.col == 23);
  CHECK(pc.policies[4].where.file == d + "/extra.yaml");
  // Main defaults everywhere; a file's defaults on top of them, for that file only.
  CHECK(pc.policies[0].ttl.min == Millis{5000});
  CHECK(pc.policies[0].ttl.max == Millis{3600000});
  CHECK(pc.policies[0].mode == PolicyMode::kEnforce);
  CHECK(pc.policies[1].ttl.min == Millis{1000});             // its own
  CHECK(pc.policies[1].ttl.max == Millis{7200000});          // its file's defaults
  CHECK(pc.policies[1].ttl.jitter == doctest::Approx(0.2));  // main defaults
  CHECK(pc.policies[1].mode == PolicyMode::kAudit);
  CHECK(pc.policies[2].mode == PolicyMode::kEnforce);
  CHECK(pc.policies[3].ttl.max == Millis{3600000});  // b.yml has no defaults of its own
  CHECK(pc.policies[3].mode == PolicyMode::kEnforce);
  CHECK(pc.policies[4].ttl.min == Millis{5000});

  // A single path instead of a list; an absolute path.
  const std::string single =
      dir.write("single.yaml", "upstream: {primary: h:1}\npolicy_files: " + d + "/extra.yaml\n");
  LoadResult s = loadConfigFile(single);
  INFO(joined(s));
  REQUIRE(s.config.has_value());
  REQUIRE(s.config->policy.policies.size() == 1);
  CHECK(s.config->policy.files == std::vector<std::string>{d + "/extra.yaml"});
}

TEST_CASE("policy_files: errors carry the policy file's name and position") {
  TempDir dir;
  const std::string& d = dir.path();
  dir.write("p/a.yaml", R"(policies:
  - name: a
    match: a
    ttl: {jitter: 1.5}
  - {name: main, match: b}
upstream: {}
)");
  dir.write("p/b.yaml", "defaults: {fill: {origin: nope}}\npolicies: [{name: b, match: '[x'}\n");
  dir.write("p/c.yaml",
            "policies:\n  - {name: a, match: c, rate_limits: [{name: l, rate: 1/s}]}\n");
  const std::string main = dir.write("corral.yaml", R"(upstream: {primary: h:1}
global: {rate_limits: [{name: l, rate: 1/s}]}
policies: [{name: main, match: m}]
policy_files: [p, missing.yaml, p/a.yaml, corral.yaml]
)");
  CHECK(fileErrorsOf(main) ==
        std::vector<std::string>{
            // Entries of policy_files that cannot be read: in the main file, at the entry.
            main + ":4:19: policy_files[1]: cannot read " + d +
                "/missing.yaml (No such file or directory)",
            main + ":4:33: policy_files[2]: " + d + "/p/a.yaml is already read by policy_files[0]",
            main + ":4:43: policy_files[3]: names the main config file itself (got " + main + ")",
            // Then each policy file, in the order read.
            d + "/p/a.yaml:4:19: policies[0].ttl.jitter: must be less than 100% (as a fraction, "
                "less than 1) (got 1.5)",
            d + "/p/a.yaml:5:12: policies[1].name: duplicate of policies[0].name at " + main +
                ":3:19 (got main)",
            d + "/p/a.yaml:6:1: upstream: unknown key",
            d + "/p/b.yaml:3:1: (yaml): end of sequence flow not found",
            d + "/p/c.yaml:2:12: policies[0].name: duplicate of policies[0].name at " + d +
                "/p/a.yaml:2:11 (got a)",
            d +
                "/p/c.yaml:2:46: policies[0].rate_limits[0].name: duplicate of "
                "global.rate_limits[0].name at " +
                main + ":2:31 (got l)",
        });

  // A file's defaults are checked in that file.
  dir.write("q/d.yaml",
            "defaults: {fill: {origin: nope}, ttl: {max: 1m}}\n"
            "policies: [{name: d, match: d, ttl: {min: 1h}}]\n");
  const std::string main2 = dir.write("corral2.yaml",
                                      "upstream: {primary: h:1}\ndefaults: {ttl: {min: 1h}}\n"
                                      "policy_files: [q/]\n");
  CHECK(fileErrorsOf(main2) ==
        std::vector<std::string>{
            d + "/q/d.yaml:1:27: defaults.fill.origin: must name an entry of origins (got nope)",
            d +
                "/q/d.yaml:1:45: defaults.ttl.max: must not be less than ttl.min (1h from "
                "defaults.ttl.min at " +
                main2 + ":2:23) (got 1m)",
            // It inherits fill.origin from its file's defaults, without a path.
            d + "/q/d.yaml:2:12: policies[0].fill.path: is required with fill.origin",
            // The policy's own min breaks its file's max: reported at the policy's value.
            d +
                "/q/d.yaml:2:43: policies[0].ttl.min: must not be more than ttl.max (1m from "
                "defaults.ttl.max at " +
                d + "/q/d.yaml:1:45) (got 1h)",
        });

  // Shapes.
  const std::vector<ErrorCase> cases = {
      {"policy_files: {a: 1}\n" + std::string(kPrimary),
       {"t.yaml:1:15: policy_files: must be a path or a list of paths (files or directories) "
        "(got a mapping)"}},
      {"policy_files: ['', [a]]\n" + std::string(kPrimary),
       {"t.yaml:1:16: policy_files[0]: must be a path to a file or to a directory of *.yaml "
        "files (got \"\")",
        "t.yaml:1:20: policy_files[1]: must be a path to a file or to a directory of *.yaml "
        "files (got a list)"}},
      {"policy_files: [/dev/null]\n" + std::string(kPrimary),
       {"t.yaml:1:16: policy_files[0]: is neither a file nor a directory (got /dev/null)"}},
  };
  for (const ErrorCase& c : cases) {
    CAPTURE(c.yaml);
    CHECK(errorsOf(c.yaml) == c.errors);
  }
}

TEST_CASE("policy files: only policies and defaults at the top") {
  TempDir dir;
  dir.write("p.yaml", "polices: []\nworkers: 2\n");
  dir.write("q.yaml", "- {name: a, match: a}\n");
  const std::string main =
      dir.write("c.yaml", "upstream: {primary: h:1}\npolicy_files: [p.yaml, q.yaml]\n");
  CHECK(fileErrorsOf(main) ==
        std::vector<std::string>{
            dir.path() + "/p.yaml:1:1: polices: unknown key (did you mean policies?)",
            dir.path() + "/p.yaml:2:1: workers: unknown key",
            dir.path() + "/q.yaml:1:1: (root): the file must be a mapping of settings (got a "
                         "list)",
        });
}

TEST_CASE("configError formats an error like the loader's") {
  Where w{"p/users.yaml", 12, 9};
  ConfigError e = configError(w, "policies[2].match", "overlaps policies[0] (users)", "user:<id>");
  CHECK(e.file == "p/users.yaml");
  CHECK(e.line == 12);
  CHECK(e.col == 9);
  CHECK(e.path == "policies[2].match");
  CHECK(e.format() ==
        "p/users.yaml:12:9: policies[2].match: overlaps policies[0] (users) (got user:<id>)");
  CHECK(configError(w, "x", "bad").format() == "p/users.yaml:12:9: x: bad");
  CHECK(configError(w, "x", "bad", std::string(100, 'a') + "\n").format() ==
        "p/users.yaml:12:9: x: bad (got " + std::string(80, 'a') + "...)");
}

TEST_CASE("every error is reported, in file order, and no config is returned") {
  // The duplicate replica (line 4) is found by a check that runs after the walk.
  LoadResult r = loadConfigText(R"(workers: 0
upstream:
  primary: h:1
  replicas: [h:1]
  connect_timeout: x
limits: {max_pending: 0}
bogus: 1
)",
                                "t.yaml");
  CHECK_FALSE(r.config.has_value());
  std::vector<std::string> got;
  for (const ConfigError& e : r.errors) got.push_back(e.format());
  CHECK(got == std::vector<std::string>{
                   "t.yaml:1:10: workers: must be an integer from 1 to 64 (got 0)",
                   "t.yaml:4:14: upstream.replicas[0]: is the same server as upstream.primary "
                   "(got h:1)",
                   "t.yaml:5:20: upstream.connect_timeout: must be a duration like 250ms or 5s "
                   "(got x)",
                   "t.yaml:6:23: limits.max_pending: must be an integer from 1 to 4294967295 "
                   "(got 0)",
                   "t.yaml:7:1: bogus: unknown key",
               });
  REQUIRE(r.errors.size() == 5);
  // The structured fields agree with the formatted text.
  CHECK(r.errors[2].file == "t.yaml");
  CHECK(r.errors[2].line == 5);
  CHECK(r.errors[2].col == 20);
  CHECK(r.errors[2].path == "upstream.connect_timeout");
  CHECK(r.errors[2].message == "must be a duration like 250ms or 5s (got x)");
}

TEST_CASE("values quoted in errors are escaped and capped") {
  CHECK(errorsOf(std::string("workers: \"a\\tb\\x01\\nc\\x7f\"\n") + kPrimary) ==
        std::vector<std::string>{
            "t.yaml:1:10: workers: must be an integer from 1 to 64 (got a\\tb\\x01\\nc\\x7f)"});
  const std::string long_value(200, 'x');
  std::vector<std::string> errors = errorsOf("workers: " + long_value + "\n" + kPrimary);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "t.yaml:1:10: workers: must be an integer from 1 to 64 (got " +
                         std::string(80, 'x') + "...)");
  // A multi-byte character is not cut in half at the cap.
  std::string utf8 = std::string(79, 'x');
  for (int i = 0; i < 10; ++i) utf8 += "\xc3\xa9";  // é
  errors = errorsOf("workers: " + utf8 + "\n" + kPrimary);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "t.yaml:1:10: workers: must be an integer from 1 to 64 (got " +
                         std::string(79, 'x') + "\xc3\xa9...)");
}

TEST_CASE("a password never appears in errors or in text") {
  for (const char* primary :
       {"redis://u:SECRETPW@h:1/x", "redis://u:SECRETPW@h:0", "redis://u:SECRETPW@",
        "redis://:SECRETPW@h:1?x", "redis://u:SEC/RETPW@h:1/99999999", "redis://u:SEC@RETPW@h:1/x",
        "rediss://u:SECRETPW@h:1"}) {
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

TEST_CASE("yaml-cpp's own errors are made readable") {
  CHECK(errorsOf(std::string(100000, '[')) ==
        std::vector<std::string>{"t.yaml:1:1: (yaml): nested too deeply for the YAML parser"});
  CHECK(errorsOf(std::string("workers: \"\\\0\"", 13)) ==
        std::vector<std::string>{"t.yaml:1:13: (yaml): unknown escape character: \\x00"});
}

TEST_CASE("garbage never throws and gives an error") {
  const std::vector<std::string> inputs = {
      std::string(100000, '['),
      std::string(100000, '{'),
      "&a [*a]",
      "upstream: &a {primary: h:1, reconnect_backoff: *a}",
      "listen: *nope",
      "\t\tworkers: 1",
      std::string("workers: 1\0\0\0", 13),
      std::string("\xff\xfe\x00\x01", 4),  // a UTF-16 byte order mark
      "!!binary AAAA",
      "workers: !!int nope",
      "%YAML 9.9\n---\nworkers: 1",
      "'unterminated",
  };
  for (const std::string& in : inputs) {
    CAPTURE(in.substr(0, 40));
    LoadResult r;
    CHECK_NOTHROW(r = loadConfigText(in, "g.yaml"));
    CHECK_FALSE(r.errors.empty());
    CHECK_FALSE(r.config.has_value());
  }
}

TEST_CASE("loadConfigFile reads a file, and reports one it cannot read") {
  char name[] = "/tmp/corral_config_test_XXXXXX";
  int fd = ::mkstemp(name);
  REQUIRE(fd >= 0);
  const std::string yaml = "workers: 3\nupstream:\n  primary: h:1\n  connect_timeout: 5 parsecs\n";
  REQUIRE(::write(fd, yaml.data(), yaml.size()) == static_cast<ssize_t>(yaml.size()));
  ::close(fd);
  LoadResult bad = loadConfigFile(name);
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].format() == std::string(name) +
                                      ":4:20: upstream.connect_timeout: must be a duration like "
                                      "250ms or 5s (got 5 parsecs)");

  std::FILE* f = std::fopen(name, "w");
  REQUIRE(f != nullptr);
  std::fputs("workers: 3\nupstream: {primary: h:1}\n", f);
  std::fclose(f);
  LoadResult good = loadConfigFile(name);
  CHECK(good.errors.empty());
  REQUIRE(good.config.has_value());
  CHECK(good.config->workers == 3);
  CHECK(good.config->source == name);
  ::unlink(name);

  LoadResult missing = loadConfigFile("/nonexistent/corral.yaml");
  CHECK_FALSE(missing.config.has_value());
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].format() ==
        "/nonexistent/corral.yaml:0:0: (file): cannot read (No such file or directory)");

  LoadResult dir = loadConfigFile("/tmp");
  REQUIRE(dir.errors.size() == 1);
  CHECK(dir.errors[0].format() == "/tmp:0:0: (file): cannot read (Is a directory)");
}

TEST_CASE("the shipped config/corral.yaml loads and states the built-in defaults") {
  LoadResult r = loadConfigFile(std::string(CORRAL_SOURCE_DIR) + "/config/corral.yaml");
  INFO(joined(r));
  REQUIRE(r.errors.empty());
  REQUIRE(r.config.has_value());
  const Config& c = *r.config;
  const Config defaults;  // in-class defaults from config.h
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].text == "127.0.0.1:6380");
  CHECK(c.workers == defaults.workers);
  CHECK(c.upstream.primary.text == "127.0.0.1:6379");
  CHECK(c.upstream.replicas.empty());
  CHECK(c.upstream.read_from == defaults.upstream.read_from);
  CHECK(c.upstream.connect_timeout == defaults.upstream.connect_timeout);
  CHECK(c.upstream.command_timeout == defaults.upstream.command_timeout);
  CHECK(c.upstream.pool_size == defaults.upstream.pool_size);
  CHECK(c.upstream.user.empty());
  CHECK(c.upstream.password.empty());
  CHECK(c.upstream.db == defaults.upstream.db);
  CHECK(c.upstream.reconnect_min == defaults.upstream.reconnect_min);
  CHECK(c.upstream.reconnect_max == defaults.upstream.reconnect_max);
  REQUIRE(c.admin.listen.has_value());
  CHECK(c.admin.listen->text == "127.0.0.1:9121");
  CHECK(c.limits.max_clients == defaults.limits.max_clients);
  CHECK(c.limits.max_request_bytes == defaults.limits.max_request_bytes);
  CHECK(c.limits.max_args == defaults.limits.max_args);
  CHECK(c.limits.max_bulk_bytes == defaults.limits.max_bulk_bytes);
  CHECK(c.limits.max_inline_bytes == defaults.limits.max_inline_bytes);
  CHECK(c.limits.max_pending == defaults.limits.max_pending);
  CHECK(c.limits.max_output_bytes == defaults.limits.max_output_bytes);
  CHECK(c.limits.max_reply_depth == defaults.limits.max_reply_depth);
  CHECK(c.limits.max_reply_bytes == defaults.limits.max_reply_bytes);
  CHECK(c.log.level == defaults.log.level);
  CHECK(c.shutdown_timeout == defaults.shutdown_timeout);
  CHECK(c.auth.users.empty());  // the example users are commented out: auth stays off
  // No policies: the policy sections state their defaults.
  const PolicyConfig& pc = c.policy;
  CHECK(pc.origins.empty());
  CHECK(pc.global.unmatched_keys == defaults.policy.global.unmatched_keys);
  CHECK(pc.global.deny_commands.empty());
  CHECK(pc.global.audit_commands.empty());
  CHECK(pc.global.rate_limits.empty());
  CHECK(pc.policies.empty());
  CHECK(pc.files.empty());
}

}  // namespace
}  // namespace corral::config
