// parseShards / parseSlots on replies captured from a real 3-primary/3-replica redis-server
// 7.0.15 cluster (testdata/capture.py), checked against that cluster's own CLUSTER NODES text,
// read here by a separate little reader. Hand-made replies are in slot_map_edge_test.cc.
#include "proxy/cluster/slot_map.h"

#include <doctest/doctest.h>

#include <charconv>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cluster/test_util.h"
#include "proxy/codec/resp.h"

namespace corral::cluster {
namespace {

using test::fixture;

// One line of CLUSTER NODES: "<id> <ip>:<port>@<bus>[,<hostname>] <flags> <primary id|-> <ping>
// <pong> <epoch> <link> <slot ranges...>".
struct NodesLine {
  std::string id;
  std::string ip;
  uint16_t port = 0;
  std::string hostname;
  bool primary = false;
  bool failed = false;
  std::string primary_id;  // for a replica
  std::vector<std::pair<int, int>> ranges;
};

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t j = std::min(s.find(' ', i), s.size());
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

int toInt(std::string_view s) {
  int v = -1;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// The oracle: who owns what according to CLUSTER NODES (a bulk string reply), keyed by id.
std::map<std::string, NodesLine> readNodes(const std::string& reply) {
  codec::FrameReader rd(reply);
  std::string_view text;
  bool nil = false;
  REQUIRE(rd.bulk(&text, &nil));
  std::map<std::string, NodesLine> out;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    const std::vector<std::string_view> w = words(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    REQUIRE(w.size() >= 8);
    NodesLine n;
    n.id = w[0];
    std::string_view addr = w[1];
    if (const size_t comma = addr.find(','); comma != std::string_view::npos) {
      n.hostname = addr.substr(comma + 1);
      addr = addr.substr(0, comma);
    }
    const size_t colon = addr.rfind(':');
    n.ip = addr.substr(0, colon);
    n.port = static_cast<uint16_t>(toInt(addr.substr(colon + 1, addr.find('@') - colon - 1)));
    n.primary = w[2].find("master") != std::string_view::npos;
    n.failed = w[2].find("fail") != std::string_view::npos;
    if (!n.primary) n.primary_id = w[3];
    for (size_t i = 8; i < w.size(); ++i) {
      const size_t dash = w[i].find('-');
      const int first = toInt(w[i].substr(0, dash));
      n.ranges.emplace_back(first,
                            dash == std::string_view::npos ? first : toInt(w[i].substr(dash + 1)));
    }
    out[n.id] = n;
  }
  return out;
}

std::optional<SlotMap> parse(const std::string& name) {
  const std::string reply = fixture(name);
  std::string err;
  std::optional<SlotMap> map =
      name.find("shards") != std::string::npos ? parseShards(reply, &err) : parseSlots(reply, &err);
  CHECK_MESSAGE(map.has_value(), name << ": " << err);
  return map;
}

// Every slot's primary and every shard's nodes as CLUSTER NODES has them.
void checkAgainstNodes(const SlotMap& map, const std::map<std::string, NodesLine>& nodes) {
  for (const auto& [id, n] : nodes) {
    for (const auto& [first, last] : n.ranges) {
      for (int s = first; s <= last; ++s) {
        const Node* p = map.primaryOf(static_cast<uint16_t>(s));
        REQUIRE(p != nullptr);
        CHECK(p->id == id);
      }
    }
  }
  for (const Shard& shard : map.shards) {
    REQUIRE(!shard.nodes.empty());
    const Node& p = shard.nodes[0];
    CAPTURE(p.id);
    REQUIRE(nodes.count(p.id) == 1);
    const NodesLine& want = nodes.at(p.id);
    CHECK(p.primary);
    CHECK(want.primary);
    CHECK(p.port == want.port);
    CHECK(p.tls_port == 0);
    CHECK(p.online == !want.failed);
    for (size_t i = 1; i < shard.nodes.size(); ++i) {
      const Node& r = shard.nodes[i];
      REQUIRE(nodes.count(r.id) == 1);
      CHECK_FALSE(r.primary);
      CHECK(nodes.at(r.id).primary_id == p.id);
      CHECK(r.port == nodes.at(r.id).port);
    }
    // Every live replica of this primary is in the shard.
    size_t replicas = 0;
    for (const auto& [id, n] : nodes) replicas += n.primary_id == p.id && !n.failed;
    CHECK(shard.nodes.size() == 1 + replicas);
  }
}

TEST_CASE("CLUSTER SHARDS and SLOTS of a healthy cluster, RESP2 and RESP3") {
  const auto nodes = readNodes(fixture("nodes.resp"));
  REQUIRE(nodes.size() == 6);
  std::vector<SlotMap> maps;
  for (const char* name :
       {"shards_resp2.resp", "shards_resp3.resp", "slots_resp2.resp", "slots_resp3.resp"}) {
    CAPTURE(name);
    std::optional<SlotMap> map = parse(name);
    REQUIRE(map.has_value());
    CHECK(map->complete());
    CHECK(map->shards.size() == 3);
    checkAgainstNodes(*map, nodes);
    for (const Shard& s : map->shards) {
      for (const Node& n : s.nodes) {
        CHECK(n.host == "127.0.0.1");
        CHECK(n.hostname.empty());
        CHECK(n.id.size() == 40);
        CHECK(n.online);
      }
    }
    maps.push_back(std::move(*map));
  }
  // The four answers describe one cluster.
  for (const SlotMap& m : maps) CHECK(sameTopology(maps[0], m));
  for (const SlotMap& m : maps) CHECK(sameTopology(m, maps[0]));
}

TEST_CASE("announced hostnames preferred as endpoints") {
  const auto nodes = readNodes(fixture("failover_nodes.resp"));  // has the hostnames
  for (const char* name : {"hostname_shards_resp2.resp", "hostname_shards_resp3.resp",
                           "hostname_slots_resp2.resp", "hostname_slots_resp3.resp"}) {
    CAPTURE(name);
    std::optional<SlotMap> map = parse(name);
    REQUIRE(map.has_value());
    CHECK(map->complete());
    for (const Shard& s : map->shards) {
      for (const Node& n : s.nodes) {
        REQUIRE(nodes.count(n.id) == 1);
        CHECK(n.hostname == nodes.at(n.id).hostname);
        CHECK(n.host == n.hostname);  // the endpoint is what to connect to
      }
    }
    // A MOVED names the endpoint: the hostname.
    CHECK(map->shardOf("n3.corral.test", 44949) == map->owner[12182]);
  }
}

TEST_CASE("unknown-endpoint: the ip is used (SHARDS: endpoint \"\", SLOTS: null + metadata)") {
  const auto nodes = readNodes(fixture("nodes.resp"));
  for (const char* name :
       {"unknown_endpoint_shards_resp2.resp", "unknown_endpoint_shards_resp3.resp",
        "unknown_endpoint_slots_resp2.resp", "unknown_endpoint_slots_resp3.resp"}) {
    CAPTURE(name);
    std::optional<SlotMap> map = parse(name);
    REQUIRE(map.has_value());
    CHECK(map->complete());
    checkAgainstNodes(*map, nodes);
    for (const Shard& s : map->shards) {
      for (const Node& n : s.nodes) {
        CHECK(n.host == "127.0.0.1");
        CHECK(n.hostname.empty());
      }
    }
    CHECK(sameTopology(*map, *parse("shards_resp2.resp")));
  }
}

TEST_CASE("after a failover: the failed primary owns nothing, its replica took over") {
  const auto nodes = readNodes(fixture("failover_nodes.resp"));
  const std::optional<SlotMap> before = parse("shards_resp2.resp");
  for (const char* name : {"failover_shards_resp2.resp", "failover_shards_resp3.resp",
                           "failover_slots_resp2.resp", "failover_slots_resp3.resp"}) {
    CAPTURE(name);
    std::optional<SlotMap> map = parse(name);
    REQUIRE(map.has_value());
    CHECK(map->complete());
    checkAgainstNodes(*map, nodes);
    const Node* p = map->primaryOf(12182);
    REQUIRE(p != nullptr);
    CHECK(p->port == 35267);  // the old replica
    CHECK(p->hostname == "n4.corral.test");
    CHECK(p->host == "127.0.0.1");
    CHECK_FALSE(sameTopology(*before, *map));
    CHECK(sameTopology(*map, *parse("failover_slots_resp2.resp")));
    const int dead = map->shardOf("127.0.0.1", 44949);
    if (std::string_view(name).find("shards") != std::string_view::npos) {
      // SHARDS still lists the failed primary, alone, with no slots and health "fail".
      CHECK(map->shards.size() == 4);
      REQUIRE(dead >= 0);
      CHECK_FALSE(map->shards[dead].nodes[0].online);
      for (int16_t o : map->owner) CHECK(o != dead);
    } else {
      CHECK(map->shards.size() == 3);  // SLOTS lists only nodes that serve slots
      CHECK(dead == -1);
    }
  }
}

}  // namespace
}  // namespace corral::cluster
