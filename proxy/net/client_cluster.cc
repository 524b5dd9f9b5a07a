// Client: a request on its way to a Redis Cluster (upstream.cluster). Its keys' slot picks the
// node; keys across slots are split per slot when the command allows it (MGET, MSET, DEL,
// UNLINK, EXISTS, TOUCH), else refused with Redis's own CROSSSLOT; no keys: any primary.
// Redirects and retries are the router's (cluster_router.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>

#include "commands/command_table.h"
#include "proxy/cluster/expose.h"
#include "proxy/cluster/fanout.h"
#include "proxy/cluster/slot.h"
#include "proxy/cluster/split.h"
#include "proxy/net/client.h"
#include "proxy/net/cluster_router.h"
#include "proxy/net/worker.h"

namespace corral::net {

namespace {
// Shard channels are not keys in the command table (their key specs say "not a key"), but a
// cluster places them by slot like keys: SPUBLISH's channel, SSUBSCRIBE's and SUNSUBSCRIBE's.
bool shardChannels(const commands::CommandInfo& cmd, size_t nargs, std::vector<uint32_t>& out) {
  if (cmd.name == "spublish") {
    if (nargs >= 2) out.push_back(1);
    return true;
  }
  if (cmd.name == "ssubscribe" || cmd.name == "sunsubscribe") {
    for (size_t i = 1; i < nargs; ++i) out.push_back(static_cast<uint32_t>(i));
    return true;
  }
  return false;
}

// The key indexes a cluster routes the request by (into worker.clusterKeys()): false when the
// arguments are malformed for key extraction.
bool routingKeys(const commands::CommandInfo& cmd, const codec::Request& req,
                 std::vector<uint32_t>& keys) {
  keys.clear();
  if (shardChannels(cmd, req.args.size(), keys)) return true;
  return commands::extractKeys(cmd, req.args, keys);
}

}  // namespace

void Client::forwardToCluster(const commands::CommandInfo* cmd, const codec::Request& req,
                              int64_t timeout_ms, Rewrite rewrite, int64_t arg) {
  ClusterRouter& router = *worker_.cluster();
  if (user_pool_ != nullptr) {
    // The router's connections are logged in as corral: running this client's commands there
    // would bypass its own user's ACL. Not done until per-user node pools exist.
    replyUnavailable(
        "-ERR corral: commands as the app's own Redis user are not supported with "
        "upstream.cluster yet (use auth.users, or no AUTH)\r\n");
    return;
  }
  // A RESP3 client's requests go on the nodes' RESP3 connections: Redis encodes its replies.
  const bool resp3 = proto_ == 3;
  std::vector<uint32_t>& keys = worker_.clusterKeys();
  keys.clear();
  if (cmd != nullptr && !routingKeys(*cmd, req, keys)) keys.clear();
  if (keys.empty() && forwardKeyless(cmd, req, timeout_ms, rewrite, arg)) return;
  int slot = -1;
  if (!keys.empty()) {
    if (keys.size() > 1) {
      // Split per slot when the command allows it (false: one slot after all), else Redis's
      // CROSSSLOT when the keys span slots.
      cluster::SplitPlan& plan = router.scratchPlan();
      if (cluster::splittable(req.args[0])) {
        if (cluster::splitBySlot(req.args, &plan, req.is_inline ? std::string_view() : req.frame)) {
          const uint64_t seq = openSlot(rewrite, arg, req.frame.size());
          router.sendSplit(this, seq, plan, timeout_ms, primary_slot_, resp3);
          sendHiddenBySlot();  // a policy's follow-ups (lease revocations, TTLs) per key
          return;
        }
      } else if (cluster::crossSlot(req.args, keys)) {
        replyUnavailable(cluster::kCrossSlotError);  // counted as an error, as Redis's is
        return;
      }
    }
    slot = cluster::keySlot(req.args[keys[0]]);
  }
  // An owner whose connection is down: the router answers its unavailable error at once
  // and asks for the map (a primary that dies sends no MOVED).
  // Reads may go to a replica of the slot's shard: read_from, or a policy's route.
  bool replica = false;
  if (commands::readsOnly(cmd)) {
    const int8_t route = armed().route;
    const config::ReadFrom from = route == Armed::kRouteDefault ? router.readFrom()
                                  : route == Armed::kRoutePrimary
                                      ? config::ReadFrom::kPrimary
                                      : static_cast<config::ReadFrom>(route);
    replica = from != config::ReadFrom::kPrimary;
  }
  const std::string_view bytes = wireBytes(req);
  router.send(this, openSlot(rewrite, arg, bytes.size()), slot, bytes, timeout_ms, primary_slot_,
              resp3, replica);
  if (!armed().hidden.empty()) [[unlikely]]
    sendHiddenBySlot();  // behind it, on its node
}

bool Client::forwardKeyless(const commands::CommandInfo* cmd, const codec::Request& req,
                            int64_t timeout_ms, Rewrite rewrite, int64_t arg) {
  ClusterRouter& router = *worker_.cluster();
  const bool resp3 = proto_ == 3;
  if (req.args.size() == 2 && worker_.upstreamConfig().cluster->expose &&
      commands::equalsIgnoreCase(req.args[0], "cluster") && exposeCluster(req.args[1])) {
    return true;
  }
  // Keyspace-wide: SCAN walks the shards one after the other; DBSIZE, KEYS, FLUSHALL and the
  // like go to every primary and their replies are merged (proxy/cluster/split.h).
  if (cmd != nullptr && cmd->name == "scan" && req.args.size() >= 2) {
    const uint64_t seq = openSlot(rewrite, arg, req.frame.size());
    router.sendScan(this, seq, req.args, timeout_ms, primary_slot_, resp3);
    armed().hidden.clear();
    return true;
  }
  cluster::Merge merge;
  if (!cluster::fanOut(req.args, &merge)) return false;
  cluster::SplitPlan& plan = router.scratchPlan();
  router.planEveryPrimary(wireBytes(req), merge, &plan);
  if (plan.fragments.empty()) {
    replyUnavailable("-ERR corral: cluster slot map not known yet\r\n");
    return true;
  }
  const uint64_t seq = openSlot(rewrite, arg, req.frame.size());
  router.sendSplit(this, seq, plan, timeout_ms, primary_slot_, resp3);
  armed().hidden.clear();
  return true;
}

}  // namespace corral::net

