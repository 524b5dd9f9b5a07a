// The reload unit: loading with merged errors, what the file signature notices, and the
// Reloader against temporary files with fake "apply" callbacks. File times are set explicitly
// (utimensat), because two writes within one kernel clock tick share an mtime.
#include "proxy/admin/reload.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "config/test_helpers.h"

namespace corral::admin {
namespace {

using config::testing::TempDir;

constexpr const char* kBase = "upstream: {primary: 127.0.0.1:6379}\n";

// Sets the file's (or directory's) mtime to `sec` seconds past the epoch.
void setMtime(const std::string& path, int64_t sec) {
  timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(sec), 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

int64_t mtimeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mtim.tv_sec;
}

// Rewrites a file in place (same inode) and moves its mtime on by a second, as an editor
// saving a few milliseconds later would.
void edit(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.path() + "/" + name;
  const int64_t before = mtimeOf(path);
  dir.write(name, text);
  setMtime(path, before + 1);
}

// A Reloader over dir/corral.yaml whose callbacks record what they were given.
struct Fixture {
  TempDir dir;
  std::string path;
  policies::Registry registry;
  std::vector<std::string> log_levels;
  std::vector<uint32_t> max_clients;
  std::vector<size_t> policy_counts;
  std::unique_ptr<Reloader> reloader;

