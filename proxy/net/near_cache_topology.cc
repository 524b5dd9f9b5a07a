// NearCache: where its tracking connections go, for each upstream kind (near_cache.h).
//
//   single / replicas    one link, to the primary (fills and invalidations never use a replica)
//   Sentinel             one link, to the primary Sentinel names, with ROLE checked:
//                          fence (failover under way) --> empty, reads refused until it lifts
//                          new primary --> empty, the link retargeted (in flight: an error)
//   Cluster              one link per primary node, made when one of its slots' keys is read:
//                          GET k --keySlot--> router's table --> the owner's link (MGET: only
//                            when every key's owner is the same node)
//                          fill answered -MOVED/-ASK/-TRYAGAIN/-CLUSTERDOWN --> the request goes
//                            the router's way (which follows it), nothing stored; MOVED empties
//                          the table changes (new map, MOVED patch) --> empty; links of nodes
//                            that are no primary now are closed (end of the loop turn)
//
// Why empty everything on any map change: a slot that moved takes its keys' writes to a node
// that does not know this corral read them, so nothing would invalidate them. Emptying the whole
// cache is simple and safe; a reshard is rare next to reads. Keys a migration moves are
// invalidated anyway: MIGRATE deletes them on the source, which tells its tracking clients.
#include "proxy/cluster/redirect.h"
#include "proxy/cluster/slot.h"
#include "proxy/net/cluster_router.h"
#include "proxy/net/log.h"
#include "proxy/net/near_cache.h"

namespace corral::net {

NearCache::NearCache(upstream::LoopContext& loop, ClusterRouter& cluster,
                     const config::UpstreamConfig& cfg, const config::Limits& limits,
                     size_t workers, policies::Registry& registry,
                     std::vector<std::unique_ptr<upstream::Connection>>& retired)
    : NearCache(loop, cfg, limits, workers, registry) {
  cluster_ = &cluster;
  retired_ = &retired;
}

NearCache::Link* NearCache::linkFor(std::string_view key) {
  if (cluster_ == nullptr) return links_.front().get();
  const config::UpstreamAddress* owner = cluster_->knownOwner(cluster::keySlot(key));
  if (owner == nullptr) return nullptr;
  for (auto& l : links_) {
    if (l->conn->addrText() == owner->text) return l.get();
  }
  log()->debug("near cache: tracking connection opened node={}", owner->text);
  return &addLink(*owner, false);
}

void NearCache::retarget(const config::UpstreamAddress& primary) {
  // Before the connection closes: a fill of the old primary's that is answered from now on is
  // refused by its ticket (a new epoch), whatever order the replies come in.
  invalidateAll();
  for (auto& l : links_) l->conn->retarget(primary);
}

void NearCache::setFenced(bool on) {
  // A fenced primary may already be a replica of the new one, whose writes this corral would
  // learn of late: nothing is answered from memory until the switch is known.
  if (on) invalidateAll();
  for (auto& l : links_) l->conn->setFenced(on);
}

void NearCache::onClusterChange() {
  invalidateAll();
  if (cluster_ == nullptr) return;
  // Closed at the end of the loop turn (this may run inside one of their callbacks): what is in
  // flight there gets the unavailable error, and the loss empties the cache again (harmless).
  std::erase_if(links_, [this](std::unique_ptr<Link>& l) {
    if (cluster_->isPrimary(l->conn->addrText())) return false;
    log()->debug("near cache: tracking connection closed node={}", l->conn->addrText());
    retired_->push_back(std::move(l->conn));
    return true;
  });
}

bool NearCache::redirected(std::string_view key, std::string_view request,
                           upstream::ReplySink* sink, uint64_t seq, int proto,
                           std::string_view reply) {
  if (cluster_ == nullptr) return false;
  const cluster::Redirect r = cluster::parseRedirect(reply);
  if (r.kind == cluster::Redirect::Kind::kNone) return false;
  // The table was wrong about this slot: the router learns it from its own MOVED (and empties
  // the cache through onMapChange); emptying it now also covers the replies still on their way.
  if (r.kind == cluster::Redirect::Kind::kMoved) invalidateAll();
  // The PTTLs behind it get the same answer: Read::onPttl settles the tickets unstored.
  cluster_->send(sink, seq, cluster::keySlot(key), request, 0, 0, proto == 3);
  return true;
}

}  // namespace corral::net
