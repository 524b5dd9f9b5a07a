#include "proxy/net/passthrough.h"

#include <algorithm>

#include "proxy/codec/resp.h"
#include "proxy/net/client.h"
#include "proxy/net/log.h"

namespace corral::net {
namespace {

// The RESET sent behind each check: its reply is dropped.
constexpr uint64_t kResetSeq = 0;

// A user name as it may appear in logs and error replies (it is not a secret: Redis shows it in
// CLIENT LIST): printable ASCII, capped.
std::string printableUser(std::string_view user) {
  std::string out;
  for (char ch : user.substr(0, 64)) out.push_back(ch >= '!' && ch <= '~' ? ch : '?');
  if (user.size() > 64) out.append("...");
  return out;
}

}  // namespace

std::string authRequest(bool one_arg, std::string_view user, std::string_view password) {
  std::string out;
  if (one_arg) {
    codec::appendCommand(out, {"AUTH", password});
  } else {
    codec::appendCommand(out, {"AUTH", user, password});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// AuthChecks

AuthChecks::AuthChecks(upstream::LoopContext& loop, const config::UpstreamConfig& up,
                       const config::Limits& limits, uint32_t max_checks, VerdictCache& cache,
                       Stats::Worker& stats)
    : loop_(loop),
      up_(up),
      limits_(limits),
      max_checks_(std::max<uint32_t>(1, max_checks)),
      cache_(cache),
      stats_(stats),
      addr_(up.primary) {
  // Logged in as nobody: no AUTH, no SELECT, and no PING (which NOAUTH would fail) at connect.
  addr_.user.clear();
  addr_.password.clear();
  addr_.db = 0;
  addr_.text = config::endpointText(up.primary.addr) + " (auth check)";
}

AuthChecks::~AuthChecks() = default;

upstream::Connection& AuthChecks::connection() {
  if (conn_ == nullptr) {
    conn_ = std::make_unique<upstream::Connection>(loop_, addr_, up_, limits_, false);
    conn_->handshakeWithoutPing();
    conn_->start();
  }
  return *conn_;
}

bool AuthChecks::check(const Sha256Digest& key, bool one_arg, std::string_view user,
                       std::string_view password, Client* waiter, std::string* error) {
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    checks_[it->second].waiters.push_back(waiter);  // the same question is already asked
    return true;
  }
  upstream::Connection& c = connection();
  if (!c.accepting()) {
    *error = c.unavailableError();
    return false;
  }
  const uint64_t id = next_id_++;
  Check& ch = checks_[id];
  ch.key = key;
  ch.request = authRequest(one_arg, user, password);
  ch.waiters.push_back(waiter);
  by_key_[key] = id;
  queued_.push_back(id);
  pump();
  return true;
}

void AuthChecks::pump() {
  while (!queued_.empty() && in_flight_ < max_checks_) {
    const uint64_t id = queued_.front();
    upstream::Connection& c = connection();
    if (!c.accepting()) {
      // Down since these were queued: they are answered now, not left to wait for a recovery.
      queued_.pop_front();
      finish(id, c.unavailableError());
      continue;
    }
    queued_.pop_front();
    Check& ch = checks_[id];
    ++in_flight_;
    stats_.auth_checks.add();
    c.enqueue(this, id, ch.request);
    // Back to the default user at once: this connection never stays logged in as an app (an
    // ACL DELUSER of that app would otherwise cut it, and every check in flight with it).
    c.enqueue(this, kResetSeq, "*1\r\n$5\r\nRESET\r\n");
    std::string().swap(ch.request);  // the password leaves corral's memory with the request
  }
}

void AuthChecks::onUpstreamReply(uint64_t seq, std::string_view reply) {
  if (seq == kResetSeq) return;
  if (in_flight_ > 0) --in_flight_;
  finish(seq, reply);
  // A reply of Redis frees a place; an error of the connection itself (it is failing all it
  // holds right now) does not send more into it: tick() moves the queue on.
  if (!reply.starts_with("-ERR corral: ")) pump();
}

void AuthChecks::finish(uint64_t id, std::string_view reply) {
  auto it = checks_.find(id);
  if (it == checks_.end()) return;
  Check ch = std::move(it->second);
  checks_.erase(it);
  by_key_.erase(ch.key);
  cache_.put(ch.key, reply, loop_.now_ms);
  for (Client* w : ch.waiters) w->onAuthVerdict(ch.key, reply);
}

void AuthChecks::tick() {
  if (conn_ != nullptr) conn_->tick();
  pump();
}

void AuthChecks::shutdown() {
  if (conn_ != nullptr) conn_->shutdown();  // fails what is in flight (onUpstreamReply)
  const std::string error = upstream::upstreamError(addr_.text, "unavailable");
  while (!queued_.empty()) {
    const uint64_t id = queued_.front();
    queued_.pop_front();
    finish(id, error);
  }
}

// ---------------------------------------------------------------------------------------------
// UserPools

UserPools::UserPools(upstream::LoopContext& loop, const config::UpstreamConfig& up,
                     const config::Limits& limits, const config::PassthroughConfig& cfg,
                     Stats::Worker& stats,
                     std::vector<std::unique_ptr<upstream::Connection>>& retired)
    : loop_(loop), up_(up), limits_(limits), cfg_(cfg), stats_(stats), retired_(retired) {}

UserPools::~UserPools() = default;

bool UserPools::idle(const Pool& p) const {
  if (p.refs != 0) return false;
  for (const auto& [db, conns] : p.dbs) {
    for (const auto& c : conns) {
      if (c->inflight() != 0) return false;
    }
  }
  return true;
}

UserPools::Pool* UserPools::acquire(const Sha256Digest& key, bool one_arg, std::string_view user,
                                    std::string_view password, int64_t now_ms) {
  for (auto& p : pools_) {
    if (p->key == key) {
      ++p->refs;
      return p.get();
    }
  }
  if (pools_.size() >= std::max<uint32_t>(1, cfg_.max_users)) {
    size_t victim = pools_.size();
    for (size_t i = 0; i < pools_.size(); ++i) {
      if (!idle(*pools_[i])) continue;
      if (victim == pools_.size() || pools_[i]->idle_since_ms < pools_[victim]->idle_since_ms) {
        victim = i;
      }
    }
    if (victim == pools_.size()) {
      stats_.auth_pools_full.add();
      return nullptr;
    }
    evict(victim);
  }
  auto p = std::make_unique<Pool>();
  p->key = key;
  p->addr = up_.primary;
  if (primary_) p->addr.addr = *primary_;
  p->addr.user = one_arg ? std::string() : std::string(user);
  p->addr.password.assign(password);
  p->addr.text =
      config::endpointText(p->addr.addr) + " user=" + printableUser(one_arg ? "default" : user);
  p->refs = 1;
  p->idle_since_ms = now_ms;
  p->serial = next_serial_++;
  pools_.push_back(std::move(p));
  stats_.auth_user_pools.set(pools_.size());
  log()->debug("user pool opened user={} pools={}", printableUser(one_arg ? "default" : user),
               pools_.size());
  return pools_.back().get();
}

void UserPools::release(Pool* pool, int64_t now_ms) {
  if (pool == nullptr || pool->refs == 0) return;
  if (--pool->refs == 0) pool->idle_since_ms = now_ms;
}

upstream::Connection* UserPools::connection(Pool& pool, int db, uint64_t slot) {
  for (auto& [d, conns] : pool.dbs) {
    if (d == db) return conns[slot % conns.size()].get();
  }
  config::UpstreamAddress addr = pool.addr;
  addr.db = db;
  std::vector<std::unique_ptr<upstream::Connection>> conns;
  for (int k = 0; k < std::max(1, cfg_.pool_size); ++k) {
    auto c = std::make_unique<upstream::Connection>(loop_, addr, up_, limits_, false);
    c->authenticateAlways();
    if (check_role_) c->checkRole();
    if (fenced_) c->setFenced(true);
    c->start();
    conns.push_back(std::move(c));
  }
  pool.dbs.emplace_back(db, std::move(conns));
  auto& made = pool.dbs.back().second;
  return made[slot % made.size()].get();
}

UserPools::Verdict UserPools::permitted(Pool& pool, AdminCommand cmd, int db, Client* waiter,
                                        std::string* denial, int64_t now_ms) {
  const auto which = static_cast<size_t>(cmd);
  Permission& p = pool.perms[which];
  if (now_ms < p.until_ms && !p.asking) {
    if (p.denial.empty()) return Verdict::kAllowed;
    *denial = p.denial;
    return Verdict::kDenied;
  }
  p.waiters.push_back(waiter);
  if (p.asking) return Verdict::kWait;
  upstream::Connection* c = connection(pool, db, 0);
  if (!c->accepting()) {
    p.waiters.pop_back();
    *denial = c->unavailableError();
    return Verdict::kDenied;
  }
  p.asking = true;
  // No client has this id (Redis counts ids up from 1): listing or killing it does nothing.
  static constexpr std::string_view kProbes[kAdminCommands] = {
      "*4\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n$2\r\nID\r\n$19\r\n9223372036854775807\r\n",
      "*4\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$2\r\nID\r\n$19\r\n9223372036854775807\r\n"};
  c->enqueue(this, pool.serial * kAdminCommands + which, kProbes[which]);
  return Verdict::kWait;
}

void UserPools::onUpstreamReply(uint64_t seq, std::string_view reply) {
  const uint64_t serial = seq / kAdminCommands;
  const size_t which = seq % kAdminCommands;
  for (auto& pool : pools_) {
    if (pool->serial != serial) continue;
    Permission& p = pool->perms[which];
    p.asking = false;
    // Redis's verdict is kept for the cache's time; an error of the connection itself
    // (unavailable, timeout) only long enough for the clients waiting now to be told it.
    const bool ours = reply.starts_with("-ERR corral: ");
    p.denial = ours || reply.starts_with("-NOPERM") ? std::string(reply) : std::string();
    p.until_ms = loop_.now_ms + (ours ? 100 : std::max<int64_t>(cfg_.cache_ttl.count(), 1000));
    std::vector<Client*> waiters;
    waiters.swap(p.waiters);
    for (Client* w : waiters) w->onWaitOver();
    return;
  }
}

void UserPools::evict(size_t i) {
  for (auto& [db, conns] : pools_[i]->dbs) {
    for (auto& c : conns) retired_.push_back(std::move(c));
  }
  pools_.erase(pools_.begin() + static_cast<std::ptrdiff_t>(i));
  stats_.auth_pool_evictions.add();
  stats_.auth_user_pools.set(pools_.size());
}

void UserPools::tick(int64_t now_ms) {
  for (size_t i = pools_.size(); i-- > 0;) {
    Pool& p = *pools_[i];
    if (idle(p) && now_ms - p.idle_since_ms >= cfg_.idle_timeout.count()) {
      evict(i);
      continue;
    }
    for (auto& [db, conns] : p.dbs) {
      for (auto& c : conns) c->tick();
    }
  }
}

void UserPools::shutdown() {
  for (auto& p : pools_) {
    for (auto& [db, conns] : p->dbs) {
      for (auto& c : conns) c->shutdown();
    }
  }
}

void AuthChecks::retarget(const config::ListenAddress& primary) {
  addr_.addr = primary;
  addr_.text = config::endpointText(primary) + " (auth check)";
  if (conn_ != nullptr) conn_->retarget(addr_);
}

void UserPools::retarget(const config::ListenAddress& primary) {
  primary_ = primary;
  check_role_ = true;
  for (auto& p : pools_) {
    p->addr.addr = primary;
    const size_t user_at = p->addr.text.find(" user=");
    p->addr.text = config::endpointText(primary) +
                   (user_at == std::string::npos ? "" : p->addr.text.substr(user_at));
    for (auto& [db, conns] : p->dbs) {
      config::UpstreamAddress addr = p->addr;
      addr.db = db;
      for (auto& c : conns) c->retarget(addr);
    }
  }
}

void UserPools::setFenced(bool on) {
  fenced_ = on;
  for (auto& p : pools_) {
    for (auto& entry : p->dbs) {
      for (auto& c : entry.second) c->setFenced(on);
    }
  }
}

}  // namespace corral::net
