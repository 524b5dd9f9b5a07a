#include "proxy/net/near_cache.h"

#include "proxy/codec/resp.h"
#include "proxy/net/log.h"

namespace corral::net {

namespace {
constexpr size_t kSweepBuckets = 64;  // per store and tick
constexpr int64_t kPingEveryMs = 1000;
constexpr std::string_view kPing = "*1\r\n$4\r\nPING\r\n";
}  // namespace

// One near read: GET's reply to the client, PTTL's to the store (seq 0 and 1 on the tracking
// connection, in that order).
class NearCache::Read final : public upstream::ReplySink {
 public:
  explicit Read(NearCache* owner) : owner_(owner) {}
  void onUpstreamReply(uint64_t which, std::string_view reply) override {
    if (which == 0) {
      onValue(reply);
    } else {
      onPttl(reply);
    }
  }

  upstream::ReplySink* sink = nullptr;
  uint64_t seq = 0;
  bool resp2 = true;
  nearcache::NearStore* store = nullptr;
  nearcache::FillTicket ticket;
  std::string key;
  std::string value;  // the GET's bulk reply, when it is one worth keeping
  int64_t max_age_ms = 0;

 private:
  void onValue(std::string_view reply) {
    const bool bulk = reply.size() > 1 && reply[0] == '$' && reply[1] != '-';
    if (bulk) {
      value.assign(reply);
    } else {
      value.clear();  // nil, an error (WRONGTYPE), corral's own: nothing to keep
    }
    upstream::ReplySink* s = sink;
    sink = nullptr;
    if (reply[0] == '-' && owner_->redirected(key, s, seq, resp2, reply)) return;
    if (resp2 && reply == "_\r\n") {
      s->onUpstreamReply(seq, "$-1\r\n");
    } else {
      s->onUpstreamReply(seq, reply);
    }
  }
  void onPttl(std::string_view reply) {
    codec::FrameReader rd(reply);
    int64_t pttl = 0;
    const int64_t now = owner_->loop_.now_ms;
    if (!value.empty() && rd.integer(&pttl) && pttl != -2 && pttl != 0) {
      const int64_t ttl = pttl < 0 ? max_age_ms : std::min(pttl, max_age_ms);
      store->complete(ticket, key, value, now + ttl, now);
    } else {
      store->abandon(ticket, key);
    }
    owner_->freeRead(this);
  }

  NearCache* owner_;
};

// Receives the tracking connection's pushes (seq 0), and the replies of its PINGs (seq 1).
class NearCache::Pushes final : public upstream::ReplySink {
 public:
  explicit Pushes(NearCache* owner) : owner_(owner) {}
  void onUpstreamReply(uint64_t seq, std::string_view frame) override {
    if (seq == 0) owner_->onPush(frame);
  }

 private:
  NearCache* owner_;
};

NearCache::NearCache(upstream::LoopContext& loop, const config::UpstreamAddress& primary,
                     const config::UpstreamConfig& cfg, const config::Limits& limits,
                     bool check_role)
    : NearCache(loop, cfg, limits) {
  // The default db's keys (the policies' db): clients on another db never use the near cache.
  addLink(primary, check_role);
}

NearCache::NearCache(upstream::LoopContext& loop, const config::UpstreamConfig& cfg,
                     const config::Limits& limits)
    : loop_(loop), cfg_(cfg), limits_(limits), pushes_(std::make_unique<Pushes>(this)) {}

NearCache::~NearCache() = default;

NearCache::Link& NearCache::addLink(const config::UpstreamAddress& addr, bool check_role) {
  Link l;
  l.conn = std::make_unique<upstream::Connection>(loop_, addr, cfg_, limits_, false);
  l.conn->resp3();
  l.tracked = std::make_shared<bool>(false);
  // Lost: whatever it read may have changed unseen. A failed attempt to reconnect loses
  // nothing more (a cluster node that is down would otherwise empty the cache at each one).
  l.conn->tracking(pushes_.get(), [this, tracked = l.tracked] {
    if (!*tracked) return;
    *tracked = false;
    invalidateAll();
  });
  if (check_role) l.conn->checkRole();
  if (started_) l.conn->start();
  links_.push_back(std::move(l));
  return links_.back();
}

void NearCache::start() {
  started_ = true;
  for (Link& l : links_) l.conn->start();
}

void NearCache::tick(int64_t now_ms) {
  for (Link& l : links_) {
    l.conn->tick();
    if (now_ms - l.last_ping_ms >= kPingEveryMs && l.conn->ready()) {
      l.last_ping_ms = now_ms;
      l.conn->enqueue(pushes_.get(), 1, kPing, 0);  // no reply within command_timeout: lost
    }
  }
  if (stores_.empty()) return;
  sweep_next_ = (sweep_next_ + 1) % stores_.size();
  stores_[sweep_next_]->store->sweep(now_ms, kSweepBuckets);
}

void NearCache::shutdown() {
  for (Link& l : links_) l.conn->shutdown();
}

bool NearCache::accepting(std::string_view key) {
  const Link* l = linkFor(key);
  return l != nullptr && l->conn->accepting();
}

void NearCache::noteSet(const void* policies) {
  if (policies == set_) return;
  set_ = policies;
  invalidateAll();  // a policy may have changed its match, its max_age, or left near caching
}

nearcache::NearStore* NearCache::storeFor(const config::PolicySpec& spec) {
  for (auto& s : stores_) {
    if (s->name == spec.name) return s->store.get();
  }
  auto s = std::make_unique<Store>();
  s->name = spec.name;
  nearcache::StoreOptions opt;
  opt.max_bytes = spec.near_cache.max_bytes;
  s->store = std::make_unique<nearcache::NearStore>(opt);
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
  r->store = nullptr;
  r->key.clear();
  r->value.clear();
  free_reads_.push_back(r);
}

void NearCache::fill(const config::PolicySpec& spec, std::string_view key,
                     upstream::ReplySink* sink, uint64_t seq, bool resp2) {
  nearcache::NearStore* store = storeFor(spec);
  Link& link = *linkFor(key);  // accepting(key) said there is one
  *link.tracked = true;
  upstream::Connection& conn = *link.conn;
  Read* r = newRead();
  r->sink = sink;
  r->seq = seq;
  r->resp2 = resp2;
  r->store = store;
  r->key.assign(key);
  r->max_age_ms = spec.near_cache.max_age.count();
  r->ticket = store->beginFill(key);
  scratch_.clear();
  codec::appendCommand(scratch_, {"GET", key});
  conn.enqueue(r, 0, scratch_, 0);
  scratch_.clear();
  codec::appendCommand(scratch_, {"PTTL", key});
  conn.enqueue(r, 1, scratch_, 0);
}

void NearCache::invalidate(std::string_view key) {
  for (auto& s : stores_) s->store->invalidate(key);
}

void NearCache::invalidateAll() {
  for (auto& s : stores_) s->store->invalidateAll();
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
  if (!rd.peek(&t) || t == codec::ReplyType::kNull) {
    invalidateAll();
    return;
  }
  int64_t keys = 0;
  if (!rd.array(&keys) || keys < 0) {
    invalidateAll();  // not understood: the safe side
    return;
  }
  for (int64_t i = 0; i < keys; ++i) {
    std::string_view key;
    if (!rd.bulk(&key, &nil)) {
      invalidateAll();
      return;
    }
    invalidate(key);
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
