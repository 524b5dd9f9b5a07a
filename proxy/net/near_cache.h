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

class NearCache {
 public:
  NearCache(upstream::LoopContext& loop, const config::UpstreamAddress& primary,
            const config::UpstreamConfig& cfg, const config::Limits& limits);
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
  // Sends GET key (and PTTL key) on the tracking connection, which must be accepting(); the
  // GET's reply goes to sink->onUpstreamReply(seq, ...) exactly once (RESP3 null as "$-1" when
  // resp2).
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
  // Reads may be sent (connected, or connecting for the first time: they wait for it).
  bool accepting() const { return conn_->accepting(); }
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
  nearcache::NearStore* storeFor(const config::PolicySpec& spec);
  void onPush(std::string_view frame);
  Read* newRead();
  void freeRead(Read* r);

  upstream::LoopContext& loop_;
  std::vector<std::unique_ptr<Store>> stores_;
  std::unique_ptr<Pushes> pushes_;
  std::vector<std::unique_ptr<Read>> reads_;
  std::vector<Read*> free_reads_;
  // Last: destroyed first, while the reads and stores its callbacks reach still exist.
  std::unique_ptr<upstream::Connection> conn_;
  const void* set_ = nullptr;
  std::string scratch_;
  size_t sweep_next_ = 0;
  int64_t last_ping_ms_ = 0;
};

}  // namespace corral::net
