#include "proxy/net/near_cache.h"

#include <algorithm>

#include "proxy/codec/resp.h"
#include "proxy/net/log.h"

namespace corral::net {

namespace {
constexpr size_t kSweepBuckets = 64;  // per store and tick
constexpr int64_t kPingEveryMs = 1000;
constexpr std::string_view kPing = "*1\r\n$4\r\nPING\r\n";
}  // namespace

// One near read: the request's reply (seq 0 on the tracking connection), then each key's PTTL
// (seq 1 + i), in that order; the values are stored, then the client gets the reply.
class NearCache::Read final : public upstream::ReplySink {
 public:
  explicit Read(NearCache* owner) : owner_(owner) {}
  void onUpstreamReply(uint64_t which, std::string_view reply) override {
    if (which == 0) {
      onValue(reply);
    } else {
      onPttl(static_cast<size_t>(which - 1), reply);
    }
  }

  struct Item {
    nearcache::NearStore* store = nullptr;
    nearcache::FillTicket ticket;
    std::string key;
    std::string value;  // the key's value as Redis sent it, when it is one worth keeping
    int64_t max_age_ms = 0;
    bool changed = false;  // Redis said the key changed after the value was read
  };

  upstream::ReplySink* sink = nullptr;
  uint64_t seq = 0;
  int proto = 2;
  nearcache::NearRead read = nearcache::NearRead::kGet;
  std::vector<Item> items;  // grown, never shrunk: a warm read allocates nothing
  size_t used = 0;
  bool answered = false;  // the request's reply is in; the PTTLs are not (yet)
  std::string request;    // a cluster's: sent again through the router if redirected

 private:
  void onValue(std::string_view reply) {
    answered = true;
    if (!reply.empty() && reply[0] == '-' && sink != nullptr &&
        owner_->redirected(items[0].key, request, sink, seq, proto, reply)) {
      sink = nullptr;  // the router answers the client; the PTTLs settle the tickets unstored
      for (size_t i = 0; i < used; ++i) items[i].value.clear();
      return;
    }
    if (read == nearcache::NearRead::kMget) {
      // An array of bulks and nulls, one per key; anything else (an error): nothing kept.
      codec::FrameReader rd(reply);
      int64_t n = 0;
      const bool array = rd.array(&n) && n == static_cast<int64_t>(used);
      for (size_t i = 0; i < used; ++i) {
        std::string_view raw;
        items[i].value.clear();
        if (array && rd.skip(&raw) && nearcache::storable(raw)) items[i].value.assign(raw);
      }
    } else if (nearcache::storable(reply)) {
      items[0].value.assign(reply);
    } else {
      items[0].value.clear();  // nil, no such hash, an error (WRONGTYPE), corral's own
    }
    // Kept until the keys' PTTLs are in: the client gets its reply once the value is stored,
    // so its next read of the key is a hit.
    out_.clear();
    if (proto == 3 || !nearcache::appendInProto(reply, proto, out_)) {
      out_.assign(reply);  // (RESP3, or not in these reads' replies: passed on as it came)
    }
  }
  void onPttl(size_t i, std::string_view reply) {
    Item& it = items[i];
    codec::FrameReader rd(reply);
    int64_t pttl = 0;
    const int64_t now = owner_->loop_.now_ms;
    if (!it.value.empty() && !it.changed && rd.integer(&pttl) && pttl != -2 && pttl != 0) {
      const int64_t ttl = pttl < 0 ? it.max_age_ms : std::min(pttl, it.max_age_ms);
      it.store->complete(it.ticket, it.key, it.value, now + ttl, now);
    } else {
      it.store->abandon(it.ticket, it.key);
    }
    if (i + 1 < used) return;
    upstream::ReplySink* s = sink;
    sink = nullptr;
    if (s != nullptr) s->onUpstreamReply(seq, out_);
    owner_->freeRead(this);
  }

  NearCache* owner_;
  std::string out_;  // the client's reply, in its protocol
};

// Receives the tracking connections' pushes (seq 0), the replies of their PINGs (seq 1) and
// of their watch reads (seq 4 * link id + 2). Shared by the links, and outlives them: a retired
// cluster link's connection may still answer.
class NearCache::Pushes final : public upstream::ReplySink {
 public:
  explicit Pushes(NearCache* owner) : owner_(owner) {}
  void onUpstreamReply(uint64_t seq, std::string_view frame) override {
    if (seq == 0) {
      owner_->onPush(frame);
    } else if ((seq & 3) == 2) {
      owner_->onWatchReply(seq >> 2, frame);
    }
  }

