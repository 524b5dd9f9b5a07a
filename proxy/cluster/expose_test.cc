// The one-node cluster corral exposes: our CLUSTER SLOTS / SHARDS / NODES replies against the
// bytes a real redis-server 7.0.15 holding every slot wrote (testdata/one_node_*.resp, made by
// `capture.py --one-node`), then read back with parseSlots / parseShards.
#include "proxy/cluster/expose.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "proxy/cluster/slot_map.h"
#include "proxy/cluster/test_util.h"
#include "proxy/codec/resp.h"

namespace corral::cluster {
namespace {

using test::fixture;

// The captured node: its announced ip, port and id.
constexpr std::string_view kIp = "127.0.0.1";
constexpr uint16_t kPort = 52877;
constexpr std::string_view kId = "8cd13a79594ff92092a0cc4274a3b51d680e8db2";

// The single node of a map that must be "one node, every slot".
const Node& onlyNode(const SlotMap& map) {
  REQUIRE(map.complete());
  REQUIRE(map.shards.size() == 1);
  REQUIRE(map.shards[0].nodes.size() == 1);
  const Node* p = map.primaryOf(0);
  REQUIRE(p != nullptr);
  CHECK(p == map.primaryOf(kSlots - 1));
  return *p;
}

TEST_CASE("exposeSlots writes what Redis writes, RESP2 and RESP3") {
  for (bool resp3 : {false, true}) {
    CAPTURE(resp3);
    std::string out;
    if (resp3) {
      exposeSlots(kIp, kPort, kId, &out, true);
    } else {
      exposeSlots(kIp, kPort, kId, &out);  // the default: RESP2
    }
    CHECK(out == fixture(resp3 ? "one_node_slots_resp3.resp" : "one_node_slots_resp2.resp"));
    std::string err;
    const auto map = parseSlots(out, &err);
    REQUIRE_MESSAGE(map, err);
    const Node& n = onlyNode(*map);
    CHECK(n.host == kIp);
    CHECK(n.port == kPort);
    CHECK(n.id == kId);
    CHECK(n.primary);
  }
}

TEST_CASE("exposeShards writes what Redis writes, RESP2 and RESP3") {
  for (bool resp3 : {false, true}) {
    CAPTURE(resp3);
    std::string out;
    exposeShards(kIp, kPort, kId, resp3, &out);
    CHECK(out == fixture(resp3 ? "one_node_shards_resp3.resp" : "one_node_shards_resp2.resp"));
    std::string err;
    const auto map = parseShards(out, &err);
    REQUIRE_MESSAGE(map, err);
    const Node& n = onlyNode(*map);
    CHECK(n.host == kIp);
    CHECK(n.port == kPort);
    CHECK(n.tls_port == 0);
    CHECK(n.id == kId);
    CHECK(n.primary);
    CHECK(n.online);
  }
}

TEST_CASE("exposeNodes writes what Redis writes: a bulk string, or verbatim txt in RESP3") {
  std::string out;
  exposeNodes(kIp, kPort, kId, &out);
  CHECK(out == fixture("one_node_nodes_resp2.resp"));
  out.clear();
  exposeNodes(kIp, kPort, kId, &out, true);
  CHECK(out == fixture("one_node_nodes_resp3.resp"));
  codec::FrameReader rd(out);
  std::string_view text, format;
  REQUIRE(rd.verbatim(&text, &format));
  CHECK(rd.atEnd());
  CHECK(format == "txt");
}

TEST_CASE("exposed replies for another address read back as that address") {
  struct Case {
    std::string_view host;
    uint16_t port;
    std::string_view bus;
  };
  const std::string id(40, 'a');
  for (const Case& c : {Case{"corral.svc.local", 6380, "16380"}, Case{"10.1.2.3", 55535, "65535"},
                        Case{"10.1.2.3", 55536, "0"}, Case{"::1", 7000, "17000"}}) {
    CAPTURE(c.host);
    CAPTURE(c.port);
    for (bool resp3 : {false, true}) {
      std::string slots, shards, err;
      exposeSlots(c.host, c.port, id, &slots, resp3);
      exposeShards(c.host, c.port, id, resp3, &shards);
      for (const auto& map : {parseSlots(slots, &err), parseShards(shards, &err)}) {
        REQUIRE_MESSAGE(map, err);
        const Node& n = onlyNode(*map);
        CHECK(n.host == c.host);
        CHECK(n.port == c.port);
        CHECK(n.id == id);
      }
    }
    std::string nodes;
    exposeNodes(c.host, c.port, id, &nodes);
    codec::FrameReader rd(nodes);
    std::string_view text;
    bool nil = true;
    REQUIRE(rd.bulk(&text, &nil));
    CHECK(rd.atEnd());
    CHECK_FALSE(nil);
    CHECK(text == id + " " + std::string(c.host) + ":" + std::to_string(c.port) + "@" +
                      std::string(c.bus) + " myself,master - 0 0 1 connected 0-16383\n");
  }
}

TEST_CASE("expose appends to what *out holds") {
  std::string out = "+x\r\n";
  exposeShards(kIp, kPort, kId, false, &out);
  CHECK(out == "+x\r\n" + fixture("one_node_shards_resp2.resp"));
}

}  // namespace
}  // namespace corral::cluster