namespace corral::net {

bool Client::exposeCluster(std::string_view sub) {
  const bool slots = commands::equalsIgnoreCase(sub, "slots");
  const bool shards = commands::equalsIgnoreCase(sub, "shards");
  const bool nodes = commands::equalsIgnoreCase(sub, "nodes");
  if (!slots && !shards && !nodes) return false;
  // corral as a one-node cluster at the address this client reached it on, so a cluster-aware
  // client sends everything here. The node id stays the same for the process's life.
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
      port = ntohs(a->sin_port);
      host = buf;
    } else if (ss.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
      port = ntohs(a->sin6_port);
      host = buf;
    }
  }
  char id[41];
  std::snprintf(id, sizeof(id), "%040llx",
                static_cast<unsigned long long>(worker_.shared().started_ms) ^ 0xc0a1ULL);
  std::string out;
  if (slots) cluster::exposeSlots(host, port, id, &out, proto_ == 3);
  if (shards) cluster::exposeShards(host, port, id, proto_ == 3, &out);
  if (nodes) cluster::exposeNodes(host, port, id, &out, proto_ == 3);
  worker_.stats().local_replies.add();
  replyLocal(out);
  return true;
}

void Client::sendHiddenBySlot() {
  Armed& a = armed();
  if (a.hidden.empty()) return;
  // Each follow-up names its own keys (one hash tag per data key): the owner of its first key.
  // A request and its follow-ups of one slot share a connection, in order, and a MOVED or ASK
  // that turns the request away turns them away too, in the same order.
  codec::RequestParser parser;
  codec::Request one;
  std::vector<uint32_t> keys;
  for (size_t i = 0; i < a.hidden.size(); ++i) {
    const std::string_view bytes = a.hidden.command(i);
    int slot = -1;
    if (parser.parse(bytes.data(), bytes.size(), one).status == codec::ParseStatus::kComplete &&
        !one.args.empty()) {
      if (const commands::CommandInfo* c = commands::lookup(one.args);
          c != nullptr && routingKeys(*c, one, keys) && !keys.empty()) {
        slot = cluster::keySlot(one.args[keys[0]]);
      }
    }
    // Through the router, on the connection the request (or its parts) went on, RESP2 or
    // RESP3: behind it, and redirected behind it when a slot moves (a lost EXPIRE would leave
    // the key without its TTL).
    worker_.cluster()->send(worker_.policies().followupSink(), 0, slot, bytes, 0, primary_slot_,
                            proto_ == 3);
  }
  a.hidden.clear();
}

