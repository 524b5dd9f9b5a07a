#include "proxy/net/cluster_router.h"

#include <algorithm>

#include "proxy/cluster/redirect.h"
#include "proxy/cluster/slot.h"
#include "proxy/codec/resp.h"
#include "proxy/net/log.h"

namespace corral::net {

namespace {
constexpr int64_t kFirstBackoffMs = 5;
constexpr int64_t kMaxBackoffMs = 100;
constexpr int kFreeResends = 2;  // MOVED/ASK resent at once this many times, then backed off
constexpr std::string_view kAsking = "*1\r\n$6\r\nASKING\r\n";

}  // namespace

struct ClusterRouter::Split {
  upstream::ReplySink* sink = nullptr;
  uint64_t seq = 0;
  int scan_shard = -1;  // SCAN: the shard asked (its reply's cursor is rewritten)
  cluster::SplitPlan plan;
  std::vector<std::string> replies;  // [part]; recycled with the split, buffers kept
  size_t left = 0;                   // parts still due; the split is recycled at 0
};

// One request (or one part of a split one) until its final reply.
class ClusterRouter::Call final : public upstream::ReplySink {
 public:
  explicit Call(ClusterRouter* r) : router(r) {}
  void onUpstreamReply(uint64_t, std::string_view reply) override { router->onReply(this, reply); }

