// Passthrough authentication, the worker's side (README "The app's own credentials"). Redis
// checks each client's AUTH, and the client's commands then run on connections logged in as
// that user, so Redis's ACLs decide what each app may do.
//
//   AUTH [user] pw ──key (auth_cache.h)──> VerdictCache ──miss──> AuthChecks
//       one connection per worker, opened on first use and logged in as nobody: `AUTH ...`
//       then `RESET` (back to the default user) per check; at most max_checks in flight, one
//       check per key (clients giving the same credentials wait on the same one), the rest
//       queued in order; every verdict goes to the cache and to each waiting client
//   verdict +OK ──> UserPools::acquire(key) ──> the user's shared connections, per db, each
//       logged in with the client's own AUTH; a client holds its pool while it is logged in
//       as that user; pools without clients close after idle_timeout, or sooner when
//       max_users pools exist and another user needs one
//
// Nothing here ever logs or shows a password: connections are named by address and user name.
// Bounds per worker: one checking connection, max_checks checks in flight and one waiting
// check per client at most (a client waits for its verdict before sending more), max_users
// pools of pool_size connections per db the users' clients select.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"
#include "proxy/net/auth_cache.h"
#include "proxy/net/stats.h"
#include "proxy/upstream/upstream.h"

namespace corral::net {

class Client;

// The request that logs in with a client's credentials: `AUTH <pw>` or `AUTH <user> <pw>`.
std::string authRequest(bool one_arg, std::string_view user, std::string_view password);

// Checks credentials against Redis for the clients of one worker (loop thread only).
class AuthChecks final : public upstream::ReplySink {
 public:
  // `up`, `limits`, `cache` and `stats` must outlive this object.
  AuthChecks(upstream::LoopContext& loop, const config::UpstreamConfig& up,
             const config::Limits& limits, uint32_t max_checks, VerdictCache& cache,
             Stats::Worker& stats);
  ~AuthChecks();  // tells no waiter anything: the worker deletes its clients first
  AuthChecks(const AuthChecks&) = delete;
  AuthChecks& operator=(const AuthChecks&) = delete;

  // Asks Redis about key's credentials on behalf of waiter, who is told exactly once, later,
  // through Client::onAuthVerdict(key, reply) (reply: Redis's answer, or corral's upstream
  // error). False, with *error set to RESP bytes, when Redis cannot be asked now (down).
  bool check(const Sha256Digest& key, bool one_arg, std::string_view user,
             std::string_view password, Client* waiter, std::string* error);

  // Sentinel named another primary: checks go there (in flight ones fail, Redis's verdict
  // never came).
  void retarget(const config::ListenAddress& primary);
  void tick();      // the connection's timeouts and reconnects; queued checks move on
  void shutdown();  // every waiter is told the upstream is unavailable

  // upstream::ReplySink: the reply to check `seq`, or to a RESET (ignored).
  void onUpstreamReply(uint64_t seq, std::string_view reply) override;

  size_t inFlight() const { return in_flight_; }
  size_t queued() const { return queued_.size(); }

 private:
  struct Check {
    Sha256Digest key;
    std::string request;  // AUTH ...; dropped once sent
    std::vector<Client*> waiters;
  };
  void pump();  // sends queued checks while fewer than max_checks are in flight
  void finish(uint64_t id, std::string_view reply);
  upstream::Connection& connection();