int Client::clusterSlotOf(const commands::CommandInfo* cmd, const codec::Request& req) {
  if (cmd == nullptr) return -1;
  std::vector<uint32_t>& keys = worker_.clusterKeys();
  if (!routingKeys(*cmd, req, keys) || keys.empty()) return -1;
  if (keys.size() > 1 && cluster::crossSlot(req.args, keys)) return -2;
  return cluster::keySlot(req.args[keys[0]]);
}

namespace {
// A transaction whose connection went to "any primary" at MULTI moves to the owner of its first
// key: what it sent before (MULTI and keyless commands) is sent again there, unseen.
bool rebindable(int bound_slot, bool in_multi) { return bound_slot < 0 && in_multi; }

// How many commands `bytes` holds (whole RESP multibulk frames, as corral sent them).
uint32_t countFrames(std::string_view bytes) {
  codec::RequestParser parser;
  codec::Request one;
  uint32_t n = 0;
  while (!bytes.empty()) {
    const codec::ParseResult r = parser.parse(bytes.data(), bytes.size(), one);
    if (r.status != codec::ParseStatus::kComplete || r.consumed == 0) break;
    bytes.remove_prefix(r.consumed);
    ++n;
  }
  return n;
}
}  // namespace

bool Client::clusterElsewhere(const commands::CommandInfo* cmd, CommandKind kind,
                              const codec::Request& req) {
  if (st_.link != Link::kPush || proto_ != 3 || st_.tx != Tx::kNone || monitoring_ ||
      kind != CommandKind::kForward || dedicated_ == nullptr) {
    return false;
  }
  if (extras_ != nullptr && extras_->tracking_redirect >= 0) return false;
  const int slot = clusterSlotOf(cmd, req);
  if (slot == -1) return false;  // no key: on the dedicated connection, as before
  return slot == -2 || worker_.cluster()->ownerText(slot) != dedicated_->addrText();
}

bool Client::clusterWaits(const commands::CommandInfo* cmd, CommandKind kind,
                          const codec::Request& req) {
  if (dedicated_ == nullptr) return false;
  if (st_.link == Link::kPush && proto_ == 3) {
    // The dedicated connection's frames pair with the head of pending_: it never carries a
    // request while one is due from a shared connection, nor the other way round.
    if (clusterElsewhere(cmd, kind, req)) return !pending_.empty();
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (!(pending_[i].flags & kOnDedicated)) return true;
    }
    return false;
  }
  if (!rebindable(dedicated_slot_, inMulti())) return false;
  const int slot = clusterSlotOf(cmd, req);
  if (slot < 0) return false;
  ClusterRouter& router = *worker_.cluster();
  if (router.ownerText(slot) == dedicated_->addrText()) return false;
  return !pending_.empty();  // the MULTI's own reply must be in before its connection goes
}

