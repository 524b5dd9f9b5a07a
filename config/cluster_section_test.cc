// upstream.cluster (cluster_section.cc): every key, the defaults, the credentials and TLS settled
// at load, the template primary, every error at its position, and no secret in any error.
#include <doctest/doctest.h>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

TEST_CASE("upstream.cluster: every key is parsed, the primary becomes a template") {
  Config c = mustLoad(R"(
upstream:
  cluster:
    seeds: [10.0.0.1:6379, redis-0.example.com:6379, "[::1]:7000", "redis://h2:7001/0"]
    user: node-user
    password: s3cret
    tls: true
    read_from: prefer_replica
    refresh_interval: 250ms
    max_refreshes_per_second: 20
    expose: true
  user: app
  password: apppw
  tls: {ca_file: /dev/null}
)");
  REQUIRE(c.upstream.cluster.has_value());
  const ClusterConfig& k = *c.upstream.cluster;
  REQUIRE(k.seeds.size() == 4);
  CHECK(k.seeds[0].addr.host == "10.0.0.1");
  CHECK(k.seeds[0].addr.port == 6379);
  CHECK(k.seeds[1].addr.host == "redis-0.example.com");
  CHECK(k.seeds[2].addr.host == "::1");
  CHECK(k.seeds[2].addr.port == 7000);
  CHECK(k.seeds[3].addr.host == "h2");
  CHECK(k.seeds[3].addr.port == 7001);
  CHECK(k.seeds[3].text == "redis://h2:7001/0");
  for (const UpstreamAddress& s : k.seeds) {
    // Every seed carries the cluster's credentials, db 0 and its TLS.
    CHECK(s.user == "node-user");
    CHECK(s.password == "s3cret");
    CHECK(s.db == 0);
    CHECK(s.addr.tls);
  }
  CHECK(k.user == "node-user");
  CHECK(k.password == "s3cret");
  CHECK(k.password_env.empty());
  CHECK(k.tls);
  REQUIRE(k.read_from.has_value());
  CHECK(*k.read_from == ReadFrom::kPreferReplica);
  CHECK(k.refresh_interval == Millis{250});
  CHECK(k.max_refreshes_per_second == 20);
  CHECK(k.expose);
  // The template every data connection is made from: no address, the cluster's credentials.
  const UpstreamAddress& t = c.upstream.primary;
  CHECK(t.addr.host.empty());
  CHECK(t.text == "cluster");
  CHECK(t.addr.text == "cluster");
  CHECK(t.user == "node-user");
  CHECK(t.password == "s3cret");
  CHECK(t.db == 0);
  CHECK(t.addr.tls);
  CHECK(c.upstream.replicas.empty());
  CHECK_FALSE(c.upstream.sentinel.has_value());
  CHECK(c.upstream.tls.ca_file == "/dev/null");  // upstream.tls settings stay where they are
}

TEST_CASE("upstream.cluster: the defaults") {
  Config c = mustLoad("upstream:\n  cluster: {seeds: h:7000}\n");
  REQUIRE(c.upstream.cluster.has_value());
  const ClusterConfig& k = *c.upstream.cluster;
  const ClusterConfig defaults;
  REQUIRE(k.seeds.size() == 1);
  CHECK(k.seeds[0].addr.host == "h");
  CHECK(k.seeds[0].addr.port == 7000);
  CHECK_FALSE(k.seeds[0].addr.tls);
  CHECK(k.user.empty());
  CHECK(k.password.empty());
  CHECK_FALSE(k.tls);
  CHECK_FALSE(k.read_from.has_value());
  CHECK(k.refresh_interval == Millis{5000});
  CHECK(k.refresh_interval == defaults.refresh_interval);
  CHECK(k.max_refreshes_per_second == 5);
  CHECK(k.max_refreshes_per_second == defaults.max_refreshes_per_second);
  CHECK_FALSE(k.expose);
  CHECK(c.upstream.primary.text == "cluster");
  CHECK_FALSE(c.upstream.primary.addr.tls);
  CHECK_FALSE(mustLoad(kPrimary).upstream.cluster.has_value());
  // The bounds are accepted.
  Config b = mustLoad(
      "upstream:\n  cluster: {seeds: [h:1], refresh_interval: 100ms, max_refreshes_per_second: "
      "100}\n");
  CHECK(b.upstream.cluster->refresh_interval == Millis{100});
  CHECK(b.upstream.cluster->max_refreshes_per_second == 100);
  Config e = mustLoad(
      "upstream:\n  cluster: {seeds: [h:1], refresh_interval: 10m, max_refreshes_per_second: "
      "1}\n");
  CHECK(e.upstream.cluster->refresh_interval == Millis{600000});
  CHECK(e.upstream.cluster->max_refreshes_per_second == 1);
}