  upstream::LoopContext& loop_;
  const config::UpstreamConfig& up_;
  const config::Limits& limits_;
  const uint32_t max_checks_;
  VerdictCache& cache_;
  Stats::Worker& stats_;
  config::UpstreamAddress addr_;                // the primary, without corral's credentials or db
  std::unique_ptr<upstream::Connection> conn_;  // made on the first check
  std::unordered_map<uint64_t, Check> checks_;  // by id: queued or in flight
  std::unordered_map<Sha256Digest, uint64_t, DigestHash> by_key_;
  std::deque<uint64_t> queued_;  // ids not sent yet, in order
  uint64_t next_id_ = 1;
  uint32_t in_flight_ = 0;
};

// Commands corral answers itself that act on or show other clients: a user runs them only if
// Redis's ACL would let it run them there (UserPools::permitted).
enum class AdminCommand : uint8_t { kClientList, kClientKill };
inline constexpr size_t kAdminCommands = 2;

// The shared connections of each user that clients logged in as (loop thread only). It is also
// the sink of the permission probes (UserPools::permitted) sent on them.
class UserPools final : public upstream::ReplySink {
 public:
  // Whether the user may run an AdminCommand, as Redis last said.
  struct Permission {
    int64_t until_ms = 0;  // known until then (0: never asked)
    std::string denial;    // Redis's -NOPERM reply; empty: allowed
    bool asking = false;   // a probe is in flight
    std::vector<Client*> waiters;
  };
  struct Pool {
    Sha256Digest key;
    config::UpstreamAddress addr;  // the primary with this user's credentials
    uint32_t refs = 0;             // clients logged in as this user
    int64_t idle_since_ms = 0;     // when refs last dropped to 0
    uint64_t serial = 0;           // names the pool in probes' sequence numbers
    std::vector<std::pair<int, std::vector<std::unique_ptr<upstream::Connection>>>> dbs;
    Permission perms[kAdminCommands];
  };

  // Everything passed must outlive this object; evicted connections go to `retired`, which
  // the worker closes at the end of the loop turn (never inside one of their callbacks).
  UserPools(upstream::LoopContext& loop, const config::UpstreamConfig& up,
            const config::Limits& limits, const config::PassthroughConfig& cfg,
            Stats::Worker& stats, std::vector<std::unique_ptr<upstream::Connection>>& retired);
  ~UserPools();  // tells no waiter anything: the worker deletes its clients first
  UserPools(const UserPools&) = delete;
  UserPools& operator=(const UserPools&) = delete;

  // key's pool with one more client, made if new (its connections open per db on first use).
  // At max_users, the pool idle for longest (no client, nothing in flight) is closed first;
  // nullptr when every pool is in use.
  Pool* acquire(const Sha256Digest& key, bool one_arg, std::string_view user,
                std::string_view password, int64_t now_ms);
  void release(Pool* pool, int64_t now_ms);
  // The connection for a client's slot on db, opened on first use.
  upstream::Connection* connection(Pool& pool, int db, uint64_t slot);

  // May the pool's user run `cmd`? Asks Redis with a harmless form of it sent as that user
  // (CLIENT LIST ID <none>, CLIENT KILL ID <none>): Redis checks the ACL before the arguments.
  // kWait: the probe is on its way and waiter is told through Client::onWaitOver() (exactly
  // once); kDenied: *denial is Redis's -NOPERM reply (RESP bytes), or corral's upstream error.
  // Redis's answer is kept for max(cache_ttl, 1 s); an upstream error for 100 ms.
  enum class Verdict : uint8_t { kAllowed, kDenied, kWait };
  Verdict permitted(Pool& pool, AdminCommand cmd, int db, Client* waiter, std::string* denial,
                    int64_t now_ms);
  // upstream::ReplySink: a probe's reply.
  void onUpstreamReply(uint64_t seq, std::string_view reply) override;

  // Sentinel named another primary, or a failover is under way (fenced: requests fail fast):
  // every user's connections follow, as the worker's own do (worker_topology.cc).
  void retarget(const config::ListenAddress& primary);
  void setFenced(bool on);
  void tick(int64_t now_ms);  // timeouts and reconnects; idle pools closed
  void shutdown();            // fails what is in flight; nothing may be sent any more
  size_t size() const { return pools_.size(); }

 private:
  void evict(size_t i);
  bool idle(const Pool& p) const;

  upstream::LoopContext& loop_;
  const config::UpstreamConfig& up_;
  const config::Limits& limits_;
  const config::PassthroughConfig& cfg_;
  Stats::Worker& stats_;
  std::vector<std::unique_ptr<upstream::Connection>>& retired_;
  std::vector<std::unique_ptr<Pool>> pools_;
  std::optional<config::ListenAddress> primary_;  // set by retarget(): Sentinel's primary
  bool fenced_ = false;
  bool check_role_ = false;  // with Sentinel: every connection checks ROLE (set by retarget)
  uint64_t next_serial_ = 1;
};

}  // namespace corral::net
