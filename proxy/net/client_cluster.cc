// Client: a request on its way to a Redis Cluster (upstream.cluster). Its keys' slot picks the
// node; keys across slots are split per slot when the command allows it (MGET, MSET, DEL,
// UNLINK, EXISTS, TOUCH), else refused with Redis's own CROSSSLOT; no keys: any primary.
// Redirects and retries are the router's (cluster_router.h).
#include "commands/command_table.h"
#include "proxy/cluster/fanout.h"
#include "proxy/cluster/slot.h"
#include "proxy/cluster/split.h"
#include "proxy/net/client.h"
#include "proxy/net/cluster_router.h"
#include "proxy/net/worker.h"

namespace corral::net {

void Client::forwardToCluster(const codec::Request& req, int64_t timeout_ms, Rewrite rewrite,
                              int64_t arg) {
  ClusterRouter& router = *worker_.cluster();
  if (user_pool_ != nullptr) {
    // The router's connections are logged in as corral: running this client's commands there
    // would bypass its own user's ACL. Not done until per-user node pools exist.
    replyUnavailable(
        "-ERR corral: commands as the app's own Redis user are not supported with "
        "upstream.cluster yet (use auth.users, or no AUTH)\r\n");
    return;
  }
  const commands::CommandInfo* cmd = commands::lookup(req.args);
  // Keyspace-wide: SCAN walks the shards one after the other; DBSIZE, KEYS, FLUSHALL and the
  // like go to every primary and their replies are merged (proxy/cluster/split.h).
  if (cmd != nullptr && cmd->name == "scan" && req.args.size() >= 2) {
    const uint64_t seq = openSlot(rewrite, arg, req.frame.size());
    router.sendScan(this, seq, req.args, timeout_ms, primary_slot_);
    armed().hidden.clear();
    return;
  }
  if (cluster::Merge merge; cluster::fanOut(req.args, &merge)) {
    cluster::SplitPlan plan = router.planEveryPrimary(wireBytes(req), merge);
    if (plan.fragments.empty()) {
      replyUnavailable("-ERR corral: cluster slot map not known yet\r\n");
      return;
    }
    const uint64_t seq = openSlot(rewrite, arg, req.frame.size());
    router.sendSplit(this, seq, std::move(plan), timeout_ms, primary_slot_);
    armed().hidden.clear();
    return;
  }
  std::vector<uint32_t>& keys = worker_.clusterKeys();
  keys.clear();
  if (cmd != nullptr && !commands::extractKeys(*cmd, req.args, keys)) keys.clear();
  int slot = -1;
  if (!keys.empty()) {
    if (keys.size() > 1 && cluster::crossSlot(req.args, keys)) {
      cluster::SplitPlan plan;
      if (!cluster::splitBySlot(req.args, &plan)) {
        replyUnavailable(cluster::kCrossSlotError);  // counted as an error, as Redis's is
        return;
      }
      const uint64_t seq = openSlot(rewrite, arg, req.frame.size());
      router.sendSplit(this, seq, std::move(plan), timeout_ms, primary_slot_);
      armed().hidden.clear();  // no policy adds commands to a multi-key request
      return;
    }
    slot = cluster::keySlot(req.args[keys[0]]);
  }
  upstream::Connection* conn = router.connection(slot, primary_slot_);
  if (!conn->accepting()) {
    replyUnavailable(conn->unavailableError());
    return;
  }
  const std::string_view bytes = wireBytes(req);
  router.send(this, openSlot(rewrite, arg, bytes.size()), slot, bytes, timeout_ms, primary_slot_);
  Armed& a = armed();
  if (!a.hidden.empty()) [[unlikely]] {
    sendHidden(a.hidden, conn);  // the same slot: the same node, behind the request
    a.hidden.clear();
  }
}

}  // namespace corral::net
