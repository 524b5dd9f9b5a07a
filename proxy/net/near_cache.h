// A worker's near cache (issue 12): the replies of GETs of policies with `near_cache`, kept in
// memory and dropped when Redis says their key changed. One RESP3 connection to the primary with
// CLIENT TRACKING ON carries both the reads that fill the cache and Redis's invalidations, on one
// socket, so an invalidation can never overtake the read it invalidates (Redis's own rule for
// client-side caching, default tracking mode: Redis remembers the keys this connection read).
//
//   GET k (a near policy's key, shared connections, db 0, RESP2 or RESP3)
//     --lookup--> hit: the stored bulk reply, answered from memory
//     \--miss---> beginFill; GET k + PTTL k on the tracking connection
//                 GET's reply --> the client at once; PTTL's --> complete(): stored until
//                 min(now + PTTL, now + max_age) unless an invalidation came in between
//   tracking push "invalidate [k ...]" --> invalidate(k) in every store; a null list
//     (FLUSHALL/FLUSHDB) --> invalidateAll
//   a write of a near key through this corral --> invalidate(k) before it is sent and again when
//     it is answered (a fill begun in between may have read the old value)
//   tracking connection lost, or the policies reloaded --> invalidateAll
//
// Stores live as long as the worker (a fill in flight holds a pointer to its store); a reload
// empties them and keeps their sizes until a restart.
//
// Upstream kinds (near_cache_topology.cc): one Redis, with or without replicas: one tracking
// connection to the primary (fills never read a replica). Sentinel: that connection checks ROLE
// like the primary's pool, is fenced with it during a failover (the cache empties), and follows
// the primary when it moves (retarget: the cache empties, reads in flight get the old address's
// error). Cluster: one tracking connection per primary node, made when a near key of one of its
// slots is first read; a fill goes to the owner of its key's slot; a MOVED (or ASK, TRYAGAIN) on
// a fill is a miss: the GET goes the router's way and nothing is stored. Any change of the slot
// map empties the whole cache, and a node that is no primary any more loses its connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/nearcache/near_store.h"
#include "proxy/upstream/upstream.h"

namespace corral::net {

class ClusterRouter;

class NearCache {
 public:
  // One Redis (single, replicas, Sentinel): the tracking connection goes to `primary`;
  // `check_role`: with Sentinel, its handshake checks ROLE (a node that is not the primary
  // never fills the cache). `cfg` and `limits` must outlive the cache.
  NearCache(upstream::LoopContext& loop, const config::UpstreamAddress& primary,
            const config::UpstreamConfig& cfg, const config::Limits& limits,
            bool check_role = false);
  // A Redis Cluster (near_cache_topology.cc): a tracking connection per primary node of
  // `cluster`'s table, made on first use; connections of nodes that leave go to `retired` (the
  // worker's list, closed at the end of the loop turn). Both must outlive the cache.
  NearCache(upstream::LoopContext& loop, ClusterRouter& cluster, const config::UpstreamConfig& cfg,
            const config::Limits& limits,
            std::vector<std::unique_ptr<upstream::Connection>>& retired);
  ~NearCache();
  NearCache(const NearCache&) = delete;
  NearCache& operator=(const NearCache&) = delete;

  void start();
  // Worker tick: a bounded sweep of expired entries; the connection's timeouts; a PING every
  // second, so a silent tracking connection times out (and empties the cache) even when no
  // read is on its way.
  void tick(int64_t now_ms);
  void shutdown();

  // `policies`: the policy set in force (its address): a new one empties every store.
  void noteSet(const void* policies);
  // The cached reply of key under spec, or nothing (a miss, counted).
  std::optional<std::string_view> lookup(const config::PolicySpec& spec, std::string_view key,
                                         int64_t now_ms);
  // Sends GET key (and PTTL key) on key's tracking connection, which must be accepting(key);
  // the GET's reply goes to sink->onUpstreamReply(seq, ...) exactly once (RESP3 null as "$-1"
  // when resp2).
  void fill(const config::PolicySpec& spec, std::string_view key, upstream::ReplySink* sink,
            uint64_t seq, bool resp2);
  // A write of key through corral: no store keeps it, no fill in flight may store it.
  void invalidate(std::string_view key);
  void invalidateAll();

