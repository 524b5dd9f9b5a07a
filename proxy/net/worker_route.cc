// Worker: which upstream connection a request goes to. The shared pools (per db, the primary
// and the replicas), a client's dedicated connection (as its own user under passthrough), and
// the connection of its own that a command for a busy server gets.
#include <algorithm>

#include "proxy/net/client.h"
#include "proxy/net/worker.h"
#include "proxy/net/worker_parts.h"

namespace corral::net {

std::vector<std::unique_ptr<upstream::Connection>> Worker::makePool(
    const config::UpstreamAddress& addr, bool learn_version, bool primary) {
  std::vector<std::unique_ptr<upstream::Connection>> p;
  for (int k = 0; k < std::max(1, cfg_.upstream.pool_size); ++k) {
    p.push_back(std::make_unique<upstream::Connection>(loop_, addr, cfg_.upstream, limits_,
                                                       learn_version && k == 0));
    if (primary && shared_.topology != nullptr) p.back()->checkRole();
  }
  return p;
}

upstream::Connection* Worker::route(bool read_only, uint64_t client_id, int db) {
  return route(read_only, client_id, db, cfg_.upstream.read_from);
}

upstream::Connection* Worker::route(bool read_only, uint64_t client_id, int db,
                                    config::ReadFrom read_from) {
  if (db != cfg_.upstream.primary.db) {
    for (auto& [d, pool] : db_pools_) {
      if (d == db) return pool[client_id % pool.size()].get();
    }
    // First client on this db: a pool like the primary's, whose handshake SELECTs it.
    config::UpstreamAddress addr = primary_addr_;
    addr.db = db;
    db_pools_.emplace_back(db, makePool(addr, false, true));
    for (auto& c : db_pools_.back().second) {
      c->setFenced(fenced_);
      c->start();
    }
    auto& p = db_pools_.back().second;
    return p[client_id % p.size()].get();
  }
  auto& primary = pools_[0];
  upstream::Connection* prim = primary[client_id % primary.size()].get();
  if (!read_only || pools_.size() == 1 || read_from == config::ReadFrom::kPrimary) {
    return prim;
  }
  const size_t replicas = pools_.size() - 1;
  for (size_t i = 0; i < replicas; ++i) {
    auto& pool = pools_[1 + (replica_rr_++ % replicas)];
    upstream::Connection* c = pool[client_id % pool.size()].get();
    if (c->ready()) return c;
  }
  return prim;  // no healthy replica: the primary serves reads too
}

std::unique_ptr<upstream::Connection> Worker::acquireDedicated(UserPools::Pool* user, int db,
                                                               uint64_t owner_id, Client* owner,
                                                               std::string_view* error, int slot,
                                                               bool resp3) {
  static const std::string kTooMany =
      "-ERR corral: too many dedicated upstream connections (upstream.max_dedicated)\r\n";
  if (dedicated_owners_.size() >= static_cast<size_t>(std::max(1, cfg_.upstream.max_dedicated))) {
    *error = kTooMany;
    return nullptr;
  }
  // While the primary is down a new connection would fail too: say so at once. (A user of its
  // own asks its pool: corral's credentials may be refused where the user's are not.)
  upstream::Connection* primary = cluster_ != nullptr ? cluster_->connection(slot, 0)
                                  : user != nullptr   ? user_pools_->connection(*user, db, 0)
                                                      : route(false, 0, cfg_.upstream.primary.db);
  if (!primary->accepting()) {
    *error = primary->unavailableError();
    return nullptr;
  }
  // Logged in as the client's own user when it gave one (passthrough): Redis's ACLs apply.
  config::UpstreamAddress addr = cluster_ != nullptr ? cluster_->ownerAddress(slot) : primary_addr_;
  if (user != nullptr) {
    addr.user = user->addr.user;
    addr.password = user->addr.password;
    addr.text = user->addr.text;
  }
  addr.db = db;
  auto conn = std::make_unique<upstream::Connection>(loop_, addr, cfg_.upstream, limits_, false,
                                                     /*reconnect=*/false, owner_id);
  if (user != nullptr) conn->authenticateAlways();
  if (shared_.topology != nullptr) conn->checkRole();
  if (resp3) conn->resp3();
  conn->setPipe(owner);
  conn->start();
  dedicated_owners_.push_back(owner);
  stats_->dedicated.set(dedicated_owners_.size());
  return conn;
}

void Worker::releaseDedicated(Client* owner, std::unique_ptr<upstream::Connection> conn) {
  if (conn == nullptr) return;
  auto it = std::find(dedicated_owners_.begin(), dedicated_owners_.end(), owner);
  if (it != dedicated_owners_.end()) dedicated_owners_.erase(it);
  stats_->dedicated.set(dedicated_owners_.size());
  retired_.push_back(std::move(conn));
}

bool Worker::sendBusy(upstream::ReplySink* sink, uint64_t seq, std::string_view request,
                      const UserPools::Pool* user) {
  constexpr size_t kMaxBusyCalls = 16;
  if (busy_.size() >= kMaxBusyCalls) return false;
  // db 0 and no CLIENT ID or INFO: only AUTH, which Redis still runs while a script is busy.
  // As the client's own user when it gave one: SHUTDOWN is Redis's to allow, not corral's.
  config::UpstreamAddress addr = primary_addr_;
  if (user != nullptr) {
    addr.user = user->addr.user;
    addr.password = user->addr.password;
    addr.text = user->addr.text;
  }
  addr.db = 0;
  auto call = std::make_unique<BusyCall>();
  call->sink = sink;
  call->seq = seq;
  call->conn = std::make_unique<upstream::Connection>(loop_, addr, cfg_.upstream, limits_, false,
                                                      /*reconnect=*/false, 0);
  call->conn->handshakeWithoutPing();
  if (user != nullptr) call->conn->authenticateAlways();
  call->conn->start();
  call->conn->enqueue(call.get(), 0, request, kBusyTimeoutMs);
  busy_.push_back(std::move(call));
  return true;
}

}  // namespace corral::net
