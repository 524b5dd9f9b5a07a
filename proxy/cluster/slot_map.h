// Redis Cluster routing, pure: slot maps, redirections, multi-key splitting. No sockets, no loop.
//
//   CLUSTER SHARDS / SLOTS reply --> parseShards / parseSlots --> SlotMap {shards, owner[16384]}
//                                          sameTopology(old, new)? --> keep or swap the map
//   request args --> keySlot(key) --> owner[slot] --> primaryOf(slot) --> that shard's upstream
//        \--> several slots? crossSlot --> -CROSSSLOT, or splitBySlot (MGET MSET DEL UNLINK
//             EXISTS TOUCH) --> one Fragment per slot --> upstreams --> mergeReplies --> client
//   a reply --> parseRedirect --> MOVED: refresh the map, resend to host:port (shardOf)
//                                 ASK: ASKING + resend there once; TRYAGAIN / CLUSTERDOWN: retry
//
//   DBSIZE KEYS FLUSHALL SCRIPT ... --> fanOut --> every primary --> mergeReplies --> client
//
// slot.h, redirect.h, split.h, fanout.h and expose.h (corral as a one-node cluster) hold the
// other parts; README.md says what the module owns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cluster/slot.h"

namespace corral::cluster {

struct Node {
  std::string id;         // 40-hex node id ("" when CLUSTER SLOTS gave none)
  std::string host;       // what to connect to: endpoint (or ip when endpoint is empty/"?"/null);
                          // "" only when the server gave neither: use the address that was asked
  std::string hostname;   // announced hostname ("" if none): for TLS SNI/verification
  uint16_t port = 0;      // plaintext port (0 when none)
  uint16_t tls_port = 0;  // TLS port (0 when none)
  bool primary = false;
  bool online = true;  // CLUSTER SHARDS health == "online" (SLOTS: always true)
};

// One primary and its replicas. nodes[0] is the primary (a parsed map holds no shard without
// one); the replicas follow in the server's order.
struct Shard {
  std::vector<Node> nodes;
};

// Who serves each slot. A value type: copy it, compare it (sameTopology), swap it in whole.
struct SlotMap {
  std::vector<Shard> shards;
  // kSlots entries: index into shards, -1 = slot not covered. A default SlotMap covers nothing.
  std::vector<int16_t> owner = std::vector<int16_t>(kSlots, -1);

  bool complete() const;  // every slot covered
  // The primary serving `slot`; nullptr when uncovered. Valid while the map is unchanged.
  const Node* primaryOf(uint16_t slot) const;
  // The shard with a node at host:port (its plaintext or TLS port; host compared with the node's
  // host and its hostname), for MOVED/ASK targets; -1 when none.
  int shardOf(std::string_view host, uint16_t port) const;
};

// From the raw bytes of one complete CLUSTER SHARDS reply (Redis 7+), RESP2 (flat field/value
// arrays) or RESP3 (maps). The first node with role "master" becomes nodes[0]; a shard without
// one (only replicas, after a failure) is left out, so its slots stay uncovered. Unknown fields
// are skipped. A malformed or truncated reply, an error reply, a slot out of range or claimed
// twice: nullopt, with *err (if given) saying what.
std::optional<SlotMap> parseShards(std::string_view reply, std::string* err);

// From one CLUSTER SLOTS reply (servers before 7.0; any version answers it). Ranges of the same
// primary (by id, else address) form one shard. The server writes each node's port for the
// transport of the connection that asked, so `tls`: the reply came over TLS and the ports are
// TLS ports (tls_port is set, port is 0). Errors as parseShards.
std::optional<SlotMap> parseSlots(std::string_view reply, std::string* err, bool tls = false);

// False when the maps differ in any slot's owner (its primary's address) or in the set of node
// addresses (host, hostname, port, tls_port) of any shard that owns a slot. Shard order, replica
// order, ids, node health and shards that own no slot are not compared.
bool sameTopology(const SlotMap& a, const SlotMap& b);

}  // namespace corral::cluster
