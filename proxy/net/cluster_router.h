// A worker's view of a Redis Cluster (upstream.cluster): its slot table, one pool of shared
// connections per node, and the requests on their way, which it retries while slots move.
//
//   Client::forward --slot--> send(sink, seq, slot, bytes) --> Call --enqueue--> owner's pool
//   reply --Call::onUpstreamReply--> plain reply ............................--> sink (once)
//                                    -MOVED slot host:port --> patch table, refresh, resend
//                                    -ASK slot host:port --> ASKING + request to that node
//                                    -TRYAGAIN / -CLUSTERDOWN --> backoff (tick), resend
//                                    corral's own "unavailable"/"timeout" --> sink (never
//                                      resent: a write may have run), refresh
//   Past command_timeout since the first send, the sink gets an error instead of a resend.
//
// A split request (MGET/MSET/DEL/UNLINK/EXISTS/TOUCH across slots, proxy/cluster/split.h) is
// one Call per slot; the merged reply reaches the sink when the last part is in.
//
// Node pools are made on first use and kept while the node is in the map (a node that leaves
// it is shut down). The table is the board's map (cluster_board.h), swapped in whole when the
// board has a newer one, with MOVED patches of this worker on top until then.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/cluster/slot_map.h"
#include "proxy/cluster/split.h"
#include "proxy/net/cluster_board.h"
#include "proxy/net/stats.h"
#include "proxy/upstream/upstream.h"

namespace corral::net {

class ClusterRouter {
 public:
  // `stats`: the worker's counters (cluster_*); `retired`: where connections of nodes that left
  // the map go to be closed at the end of the loop turn (the worker's list).
  ClusterRouter(upstream::LoopContext& loop, const config::UpstreamConfig& cfg,
                const config::Limits& limits, ClusterBoard& board, Stats::Worker& stats,
                std::vector<std::unique_ptr<upstream::Connection>>& retired);
  ~ClusterRouter();
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  void start();
  // Start of each loop turn: a newer map from the board replaces the table.
  void sync();
  // Worker tick: resends that are due, refreshes wanted or periodic, connection timeouts.
  void tick(int64_t now_ms);
  // Every call still waiting gets an error; connections close (worker shutdown).
  void shutdown();

  // One request for (sink, seq) to the owner of `slot` (-1: any primary). The sink gets
  // exactly one reply. `request`: RESP bytes (copied). `client_key` picks the connection of the
  // node's pool, the same for every request of one client, so Redis runs them in its order.
  // `replica`: a read that may go to an online replica of the slot's shard (read_from replica
  // or prefer_replica; connections send READONLY); the primary when none is up.
  // `resp3`: the request is a RESP3 client's; it goes on the node's RESP3 connections (HELLO 3
  // in their handshake, made on first use), so Redis itself encodes the reply for it.
  void send(upstream::ReplySink* sink, uint64_t seq, int slot, std::string_view request,
            int64_t timeout_ms, uint64_t client_key, bool resp3, bool replica = false);
  // upstream.cluster.read_from, else upstream.read_from.
  config::ReadFrom readFrom() const { return read_from_; }
  // The same for a request split by slot; the sink gets the merged reply. `plan` is taken
  // (swapped with a recycled one: fill scratchPlan() and pass it, nothing is allocated once
  // the pools are warm).
  void sendSplit(upstream::ReplySink* sink, uint64_t seq, cluster::SplitPlan& plan,
                 int64_t timeout_ms, uint64_t client_key, bool resp3);
  // A plan to fill (cluster::splitBySlot, planEveryPrimary) and hand to sendSplit.
  cluster::SplitPlan& scratchPlan() { return scratch_plan_; }

  // Fills *plan to send `request` to every primary of the table (one part per shard, aimed at
  // a slot it owns), merged by `merge`: DBSIZE, KEYS, FLUSHALL and the like. No parts while no
  // map is known.
  void planEveryPrimary(std::string_view request, cluster::Merge merge,
                        cluster::SplitPlan* plan) const;

  // SCAN across the cluster: the app's cursor holds the shard (cursor % kScanShards, shards in
  // the order of the first slot they own) and that node's own cursor (cursor / kScanShards).
  // `args`: SCAN's arguments; the reply's cursor is rewritten so the next call goes on there,
  // then on the next shard, and 0 only after the last.
  static constexpr uint64_t kScanShards = 16;
  void sendScan(upstream::ReplySink* sink, uint64_t seq, std::span<const std::string_view> args,
                int64_t timeout_ms, uint64_t client_key, bool resp3);

  // The pooled connection to the owner of `slot` (-1: any primary); never null. For what must
  // follow a request on its connection (a policy's hidden EXPIRE) and for INFO and the like.
  upstream::Connection* connection(int slot, uint64_t client_id, bool resp3 = false);
  // The pooled connection to the node whose address text is `addr` ("host:port"), or null
  // when corral has none (CLIENT UNBLOCK of a client blocked there).
  upstream::Connection* connectionAt(std::string_view addr, uint64_t client_key);
  // Where a dedicated connection for `slot` goes (-1: any primary).
  config::UpstreamAddress ownerAddress(int slot);
  // That node's "host:port" (a connection's addrText()), without copying its address.
  const std::string& ownerText(int slot) { return ownerNode(slot)->key; }

  // The near cache (near_cache.h): the primary the table names for `slot` (its address, whose
  // text is the node's "host:port"), or null while no shard serves the slot (no map yet).
  const config::UpstreamAddress* knownOwner(int slot) const;
  // True when node "host:port" is the primary of a shard of the table.
  bool isPrimary(std::string_view node) const;
  // Called (on this loop) whenever the table changes: a new map is installed, or a MOVED patched
  // a slot. Set once, by the near cache, which then empties.
  void onMapChange(std::function<void()> f) { on_map_change_ = std::move(f); }