  struct Totals {
    uint64_t hits = 0, misses = 0, stored = 0, invalidations = 0, evictions = 0, flushes = 0;
    size_t bytes = 0, entries = 0;
  };
  Totals totals() const;
  // Reads of key may be sent: its tracking connection (a cluster: that of its slot's owner,
  // made here on first use; none while no map names an owner) is connected, or connecting for
  // the first time (they wait for it).
  bool accepting(std::string_view key);

  // Sentinel (near_cache_topology.cc). The primary moved: the cache empties and the tracking
  // connection goes to `primary` (what was in flight on it gets the old address's error).
  void retarget(const config::UpstreamAddress& primary);
  // A failover of the primary is under way (on): the cache empties and nothing is filled until
  // it is over (the connection refuses reads, as the primary's pool does).
  void setFenced(bool on);
  // Cluster: the slot map changed (a new map, or a MOVED patched it): the cache empties, and
  // nodes no longer primaries of the map lose their tracking connections.
  void onClusterChange();
  // Visits each policy's store: (name, stats).
  template <typename F>
  void forEachStore(F&& f) const {
    for (const auto& s : stores_) f(s->name, s->store->stats());
  }

 private:
  struct Store {
    std::string name;
    std::unique_ptr<nearcache::NearStore> store;
  };
  class Read;
  class Pushes;
  // What both constructors share: no tracking connection yet.
  NearCache(upstream::LoopContext& loop, const config::UpstreamConfig& cfg,
            const config::Limits& limits);
  // One tracking connection: to the primary, or (cluster) to one primary node, whose
  // "host:port" is its addrText().
  struct Link {
    std::unique_ptr<upstream::Connection> conn;
    // A read was sent on it since it was last lost: entries may rely on its invalidations, so
    // its loss empties the cache. (Shared with the connection's loss callback, which may run
    // after the link is gone: a cluster node's connection closes at the end of the turn.)
    std::shared_ptr<bool> tracked;
    int64_t last_ping_ms = 0;
  };
  Link& addLink(const config::UpstreamAddress& addr, bool check_role);
  // The link reads of key go on; null when a cluster's table names no owner for its slot.
  Link* linkFor(std::string_view key);
  // Cluster: a fill's GET was redirected (MOVED, ASK, TRYAGAIN, CLUSTERDOWN): it goes to the
  // router for (sink, seq) and true; false otherwise (not a redirect, or not a cluster).
  bool redirected(std::string_view key, upstream::ReplySink* sink, uint64_t seq, bool resp2,
                  std::string_view reply);
  nearcache::NearStore* storeFor(const config::PolicySpec& spec);
  void onPush(std::string_view frame);
  Read* newRead();
  void freeRead(Read* r);

  upstream::LoopContext& loop_;
  const config::UpstreamConfig& cfg_;
  const config::Limits& limits_;
  ClusterRouter* cluster_ = nullptr;                                       // cluster only
  std::vector<std::unique_ptr<upstream::Connection>>* retired_ = nullptr;  // cluster only
  bool started_ = false;
  std::vector<std::unique_ptr<Store>> stores_;
  std::unique_ptr<Pushes> pushes_;
  std::vector<std::unique_ptr<Read>> reads_;
  std::vector<Read*> free_reads_;
  const void* set_ = nullptr;
  std::string scratch_;
  size_t sweep_next_ = 0;
  // Last: destroyed first, while the reads and stores their callbacks reach still exist.
  std::vector<Link> links_;
};

}  // namespace corral::net
