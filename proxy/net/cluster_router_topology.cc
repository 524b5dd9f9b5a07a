// ClusterRouter: the slot table and where it comes from (cluster_router.h, cluster_board.h):
// refreshes (wanted on MOVED, on a lost owner, on CLUSTERDOWN; periodic), their replies, and a
// new map swapped in whole.
#include "proxy/net/cluster_router.h"
#include "proxy/net/log.h"

namespace corral::net {

namespace {
constexpr std::string_view kShards = "*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n";
constexpr std::string_view kSlotsCmd = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
}  // namespace

void ClusterRouter::wantRefresh() { refresh_wanted_ = true; }

void ClusterRouter::startRefresh() {
  const int64_t stale = cfg_.command_timeout.count() + cfg_.connect_timeout.count() + 1000;
  if (!board_.beginRefresh(loop_.now_ms, stale)) return;  // another's, or too soon: later
  refresh_wanted_ = false;
  refresh_mine_ = true;
  last_refresh_ms_ = loop_.now_ms;
  // Whom to ask. A shard whose primary is down: one of its replicas, which is the first to
  // know it was promoted (the other primaries learn it from gossip, up to a second later).
  // Else a primary that answers; else the seeds in turn.
  upstream::Connection* conn = nullptr;
  for (size_t i = 0; i < shard_node_.size() && conn == nullptr && i < table_.shards.size(); ++i) {
    Node* p = shard_node_[i];
    if (p == nullptr || p->pool[0]->accepting()) continue;
    const std::vector<cluster::Node>& nodes = table_.shards[i].nodes;
    for (size_t r = 1; r < nodes.size() && conn == nullptr; ++r) {
      if (nodes[r].host.empty()) continue;
      Node* n = nodeFor(nodes[r].host, portOf(nodes[r]));
      if (n->pool[0]->accepting()) conn = n->pool[0].get();
    }
  }
  for (Node* n : shard_node_) {
    if (conn == nullptr && n != nullptr && n->pool[0]->ready()) conn = n->pool[0].get();
  }
  if (conn == nullptr) {
    const auto& seeds = cfg_.cluster->seeds;
    const auto& s = seeds[seed_next_++ % seeds.size()];
    conn = nodeFor(s.addr.host, s.addr.port)->pool[0].get();
  }
  if (!conn->accepting()) {
    refresh_mine_ = false;
    board_.endRefresh(nullptr);
    return;
  }
  conn->enqueue(refresh_sink_.get(), 0, refresh_shards_ ? kShards : kSlotsCmd, 0);
}

void ClusterRouter::onRefreshReply(std::string_view reply) {
  refresh_mine_ = false;
  if (refresh_shards_ && reply.starts_with("-ERR") && !corralError(reply)) {
    refresh_shards_ = false;  // before Redis 7.0: CLUSTER SLOTS
    board_.endRefresh(nullptr);
    refresh_wanted_ = true;
    return;
  }
  std::string err;
  std::optional<cluster::SlotMap> map =
      refresh_shards_ ? cluster::parseShards(reply, &err) : cluster::parseSlots(reply, &err);
  if (!map) {
    log()->warn("cluster refresh failed err=\"{}\"", err.empty() ? std::string(reply) : err);
    board_.endRefresh(nullptr);
    refresh_wanted_ = true;
    return;
  }
  board_.endRefresh(std::make_shared<const cluster::SlotMap>(std::move(*map)));
  sync();
}

void ClusterRouter::sync() {
  const uint64_t gen = board_.generation();
  if (gen == table_gen_) return;
  table_gen_ = gen;
  if (const auto map = board_.get(); map != nullptr) install(*map);
}

void ClusterRouter::install(const cluster::SlotMap& map) {
  table_ = map;
  for (auto& n : nodes_) n->in_map = false;
  shard_node_.assign(table_.shards.size(), nullptr);
  // A shard that serves no slot is no place for anything: a primary that failed and was
  // replaced is listed so (health "fail", no slots) until it comes back or is forgotten.
  std::vector<bool> serving(table_.shards.size(), false);
  for (int16_t shard : table_.owner) {
    if (shard >= 0 && static_cast<size_t>(shard) < serving.size()) serving[shard] = true;
  }
  for (size_t i = 0; i < table_.shards.size(); ++i) {
    const cluster::Shard& s = table_.shards[i];
    if (s.nodes.empty() || !s.nodes[0].primary || !serving[i]) continue;
    const cluster::Node& p = s.nodes[0];
    shard_node_[i] = nodeFor(p.host, portOf(p));
    // Replicas already connected stay (reads may go there); others are made when asked.
    for (size_t r = 1; r < s.nodes.size(); ++r) {
      const std::string key = s.nodes[r].host + ":" + std::to_string(portOf(s.nodes[r]));
      for (auto& n : nodes_) {
        if (n->key == key) n->in_map = true;
      }
    }
  }
  // Nodes no shard's primary is any more: their pools close (what was in flight gets an error).
  std::vector<std::unique_ptr<Node>> gone;
  std::erase_if(nodes_, [&](std::unique_ptr<Node>& n) {
    if (n->in_map) return false;
    gone.push_back(std::move(n));
    return true;
  });
  for (auto& n : gone) {
    log()->info("cluster node left the map addr={}", n->key);
    eachOf(*n, [this](auto& c) { retired_.push_back(std::move(c)); });
  }
  forgetGoneAskNodes();
  if (on_map_change_) on_map_change_();
}

}  // namespace corral::net
