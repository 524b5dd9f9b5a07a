// parseRedirect: replies captured from redis-server 7.0.15 (testdata/*.resp) and hand-made
// edge cases.
#include "proxy/cluster/redirect.h"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <string_view>

#include "proxy/cluster/test_util.h"

extern std::atomic<uint64_t> g_allocations;  // slot_test.cc

namespace corral::cluster {
namespace {

using Kind = Redirect::Kind;
using test::fixture;

TEST_CASE("redirections written by redis-server 7.0.15") {
  // testdata/capture.py: node 0 asked for "foo" (slot 12182), served by the node on 44949; the
  // same after CONFIG SET cluster-preferred-endpoint-type unknown-endpoint / hostname.
  const std::string moved = fixture("moved.resp");
  Redirect r = parseRedirect(moved);
  CHECK(r.kind == Kind::kMoved);
  CHECK(r.slot == 12182);
  CHECK(r.host == "127.0.0.1");
  CHECK(r.port == 44949);

  const std::string unknown = fixture("moved_unknown_endpoint.resp");
  r = parseRedirect(unknown);
  CHECK(r.kind == Kind::kMoved);
  CHECK(r.slot == 12182);
  CHECK(r.host.empty());
  CHECK(r.port == 44949);

  const std::string hostname = fixture("moved_hostname.resp");
  r = parseRedirect(hostname);
  CHECK(r.kind == Kind::kMoved);
  CHECK(r.host == "n3.corral.test");
  CHECK(r.port == 44949);

  // "{t}2" while slot 15891 was MIGRATING to the node on 42867.
  const std::string ask = fixture("ask.resp");
  r = parseRedirect(ask);
  CHECK(r.kind == Kind::kAsk);
  CHECK(r.slot == 15891);
  CHECK(r.host == "127.0.0.1");
  CHECK(r.port == 42867);

  CHECK(parseRedirect(fixture("tryagain.resp")).kind == Kind::kTryAgain);
  CHECK(parseRedirect(fixture("clusterdown.resp")).kind == Kind::kClusterDown);
}

TEST_CASE("the host is a view into the reply") {
  const std::string reply = "-ASK 0 10.0.0.7:7000\r\n";
  const Redirect r = parseRedirect(reply);
  REQUIRE(r.kind == Kind::kAsk);
  CHECK(r.slot == 0);
  CHECK(r.host.data() == reply.data() + 7);
  CHECK(r.port == 7000);
}

TEST_CASE("IPv6 hosts: the port follows the last colon") {
  Redirect r = parseRedirect("-MOVED 16383 ::1:6380\r\n");
  CHECK(r.kind == Kind::kMoved);
  CHECK(r.slot == 16383);
  CHECK(r.host == "::1");
  CHECK(r.port == 6380);
  r = parseRedirect("-MOVED 5 fe80::1:2:65535\r\n");
  CHECK(r.host == "fe80::1:2");
  CHECK(r.port == 65535);
  r = parseRedirect("-ASK 5 [2001:db8::7]:7001\r\n");
  CHECK(r.kind == Kind::kAsk);
  CHECK(r.host == "2001:db8::7");
  CHECK(r.port == 7001);
}

TEST_CASE("a reply without its CRLF is read whole") {
  const Redirect r = parseRedirect("-MOVED 1 h:2");
  CHECK(r.kind == Kind::kMoved);
  CHECK(r.host == "h");
  CHECK(r.port == 2);
  CHECK(parseRedirect("-TRYAGAIN").kind == Kind::kTryAgain);
  CHECK(parseRedirect("-CLUSTERDOWN\r\n").kind == Kind::kClusterDown);
}

TEST_CASE("anything else is kNone, with nothing filled in") {
  const std::string_view cases[] = {
      "",
      "+OK\r\n",
      "$5\r\nMOVED\r\n",
      ":1\r\n",
      "*1\r\n$5\r\n-MOVED\r\n",
      "-ERR unknown command 'x'\r\n",
      "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
      "-MOVEDX 1 h:2\r\n",      // not the word MOVED
      "-moved 1 h:2\r\n",       // Redis writes the code in capitals
      "-MOVED\r\n",             // no target
      "-MOVED \r\n",            // empty target
      "-MOVED 1\r\n",           // no address
      "-MOVED 1 h\r\n",         // no port
      "-MOVED 1 h:\r\n",        // empty port
      "-MOVED 1 h:0\r\n",       // port 0
      "-MOVED 1 h:65536\r\n",   // port too large
      "-MOVED 1 h:6x\r\n",      // not a number
      "-MOVED 1 h:+6\r\n",      // signs are not Redis's
      "-MOVED 16384 h:1\r\n",   // slot out of range
      "-MOVED -1 h:1\r\n",      // negative slot
      "-MOVED 123456 h:1\r\n",  // too many digits
      "-MOVED  1 h:1\r\n",      // two spaces: empty slot
      "-MOVED 1 a b:1\r\n",     // a space in the host
      "-ASK 1 h:1 extra\r\n",   // trailing words: the port is "1 extra"
      "-TRYAGAINX\r\n",
      "-CLUSTERDOWNX\r\n",
      "!21\r\nMOVED 1 127.0.0.1:1\r\n",  // a RESP3 bulk error: Redis never sends a MOVED so
  };
  for (std::string_view c : cases) {
    CAPTURE(c);
    const Redirect r = parseRedirect(c);
    CHECK(r.kind == Kind::kNone);
    CHECK(r.slot == 0);
    CHECK(r.host.empty());
    CHECK(r.port == 0);
  }
}

TEST_CASE("parseRedirect allocates nothing") {
  const std::string moved = fixture("moved.resp");
  const std::string value = "$5\r\nhello\r\n";
  const uint64_t before = g_allocations.load();
  uint32_t ports = 0;
  for (int i = 0; i < 100; ++i) {
    ports += parseRedirect(moved).port;
    ports += parseRedirect(value).port;
  }
  CHECK(g_allocations.load() == before);
  CHECK(ports == 100u * 44949u);
}

}  // namespace
}  // namespace corral::cluster
