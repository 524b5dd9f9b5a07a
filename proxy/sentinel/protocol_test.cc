// protocol.h: sentinel replies and events as wire bytes, as Redis 7.0's sentinel sends them.
#include "proxy/sentinel/protocol.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace corral::sentinel {
namespace {

// RESP2 array of bulk strings.
std::string bulks(const std::vector<std::string>& items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const auto& s : items) out += "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
  return out;
}

std::vector<std::string> replicaFields(const std::string& ip, const std::string& port,
                                       const std::string& flags, const std::string& role,
                                       const std::string& link) {
  return {"name",
          ip + ":" + port,
          "ip",
          ip,
          "port",
          port,
          "runid",
          "abc",
          "flags",
          flags,
          "link-pending-commands",
          "0",
          "role-reported",
          role,
          "master-link-status",
          link,
          "master-host",
          "127.0.0.1",
          "master-port",
          "6379",
          "slave-priority",
          "100"};
}

}  // namespace

TEST_CASE("GET-MASTER-ADDR-BY-NAME") {
  config::ListenAddress a;
  REQUIRE(parseMasterAddr(bulks({"127.0.0.1", "17001"}), &a));
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 17001);
  CHECK(a.text == "127.0.0.1:17001");
  REQUIRE(parseMasterAddr(bulks({"::1", "6379"}), &a));
  CHECK(a.text == "[::1]:6379");
  CHECK(sameNode(a, makeNode("::1", 6379)));
  CHECK_FALSE(sameNode(a, makeNode("::1", 6380)));
  // nil (unknown master), errors and nonsense are refused
  for (const std::string& bad : std::vector<std::string>{
           "*-1\r\n", "$-1\r\n", "-ERR no\r\n", bulks({"h"}), bulks({"h", "0"}),
           bulks({"h", "65536"}), bulks({"h", "12x"}), bulks({"h p", "1"}), bulks({"", "1"}),
           bulks({"h", "1", "x"}), bulks({"h", "1"}) + "x"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseMasterAddr(bad, &a));
  }
}

TEST_CASE("SENTINEL MASTER: epoch, flags, failover-timeout, address") {
  MasterState m;
  REQUIRE(parseMasterState(bulks({"name", "mymaster", "ip", "127.0.0.1", "port", "17001", "flags",
                                  "master", "config-epoch", "7", "failover-timeout", "5000"}),
                           &m));
  CHECK(m.config_epoch == 7);
  CHECK(m.addr.text == "127.0.0.1:17001");
  CHECK_FALSE(m.failover_in_progress);
  CHECK_FALSE(m.down);
  CHECK(m.failover_timeout_ms == 5000);
  REQUIRE(parseMasterState(bulks({"ip", "10.0.0.1", "port", "6379", "flags",
                                  "master,s_down,o_down,failover_in_progress"}),
                           &m));
  CHECK(m.failover_in_progress);
  CHECK(m.down);
  CHECK(m.config_epoch == 0);
  CHECK(m.failover_timeout_ms == -1);
  // RESP3 map, with a number as a value
  REQUIRE(
      parseMasterState("%3\r\n$2\r\nip\r\n$1\r\nh\r\n$4\r\nport\r\n:6379\r\n$12\r\nconfig-epoch"
                       "\r\n:3\r\n",
                       &m));
  CHECK(m.config_epoch == 3);
  CHECK(m.addr.port == 6379);
  // "failover_in_progress_x" is not the flag
  REQUIRE(parseMasterState(
      bulks({"ip", "h", "port", "1", "flags", "master,failover_in_progress_x"}), &m));
  CHECK_FALSE(m.failover_in_progress);
  for (const std::string& bad : std::vector<std::string>{
           std::string("-ERR No such master with that name\r\n"), bulks({"ip", "h", "port"}),
           bulks({"ip", "h"}), bulks({"ip", "h", "port", "1", "config-epoch", "x"})}) {
    CAPTURE(bad);
    CHECK_FALSE(parseMasterState(bad, &m));
  }
}

