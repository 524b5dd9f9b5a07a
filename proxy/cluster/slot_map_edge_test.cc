// parseShards / parseSlots on hand-made and damaged replies: holes, shards without a primary,
// old and TLS forms of CLUSTER SLOTS, truncation, bad values; shardOf and sameTopology.
#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "proxy/cluster/slot_map.h"
#include "proxy/cluster/test_util.h"
#include "proxy/codec/resp.h"

namespace corral::cluster {
namespace {

using test::fixture;

std::string bulk(std::string_view s) {
  std::string out;
  codec::appendBulk(out, s);
  return out;
}
std::string num(int64_t v) {
  std::string out;
  codec::appendInteger(out, v);
  return out;
}
std::string arr(std::initializer_list<std::string> items) {
  std::string out;
  codec::appendArrayHeader(out, items.size());
  for (const std::string& i : items) out += i;
  return out;
}
// A RESP3 map of field/value pairs (items holds 2n elements).
std::string map3(std::initializer_list<std::string> items) {
  std::string out = "%" + std::to_string(items.size() / 2) + "\r\n";
  for (const std::string& i : items) out += i;
  return out;
}

// A CLUSTER SLOTS node as Redis 7 writes it (RESP2), on 127.0.0.1.
std::string slotsNode(int port, std::string_view id) {
  return arr({bulk("127.0.0.1"), num(port), bulk(id), arr({})});
}
std::string slotsEntry(int first, int last, std::initializer_list<std::string> nodes) {
  std::string out;
  codec::appendArrayHeader(out, 2 + nodes.size());
  out += num(first) + num(last);
  for (const std::string& n : nodes) out += n;
  return out;
}

const std::string kA(40, 'a');
const std::string kB(40, 'b');
const std::string kC(40, 'c');

std::optional<SlotMap> slots(const std::string& reply, std::string* err = nullptr) {
  std::string e;
  return parseSlots(reply, err != nullptr ? err : &e);
}

TEST_CASE("a default SlotMap covers nothing") {
  const SlotMap m;
  CHECK(m.owner.size() == kSlots);
  CHECK_FALSE(m.complete());
  CHECK(m.primaryOf(0) == nullptr);
  CHECK(m.primaryOf(kSlots - 1) == nullptr);
  CHECK(m.shardOf("127.0.0.1", 6379) == -1);
}

TEST_CASE("a hole: the map is not complete and the slot has no primary") {
  const auto m = slots(arr(
      {slotsEntry(0, 100, {slotsNode(7000, kA)}), slotsEntry(200, 16383, {slotsNode(7001, kB)})}));
  REQUIRE(m.has_value());
  CHECK_FALSE(m->complete());
  CHECK(m->primaryOf(150) == nullptr);
  CHECK(m->owner[150] == -1);
  REQUIRE(m->primaryOf(100) != nullptr);
  CHECK(m->primaryOf(100)->port == 7000);
  CHECK(m->primaryOf(200)->port == 7001);
  CHECK(m->primaryOf(16383)->port == 7001);
}

TEST_CASE("SHARDS: a shard whose primary is missing owns no slots") {
  // The captured reply with the first shard's primary turned into a replica: its range
  // (5461-10922, the first shard in the file) must end up uncovered, not served by a replica.
  std::string reply = fixture("shards_resp2.resp");
  const size_t at = reply.find("$6\r\nmaster\r\n");
  REQUIRE(at != std::string::npos);
  reply.replace(at, 12, "$7\r\nreplica\r\n");
  std::string err;
  const auto m = parseShards(reply, &err);
  REQUIRE_MESSAGE(m.has_value(), err);
  CHECK(m->shards.size() == 2);
  CHECK_FALSE(m->complete());
  CHECK(m->primaryOf(5461) == nullptr);
  CHECK(m->primaryOf(10922) == nullptr);
  CHECK(m->primaryOf(0) != nullptr);
  CHECK(m->primaryOf(10923) != nullptr);
  for (const Shard& s : m->shards) CHECK(s.nodes[0].primary);
}

TEST_CASE("SHARDS: the primary leads its shard whatever the order; unknown fields skipped") {
  const std::string replica =
      map3({bulk("id"), bulk(kB), bulk("port"), num(7001), bulk("ip"), bulk("10.0.0.2"),
            bulk("endpoint"), bulk("?"), bulk("role"), bulk("replica"), bulk("health"),
            bulk("loading"), bulk("future"), arr({num(1), arr({})})});
  const std::string primary =
      map3({bulk("id"), bulk(kA), bulk("tls-port"), num(7443), bulk("ip"), bulk("10.0.0.1"),
            bulk("endpoint"), bulk("db1.example"), bulk("hostname"), bulk("db1.example"),
            bulk("role"), bulk("master"), bulk("health"), bulk("online")});
  const std::string reply =
      arr({map3({bulk("id"), bulk("shard-id"), bulk("slots"), arr({num(0), num(16383)}),
                 bulk("nodes"), arr({replica, primary})})});
  std::string err;
  const auto m = parseShards(reply, &err);
  REQUIRE_MESSAGE(m.has_value(), err);
  CHECK(m->complete());
  REQUIRE(m->shards.size() == 1);
  const Shard& s = m->shards[0];
  REQUIRE(s.nodes.size() == 2);
  CHECK(s.nodes[0].id == kA);
  CHECK(s.nodes[0].primary);
  CHECK(s.nodes[0].host == "db1.example");
  CHECK(s.nodes[0].hostname == "db1.example");
  CHECK(s.nodes[0].port == 0);
  CHECK(s.nodes[0].tls_port == 7443);
  CHECK(s.nodes[1].id == kB);
  CHECK_FALSE(s.nodes[1].primary);
  CHECK(s.nodes[1].host == "10.0.0.2");  // endpoint "?": the ip
  CHECK_FALSE(s.nodes[1].online);        // "loading"
  CHECK(m->shardOf("db1.example", 7443) == 0);
  CHECK(m->shardOf("10.0.0.2", 7001) == 0);
  CHECK(m->shardOf("10.0.0.2", 7002) == -1);
  CHECK(m->shardOf("10.0.0.9", 7001) == -1);
}

TEST_CASE("SLOTS: several ranges of one primary make one shard") {
  const auto m = slots(arr({slotsEntry(0, 99, {slotsNode(7000, kA), slotsNode(7100, kC)}),
                            slotsEntry(100, 199, {slotsNode(7001, kB)}),
                            slotsEntry(200, 16383, {slotsNode(7000, kA), slotsNode(7100, kC)})}));
  REQUIRE(m.has_value());
  CHECK(m->complete());
  REQUIRE(m->shards.size() == 2);
  CHECK(m->owner[0] == m->owner[200]);
  CHECK(m->owner[0] != m->owner[100]);
  CHECK(m->shards[m->owner[0]].nodes.size() == 2);
  CHECK(m->shardOf("127.0.0.1", 7100) == m->owner[0]);
  CHECK(m->shardOf("127.0.0.1", 7001) == m->owner[100]);
}

TEST_CASE("SLOTS: the forms of older servers, and ports read over TLS") {
  // Redis 3.x-5.x: [ip, port] then [ip, port, id]; no metadata.
  const std::string reply = arr({slotsEntry(
      0, 16383,
      {arr({bulk("10.1.1.1"), num(6379)}), arr({bulk("10.1.1.2"), num(6380), bulk(kB)})})});
  auto m = slots(reply);
  REQUIRE(m.has_value());
  CHECK(m->complete());
  const Shard& s = m->shards.at(0);
  REQUIRE(s.nodes.size() == 2);
  CHECK(s.nodes[0].host == "10.1.1.1");
  CHECK(s.nodes[0].id.empty());
  CHECK(s.nodes[0].port == 6379);
  CHECK(s.nodes[1].id == kB);
  CHECK_FALSE(s.nodes[1].primary);

  std::string err;
  m = parseSlots(reply, &err, /*tls=*/true);
  REQUIRE(m.has_value());
  CHECK(m->shards[0].nodes[0].port == 0);
  CHECK(m->shards[0].nodes[0].tls_port == 6379);
  CHECK(m->shardOf("10.1.1.2", 6380) == 0);
}

TEST_CASE("truncated replies are errors, at every length") {
  for (const char* name : {"shards_resp2.resp", "shards_resp3.resp", "slots_resp2.resp",
                           "slots_resp3.resp", "failover_shards_resp3.resp"}) {
    const std::string full = fixture(name);
    const bool shards = std::string_view(name).find("shards") != std::string_view::npos;
    for (size_t len = 0; len < full.size(); ++len) {
      CAPTURE(name);
      CAPTURE(len);
      std::string err;
      const std::string_view part(full.data(), len);
      const auto m = shards ? parseShards(part, &err) : parseSlots(part, &err);
      CHECK_FALSE(m.has_value());
      CHECK_FALSE(err.empty());
    }
  }
}

TEST_CASE("malformed replies and bad values are errors that say what") {
  struct Case {
    std::string reply;
    std::string_view says;
  };
  const Case cases[] = {
      {"-ERR unknown subcommand 'shards'. Try CLUSTER HELP.\r\n", "unknown subcommand"},
      {"+OK\r\n", "not an array"},
      {"*-1\r\n", "not an array"},
      {fixture("slots_resp2.resp") + "+OK\r\n", "bytes after"},
      {arr({slotsEntry(0, 16384, {slotsNode(7000, kA)})}), "entry 0"},
      {arr({slotsEntry(10, 9, {slotsNode(7000, kA)})}), "entry 0"},
      {arr({slotsEntry(-1, 9, {slotsNode(7000, kA)})}), "entry 0"},
      {arr({slotsEntry(0, 9, {})}), "entry 0"},  // no primary
      {arr({slotsEntry(0, 9, {arr({bulk("h"), num(70000)})})}), "malformed node"},
      {arr({slotsEntry(0, 9, {arr({bulk("h"), bulk("x1")})})}), "malformed node"},
      {arr({slotsEntry(0, 9, {arr({bulk("h")})})}), "malformed node"},
      {arr({slotsEntry(0, 9, {slotsNode(7000, kA)}), slotsEntry(9, 20, {slotsNode(7001, kB)})}),
       "slot 9 owned twice"},
      {arr({arr({num(0), num(9), bulk("x")})}), "entry 0"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.reply);
    std::string err;
    CHECK_FALSE(parseSlots(c.reply, &err).has_value());
    CHECK(err.find(c.says) != std::string::npos);
  }
  const std::string node =
      arr({bulk("id"), bulk(kA), bulk("port"), num(1), bulk("role"), bulk("master")});
  const Case shard_cases[] = {
      {"-ERR This instance has cluster support disabled\r\n", "cluster support disabled"},
      {arr({arr({bulk("slots"), arr({num(0)}), bulk("nodes"), arr({node})})}), "shard 0"},
      {arr({arr({bulk("slots"), arr({num(0), num(16384)}), bulk("nodes"), arr({node})})}),
       "shard 0"},
      {arr({arr({bulk("slots"), bulk("0-5"), bulk("nodes"), arr({node})})}), "shard 0"},
      {arr({arr({bulk("slots"), arr({num(0), num(5)}), bulk("nodes")})}), "shard 0"},
      {arr({arr({bulk("slots"), arr({num(0), num(5)}), bulk("nodes"), arr({node})}),
            arr({bulk("slots"), arr({num(5), num(6)}), bulk("nodes"), arr({node})})}),
       "slot 5 owned twice"},
  };
  for (const Case& c : shard_cases) {
    CAPTURE(c.reply);
    std::string err;
    CHECK_FALSE(parseShards(c.reply, &err).has_value());
    CHECK(err.find(c.says) != std::string::npos);
  }
  CHECK_FALSE(parseShards("*1\r\n", nullptr).has_value());  // err may be null
}

TEST_CASE("sameTopology notices a moved slot and a moved node, not the order of things") {
  const auto base = slots(arr({slotsEntry(0, 8000, {slotsNode(7000, kA), slotsNode(7100, kC)}),
                               slotsEntry(8001, 16383, {slotsNode(7001, kB)})}));
  REQUIRE(base.has_value());
  CHECK(sameTopology(*base, *base));
  const auto reordered =
      slots(arr({slotsEntry(8001, 16383, {slotsNode(7001, kB)}),
                 slotsEntry(0, 8000, {slotsNode(7000, kA), slotsNode(7100, kC)})}));
  CHECK(sameTopology(*base, *reordered));
  const auto slot_moved =
      slots(arr({slotsEntry(0, 8001, {slotsNode(7000, kA), slotsNode(7100, kC)}),
                 slotsEntry(8002, 16383, {slotsNode(7001, kB)})}));
  CHECK_FALSE(sameTopology(*base, *slot_moved));
  const auto replica_moved =
      slots(arr({slotsEntry(0, 8000, {slotsNode(7000, kA), slotsNode(7101, kC)}),
                 slotsEntry(8001, 16383, {slotsNode(7001, kB)})}));
  CHECK_FALSE(sameTopology(*base, *replica_moved));
  const auto replica_gone = slots(arr({slotsEntry(0, 8000, {slotsNode(7000, kA)}),
                                       slotsEntry(8001, 16383, {slotsNode(7001, kB)})}));
  CHECK_FALSE(sameTopology(*base, *replica_gone));
  CHECK_FALSE(sameTopology(*replica_gone, *base));
  const auto hole = slots(arr({slotsEntry(0, 8000, {slotsNode(7000, kA), slotsNode(7100, kC)}),
                               slotsEntry(8001, 16382, {slotsNode(7001, kB)})}));
  CHECK_FALSE(sameTopology(*base, *hole));
  CHECK_FALSE(sameTopology(*hole, *base));
  const auto swapped = slots(arr({slotsEntry(0, 8000, {slotsNode(7100, kC), slotsNode(7000, kA)}),
                                  slotsEntry(8001, 16383, {slotsNode(7001, kB)})}));
  CHECK_FALSE(sameTopology(*base, *swapped));  // a failover: another primary
}

}  // namespace
}  // namespace corral::cluster