TEST_CASE("upstream.cluster: credentials fall back to upstream.user and password") {
  // Nothing in the section: upstream.* applies (as for a primary).
  Config a = mustLoad("upstream:\n  cluster: {seeds: [h:1]}\n  user: app\n  password: apppw\n");
  CHECK(a.upstream.cluster->user == "app");
  CHECK(a.upstream.cluster->password == "apppw");
  CHECK(a.upstream.cluster->seeds[0].user == "app");
  CHECK(a.upstream.cluster->seeds[0].password == "apppw");
  CHECK(a.upstream.primary.user == "app");
  CHECK(a.upstream.primary.password == "apppw");

  // Field by field: the section's user wins, upstream.password fills in.
  Config b =
      mustLoad("upstream:\n  cluster: {seeds: [h:1], user: ''}\n  user: app\n  password: apppw\n");
  CHECK(b.upstream.cluster->user.empty());
  CHECK(b.upstream.cluster->password == "apppw");

  // The section's password_env wins over upstream.password; upstream's own env var is read too.
  ScopedEnv cluster_pw("CORRAL_TEST_CLUSTER_PW", "from-env");
  ScopedEnv upstream_pw("CORRAL_TEST_UPSTREAM_PW", "upstream-env");
  Config c = mustLoad(
      "upstream:\n  cluster: {seeds: [h:1], password_env: CORRAL_TEST_CLUSTER_PW}\n"
      "  password: apppw\n");
  CHECK(c.upstream.cluster->password == "from-env");
  CHECK(c.upstream.cluster->password_env == "CORRAL_TEST_CLUSTER_PW");
  CHECK(c.upstream.cluster->seeds[0].password == "from-env");
  CHECK(c.upstream.primary.password == "from-env");
  Config d =
      mustLoad("upstream:\n  cluster: {seeds: [h:1]}\n  password_env: CORRAL_TEST_UPSTREAM_PW\n");
  CHECK(d.upstream.cluster->password == "upstream-env");
  CHECK(d.upstream.cluster->password_env.empty());
}

TEST_CASE("upstream.cluster: a rediss:// seed or upstream.tls.enabled means every node") {
  Config a = mustLoad("upstream:\n  cluster: {seeds: [h:1, 'rediss://h:2']}\n");
  CHECK(a.upstream.cluster->tls);
  CHECK(a.upstream.cluster->seeds[0].addr.tls);
  CHECK(a.upstream.cluster->seeds[1].addr.tls);
  CHECK(a.upstream.primary.addr.tls);

  Config b = mustLoad("upstream:\n  cluster: {seeds: [h:1]}\n  tls: {enabled: true}\n");
  CHECK(b.upstream.cluster->tls);
  CHECK(b.upstream.cluster->seeds[0].addr.tls);

  Config c = mustLoad("upstream:\n  cluster: {seeds: [h:1], tls: false}\n");
  CHECK_FALSE(c.upstream.cluster->tls);
  CHECK_FALSE(c.upstream.cluster->seeds[0].addr.tls);
}

TEST_CASE("upstream.cluster: read_from replica needs no replicas entry, upstream.db 0 is fine") {
  Config a = mustLoad(
      "upstream:\n  cluster: {seeds: [h:1]}\n  read_from: replica\n  db: 0\n"
      "policies:\n  - {name: p, match: 'a:<id>', routing: {read_from: replica}}\n");
  CHECK(a.upstream.read_from == ReadFrom::kReplica);
  CHECK_FALSE(a.upstream.cluster->read_from.has_value());
  REQUIRE(a.policy.policies.size() == 1);
  Config b = mustLoad("upstream:\n  cluster: {seeds: [h:1], read_from: replica}\n");
  CHECK(*b.upstream.cluster->read_from == ReadFrom::kReplica);
  CHECK(b.upstream.read_from == ReadFrom::kPrimary);
}