TEST_CASE("SENTINEL REPLICAS: only replicas fit to serve reads") {
  auto one = [](const std::vector<std::string>& f) { return bulks(f); };
  std::string reply = "*5\r\n";
  reply += one(replicaFields("127.0.0.1", "17002", "slave", "slave", "ok"));
  reply += one(replicaFields("127.0.0.1", "17003", "s_down,slave", "slave", "ok"));
  reply += one(replicaFields("127.0.0.1", "17004", "slave", "master", "ok"));  // not converted yet
  reply += one(replicaFields("127.0.0.1", "17005", "slave", "slave", "err"));  // syncing
  reply += one(replicaFields("127.0.0.1", "17006", "slave,disconnected", "slave", "ok"));
  std::vector<config::ListenAddress> r;
  REQUIRE(parseReplicas(reply, &r));
  REQUIRE(r.size() == 1);
  CHECK(r[0].text == "127.0.0.1:17002");
  REQUIRE(parseReplicas("*0\r\n", &r));
  CHECK(r.empty());
  CHECK_FALSE(parseReplicas("-ERR No such master with that name\r\n", &r));
  CHECK_FALSE(parseReplicas("*1\r\n" + bulks({"ip"}), &r));
  CHECK_FALSE(parseReplicas("*2\r\n" + one(replicaFields("h", "1", "slave", "slave", "ok")), &r));
}

TEST_CASE("events: channels, the master they concern, +switch-master") {
  CHECK(classifyEvent("+switch-master") == EventKind::kSwitchMaster);
  CHECK(classifyEvent("+try-failover") == EventKind::kFailoverStarted);
  CHECK(classifyEvent("+failover-state-send-slaveof-noone") == EventKind::kFailoverStarted);
  CHECK(classifyEvent("-failover-abort-no-good-slave") == EventKind::kFailoverAborted);
  CHECK(classifyEvent("+sdown") == EventKind::kReplicasChanged);
  CHECK(classifyEvent("+odown") == EventKind::kOther);
  CHECK(classifyEvent("__sentinel__:hello") == EventKind::kOther);
  for (std::string_view c : subscribedChannels()) CHECK(classifyEvent(c) != EventKind::kOther);
  CHECK(subscribedChannels().size() == 24);

  std::string_view name;
  config::ListenAddress at;
  REQUIRE(eventMaster("master mymaster 127.0.0.1 17001", &name, &at));
  CHECK(name == "mymaster");
  CHECK(at.text == "127.0.0.1:17001");
  REQUIRE(eventMaster("master mymaster 127.0.0.1 17001 #quorum 2/2", &name, &at));
  REQUIRE(eventMaster("slave 127.0.0.1:17002 127.0.0.1 17002 @ other 10.0.0.1 6379", &name, &at));
  CHECK(name == "other");
  CHECK(at.text == "10.0.0.1:6379");
  REQUIRE(eventMaster("sentinel abc 127.0.0.1 17101 @ m 127.0.0.1 17001", &name, &at));
  CHECK(name == "m");
  CHECK_FALSE(eventMaster("master m 127.0.0.1", &name, &at));
  CHECK_FALSE(eventMaster("slave x 127.0.0.1 1 @ m 127.0.0.1", &name, &at));
  CHECK_FALSE(eventMaster("", &name, &at));

  SwitchMaster s;
  REQUIRE(parseSwitchMaster("mymaster 127.0.0.1 17001 127.0.0.1 17002", &s));
  CHECK(s.name == "mymaster");
  CHECK(s.from.text == "127.0.0.1:17001");
  CHECK(s.to.text == "127.0.0.1:17002");
  CHECK_FALSE(parseSwitchMaster("mymaster 127.0.0.1 17001 127.0.0.1", &s));
  CHECK_FALSE(parseSwitchMaster("mymaster 127.0.0.1 17001 127.0.0.1 17002 x", &s));
  CHECK_FALSE(parseSwitchMaster("mymaster 127.0.0.1 17001 127.0.0.1 0", &s));
}

TEST_CASE("subscription frames") {
  const std::string frame = bulks({"message", "+switch-master", "m 1.1.1.1 1 2.2.2.2 2"});
  PubsubMessage m = parsePubsub(frame);  // views into frame
  CHECK(m.kind == PubsubMessage::Kind::kMessage);
  CHECK(m.channel == "+switch-master");
  CHECK(m.payload == "m 1.1.1.1 1 2.2.2.2 2");
  CHECK(parsePubsub("*3\r\n$9\r\nsubscribe\r\n$3\r\n+sd\r\n:1\r\n").kind ==
        PubsubMessage::Kind::kConfirmation);
  CHECK(parsePubsub(bulks({"pong", ""})).kind == PubsubMessage::Kind::kPong);
  CHECK(parsePubsub("+PONG\r\n").kind == PubsubMessage::Kind::kOther);
  CHECK(parsePubsub(bulks({"message", "c"})).kind == PubsubMessage::Kind::kOther);
}

}  // namespace corral::sentinel
