// The loader core: structure, unknown keys, syntax errors, error order and quoting, files, and
// the shipped config/corral.yaml (loader.cc).
#include <doctest/doctest.h>

#ifndef CORRAL_SOURCE_DIR
#error "config_test needs CORRAL_SOURCE_DIR (set in config/CMakeLists.txt)"
#endif

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

TEST_CASE("the structure of the file: a mapping, plain and unique keys, one document") {
  const std::string p = kPrimary;
  checkErrorCases({
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
  });
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
  checkErrorCases(cases);
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
  CHECK(got ==
        std::vector<std::string>{
            "t.yaml:1:10: workers: must be an integer from 1 to 64 (got 0)",
            "t.yaml:4:14: upstream.replicas[0]: is the same server as upstream.primary "
            "(got h:1)",
            "t.yaml:5:20: upstream.connect_timeout: must be a duration like 250ms, 1.5s or 5m "
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
  CHECK(r.errors[2].message == "must be a duration like 250ms, 1.5s or 5m (got x)");
}

TEST_CASE("sortErrors: by file in reading order, then line and column; stable") {
  auto e = [](const char* file, int line, int col, const char* message) {
    return ConfigError{file, line, col, "k", message};
  };
  // The loader's errors (sorted) followed by a later check's (the policy compiler's).
  std::vector<ConfigError> errors = {
      e("main.yaml", 3, 1, "loader 1"),    e("main.yaml", 9, 5, "loader 2"),
      e("b.yaml", 2, 1, "loader 3"),       e("main.yaml", 9, 5, "compiler 1"),
      e("main.yaml", 4, 12, "compiler 2"), e("a.yaml", 1, 1, "compiler 3"),
      e("zz.yaml", 1, 1, "unknown file"),  e("b.yaml", 1, 7, "compiler 4"),
      e("main.yaml", 0, 0, "no position"), e("aa.yaml", 5, 1, "another unknown file"),
  };
  sortErrors(errors, {"main.yaml", "b.yaml", "a.yaml"});
  std::vector<std::string> order;
  for (const ConfigError& x : errors) order.push_back(x.message);
  CHECK(order == std::vector<std::string>{"no position", "loader 1", "compiler 2", "loader 2",
                                          "compiler 1", "compiler 4", "loader 3", "compiler 3",
                                          "another unknown file", "unknown file"});
}

TEST_CASE("LoadResult::files lists the main file, then each policy file read") {
  TempDir dir;
  dir.write("p/b.yaml", "policies: []\n");
  dir.write("p/a.yaml", "policies: [}\n");  // read, though it does not parse
  const std::string main = dir.write("main.yaml", std::string(kPrimary) + "policy_files: [p]\n");
  LoadResult r = loadConfigFile(main);
  CHECK(r.files ==
        std::vector<std::string>{main, dir.path() + "/p/a.yaml", dir.path() + "/p/b.yaml"});
  CHECK(loadConfigText(kPrimary, "t.yaml").files == std::vector<std::string>{"t.yaml"});
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
                                      "250ms, 1.5s or 5m (got 5 parsecs)");

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
  CHECK(c.limits.max_pending_bytes == defaults.limits.max_pending_bytes);
  CHECK(c.log.level == defaults.log.level);
  CHECK(c.shutdown_timeout == defaults.shutdown_timeout);
  CHECK(c.auth.users.empty());  // the example users are commented out
  CHECK(c.auth.mode == defaults.auth.mode);
  const PassthroughConfig& pt = c.auth.passthrough;
  CHECK(pt.unauthenticated == defaults.auth.passthrough.unauthenticated);
  CHECK(pt.cache_ttl == defaults.auth.passthrough.cache_ttl);
  CHECK(pt.cache_entries == defaults.auth.passthrough.cache_entries);
  CHECK(pt.max_users == defaults.auth.passthrough.max_users);
  CHECK(pt.pool_size == defaults.auth.passthrough.pool_size);
  CHECK(pt.idle_timeout == defaults.auth.passthrough.idle_timeout);
  CHECK(pt.max_checks == defaults.auth.passthrough.max_checks);
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