TEST_CASE("upstream.cluster: each error at its position") {
  const std::string s = "upstream:\n  cluster:\n";  // line 3 is the first free line
  checkErrorCases({
      {"upstream:\n  primary: h:1\n  cluster: {seeds: [h:2]}\n",
       {"t.yaml:3:3: upstream.cluster: cannot be used together with upstream.primary (the "
        "cluster names its nodes)"}},
      {"upstream:\n  sentinel: {master: m, addresses: [h:1]}\n  cluster: {seeds: [h:2]}\n",
       {"t.yaml:3:3: upstream.cluster: cannot be used together with upstream.sentinel (write "
        "one: the cluster or the sentinels name the nodes)"}},
      {"upstream:\n  cluster: {seeds: [h:2]}\n  replicas: [h:3]\n",
       {"t.yaml:3:14: upstream.replicas[0]: cannot be used with upstream.cluster (the cluster "
        "reports the replicas) (got h:3)"}},
      {"upstream:\n  cluster: {seeds: [h:2]}\n  db: 3\n",
       {"t.yaml:3:7: upstream.db: must be 0 with upstream.cluster: a cluster has only database 0 "
        "(got 3)"}},
      {"upstream:\n  cluster: {seeds: [h:2], read_from: replica}\n  read_from: primary\n",
       {"t.yaml:2:38: upstream.cluster.read_from: cannot be used together with "
        "upstream.read_from (write one)"}},
      {"upstream:\n  cluster:\n",
       {"t.yaml:2:3: upstream.cluster.seeds: is required: the nodes to learn the cluster from, "
        "like [10.0.0.1:6379]"}},
      {s + "    tls: true\n",
       {"t.yaml:3:5: upstream.cluster.seeds: is required: the nodes to learn the cluster from, "
        "like [10.0.0.1:6379]"}},
      {"upstream: {cluster: [h:1]}\n",
       {"t.yaml:1:21: upstream.cluster: must be a mapping like {seeds: [10.0.0.1:6379]} (got a "
        "list)"}},
      {s + "    seeds: []\n",
       {"t.yaml:3:12: upstream.cluster.seeds: must list at least one node (got [])"}},
      {s + "    seeds: {a: 1}\n",
       {"t.yaml:3:12: upstream.cluster.seeds: must be an address or a list of addresses (got a "
        "mapping)"}},
      {s + "    seeds: [h:1, H:1, 'h:0', 'unix:/s', 'http://h:2', 'redis://h:3/2']\n",
       {"t.yaml:3:18: upstream.cluster.seeds[1]: duplicate of upstream.cluster.seeds[0] "
        "(got H:1)",
        "t.yaml:3:23: upstream.cluster.seeds[2]: port must be a number from 1 to 65535 (got h:0)",
        "t.yaml:3:30: upstream.cluster.seeds[3]: must be host:port or a redis[s]:// URL: cluster "
        "nodes talk TCP (got unix:/s)",
        "t.yaml:3:41: upstream.cluster.seeds[4]: must be host:port, unix:/path or "
        "redis[s]://[user[:password]@]host:port[/db] (got http://h:2)",
        "t.yaml:3:55: upstream.cluster.seeds[5]: must use database 0: a cluster has only "
        "database 0 (got redis://h:3/2)"}},
      // A URL with credentials: refused, and the password is masked.
      {s + "    seeds: ['redis://u:hunter2@h:1', 'rediss://u@h:2']\n",
       {"t.yaml:3:13: upstream.cluster.seeds[0]: must not carry credentials: every node gets the "
        "same, from upstream.cluster.user and password (or upstream.user and password) (got "
        "redis://u:***@h:1)",
        "t.yaml:3:38: upstream.cluster.seeds[1]: must not carry credentials: every node gets the "
        "same, from upstream.cluster.user and password (or upstream.user and password) (got "
        "rediss://u@h:2)"}},
      {"upstream:\n  cluster: {seeds: [127.0.0.1:6380]}\n",
       {"t.yaml:2:21: upstream.cluster.seeds[0]: is corral's own address listen (default); "
        "corral would proxy to itself (got 127.0.0.1:6380)"}},
      {s + "    seeds: [h:1]\n    refresh_interval: 50ms\n",
       {"t.yaml:4:23: upstream.cluster.refresh_interval: must be from 100ms to 10m (got 50ms)"}},
      {s + "    seeds: [h:1]\n    refresh_interval: 11m\n",
       {"t.yaml:4:23: upstream.cluster.refresh_interval: must be from 100ms to 10m (got 11m)"}},
      {s + "    seeds: [h:1]\n    refresh_interval: often\n",
       {"t.yaml:4:23: upstream.cluster.refresh_interval: must be a duration like 250ms, 1.5s or "
        "5m (got often)"}},
      {s + "    seeds: [h:1]\n    max_refreshes_per_second: 0\n",
       {"t.yaml:4:31: upstream.cluster.max_refreshes_per_second: must be an integer from 1 to "
        "100 (got 0)"}},
      {s + "    seeds: [h:1]\n    max_refreshes_per_second: 101\n",
       {"t.yaml:4:31: upstream.cluster.max_refreshes_per_second: must be an integer from 1 to "
        "100 (got 101)"}},
      {s + "    seeds: [h:1]\n    read_from: replicas\n",
       {"t.yaml:4:16: upstream.cluster.read_from: must be one of primary, replica, "
        "prefer_replica (got replicas)"}},
      {s + "    seeds: [h:1]\n    expose: yes\n",
       {"t.yaml:4:13: upstream.cluster.expose: must be true or false (got yes)"}},
      {s + "    seeds: [h:1]\n    tls: 1\n",
       {"t.yaml:4:10: upstream.cluster.tls: must be true or false (got 1)"}},
      {s + "    seeds: [h:1, 'rediss://h:2']\n    tls: false\n",
       {"t.yaml:4:10: upstream.cluster.tls: cannot be false with the rediss:// seed "
        "upstream.cluster.seeds[1] (got false)"}},
      {"upstream:\n  cluster: {seeds: [h:1], tls: false}\n  tls: {enabled: true}\n",
       {"t.yaml:2:32: upstream.cluster.tls: cannot be false with upstream.tls.enabled: true "
        "(got false)"}},
      {s + "    seeds: [h:1]\n    user: [a]\n",
       {"t.yaml:4:11: upstream.cluster.user: must be a string (got a list)"}},
      {s + "    seeds: [h:1]\n    password: pw\n    password_env: X_PW\n",
       {"t.yaml:5:19: upstream.cluster.password_env: cannot be used together with "
        "upstream.cluster.password"}},
      {s + "    seeds: [h:1]\n    password_env: CORRAL_TEST_UNSET_CLUSTER\n",
       {"t.yaml:4:19: upstream.cluster.password_env: environment variable "
        "CORRAL_TEST_UNSET_CLUSTER is not set"}},
      {s + "    seeds: [h:1]\n    password_env: 'not a name'\n",
       {"t.yaml:4:19: upstream.cluster.password_env: must be the name of an environment "
        "variable, like REDIS_PASSWORD (got not a name)"}},
      // A password of the wrong type is described by its type only.
      {s + "    seeds: [h:1]\n    password: [hunter2]\n",
       {"t.yaml:4:15: upstream.cluster.password: must be a string (got a list)"}},
      {s + "    seeds: [h:1]\n    expse: true\n",
       {"t.yaml:4:5: upstream.cluster.expse: unknown key (did you mean expose?)"}},
  });
}

TEST_CASE("an empty variable named by upstream.cluster.password_env is an error") {
  ScopedEnv empty("CORRAL_TEST_EMPTY_CLUSTER", "");
  CHECK(
      errorsOf("upstream:\n  cluster: {seeds: [h:1], password_env: CORRAL_TEST_EMPTY_CLUSTER}\n") ==
      std::vector<std::string>{"t.yaml:2:41: upstream.cluster.password_env: environment "
                               "variable CORRAL_TEST_EMPTY_CLUSTER is empty"});
}

TEST_CASE("--print-addresses lists the seeds, not a primary") {
  Config c = mustLoad(
      "listen: 127.0.0.1:7000\nupstream:\n  cluster: {seeds: [h:1, '[::1]:2'], password: pw}\n");
  CHECK(addressLines(c) == "listen 127.0.0.1:7000\nseed h:1 password\nseed [::1]:2 password\n");
  Config t = mustLoad("upstream:\n  cluster: {seeds: ['rediss://h:1', h:2]}\n");
  CHECK(addressLines(t) == "listen 127.0.0.1:6380\nseed h:1 tls\nseed h:2 tls\n");
}

}  // namespace
}  // namespace corral::config
