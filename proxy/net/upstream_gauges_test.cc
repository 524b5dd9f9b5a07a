// upstream_gauges.h: what workers report, summed by address and role, and the series' text.
#include "proxy/net/upstream_gauges.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace corral::net {
namespace {

bool hasLine(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("addressLabel: host:port, bracketed IPv6, unix sockets") {
  std::string out = "left over";
  config::ListenAddress a;
  a.kind = config::ListenAddress::Kind::kTcp;
  a.host = "10.0.0.5";
  a.port = 6379;
  a.text = "redis://app:***@10.0.0.5:6379/2";
  addressLabel(a, &out);
  CHECK(out == "10.0.0.5:6379");
  a.host = "::1";
  addressLabel(a, &out);
  CHECK(out == "[::1]:6379");
  config::ListenAddress u;
  u.kind = config::ListenAddress::Kind::kUnix;
  u.path = "/run/redis.sock";
  addressLabel(u, &out);
  CHECK(out == "unix:/run/redis.sock");
}

TEST_CASE("UpstreamGauges: a round is seen whole; a changed list replaces the old one") {
  UpstreamGauges g;
  CHECK(g.snapshot().empty());
  g.report(0, "p:1", UpstreamRole::kPrimary, 2, 2);
  g.report(1, "r:1", UpstreamRole::kReplica, 0, 2);
  g.finish(2);
  auto s = g.snapshot();
  REQUIRE(s.size() == 2);
  CHECK((s[0].addr == "p:1" && s[0].role == UpstreamRole::kPrimary && s[0].ready == 2 &&
         s[0].configured == 2));
  CHECK((s[1].addr == "r:1" && s[1].role == UpstreamRole::kReplica && s[1].ready == 0));
  // Same names, new counts.
  g.report(0, "p:1", UpstreamRole::kPrimary, 1, 2);
  g.report(1, "r:1", UpstreamRole::kReplica, 2, 2);
  g.finish(2);
  s = g.snapshot();
  CHECK((s[0].ready == 1 && s[1].ready == 2));
  // Sentinel moved the primary and the replica left.
  g.report(0, "q:1", UpstreamRole::kPrimary, 0, 2);
  g.finish(1);
  s = g.snapshot();
  REQUIRE(s.size() == 1);
  CHECK((s[0].addr == "q:1" && s[0].ready == 0));
  // Past kMaxNodes: left out.
  for (size_t i = 0; i < UpstreamGauges::kMaxNodes + 3; ++i) {
    g.report(i, "n:" + std::to_string(i), UpstreamRole::kReplica, 1, 1);
  }
  g.finish(UpstreamGauges::kMaxNodes + 3);
  CHECK(g.snapshot().size() == UpstreamGauges::kMaxNodes);
}

TEST_CASE("sumUpstreams: up only when every worker that connects there has a ready connection") {
  using N = UpstreamGauges::Node;
  const std::vector<std::vector<N>> workers = {
      {{"p:1", UpstreamRole::kPrimary, 2, 2},
       {"r:1", UpstreamRole::kReplica, 1, 2},
       {"r:2", UpstreamRole::kReplica, 0, 2}},
      {{"p:1", UpstreamRole::kPrimary, 1, 2},
       {"r:1", UpstreamRole::kReplica, 0, 2},
       {"r:2", UpstreamRole::kReplica, 0, 2}},
      // A cluster node only this worker has connections to.
      {{"p:1", UpstreamRole::kPrimary, 2, 2}, {"c:9", UpstreamRole::kReplica, 1, 1}},
  };
  const auto t = sumUpstreams(workers);
  REQUIRE(t.size() == 4);
  CHECK((t[0].addr == "p:1" && t[0].ready == 5 && t[0].configured == 6 && t[0].up()));
  CHECK((t[1].addr == "r:1" && t[1].ready == 1 && t[1].configured == 4 && !t[1].up()));
  CHECK((t[2].addr == "r:2" && t[2].ready == 0 && !t[2].up()));
  CHECK((t[3].addr == "c:9" && t[3].workers == 1 && t[3].up()));
  // The same address in two roles (a cluster failover seen by workers at different times) is
  // two series.
  const auto two = sumUpstreams(
      {{{"a:1", UpstreamRole::kPrimary, 1, 1}}, {{"a:1", UpstreamRole::kReplica, 1, 1}}});
  CHECK(two.size() == 2);

  std::string out;
  PromWriter w(out);
  writeUpstreamMetrics(t, w);
  CAPTURE(out);
  CHECK(hasLine(out, "# TYPE corral_upstream_up gauge"));
  CHECK(hasLine(out, "corral_upstream_up{addr=\"p:1\",role=\"primary\"} 1"));
  CHECK(hasLine(out, "corral_upstream_up{addr=\"r:1\",role=\"replica\"} 0"));
  CHECK(hasLine(out, "corral_upstream_up{addr=\"r:2\",role=\"replica\"} 0"));
  CHECK(hasLine(out, "corral_upstream_connections_ready{addr=\"p:1\",role=\"primary\"} 5"));
  CHECK(hasLine(out, "corral_upstream_connections{addr=\"r:1\",role=\"replica\"} 4"));
}

}  // namespace corral::net