  // The map may be stale (an owner's connection is down): ask again, within the rate limit.
  void wantRefresh();
  bool anyReady() const;
  size_t connections() const;
  // Visits every node this worker keeps connections to, as f(its "host:port", whether the table
  // names it a shard's primary, connections ready, connections): the per-upstream gauges.
  template <typename F>
  void forEachNode(F&& f) const {
    for (const auto& n : nodes_) {
      uint64_t ready = 0;
      for (const auto& c : n->pool) ready += c->ready() ? 1 : 0;
      for (const auto& c : n->pool3) ready += c->ready() ? 1 : 0;
      f(std::string_view(n->key), isPrimary(n->key), ready,
        static_cast<uint64_t>(n->pool.size() + n->pool3.size()));
    }
  }
  // Visits every pooled connection (the worker's tick and ready counts).
  template <typename F>
  void forEachConnection(F&& f) const {
    for (const auto& n : nodes_) {
      for (const auto& c : n->pool) f(*c);
      for (const auto& c : n->pool3) f(*c);
    }
  }

 private:
  struct Node {
    std::string key;  // "host:port"
    config::UpstreamAddress addr;
    std::vector<std::unique_ptr<upstream::Connection>> pool;   // RESP2
    std::vector<std::unique_ptr<upstream::Connection>> pool3;  // RESP3, made on first use
    bool in_map = true;
  };
  class Call;
  struct Split;
  friend class Call;

  // corral's own error for a request (lost connection, timeout), not one from Redis.
  static bool corralError(std::string_view reply) { return reply.starts_with("-ERR corral: "); }
  Node* nodeFor(std::string_view host, uint16_t port);
  Node* replicaNode(int slot);  // an online replica of the slot's shard that accepts, or null
  // The shards whose primary is known, in the order of the first slot each owns (SCAN's order,
  // and one part per primary for fan-outs).
  struct ShardStart {
    int shard;
    uint16_t first_slot;
  };
  std::vector<ShardStart> primaryShards() const;
  // The port to reach a node of the map on: its TLS port when the nodes speak TLS.
  uint16_t portOf(const cluster::Node& n) const {
    return template_.addr.tls && n.tls_port != 0 ? n.tls_port : n.port;
  }
  std::string scanReply(std::string_view reply, int shard_ordinal) const;
  Node* ownerNode(int slot);
  // The connection of n's pool (RESP2 or RESP3) for client_key.
  upstream::Connection* pick(Node* n, uint64_t client_key, bool resp3);
  // n's connections, both pools (a node leaving the map, shutdown, ticks).
  template <typename F>
  static void eachOf(Node& n, F&& f) {
    for (auto& c : n.pool) f(c);
    for (auto& c : n.pool3) f(c);
  }
  void dispatch(Call* call);
  void onReply(Call* call, std::string_view reply);
  void finish(Call* call, std::string_view reply);
  void retryLater(Call* call);
  void startRefresh();
  void onRefreshReply(std::string_view reply);
  void install(const cluster::SlotMap& map);
  void forgetGoneAskNodes();
  Call* newCall();
  void freeCall(Call* call);
  Split* newSplit();
  void freeSplit(Split* s);

  upstream::LoopContext& loop_;
  const config::UpstreamConfig& cfg_;
  const config::Limits& limits_;
  ClusterBoard& board_;
  Stats::Worker& stats_;
  std::vector<std::unique_ptr<upstream::Connection>>& retired_;
  config::UpstreamAddress template_;  // credentials, TLS and db of every node connection

  cluster::SlotMap table_;
  uint64_t table_gen_ = 0;
  std::vector<Node*> shard_node_;  // table_.shards[i]'s primary
  config::ReadFrom read_from_ = config::ReadFrom::kPrimary;
  uint32_t replica_rr_ = 0;
  std::vector<std::unique_ptr<Node>> nodes_;
  size_t seed_next_ = 0;  // the seed asked when no node of the table answers

  std::vector<Call*> waiting_;  // resends due at Call::due_ms
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<Call*> free_calls_;
  // Splits in flight and recycled ones: their plans, parts and replies keep their buffers.
  std::vector<std::unique_ptr<Split>> splits_;
  std::vector<Split*> free_splits_;
  cluster::SplitPlan scratch_plan_;
  std::vector<std::string_view> views_;  // finish(): the parts' replies
  std::string merged_;                   // finish(): the merged reply

  bool refresh_wanted_ = true;  // the first map is wanted at once
  bool refresh_mine_ = false;   // this worker's refresh is in flight
  bool refresh_shards_ = true;  // CLUSTER SHARDS; false after a server refused it (SLOTS)
  int64_t last_refresh_ms_ = 0;
  // Receives CLUSTER SHARDS / SLOTS (cluster_router_topology.cc).
  class RefreshSink final : public upstream::ReplySink {
   public:
    explicit RefreshSink(ClusterRouter* r) : router_(r) {}
    void onUpstreamReply(uint64_t, std::string_view reply) override {
      router_->onRefreshReply(reply);
    }

   private:
    ClusterRouter* router_;
  };
  std::unique_ptr<RefreshSink> refresh_sink_;
  class Ignore;
  std::unique_ptr<Ignore> ignore_;
  int64_t now_ms_ = 0;
  std::function<void()> on_map_change_;
};

}  // namespace corral::net
