// A worker's near cache (issue 12): the values of policies with `near_cache` that GET, MGET and
// HGETALL read (near_reads.h: the other reads answered from them), kept in memory and dropped
// when Redis says their key changed. One RESP3 connection to the primary (per primary node with
// a cluster) with CLIENT TRACKING ON carries both the reads that fill the cache and Redis's
// invalidations, on one socket, so an invalidation can never overtake the read it invalidates
// (Redis's own rule for client-side caching, default tracking mode: Redis remembers the keys this
// connection read).
//
//   GET k (a near policy's key, db 0, RESP2 or RESP3 (Client::nearHeld); MGET, HGETALL alike)
//     --lookup--> hit: the reply made from the stored value, answered from memory
//     \--miss---> beginFill; GET k + PTTL k on the tracking connection
//                 GET's reply --> the client at once; PTTL's --> complete(): stored until
//                 min(now + PTTL, now + max_age) unless an invalidation came in between
//   tracking push "invalidate [k ...]" --> k's entries dropped, and fills of k whose reply came
//     before the push not stored (those whose reply comes after it read the new value: same
//     connection, Redis's order); a null list (FLUSHALL/FLUSHDB) --> invalidateAll
//   a write of a near key through this corral --> invalidate(k) before it is sent and again when
//     it is answered (a fill begun in between may have read the old value); a client's write
//     behind its own read still on the tracking connection waits for it (Client::dispatch)
//   tracking connection lost, or the policies reloaded --> invalidateAll
//
// Stores live as long as the worker (a fill in flight holds a pointer to its store); a reload
// empties them and applies the new byte caps (the policy's max_bytes and the worker's share of
// global.near_cache.max_bytes, which all stores of the worker share).
//
// Upstream kinds (near_cache_topology.cc): one Redis, with or without replicas: one tracking
// connection to the primary (fills never read a replica). Sentinel: that connection checks ROLE
// like the primary's pool, is fenced with it during a failover (the cache empties), and follows
// the primary when it moves (retarget: the cache empties, reads in flight get the old address's
// error). Cluster: one tracking connection per primary node, made when a near key of one of its
// slots is first read; a fill goes to the owner of its keys' slot (an MGET over several nodes is
// not filled); a MOVED (or ASK, TRYAGAIN) on a fill is a miss: the request goes the router's way
// and nothing is stored. Any change of the slot map empties the whole cache, and a node that is
// no primary any more loses its connection.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "policies/engine.h"
#include "policies/registry.h"
#include "proxy/nearcache/near_reads.h"
#include "proxy/nearcache/near_store.h"
#include "proxy/upstream/upstream.h"

