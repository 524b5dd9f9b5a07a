// Rules between proxy keys, checked after the walk (cross_check.cc).
#include <doctest/doctest.h>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

TEST_CASE("rules between keys are reported at the value that breaks them") {
  const std::string p = kPrimary;
  const std::string up = "upstream:\n  primary: h:1\n";  // line 3 is the first free line
  checkErrorCases({
      {"listen: [a:1, a:1, b:0, b:0]\n" + p,
       {"t.yaml:1:15: listen[1]: duplicate of listen[0] (got a:1)"}},
      {"upstream:\n  replicas: []\n",
       {"t.yaml:2:3: upstream.primary: is required (or upstream.sentinel, or "
        "upstream.cluster): the Redis server to proxy to, like 127.0.0.1:6379"}},
      {"workers: 1\n",
       {"t.yaml:1:1: upstream.primary: is required (or upstream.sentinel, or "
        "upstream.cluster): the Redis server to proxy to, like 127.0.0.1:6379"}},
      {"",
       {"t.yaml:0:0: upstream.primary: is required (or upstream.sentinel, or "
        "upstream.cluster): the Redis server to proxy to, like 127.0.0.1:6379"}},
      {up + "  replicas: [h:2, H:1, h:2]\n",
       {"t.yaml:3:19: upstream.replicas[1]: is the same server as upstream.primary (got H:1)",
        "t.yaml:3:24: upstream.replicas[2]: is the same server as upstream.replicas[0] "
        "(got h:2)"}},
      {"upstream: {primary: 127.0.0.1:6380}\n",
       {"t.yaml:1:21: upstream.primary: is corral's own address listen (default); corral would "
        "proxy to itself (got 127.0.0.1:6380)"}},
      {"listen: [a:1, unix:/s]\nupstream: {primary: h:1, replicas: ['unix:/s']}\n",
       {"t.yaml:2:37: upstream.replicas[0]: is corral's own address listen[1]; corral would "
        "proxy to itself (got unix:/s)"}},
      {up + "  read_from: replica\n",
       {"t.yaml:3:14: upstream.read_from: needs at least one upstream.replicas entry "
        "(got replica)"}},
      {up + "  reconnect_backoff: {min: 3s, max: 1s}\n",
       {"t.yaml:3:37: upstream.reconnect_backoff.max: must not be less than "
        "reconnect_backoff.min (3000ms) (got 1s)"}},
      {up + "  reconnect_backoff: {min: 5s}\n",
       {"t.yaml:3:28: upstream.reconnect_backoff.min: must not be more than "
        "reconnect_backoff.max (2000ms) (got 5s)"}},
      {up + "  reconnect_backoff: {max: 10ms}\n",
       {"t.yaml:3:28: upstream.reconnect_backoff.max: must not be less than "
        "reconnect_backoff.min (50ms) (got 10ms)"}},
      {"admin: {listen: 127.0.0.1:6380}\n" + p,
       {"t.yaml:1:17: admin.listen: is the same address as listen (default) "
        "(got 127.0.0.1:6380)"}},
      {"listen: [x:5]\nadmin: {listen: X:5}\n" + p,
       {"t.yaml:2:17: admin.listen: is the same address as listen[0] (got X:5)"}},
  });
}

}  // namespace
}  // namespace corral::config