  explicit Fixture(const std::string& text) {
    path = dir.write("corral.yaml", text);
    setMtime(path, 1000000);
    Loaded loaded = loadAndCompile(path, registry);
    const std::string first_error = loaded.errors.empty() ? "" : loaded.errors[0].format();
    INFO(first_error);
    REQUIRE(loaded.config.has_value());
    Reloader::Apply apply;
    apply.log = [this](const config::LogConfig& l) { log_levels.push_back(l.level); };
    apply.limits = [this](const config::Limits& l) { max_clients.push_back(l.max_clients); };
    apply.policies = [this](std::shared_ptr<const policies::PolicySet> set) {
      REQUIRE(set != nullptr);
      policy_counts.push_back(set->size());
    };
    reloader = std::make_unique<Reloader>(path, *loaded.config, registry, std::move(apply));
  }
  size_t applied() const { return max_clients.size(); }
};

TEST_CASE("loadAndCompile: loader and compiler errors merged in file order") {
  TempDir dir;
  dir.write("more.yaml", "policies:\n  - {name: d, match: \"d:<x:nosuchtype>\"}\n");
  const std::string path = dir.write("corral.yaml", std::string(kBase) + R"(policies:
  - {name: a, match: "a:<id:u46>"}
  - {name: b, match: "b:<id>", ttl: {default: soon}}
workers: 0
policy_files: [more.yaml]
)");
  policies::Registry registry;
  Loaded r = loadAndCompile(path, registry);
  CHECK_FALSE(r.config.has_value());
  CHECK(r.policies == nullptr);
  std::vector<std::string> where;
  for (const config::ConfigError& e : r.errors) {
    where.push_back(e.file.substr(dir.path().size() + 1) + ":" + std::to_string(e.line) + " " +
                    e.path);
  }
  CHECK(where == std::vector<std::string>{
                     "corral.yaml:3 policies[0].match",        // compiler
                     "corral.yaml:4 policies[1].ttl.default",  // loader
                     "corral.yaml:5 workers",                  // loader
                     "more.yaml:2 policies[0].match",          // compiler, in the policy file
                 });
  // A rejected file registers no counters in the live registry.
  std::string metrics;
  registry.appendMetrics(metrics);
  CHECK(metrics.find("policy=\"a\"") == std::string::npos);

  dir.write("corral.yaml", std::string(kBase) + "policies: [{name: a, match: \"a:<id:u64>\"}]\n");
  Loaded ok = loadAndCompile(path, registry);
  REQUIRE(ok.errors.empty());
  REQUIRE(ok.config.has_value());
  REQUIRE(ok.policies != nullptr);
  CHECK(ok.policies->size() == 1);
  metrics.clear();
  registry.appendMetrics(metrics);
  CHECK(metrics.find("policy=\"a\"") != std::string::npos);
}

TEST_CASE("fileSignature changes with mtime, size or inode, and with a new file in a directory") {
  TempDir dir;
  const std::string file = dir.write("p/users.yaml", "policies: []\n");
  dir.write("empty/.keep", "");
  config::PolicyConfig policy;
  policy.files = {file};
  policy.dirs = {dir.path() + "/p/", dir.path() + "/empty/"};
  const std::string main = dir.write("corral.yaml", kBase);
  for (const std::string& p : {main, file, dir.path() + "/p/", dir.path() + "/empty/"}) {
    setMtime(p, 2000000);
  }
  const std::string base = fileSignature(main, policy);
  CHECK(fileSignature(main, policy) == base);  // stable while nothing changes

  SUBCASE("mtime only") {
    setMtime(file, 2000001);
    CHECK(fileSignature(main, policy) != base);
  }
  SUBCASE("size only (same mtime)") {
    dir.write("p/users.yaml", "policies: [ ]\n");
    setMtime(file, 2000000);
    CHECK(fileSignature(main, policy) != base);
  }
  SUBCASE(
      "inode only (same mtime and size): a file renamed over it, as editors and ConfigMaps do") {
    const std::string next = dir.write("p/.users.yaml.tmp", "policies: []\n");
    setMtime(next, 2000000);
    REQUIRE(std::rename(next.c_str(), file.c_str()) == 0);
    setMtime(dir.path() + "/p/", 2000000);  // so only the file's inode differs
    CHECK(fileSignature(main, policy) != base);
  }
  SUBCASE("a new file in a directory that held none") {
    dir.write("empty/new.yaml", "policies: []\n");
    setMtime(dir.path() + "/empty/", 2000001);
    CHECK(fileSignature(main, policy) != base);
  }
  SUBCASE("the main file") {
    setMtime(main, 2000001);
    CHECK(fileSignature(main, policy) != base);
  }
  SUBCASE("a file that disappears") {
    REQUIRE(std::remove(file.c_str()) == 0);
    setMtime(dir.path() + "/p/", 2000000);
    CHECK(fileSignature(main, policy) != base);
  }
}

TEST_CASE("Reloader: a change on disk is applied; an unchanged file is not reloaded") {
  Fixture f(std::string(kBase) + "limits: {max_clients: 5}\nlog: {level: warn}\n");
  CHECK_FALSE(f.reloader->poll());
  CHECK(f.applied() == 0);

  edit(f.dir, "corral.yaml",
       std::string(kBase) +
           "limits: {max_clients: 7}\nlog: {level: debug}\nshutdown_timeout: 2s\n"
           "policies: [{name: a, match: \"a:<id>\"}]\n");
  CHECK(f.reloader->poll());
  CHECK(f.max_clients == std::vector<uint32_t>{7});
  CHECK(f.log_levels == std::vector<std::string>{"debug"});
  CHECK(f.policy_counts == std::vector<size_t>{1});
  CHECK(f.reloader->running().limits.max_clients == 7);
  CHECK(f.reloader->running().shutdown_timeout == config::Millis{2000});
  CHECK(f.reloader->failures() == 0);
  CHECK_FALSE(f.reloader->poll());  // the reload took the new signature
  CHECK(f.applied() == 1);
}

TEST_CASE("Reloader: a bad edit is refused once, the old config kept, and failures counted") {
  Fixture f(std::string(kBase) + "limits: {max_clients: 5}\n");
  // Startup's load is the first success.
  const ReloadStatus start = f.reloader->status();
  CHECK(start.last_ok);
  CHECK(start.failures == 0);
  CHECK(start.last_ok_unix_ms > 1600000000000);  // after 2020: wall-clock time, in ms
  edit(f.dir, "corral.yaml", std::string(kBase) + "limits: {max_clients: zero}\n");
  CHECK(f.reloader->poll());
  CHECK(f.reloader->failures() == 1);
  CHECK_FALSE(f.reloader->status().last_ok);
  CHECK(f.reloader->status().failures == 1);
  CHECK(f.reloader->status().last_ok_unix_ms == start.last_ok_unix_ms);  // still startup's
  CHECK(f.applied() == 0);
  CHECK(f.reloader->running().limits.max_clients == 5);
  // Reported once, not on every poll until it is fixed.
  CHECK_FALSE(f.reloader->poll());
  CHECK(f.reloader->failures() == 1);
  // SIGHUP tries again, and fails again.
  CHECK_FALSE(f.reloader->reload("SIGHUP"));
  CHECK(f.reloader->failures() == 2);
  // A policy the compiler refuses is a failure too.
  edit(f.dir, "corral.yaml", std::string(kBase) + "policies: [{name: a, match: \"a:<id:u46>\"}]\n");
  CHECK(f.reloader->poll());
  CHECK(f.reloader->failures() == 3);
  CHECK(f.applied() == 0);
  // Fixed: applied, and the count stays.
  edit(f.dir, "corral.yaml", std::string(kBase) + "limits: {max_clients: 9}\n");
  CHECK(f.reloader->poll());
  CHECK(f.max_clients == std::vector<uint32_t>{9});
  CHECK(f.reloader->failures() == 3);
  CHECK(f.reloader->status().last_ok);
  CHECK(f.reloader->status().last_ok_unix_ms >= start.last_ok_unix_ms);
}

TEST_CASE("Reloader: a new policy file in a watched directory is loaded") {
  TempDir dir;
  dir.write("policies/.keep", "");
  Fixture f(std::string(kBase) + "policy_files: [" + dir.path() + "/policies/]\n");
  CHECK_FALSE(f.reloader->poll());
  dir.write("policies/users.yaml", "policies: [{name: users, match: \"user:<id:u64>\"}]\n");
  setMtime(dir.path() + "/policies/", mtimeOf(dir.path() + "/policies/") + 1);
  CHECK(f.reloader->poll());
  CHECK(f.policy_counts == std::vector<size_t>{1});
  CHECK(f.reloader->running().policy.files ==
        std::vector<std::string>{dir.path() + "/policies/users.yaml"});
  // Now the file itself is watched too.
  edit(dir, "policies/users.yaml",
       "policies: [{name: users, match: \"user:<id:u64>\"}, {name: s, match: \"s:<id>\"}]\n");
  CHECK(f.reloader->poll());
  CHECK(f.policy_counts == std::vector<size_t>{1, 2});
}

TEST_CASE("Reloader: keys that need a restart are kept; the rest is applied") {
  Fixture f(std::string(kBase) + "listen: [127.0.0.1:0]\nlimits: {max_clients: 5}\n");
  config::Config next = f.reloader->running();
  CHECK(changesNeedingRestart(f.reloader->running(), next).empty());
  next.workers = 4;
  next.listen[0].text = "127.0.0.1:7000";
  next.upstream.replicas.push_back(next.upstream.primary);
  next.admin.listen = next.listen[0];
  next.auth.users.push_back(config::AuthUser{});
  next.limits.max_clients = 1;  // not one of them
  CHECK(changesNeedingRestart(f.reloader->running(), next) ==
        std::vector<std::string>{"listen", "workers", "upstream", "admin", "auth"});

  // The admin endpoint's token and readiness rule are set up with it, once.
  config::Config token = f.reloader->running();
  token.admin.token = "t";
  CHECK(changesNeedingRestart(f.reloader->running(), token) == std::vector<std::string>{"admin"});
  config::Config serving = f.reloader->running();
  serving.admin.ready_when = config::ReadyWhen::kServing;
  CHECK(changesNeedingRestart(f.reloader->running(), serving) == std::vector<std::string>{"admin"});

  edit(f.dir, "corral.yaml",
       std::string(kBase) + "listen: [127.0.0.1:1]\nworkers: 2\nlimits: {max_clients: 8}\n");
  CHECK(f.reloader->reload("SIGHUP"));
  CHECK(f.max_clients == std::vector<uint32_t>{8});
  CHECK(f.reloader->running().workers == 1);
  CHECK(f.reloader->running().listen[0].text == "127.0.0.1:0");
}

}  // namespace
}  // namespace corral::admin
