// policy_files: files and directories, their order, and errors in their own name
// (policy_files.cc).
#include <doctest/doctest.h>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

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
  CHECK(pc.dirs == std::vector<std::string>{d + "/p/"});
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
  // path: the key path within the file it was written in (the file tells which).
  CHECK(pc.policies[0].path == "policies[0]");
  CHECK(pc.policies[2].path == "policies[1]");
  CHECK(pc.policies[4].path == "policies[0]");
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

}  // namespace
}  // namespace corral::config
