// Worker: following the primary and replicas that Sentinel names (proxy/sentinel).
//
//   Monitor --publish + wake--> loop turn ends --syncTopology--> applyTopology:
//     failover under way (fenced): new requests to the primary fail fast, what is in flight
//       completes, dedicated connections end (their clients are told)
//     new primary: dedicated connections end; every pooled primary connection (and each db's)
//       is retargeted in place (in flight: the old address's error, never retried), then
//       connects with ROLE checked before any client byte is written
//     replicas: pools kept, added, or retired (what was in flight on a retired one gets an error)
//     the near cache: emptied when fenced and when the primary moves; its tracking connection
//       is fenced and retargeted with the primary's pool (near_cache_topology.cc)
//
// Without upstream.sentinel, makeUpstreams() builds the pools of the config and nothing else
// here runs.
#include <algorithm>

#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"
#include "proxy/sentinel/protocol.h"

namespace corral::net {

void Worker::makeUpstreams() {
  if (cfg_.upstream.cluster && shared_.cluster_board != nullptr) {
    cluster_ = std::make_unique<ClusterRouter>(loop_, cfg_.upstream, limits_,
                                               *shared_.cluster_board, *stats_, retired_);
    const config::UpstreamAddress& seed = cfg_.upstream.cluster->seeds.front();
    primary_addr_.addr = seed.addr;
    primary_addr_.addr.tls =
        seed.addr.tls || cfg_.upstream.cluster->tls || cfg_.upstream.tls.enabled;
    primary_addr_.text = seed.text;
    primary_addr_.db = 0;
    if (auth_checks_ != nullptr) auth_checks_->retarget(primary_addr_.addr);
    if (user_pools_ != nullptr) user_pools_->retarget(primary_addr_.addr);
    pools_.push_back(makePool(primary_addr_, true, false));
    return;
  }
  sentinel::TopologyBoard* board = shared_.topology;
  if (board == nullptr) {
    pools_.push_back(makePool(primary_addr_, true, true));
    for (const auto& r : cfg_.upstream.replicas) pools_.push_back(makePool(r, false, false));
    return;
  }
  loop_.on_not_primary = [board] { board->requestRefresh(); };
  board->addWaker([this] { event_active(control_ev_, EV_READ, 0); });
  topology_gen_ = board->generation();
  const std::shared_ptr<const sentinel::Topology> t = board->get();
  primary_known_ = t != nullptr && t->primary.has_value();
  if (primary_known_) {
    primary_addr_.addr = *t->primary;
    primary_addr_.addr.tls = cfg_.upstream.tls.enabled;  // data nodes: TLS as configured
    primary_addr_.text = t->primary->text;
    if (auth_checks_ != nullptr) auth_checks_->retarget(primary_addr_.addr);
    if (user_pools_ != nullptr) user_pools_->retarget(primary_addr_.addr);
  }
  pools_.push_back(makePool(primary_addr_, true, true));
  setPrimaryFenced(primary_known_ && t->fenced);
  if (t != nullptr) syncReplicaPools(t->replicas, /*start=*/false);  // run() starts them
}

void Worker::syncTopology() {
  sentinel::TopologyBoard* board = shared_.topology;
  if (board == nullptr) return;
  const uint64_t gen = board->generation();
  if (gen == topology_gen_) return;
  topology_gen_ = gen;
  if (const auto t = board->get(); t != nullptr) applyTopology(*t);
}

void Worker::applyTopology(const sentinel::Topology& t) {
  const bool moved =
      t.primary && (!primary_known_ || !sentinel::sameNode(primary_addr_.addr, *t.primary));
  const bool fence = t.fenced;
  // A dedicated connection holds server-side state (MULTI, WATCH, a blocked pop, subscriptions)
  // that cannot move: it ends now and its client is told (session.h), never rebound elsewhere.
  if (moved || (fence && !fenced_)) endDedicated(moved ? "primary switched" : "failover under way");
  setPrimaryFenced(fence);
  if (moved) {
    log()->info("upstream primary switched worker={} from={} to={}", index_, primary_addr_.text,
                t.primary->text);
    primary_addr_.addr = *t.primary;
    primary_addr_.addr.tls = cfg_.upstream.tls.enabled;
    primary_addr_.text = t.primary->text;
    primary_known_ = true;
    for (auto& c : pools_[0]) c->retarget(primary_addr_);
    for (auto& [db, pool] : db_pools_) {
      config::UpstreamAddress addr = primary_addr_;
      addr.db = db;
      for (auto& c : pool) c->retarget(addr);
    }
    // The app's own users' connections (passthrough AUTH) follow too.
    if (auth_checks_ != nullptr) auth_checks_->retarget(primary_addr_.addr);
    if (user_pools_ != nullptr) user_pools_->retarget(primary_addr_.addr);
    // And the near cache's tracking connection, emptied first: nothing the old primary said
    // (a value, or the absence of an invalidation) is served from now on.
    if (near_ != nullptr) near_->retarget(primary_addr_);
  }
  syncReplicaPools(t.replicas, /*start=*/true);
}

void Worker::setPrimaryFenced(bool on) {
  fenced_ = on;
  if (user_pools_ != nullptr) user_pools_->setFenced(on);
  for (auto& c : pools_[0]) c->setFenced(on);
  for (auto& entry : db_pools_) {
    for (auto& c : entry.second) c->setFenced(on);
  }
  if (near_ != nullptr) near_->setFenced(on);  // empties it when on
}

void Worker::endDedicated(std::string_view why) {
  // A copy: each loss releases the connection, which edits the list.
  const std::vector<Client*> owners = dedicated_owners_;
  for (Client* c : owners) {
    if (c->dedicated_ != nullptr) c->dedicated_->drop(why);
  }
  if (!owners.empty()) {
    log()->info("dedicated upstream connections ended worker={} count={} reason=\"{}\"", index_,
                owners.size(), why);
  }
}

void Worker::syncReplicaPools(const std::vector<config::ListenAddress>& nodes, bool start) {
  std::vector<std::vector<std::unique_ptr<upstream::Connection>>> next;
  next.push_back(std::move(pools_[0]));
  for (const config::ListenAddress& n : nodes) {
    const auto it = std::find_if(replica_nodes_.begin(), replica_nodes_.end(),
                                 [&n](const auto& r) { return sentinel::sameNode(r, n); });
    if (it != replica_nodes_.end()) {
      next.push_back(std::move(pools_[1 + static_cast<size_t>(it - replica_nodes_.begin())]));
      continue;
    }
    config::UpstreamAddress addr = cfg_.upstream.primary;  // the template's credentials and db
    addr.addr = n;
    addr.addr.tls = cfg_.upstream.tls.enabled;
    addr.text = n.text;
    next.push_back(makePool(addr, false, false));
    if (start) {
      for (auto& c : next.back()) c->start();
    }
  }
  // Pools of replicas no longer listed close at the end of the turn; reads in flight on them
  // get the unavailable error.
  for (auto& pool : pools_) {
    for (auto& c : pool) {
      if (c != nullptr) retired_.push_back(std::move(c));
    }
  }
  pools_ = std::move(next);
  replica_nodes_ = nodes;
  stats_->upstreams_total.set(static_cast<uint64_t>(pools_[0].size()) * pools_.size());
}

void Worker::reportUpstreams() {
  UpstreamGauges& g = stats_->upstream_nodes;
  size_t i = 0;
  if (cluster_ != nullptr) {
    // The nodes of the slot map this worker connects to; pools_[0], the seed's connection for
    // keyless odds and ends, is left out: its node is listed by its role in the map.
    cluster_->forEachNode([&](std::string_view addr, bool primary, uint64_t ready, uint64_t all) {
      g.report(i++, addr, primary ? UpstreamRole::kPrimary : UpstreamRole::kReplica, ready, all);
    });
    g.finish(i);
    return;
  }
  for (size_t u = 0; u < pools_.size(); ++u) {
    uint64_t ready = 0;
    for (const auto& c : pools_[u]) ready += c->ready() ? 1 : 0;
    // The primary pool follows Sentinel's primary in place: primary_addr_ is its address now.
    const config::ListenAddress* a = nullptr;
    if (u == 0) {
      a = &primary_addr_.addr;
    } else if (shared_.topology != nullptr) {
      a = u - 1 < replica_nodes_.size() ? &replica_nodes_[u - 1] : nullptr;
    } else {
      a = u - 1 < cfg_.upstream.replicas.size() ? &cfg_.upstream.replicas[u - 1].addr : nullptr;
    }
    if (a == nullptr) continue;
    if (u == 0 && !primary_known_) {
      upstream_label_ = "unknown";  // Sentinel has named no primary yet
    } else {
      addressLabel(*a, &upstream_label_);
    }
    g.report(i++, upstream_label_, u == 0 ? UpstreamRole::kPrimary : UpstreamRole::kReplica, ready,
             pools_[u].size());
  }
  g.finish(i);
}

}  // namespace corral::net
