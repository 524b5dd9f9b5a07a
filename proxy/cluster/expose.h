// upstream.cluster.expose: corral answers cluster-aware clients as a one-node cluster that holds
// every slot, so they send everything to corral, which routes it to the real cluster.
//
//   CLUSTER SLOTS  --> exposeSlots  --> [[0, 16383, [host, port, id, {}]]]
//   CLUSTER SHARDS --> exposeShards --> [{slots: [0, 16383], nodes: [{id, port, ip, ...}]}]
//   CLUSTER NODES  --> exposeNodes  --> "<id> <host>:<port>@<bus> myself,master ... 0-16383\n"
//
// Each appends the reply Redis 7.0 writes for such a node (testdata/one_node_*.resp, captured
// from a real one, are the reference) to *out. host: the address clients reach corral at (an ip
// or a name; written as given, in the ip and endpoint fields); node_id: 40 hex characters that
// stay the same while corral runs, since clients key their connections by it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace corral::cluster {

// CLUSTER SLOTS: one range 0..16383 served by [host, port, node_id, metadata]. The metadata map
// is empty: "*0" in RESP2, "%0" in RESP3 (resp3: the client said HELLO 3).
void exposeSlots(std::string_view host, uint16_t port, std::string_view node_id, std::string* out,
                 bool resp3 = false);

// CLUSTER SHARDS: one shard, slots [0, 16383], one node {id, port, ip, endpoint, role master,
// replication-offset 0, health online}: maps in RESP3, flat field/value arrays in RESP2.
void exposeShards(std::string_view host, uint16_t port, std::string_view node_id, bool resp3,
                  std::string* out);

// CLUSTER NODES: the one line "<id> <host>:<port>@<port + 10000, or 0 past 65535> myself,master
// - 0 0 1 connected 0-16383\n", a bulk string in RESP2 and a verbatim "txt" string in RESP3.
void exposeNodes(std::string_view host, uint16_t port, std::string_view node_id, std::string* out,
                 bool resp3 = false);

}  // namespace corral::cluster