namespace corral::net {

class ClusterRouter;

class NearCache {
 public:
  // One Redis (single, replicas, Sentinel): the tracking connection goes to `primary`;
  // `check_role`: with Sentinel, its handshake checks ROLE (a node that is not the primary
  // never fills the cache). `workers`: how many workers share global.near_cache.max_bytes (each
  // gets its share); `registry`: the policies' counters (corral_policy_near_*), updated by
  // tick(). `cfg`, `limits` and `registry` must outlive the cache.
  NearCache(upstream::LoopContext& loop, const config::UpstreamAddress& primary,
            const config::UpstreamConfig& cfg, const config::Limits& limits, size_t workers,
            policies::Registry& registry, bool check_role = false);
  // A Redis Cluster (near_cache_topology.cc): a tracking connection per primary node of
  // `cluster`'s table, made on first use; connections of nodes that leave go to `retired` (the
  // worker's list, closed at the end of the loop turn). Both must outlive the cache.
  NearCache(upstream::LoopContext& loop, ClusterRouter& cluster, const config::UpstreamConfig& cfg,
            const config::Limits& limits, size_t workers, policies::Registry& registry,
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

  // The policy set in force: a new one empties every store and applies its byte caps.
  void noteSet(const policies::PolicySet* set);
  // The cached reply of key under spec, or nothing (a miss, counted).
  std::optional<std::string_view> lookup(const config::PolicySpec& spec, std::string_view key,
                                         int64_t now_ms);
  // Sends `request` (the client's GET, MGET or HGETALL: its RESP bytes) and then PTTL of each
  // of its keys on their tracking connection, which must be accepting(keys); keys[i] is kept under
  // specs[i]'s policy. The request's reply goes to sink->onUpstreamReply(seq, ...) exactly once,
  // in the client's protocol (2: RESP3 nulls and maps rewritten). A null sink: a read for the
  // cache alone (a fill policy's key, read beside the fill's own GET).
  void fill(nearcache::NearRead read, std::span<const config::PolicySpec* const> specs,
            std::span<const std::string_view> keys, std::string_view request,
            upstream::ReplySink* sink, uint64_t seq, int proto);
  // Whether reading key on the tracking connection is worth it: its store would likely admit
  // it (NearStore::worthFilling); else the read goes to Redis the usual way.
  bool worthFilling(const config::PolicySpec& spec, std::string_view key) {
    return storeFor(spec)->worthFilling(key);
  }
  // A write of key through corral: no store keeps it, no fill in flight may store it.
  void invalidate(std::string_view key);
  void invalidateAll();

  // Lease waits of the fill engine (FillEngine::setWaitWatcher): watch(key) reads key on the
  // tracking connection so that Redis tells of its next change; changed(key) is then called
  // (also when the read finds a value already), and lost() when changes may have been missed
  // (a null invalidation, a lost connection).
  void setWatchHooks(std::function<void(std::string_view key)> changed, std::function<void()> lost);
  void watch(std::string_view key);

  struct Totals {
    uint64_t hits = 0, misses = 0, stored = 0, invalidations = 0, evictions = 0, flushes = 0;
    size_t bytes = 0, entries = 0;
  };
  Totals totals() const;
  // Reads of `keys` may be sent: they share one tracking connection (a cluster: that of their
  // slots' owner, made here on first use; none while no map names an owner) and it is
  // connected, or connecting for the first time (they wait for it).
  bool accepting(std::span<const std::string_view> keys);

  // Sentinel (near_cache_topology.cc). The primary moved: the cache empties and the tracking
  // connection goes to `primary` (what was in flight on it gets the old address's error).
  void retarget(const config::UpstreamAddress& primary);
  // A failover of the primary is under way (on): the cache empties and nothing is filled until
  // it is over (the connection refuses reads, as the primary's pool does).
  void setFenced(bool on);
  // Cluster: the slot map changed (a new map, or a MOVED patched it): the cache empties, and
  // nodes no longer primaries of the map lose their tracking connections.
  void onClusterChange();
  // A string for the replies a client's read is given from memory (reused).
  std::string& replyScratch() { return reply_; }
  // Visits each policy's store: (name, stats).
  template <typename F>
  void forEachStore(F&& f) const {
    for (const auto& s : stores_) f(s->name, s->store->stats());
  }

 private:
  struct Store {
    std::string name;
    std::unique_ptr<nearcache::NearStore> store;
    uint64_t max_bytes = 0;  // the policy's near_cache.max_bytes the store was given
    policies::PolicyCounters* counters = nullptr;
    nearcache::NearStats reported;  // what tick() has added to counters so far
  };
  class Read;
  class Pushes;
  // What both constructors share: no tracking connection yet.
  NearCache(upstream::LoopContext& loop, const config::UpstreamConfig& cfg,
            const config::Limits& limits, size_t workers, policies::Registry& registry);
  // One tracking connection: to the primary, or (cluster) to one primary node, whose
  // "host:port" is its addrText().
  struct Link {
    uint64_t id = 0;  // in the seq of its watch reads (Pushes), which outlive a retired link
    std::unique_ptr<upstream::Connection> conn;
    // A read was sent on it since it was last lost: entries may rely on its invalidations, so
    // its loss empties the cache. (Shared with the connection's loss callback, which may run
    // after the link is gone: a cluster node's connection closes at the end of the turn.)
    std::shared_ptr<bool> tracked;
    int64_t last_ping_ms = 0;
    std::deque<std::string> watched;  // keys of the watch reads on their way, in order
  };
  Link& addLink(const config::UpstreamAddress& addr, bool check_role);
  // The link reads of key go on; null when a cluster's table names no owner for its slot.
  Link* linkFor(std::string_view key);
  // A watch read's reply came on the link with this id.
  void onWatchReply(uint64_t link_id, std::string_view frame);
  // Cluster: a fill's request was redirected (MOVED, ASK, TRYAGAIN, CLUSTERDOWN): `request` goes
  // to the router for (sink, seq) and true; false otherwise (not a redirect, or not a cluster).
  bool redirected(std::string_view key, std::string_view request, upstream::ReplySink* sink,
                  uint64_t seq, int proto, std::string_view reply);
  nearcache::NearStore* storeFor(const config::PolicySpec& spec);
  void onPush(std::string_view frame);
  // A tracking push said key changed: its entries go, and so do the fills that read it before.
  void changedInRedis(std::string_view key);
  // Changes may have been missed (a null or unreadable push): everything goes, and lease
  // waiters look again.
  void forgetAll();
  // Adds each store's counts since the last call to its policy's counters.
  void report();
  Read* newRead();
  void freeRead(Read* r);

  upstream::LoopContext& loop_;
  const config::UpstreamConfig& cfg_;
  const config::Limits& limits_;
  ClusterRouter* cluster_ = nullptr;                                       // cluster only
  std::vector<std::unique_ptr<upstream::Connection>>* retired_ = nullptr;  // cluster only
  bool started_ = false;
  uint64_t next_link_id_ = 1;
  const size_t workers_;
  policies::Registry& registry_;
  nearcache::SharedBudget budget_;  // before stores_: outlives them
  std::vector<std::unique_ptr<Store>> stores_;
  std::unique_ptr<Pushes> pushes_;
  std::vector<std::unique_ptr<Read>> reads_;
  std::vector<Read*> free_reads_;
  const policies::PolicySet* set_ = nullptr;
  std::string scratch_;
  std::string reply_;
  std::function<void(std::string_view)> changed_;
  std::function<void()> lost_;
  size_t sweep_next_ = 0;
  // Last: destroyed first, while the reads and stores their callbacks reach still exist.
  std::vector<std::unique_ptr<Link>> links_;
};

}  // namespace corral::net
