// What corral reads from a sentinel, as pure functions over RESP frames (no I/O, no state), so
// each is tested with wire bytes (protocol_test.cc):
//
//   SENTINEL GET-MASTER-ADDR-BY-NAME m  --parseMasterAddr-->  the primary's host:port (nil:
//   unknown) SENTINEL MASTER m                   --parseMasterState--> epoch, failover under way
//   SENTINEL REPLICAS m                 --parseReplicas-->    the replicas fit to serve reads
//   pub/sub message (channel, payload)  --classifyEvent, eventMaster, parseSwitchMaster-->
//                                        what the event means for the master corral follows
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace corral::sentinel {

// A data node as a sentinel names it: numeric host and port, text "host:port" ("[v6]:port").
config::ListenAddress makeNode(std::string_view host, uint16_t port);
bool sameNode(const config::ListenAddress& a, const config::ListenAddress& b);

// ["<ip>", "<port>"] -> *out. False for a nil reply (the sentinel does not know the master),
// an error, or anything malformed (a port outside 1..65535 included).
bool parseMasterAddr(std::string_view reply, config::ListenAddress* out);

// The fields of SENTINEL MASTER that corral uses.
struct MasterState {
  // ip and port: the master's own address, which stays the old primary's while a failover of
  // it is under way (GET-MASTER-ADDR-BY-NAME may already name the promoted replica then).
  config::ListenAddress addr;
  uint64_t config_epoch = 0;          // raised by every failover: newer answers win
  bool failover_in_progress = false;  // flags has failover_in_progress (the leader's view)
  bool down = false;                  // flags has s_down or o_down
  int64_t failover_timeout_ms = -1;   // -1 when not given
};
// A flat array of field/value pairs (RESP2) or a map (RESP3). False on an error or malformed
// reply.
bool parseMasterState(std::string_view reply, MasterState* out);

// SENTINEL REPLICAS: an array with one field/value array per replica. A replica serves reads
// only if it reports the role slave, its link to the primary is up (master-link-status ok),
// and no flag says it is down or disconnected (s_down, o_down, disconnected); others are left
// out. False on an error or malformed reply.
bool parseReplicas(std::string_view reply, std::vector<config::ListenAddress>* out);

// What a sentinel event channel means for corral.
enum class EventKind : uint8_t {
  kSwitchMaster,     // +switch-master: a new primary
  kFailoverStarted,  // +try-failover ... +failover-state-reconf-slaves, +failover-detected
  kFailoverAborted,  // -failover-abort-*, +failover-end-for-timeout: ask again
  kReplicasChanged,  // +slave, +sdown, -sdown, +convert-to-slave, ...: ask again
  kOther,
};
EventKind classifyEvent(std::string_view channel);
// The channels corral subscribes to on every sentinel (each is not kOther).
const std::vector<std::string_view>& subscribedChannels();

// The master an instance event is about, and that master's address as the event gives it:
// "master <name> <ip> <port>" or "<type> <name> <ip> <port> @ <master> <ip> <port>" (text may
// follow). False when the payload has neither form.
bool eventMaster(std::string_view payload, std::string_view* name, config::ListenAddress* addr);

// "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>".
struct SwitchMaster {
  std::string_view name;
  config::ListenAddress from;
  config::ListenAddress to;
};
bool parseSwitchMaster(std::string_view payload, SwitchMaster* out);

// A pub/sub frame on the subscription connection.
struct PubsubMessage {
  enum class Kind : uint8_t { kMessage, kConfirmation, kPong, kOther };
  Kind kind = Kind::kOther;
  std::string_view channel;  // kMessage
  std::string_view payload;  // kMessage
};
PubsubMessage parsePubsub(std::string_view frame);

}  // namespace corral::sentinel