 private:
  NearCache* owner_;
};

NearCache::NearCache(upstream::LoopContext& loop, const config::UpstreamAddress& primary,
                     const config::UpstreamConfig& cfg, const config::Limits& limits,
                     size_t workers, policies::Registry& registry, bool check_role)
    : NearCache(loop, cfg, limits, workers, registry) {
  // The default db's keys (the policies' db): clients on another db never use the near cache.
  addLink(primary, check_role);
}

NearCache::NearCache(upstream::LoopContext& loop, const config::UpstreamConfig& cfg,
                     const config::Limits& limits, size_t workers, policies::Registry& registry)
    : loop_(loop),
      cfg_(cfg),
      limits_(limits),
      workers_(std::max<size_t>(workers, 1)),
      registry_(registry),
      budget_(config::PolicyConfig{}.global.near_cache_max_bytes / workers_),
      pushes_(std::make_unique<Pushes>(this)) {}

NearCache::~NearCache() = default;

NearCache::Link& NearCache::addLink(const config::UpstreamAddress& addr, bool check_role) {
  auto l = std::make_unique<Link>();
  l->id = next_link_id_++;
  l->conn = std::make_unique<upstream::Connection>(loop_, addr, cfg_, limits_, false);
  l->conn->resp3();
  l->tracked = std::make_shared<bool>(false);
  // Lost: whatever it read may have changed unseen. A failed attempt to reconnect loses
  // nothing more (a cluster node that is down would otherwise empty the cache at each one).
  // Lease waiters hear of it either way (their keys' changes may be lost).
  l->conn->tracking(pushes_.get(), [this, tracked = l->tracked] {
    if (*tracked) {
      *tracked = false;
      invalidateAll();
    }
    if (lost_) lost_();  // (nothing cached may rely on it, but a lease waiter may)
  });
  if (check_role) l->conn->checkRole();
  if (started_) l->conn->start();
  links_.push_back(std::move(l));
  return *links_.back();
}

void NearCache::start() {
  started_ = true;
  for (auto& l : links_) l->conn->start();
}

void NearCache::tick(int64_t now_ms) {
  for (auto& l : links_) {
    l->conn->tick();
    if (now_ms - l->last_ping_ms >= kPingEveryMs && l->conn->ready()) {
      l->last_ping_ms = now_ms;
      l->conn->enqueue(pushes_.get(), 1, kPing, 0);  // no reply within command_timeout: lost
    }
  }
  if (stores_.empty()) return;
  sweep_next_ = (sweep_next_ + 1) % stores_.size();
  stores_[sweep_next_]->store->sweep(now_ms, kSweepBuckets);
  report();
}

void NearCache::report() {
  for (auto& s : stores_) {
    const nearcache::NearStats& now = s->store->stats();
    nearcache::NearStats& was = s->reported;
    policies::PolicyCounters& c = *s->counters;
    if (now.hits != was.hits) c.near_hits.add(now.hits - was.hits);
    if (now.misses != was.misses) c.near_misses.add(now.misses - was.misses);
    if (now.invalidations != was.invalidations) {
      c.near_invalidations.add(now.invalidations - was.invalidations);
    }
    if (now.evictions != was.evictions) c.near_evictions.add(now.evictions - was.evictions);
    if (now.bytes != was.bytes) {
      c.near_bytes.fetch_add(static_cast<int64_t>(now.bytes) - static_cast<int64_t>(was.bytes),
                             std::memory_order_relaxed);
    }
    was = now;
  }
}

void NearCache::shutdown() {
  invalidateAll();
  report();  // the bytes gauges lose what this worker held
  for (auto& l : links_) l->conn->shutdown();
}

bool NearCache::accepting(std::span<const std::string_view> keys) {
  const Link* l = linkFor(keys[0]);
  if (l == nullptr || !l->conn->accepting()) return false;
  for (size_t i = 1; i < keys.size(); ++i) {
    if (linkFor(keys[i]) != l) return false;  // a cluster's MGET over several nodes
  }
  return true;
}

void NearCache::noteSet(const policies::PolicySet* set) {
  if (set == set_) return;
  set_ = set;
  invalidateAll();  // a policy may have changed its match, its max_age, or left near caching
  budget_.setMaxBytes(std::max<uint64_t>(set->nearCacheMaxBytes() / workers_, 1));
}

nearcache::NearStore* NearCache::storeFor(const config::PolicySpec& spec) {
  for (auto& s : stores_) {
    if (s->name != spec.name) continue;
    if (s->max_bytes != spec.near_cache.max_bytes) [[unlikely]] {  // changed by a reload
      s->max_bytes = spec.near_cache.max_bytes;
      s->store->setMaxBytes(s->max_bytes);
    }
    return s->store.get();
  }
  auto s = std::make_unique<Store>();
  s->name = spec.name;
  s->max_bytes = spec.near_cache.max_bytes;
  s->counters = registry_.policy(spec.name);
  s->counters->near_used.store(true, std::memory_order_relaxed);
  nearcache::StoreOptions opt;
  opt.max_bytes = spec.near_cache.max_bytes;
  // Sized for the entries the policy's share can hold, not for a huge max_bytes it never uses.
  opt.expected_entries = std::min<size_t>(opt.max_bytes, budget_.maxBytes()) / 256;
  s->store = std::make_unique<nearcache::NearStore>(opt, &budget_);
  stores_.push_back(std::move(s));
  return stores_.back()->store.get();
}

std::optional<std::string_view> NearCache::lookup(const config::PolicySpec& spec,
                                                  std::string_view key, int64_t now_ms) {
  return storeFor(spec)->lookup(key, now_ms);
}

NearCache::Read* NearCache::newRead() {
  if (!free_reads_.empty()) {
    Read* r = free_reads_.back();
    free_reads_.pop_back();
    return r;
  }
  reads_.push_back(std::make_unique<Read>(this));
  return reads_.back().get();
}

void NearCache::freeRead(Read* r) {
  for (size_t i = 0; i < r->used; ++i) {
    r->items[i].store = nullptr;
    r->items[i].key.clear();
    r->items[i].value.clear();
    r->items[i].changed = false;
  }
  r->used = 0;
  r->answered = false;
  r->request.clear();
  free_reads_.push_back(r);
}

void NearCache::fill(nearcache::NearRead read, std::span<const config::PolicySpec* const> specs,
                     std::span<const std::string_view> keys, std::string_view request,
                     upstream::ReplySink* sink, uint64_t seq, int proto) {
  Read* r = newRead();
  r->sink = sink;
  r->seq = seq;
  r->proto = proto;
  r->read = read;
  if (r->items.size() < keys.size()) r->items.resize(keys.size());
  r->used = keys.size();
  for (size_t i = 0; i < keys.size(); ++i) {
    Read::Item& it = r->items[i];
    it.store = storeFor(*specs[i]);
    it.key.assign(keys[i]);
    it.max_age_ms = specs[i]->near_cache.max_age.count();
    it.ticket = it.store->beginFill(keys[i]);
  }
  if (cluster_ != nullptr) r->request.assign(request);
  Link& link = *linkFor(keys[0]);  // accepting(keys) said there is one, for every key
  *link.tracked = true;
  link.conn->enqueue(r, 0, request, 0);
  for (size_t i = 0; i < keys.size(); ++i) {
    scratch_.clear();
    codec::appendCommand(scratch_, {"PTTL", keys[i]});
    link.conn->enqueue(r, 1 + i, scratch_, 0);
  }
}

void NearCache::invalidate(std::string_view key) {
  for (auto& s : stores_) s->store->invalidate(key);
}

void NearCache::invalidateAll() {
  for (auto& s : stores_) s->store->invalidateAll();
}

void NearCache::setWatchHooks(std::function<void(std::string_view key)> changed,
                              std::function<void()> lost) {
  changed_ = std::move(changed);
  lost_ = std::move(lost);
}

void NearCache::watch(std::string_view key) {
  Link* l = linkFor(key);
  if (l == nullptr || !l->conn->accepting()) return;  // the waiter's polls go on
  scratch_.clear();
  codec::appendCommand(scratch_, {"GET", key});
  l->watched.emplace_back(key);
  l->conn->enqueue(pushes_.get(), 4 * l->id + 2, scratch_, 0);
}

void NearCache::onWatchReply(uint64_t link_id, std::string_view frame) {
  for (auto& l : links_) {
    if (l->id != link_id || l->watched.empty()) continue;
    std::string key = std::move(l->watched.front());
    l->watched.pop_front();
    // A value there already: the fill it waits for may have been stored before this read.
    if (nearcache::storable(frame) && changed_) changed_(key);
    return;
  }
}

void NearCache::onPush(std::string_view frame) {
  // ["invalidate", [key, ...]] or ["invalidate", null] (FLUSHALL, FLUSHDB, or Redis dropping
  // its table of tracked keys).
  codec::FrameReader rd(frame);
  int64_t n = 0;
  std::string_view kind;
  bool nil = false;
  if (!rd.push(&n) || n != 2 || !rd.bulk(&kind, &nil) || kind != "invalidate") {
    log()->debug("near cache: push ignored: {}", frame.substr(0, 40));
    return;
  }
  codec::ReplyType t = codec::ReplyType::kNull;
  int64_t keys = 0;
  if (!rd.peek(&t) || t == codec::ReplyType::kNull || !rd.array(&keys) || keys < 0) {
    forgetAll();  // a null list, or not understood: the safe side
    return;
  }
  for (int64_t i = 0; i < keys; ++i) {
    std::string_view key;
    if (!rd.bulk(&key, &nil)) {
      forgetAll();
      return;
    }
    changedInRedis(key);
    if (changed_) changed_(key);
  }
}

void NearCache::forgetAll() {
  invalidateAll();
  if (lost_) lost_();
}

void NearCache::changedInRedis(std::string_view key) {
  // The push came on the connection the fills read on: a fill whose reply is still to come read
  // after the change (Redis sent this first) and may be kept; one answered already read before.
  for (auto& s : stores_) s->store->dropEntry(key);
  for (const auto& r : reads_) {
    if (!r->answered) continue;
    for (size_t i = 0; i < r->used; ++i) {
      if (r->items[i].key == key) r->items[i].changed = true;
    }
  }
}

NearCache::Totals NearCache::totals() const {
  Totals t;
  for (const auto& s : stores_) {
    const nearcache::NearStats& st = s->store->stats();
    t.hits += st.hits;
    t.misses += st.misses;
    t.stored += st.stored;
    t.invalidations += st.invalidations;
    t.evictions += st.evictions;
    t.flushes += st.flushes;
    t.bytes += st.bytes;
    t.entries += st.entries;
  }
  return t;
}

}  // namespace corral::net