bool Client::clusterRouteDedicated(const commands::CommandInfo* cmd, CommandKind kind,
                                   const codec::Request& req) {
  if (req.args.size() == 2 && worker_.upstreamConfig().cluster->expose &&
      commands::equalsIgnoreCase(req.args[0], "cluster") && exposeCluster(req.args[1])) {
    return false;  // answered by corral (a RESP3 client's CLUSTER SLOTS, say)
  }
  // Redis's own answers come first: a wrong arity, and (RESP2 subscribed) the context error.
  if (cmd == nullptr || !commands::arityOk(*cmd, req.args.size())) return true;
  const bool shard_pubsub = cmd->name == "ssubscribe" || cmd->name == "sunsubscribe";
  const int slot = clusterSlotOf(cmd, req);
  if (slot == -1) return true;  // no key: wherever the connection is
  if (st_.link == Link::kSubscribed && !shard_pubsub) {
    // The node answers the context error for its own slots; for another node's it would say
    // MOVED (a cluster checks the slot first), so corral says what one Redis would.
    if (slot >= 0 && dedicated_ != nullptr &&
        worker_.cluster()->ownerText(slot) == dedicated_->addrText()) {
      return true;
    }
    contextError(req);
    return false;
  }
  if (clusterElsewhere(cmd, kind, req)) {
    forwardToCluster(cmd, req, 0, Rewrite::kNone, 0);  // nothing else is due (clusterWaits)
    return false;
  }
  const bool in_multi = inMulti();
  auto refuse = [&](std::string_view error) {
    if (in_multi) st_.tx = Tx::kMultiDirty;  // a transaction that queued it cannot run
    replyUnavailable(error);
    return false;
  };
  if (slot == -2) return refuse(cluster::kCrossSlotError);
  const std::string& owner = worker_.cluster()->ownerText(slot);
  const bool same_node = dedicated_ != nullptr && owner == dedicated_->addrText();
  if (!same_node && dedicated_ != nullptr && rebindable(dedicated_slot_, in_multi) &&
      pending_.empty()) {
    std::string_view error;
    std::unique_ptr<upstream::Connection> moved =
        worker_.acquireDedicated(user_pool_, db_, id_, this, &error, slot, proto_ == 3);
    if (moved == nullptr) return refuse(error);
    std::unique_ptr<upstream::Connection> old = std::move(dedicated_);
    old->setPipe(nullptr);
    worker_.releaseDedicated(this, std::move(old));
    dedicated_ = std::move(moved);
    // The transaction so far, again: MULTI and what was queued (each QUEUED reply unseen).
    std::string prefix;
    if (extras_ != nullptr) prefix.swap(extras_->tx_prefix);
    if (prefix.empty()) prefix = "*1\r\n$5\r\nMULTI\r\n";
    const uint32_t frames = countFrames(prefix);
    sendDedicatedRaw(prefix, kHidden | kOnDedicated, Rewrite::kNone, 0, 0, frames);
    dedicated_slot_ = slot;
    return true;
  }
  if (in_multi) {
    // A slot of the same node: queued, and the node itself answers EXEC with CROSSSLOT, as it
    // would for a direct client. Another node's: the node would say MOVED, so corral says
    // CROSSSLOT now and the transaction aborts.
    if (dedicated_slot_ >= 0) return same_node || refuse(cluster::kCrossSlotError);
    dedicated_slot_ = slot;  // on its owner already (a move waits for pending replies)
    if (extras_ != nullptr) extras_->tx_prefix.clear();
    return true;
  }
  // Outside a transaction (WATCH, RESP3, tracking, MONITOR): any slot of the connection's node.
  if (same_node) {
    if (dedicated_slot_ < 0) dedicated_slot_ = slot;
    return true;
  }
  std::string e = "-ERR corral: this connection is held on cluster node ";
  e += dedicated_ != nullptr ? dedicated_->addrText() : std::string("?");
  e += " (WATCH, a blocking command, RESP3, tracking or MONITOR); slot ";
  e += std::to_string(slot);
  e += " is served by ";
  e += owner;
  e += "\r\n";
  return refuse(e);
}

}  // namespace corral::net