  ClusterRouter* router;
  upstream::ReplySink* sink = nullptr;  // null for a part of a split
  uint64_t seq = 0;
  uint64_t client_key = 0;
  bool replica = false;    // may be served by a replica of the slot's shard
  bool resp3 = false;      // a RESP3 client's: the node's RESP3 connections
  Split* split = nullptr;  // a part of this split (owned by the router's pool)
  size_t part = 0;
  std::string request;
  int slot = -1;
  int64_t timeout_ms = 0;
  int64_t deadline_ms = 0;
  int64_t due_ms = 0;
  int resends = 0;
  bool asking = false;  // the next send goes to ask_node with ASKING first
  Node* ask_node = nullptr;
  std::string last_redirect;  // for the error at the deadline
};

// Swallows the reply of ASKING.
class ClusterRouter::Ignore final : public upstream::ReplySink {
 public:
  void onUpstreamReply(uint64_t, std::string_view) override {}
};

ClusterRouter::ClusterRouter(upstream::LoopContext& loop, const config::UpstreamConfig& cfg,
                             const config::Limits& limits, ClusterBoard& board,
                             Stats::Worker& stats,
                             std::vector<std::unique_ptr<upstream::Connection>>& retired)
    : loop_(loop),
      cfg_(cfg),
      limits_(limits),
      board_(board),
      stats_(stats),
      retired_(retired),
      refresh_sink_(std::make_unique<RefreshSink>(this)),
      ignore_(std::make_unique<Ignore>()) {
  template_ = cfg.primary;
  template_.db = 0;
  template_.addr.tls = cfg.cluster->tls || cfg.tls.enabled;
  read_from_ = cfg.cluster->read_from.value_or(cfg.read_from);
  table_.owner.assign(cluster::kSlots, -1);
}

ClusterRouter::~ClusterRouter() = default;

void ClusterRouter::start() {
  now_ms_ = loop_.now_ms;
  sync();
  // The seeds' connections exist from the start: the first refresh goes through one.
  if (table_gen_ == 0) {
    for (const auto& s : cfg_.cluster->seeds) nodeFor(s.addr.host, s.addr.port);
  }
  for (auto& n : nodes_) {
    for (auto& c : n->pool) c->start();
  }
  startRefresh();
}

ClusterRouter::Node* ClusterRouter::nodeFor(std::string_view host, uint16_t port) {
  std::string key(host);
  key += ':';
  key += std::to_string(port);
  for (auto& n : nodes_) {
    if (n->key == key) {
      n->in_map = true;
      return n.get();
    }
  }
  auto n = std::make_unique<Node>();
  n->key = key;
  n->addr = template_;
  n->addr.addr.kind = config::ListenAddress::Kind::kTcp;
  n->addr.addr.host = std::string(host);
  n->addr.addr.port = port;
  n->addr.addr.text = key;
  n->addr.text = key;
  for (int k = 0; k < std::max(1, cfg_.pool_size); ++k) {
    n->pool.push_back(
        std::make_unique<upstream::Connection>(loop_, n->addr, cfg_, limits_, nodes_.empty()));
    // Any node may be (or become) a replica that serves reads (read_from, or a policy's route):
    // READONLY, which a primary ignores.
    n->pool.back()->readOnly();
    if (now_ms_ != 0) n->pool.back()->start();  // before start(), start() starts them
  }
  nodes_.push_back(std::move(n));
  return nodes_.back().get();
}

ClusterRouter::Node* ClusterRouter::ownerNode(int slot) {
  if (slot >= 0) {
    const int16_t shard = table_.owner[static_cast<size_t>(slot)];
    if (shard >= 0 && static_cast<size_t>(shard) < shard_node_.size()) {
      return shard_node_[static_cast<size_t>(shard)];
    }
  }
  // No owner known (keyless, no map yet, or a slot no shard serves): the first primary whose
  // connection accepts (one that died stays in the map until the cluster replaces it), else
  // the first primary, else a seed.
  Node* first = nullptr;
  for (Node* n : shard_node_) {
    if (n == nullptr) continue;
    if (n->pool[0]->accepting()) return n;
    if (first == nullptr) first = n;
  }
  if (first != nullptr) return first;
  const auto& seeds = cfg_.cluster->seeds;
  const auto& s = seeds[seed_next_ % seeds.size()];
  return nodeFor(s.addr.host, s.addr.port);
}

ClusterRouter::Node* ClusterRouter::replicaNode(int slot) {
  if (slot < 0) return nullptr;
  const int16_t shard = table_.owner[static_cast<size_t>(slot)];
  if (shard < 0 || static_cast<size_t>(shard) >= table_.shards.size()) return nullptr;
  const std::vector<cluster::Node>& nodes = table_.shards[static_cast<size_t>(shard)].nodes;
  if (nodes.size() < 2) return nullptr;
  const size_t replicas = nodes.size() - 1;
  for (size_t i = 0; i < replicas; ++i) {
    const cluster::Node& r = nodes[1 + (replica_rr_++ % replicas)];
    if (!r.online || r.host.empty()) continue;
    Node* n = nodeFor(r.host, portOf(r));
    if (n->pool[0]->accepting()) return n;
  }
  return nullptr;
}

upstream::Connection* ClusterRouter::pick(Node* n, uint64_t client_key, bool resp3) {
  if (!resp3) return n->pool[client_key % n->pool.size()].get();
  if (n->pool3.empty()) {
    for (size_t k = 0; k < n->pool.size(); ++k) {
      n->pool3.push_back(std::make_unique<upstream::Connection>(loop_, n->addr, cfg_, limits_,
                                                                /*learn_version=*/false));
      n->pool3.back()->readOnly();
      n->pool3.back()->resp3();
      if (now_ms_ != 0) n->pool3.back()->start();
    }
  }
  return n->pool3[client_key % n->pool3.size()].get();
}

upstream::Connection* ClusterRouter::connection(int slot, uint64_t client_id, bool resp3) {
  return pick(ownerNode(slot), client_id, resp3);
}

config::UpstreamAddress ClusterRouter::ownerAddress(int slot) { return ownerNode(slot)->addr; }

const config::UpstreamAddress* ClusterRouter::knownOwner(int slot) const {
  const int16_t shard = table_.owner[static_cast<size_t>(slot)];
  if (shard < 0 || static_cast<size_t>(shard) >= shard_node_.size()) return nullptr;
  const Node* n = shard_node_[static_cast<size_t>(shard)];
  return n == nullptr ? nullptr : &n->addr;
}

bool ClusterRouter::isPrimary(std::string_view node) const {
  for (const Node* n : shard_node_) {
    if (n != nullptr && n->key == node) return true;
  }
  return false;
}

upstream::Connection* ClusterRouter::connectionAt(std::string_view addr, uint64_t client_key) {
  for (auto& n : nodes_) {
    if (n->key == addr) return n->pool[client_key % n->pool.size()].get();
  }
  return nullptr;
}

bool ClusterRouter::anyReady() const {
  for (const Node* n : shard_node_) {
    if (n == nullptr) continue;
    for (const auto& c : n->pool) {
      if (c->ready()) return true;
    }
  }
  return false;
}

size_t ClusterRouter::connections() const {
  size_t n = 0;
  for (const auto& node : nodes_) n += node->pool.size() + node->pool3.size();
  return n;
}

// --- requests -----------------------------------------------------------------------------

ClusterRouter::Call* ClusterRouter::newCall() {
  if (!free_calls_.empty()) {
    Call* c = free_calls_.back();
    free_calls_.pop_back();
    return c;
  }
  calls_.push_back(std::make_unique<Call>(this));
  return calls_.back().get();
}

ClusterRouter::Split* ClusterRouter::newSplit() {
  if (!free_splits_.empty()) {
    Split* s = free_splits_.back();
    free_splits_.pop_back();
    return s;
  }
  splits_.push_back(std::make_unique<Split>());
  return splits_.back().get();
}

void ClusterRouter::freeSplit(Split* s) {
  s->sink = nullptr;
  s->scan_shard = -1;
  s->left = 0;
  free_splits_.push_back(s);
}

void ClusterRouter::freeCall(Call* c) {
  c->sink = nullptr;
  c->split = nullptr;
  c->request.clear();
  if (c->request.capacity() > 4096) c->request.shrink_to_fit();
  c->resends = 0;
  c->asking = false;
  c->ask_node = nullptr;
  c->last_redirect.clear();
  c->replica = false;
  c->resp3 = false;
  free_calls_.push_back(c);
}

void ClusterRouter::send(upstream::ReplySink* sink, uint64_t seq, int slot,
                         std::string_view request, int64_t timeout_ms, uint64_t client_key,
                         bool resp3, bool replica) {
  Call* c = newCall();
  c->sink = sink;
  c->seq = seq;
  c->client_key = client_key;
  c->resp3 = resp3;
  c->replica = replica;
  c->slot = slot;
  c->request.assign(request);
  c->timeout_ms = timeout_ms;
  const int64_t budget = timeout_ms > 0 ? timeout_ms : cfg_.command_timeout.count();
  c->deadline_ms = loop_.now_ms + budget;
  dispatch(c);
}

void ClusterRouter::sendSplit(upstream::ReplySink* sink, uint64_t seq, cluster::SplitPlan& plan,
                              int64_t timeout_ms, uint64_t client_key, bool resp3) {
  stats_.cluster_split.add();
  Split* s = newSplit();
  s->sink = sink;
  s->seq = seq;
  std::swap(s->plan, plan);  // the caller's scratch gets the recycled plan's buffers
  s->replies.resize(s->plan.fragments.size());
  s->left = s->plan.fragments.size();
  const int64_t budget = timeout_ms > 0 ? timeout_ms : cfg_.command_timeout.count();
  for (size_t i = 0; i < s->plan.fragments.size(); ++i) {
    Call* c = newCall();
    c->split = s;
    c->part = i;
    c->client_key = client_key;
    c->resp3 = resp3;
    c->slot = s->plan.fragments[i].slot;
    c->request.swap(s->plan.fragments[i].request);
    c->timeout_ms = timeout_ms;
    c->deadline_ms = loop_.now_ms + budget;
    dispatch(c);
  }
}

void ClusterRouter::planEveryPrimary(std::string_view request, cluster::Merge merge,
                                     cluster::SplitPlan* plan) const {
  plan->merge = merge;
  plan->keys = 0;
  plan->fragments.clear();
  for (const ShardStart& s : primaryShards()) {
    cluster::Fragment& f = plan->fragments.emplace_back();
    f.slot = s.first_slot;
    f.request.assign(request);
  }
}

namespace {
// "*2\r\n$<n>\r\n<cursor>\r\n<keys array>": the node's cursor and the rest (RESP2 and 3 alike).
bool splitScanReply(std::string_view reply, uint64_t* cursor, std::string_view* keys) {
  if (!reply.starts_with("*2\r\n$")) return false;
  size_t p = 5;
  const size_t len_end = reply.find("\r\n", p);
  if (len_end == std::string_view::npos) return false;
  const size_t digits_at = len_end + 2;
  const size_t digits_end = reply.find("\r\n", digits_at);
  if (digits_end == std::string_view::npos || digits_end == digits_at ||
      digits_end - digits_at > 20) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = digits_at; i < digits_end; ++i) {
    if (reply[i] < '0' || reply[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(reply[i] - '0');
  }
  *cursor = v;
  *keys = reply.substr(digits_end + 2);
  return true;
}
}  // namespace

std::vector<ClusterRouter::ShardStart> ClusterRouter::primaryShards() const {
  std::vector<ShardStart> order;
  std::vector<bool> seen(shard_node_.size(), false);
  for (size_t slot = 0; slot < table_.owner.size(); ++slot) {
    const int16_t shard = table_.owner[slot];
    if (shard < 0 || static_cast<size_t>(shard) >= seen.size() || seen[shard]) continue;
    if (shard_node_[static_cast<size_t>(shard)] == nullptr) continue;
    seen[static_cast<size_t>(shard)] = true;
    order.push_back({shard, static_cast<uint16_t>(slot)});
  }
  return order;
}

std::string ClusterRouter::scanReply(std::string_view reply, int shard_ordinal) const {
  uint64_t node_cursor = 0;
  std::string_view keys;
  if (!splitScanReply(reply, &node_cursor, &keys)) return std::string(reply);  // an error
  uint64_t next = 0;
  if (node_cursor != 0) {
    next = node_cursor * kScanShards + static_cast<uint64_t>(shard_ordinal);
  } else if (static_cast<size_t>(shard_ordinal + 1) < primaryShards().size()) {
    next = static_cast<uint64_t>(shard_ordinal + 1);  // that shard, from its start
  }
  const std::string digits = std::to_string(next);
  std::string out = "*2\r\n$" + std::to_string(digits.size()) + "\r\n" + digits + "\r\n";
  out.append(keys);
  return out;
}

void ClusterRouter::sendScan(upstream::ReplySink* sink, uint64_t seq,
                             std::span<const std::string_view> args, int64_t timeout_ms,
                             uint64_t client_key, bool resp3) {
  uint64_t cursor = 0;
  for (char ch : args[1]) {
    if (ch < '0' || ch > '9' || cursor > UINT64_MAX / 10) {
      sink->onUpstreamReply(seq, "-ERR invalid cursor\r\n");
      return;
    }
    cursor = cursor * 10 + static_cast<uint64_t>(ch - '0');
  }
  const std::vector<ShardStart> order = primaryShards();
  const uint64_t ordinal = cursor % kScanShards;
  if (order.empty() || ordinal >= order.size()) {
    // No map yet, or a cursor of a bigger cluster: nothing more to walk.
    sink->onUpstreamReply(
        seq, order.empty() ? std::string_view("-ERR corral: cluster slot map not known yet\r\n")
                           : std::string_view("*2\r\n$1\r\n0\r\n*0\r\n"));
    return;
  }
  std::string request;
  std::vector<std::string_view> node_args(args.begin(), args.end());
  const std::string node_cursor = std::to_string(cursor / kScanShards);
  node_args[1] = node_cursor;
  codec::appendCommand(request, node_args);
  Split* s = newSplit();
  s->sink = sink;
  s->seq = seq;
  s->scan_shard = static_cast<int>(ordinal);
  s->replies.resize(1);
  s->left = 1;
  Call* c = newCall();
  c->split = s;
  c->part = 0;
  c->client_key = client_key;
  c->resp3 = resp3;
  c->slot = order[ordinal].first_slot;  // aimed at the first slot that shard owns
  c->request = std::move(request);
  c->timeout_ms = timeout_ms;
  c->deadline_ms = loop_.now_ms + (timeout_ms > 0 ? timeout_ms : cfg_.command_timeout.count());
  dispatch(c);
}

void ClusterRouter::dispatch(Call* c) {
  Node* n = nullptr;
  if (c->asking && c->ask_node != nullptr) {
    n = c->ask_node;
  } else if (c->replica && c->resends == 0) {
    n = replicaNode(c->slot);  // a redirected read goes to the owner the cluster names
  }
  if (n == nullptr) n = ownerNode(c->slot);
  upstream::Connection* conn = pick(n, c->client_key, c->resp3);
  if (!conn->accepting()) {
    // The owner is down: its replica takes over only once the cluster says so. Fail now (the
    // request was never sent), and have the map checked.
    wantRefresh();
    finish(c, conn->unavailableError());
    return;
  }
  if (c->asking) {
    conn->enqueue(ignore_.get(), 0, kAsking, c->timeout_ms);
    c->asking = false;
  }
  conn->enqueue(c, 0, c->request, c->timeout_ms);
}

void ClusterRouter::onReply(Call* c, std::string_view reply) {
  const cluster::Redirect r = cluster::parseRedirect(reply);
  using K = cluster::Redirect::Kind;
  if (r.kind == K::kNone) {
    if (corralError(reply)) wantRefresh();  // lost or timed out: the owner may have changed
    finish(c, reply);
    return;
  }
  c->last_redirect.assign(reply.substr(1, reply.find('\r') - 1));
  if (loop_.now_ms >= c->deadline_ms) {
    stats_.cluster_gave_up.add();
    std::string e = "-ERR corral: cluster slot ";
    e += std::to_string(r.slot);
    e += " did not settle within the command timeout (last: ";
    e += c->last_redirect;
    e += ")\r\n";
    finish(c, r.kind == K::kClusterDown ? reply : std::string_view(e));
    return;
  }
  switch (r.kind) {
    case K::kMoved: {
      stats_.cluster_moved.add();
      // The cluster says who owns the slot now: believe it for this slot at once.
      std::string_view host = r.host;
      Node* n = nodeFor(host.empty() ? ownerNode(c->slot)->addr.addr.host : host, r.port);
      const auto shard = std::find(shard_node_.begin(), shard_node_.end(), n);
      if (shard != shard_node_.end()) {
        table_.owner[r.slot] = static_cast<int16_t>(shard - shard_node_.begin());
      } else {
        shard_node_.push_back(n);
        table_.owner[r.slot] = static_cast<int16_t>(shard_node_.size() - 1);
      }
      c->slot = r.slot;
      wantRefresh();
      if (on_map_change_) on_map_change_();
      break;
    }
    case K::kAsk: {
      stats_.cluster_ask.add();
      std::string_view host = r.host;
      c->ask_node = nodeFor(host.empty() ? ownerNode(c->slot)->addr.addr.host : host, r.port);
      c->asking = true;
      break;
    }
    default:
      stats_.cluster_retries.add();
      if (r.kind == K::kClusterDown) wantRefresh();
      c->resends = std::max(c->resends, kFreeResends);  // always after a pause
      break;
  }
  if (c->resends++ < kFreeResends) {
    dispatch(c);
  } else {
    retryLater(c);
  }
}

void ClusterRouter::retryLater(Call* c) {
  const int steps = std::min(c->resends - kFreeResends, 5);
  const int64_t wait = std::min<int64_t>(kFirstBackoffMs << steps, kMaxBackoffMs);
  c->due_ms = std::min(loop_.now_ms + wait, c->deadline_ms);
  waiting_.push_back(c);
}

void ClusterRouter::finish(Call* c, std::string_view reply) {
  if (c->split == nullptr) {
    upstream::ReplySink* sink = c->sink;
    const uint64_t seq = c->seq;
    freeCall(c);
    sink->onUpstreamReply(seq, reply);
    return;
  }
  Split* s = c->split;
  s->replies[c->part].assign(reply);
  freeCall(c);
  if (--s->left != 0) return;
  upstream::ReplySink* sink = s->sink;
  const uint64_t seq = s->seq;
  if (s->scan_shard >= 0) {
    const std::string out = scanReply(s->replies[0], s->scan_shard);
    freeSplit(s);
    sink->onUpstreamReply(seq, out);
    return;
  }
  // The scratch buffers are taken for the call: the sink may send (and finish) another
  // request before it returns.
  std::vector<std::string_view> views;
  views.swap(views_);
  views.assign(s->replies.begin(), s->replies.end());
  std::string merged;
  merged.swap(merged_);
  merged.clear();
  cluster::mergeReplies(s->plan, views, &merged);
  freeSplit(s);
  if (merged.size() > limits_.max_reply_bytes) {
    // Each part was under limits.max_reply_bytes; the whole must be too, as for one node.
    upstream::counters().replies_too_large.fetch_add(1, std::memory_order_relaxed);
    sink->onUpstreamReply(seq, "-ERR corral: reply too large (limits.max_reply_bytes)\r\n");
  } else {
    sink->onUpstreamReply(seq, merged);
  }
  if (merged.capacity() <= 64 * 1024) merged_.swap(merged);  // kept unless it grew large
  views_.swap(views);
}

void ClusterRouter::tick(int64_t now_ms) {
  now_ms_ = now_ms;
  for (auto& n : nodes_) eachOf(*n, [](auto& c) { c->tick(); });
  if (!waiting_.empty()) {
    std::vector<Call*> due;
    std::erase_if(waiting_, [&](Call* c) {
      if (c->due_ms > now_ms) return false;
      due.push_back(c);
      return true;
    });
    for (Call* c : due) dispatch(c);
  }
  if (now_ms - last_refresh_ms_ >= cfg_.cluster->refresh_interval.count()) refresh_wanted_ = true;
  if (refresh_wanted_ && !refresh_mine_) startRefresh();
}

void ClusterRouter::forgetGoneAskNodes() {
  // A waiting call that was asked to a node now gone (install) asks the owner again.
  for (Call* c : waiting_) {
    if (c->ask_node != nullptr) {
      bool alive = false;
      for (auto& n : nodes_) alive = alive || n.get() == c->ask_node;
      if (!alive) {
        c->ask_node = nullptr;
        c->asking = false;
      }
    }
  }
}

void ClusterRouter::shutdown() {
  std::vector<Call*> waiting;
  waiting.swap(waiting_);
  for (Call* c : waiting) finish(c, "-ERR corral: shutting down\r\n");
  for (auto& n : nodes_) eachOf(*n, [](auto& c) { c->shutdown(); });
}

}  // namespace corral::net
