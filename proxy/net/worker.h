// One event loop per worker thread, sharing nothing on the request path.
//
//   listener fd ──accept──> Client ──parse──> route ──> upstream::Connection (shared, pipelined)
//                              ^                                  │
//                              └── reply slots, in request order ─┘
//
// A loop turn (event_base_loop EVLOOP_ONCE) runs every ready callback, which only parse and
// queue bytes; then flushPhase() writes each dirty upstream once and each dirty client once, so
// many clients' requests leave in one write and many replies arrive in one read.
//
// Process-wide state (client count, counters, the limits in force) is in SharedState and is
// read with relaxed atomics or swapped whole under a mutex by the main thread.
#pragma once

#include <event2/event.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "policies/engine.h"
#include "proxy/net/armed.h"
#include "proxy/net/auth.h"
#include "proxy/net/auth_cache.h"
#include "proxy/net/cluster_board.h"
#include "proxy/net/cluster_router.h"
#include "proxy/net/command_learn.h"
#include "proxy/net/handshaker.h"
#include "proxy/net/near_cache.h"
#include "proxy/net/passthrough.h"
#include "proxy/net/stats.h"
#include "proxy/sentinel/topology.h"
#include "proxy/tls/context.h"
#include "proxy/upstream/upstream.h"
#include "proxy/wiring/policy_runtime.h"

namespace corral::net {

class Client;
class Worker;

// What the main thread shares with every worker.
struct SharedState {
  std::atomic<uint32_t> clients{0};  // connected clients, all workers
  std::atomic<uint32_t> max_clients{10000};
  // corral's client ids start far above any Redis client id, so an id in CLIENT TRACKING
  // REDIRECT can be told apart (and translated) without doubt.
  static constexpr uint64_t kFirstClientId = 1000000000000;
  std::atomic<uint64_t> next_client_id{kFirstClientId};
  upstream::IdRegistry ids;
  // upstream.sentinel: where the primary and replicas come from (proxy/sentinel's monitor, owned
  // by main; set before the workers are made). nullptr: the addresses of the config.
  sentinel::TopologyBoard* topology = nullptr;
  int64_t started_ms = 0;  // monotonic, set before the workers start
  Stats stats;
  std::unique_ptr<const Authenticator> auth;  // client AUTH (auth.mode); set before start
  // TLS contexts (null when not configured): `tls:` for tls:// listeners, `upstream.tls` for
  // rediss:// upstreams. Set before start; the main thread reloads them when their files change.
  std::unique_ptr<tls::Holder> tls_server;
  std::unique_ptr<tls::Holder> tls_upstream;
  // upstream.cluster: the slot map every worker follows (null otherwise). Set before start.
  std::unique_ptr<ClusterBoard> cluster_board;
  // The handshakes of tls:// listeners' clients (a thread; null without tls:// listeners). Set
  // before start; main stops it before the workers are freed (its callbacks post to them).
  std::unique_ptr<Handshaker> handshaker;
  // Passthrough AUTH: salted keys of credentials and Redis's verdicts on them (auth_cache.h).
  CredentialHasher credential_keys;
  std::unique_ptr<VerdictCache> verdicts;  // set before start
  // Every worker, by index; filled as they are made, before any starts (read-only then).
  std::vector<Worker*> workers;

  // Policies: counters and rate-limit buckets for the process's life, and the compiled set in
  // force. The main thread swaps the set whole (setPolicies); each worker picks it up at the
  // start of its next loop turn, so a request is decided by one set from start to end.
  policies::Registry policy_registry;
  void setPolicies(std::shared_ptr<const policies::PolicySet> set) {
    std::lock_guard<std::mutex> lock(policy_mu_);
    policy_set_ = std::move(set);
    policy_gen_.fetch_add(1, std::memory_order_release);
  }
  std::shared_ptr<const policies::PolicySet> policies() const {
    std::lock_guard<std::mutex> lock(policy_mu_);
    return policy_set_;
  }
  uint64_t policyGeneration() const { return policy_gen_.load(std::memory_order_acquire); }

  // The primary's commands, learnt once per process by the first worker whose primary
  // connection is ready (command_learn.h). Declared after the workers list and before nothing
  // that outlives it: its destructor takes the overlay off the table.
  CommandLearning commands;

 private:
  mutable std::mutex policy_mu_;
  std::shared_ptr<const policies::PolicySet> policy_set_;
  std::atomic<uint64_t> policy_gen_{0};
};

// A listening socket handed to a worker (one per worker per TCP address via SO_REUSEPORT;
// unix sockets are shared by all workers).
struct ListenSocket {
  int fd = -1;
  std::string text;
  bool tls = false;  // a tls:// listener: its clients get a TLS stream
};

class Worker {
 public:
  Worker(int index, const config::Config& cfg, SharedState& shared,
         std::vector<ListenSocket> listeners);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Thread body: runs the loop until drain finishes. start() spawns the thread.
  void start();
  void join();

  // From the main thread: apply reloadable settings (limits) / begin graceful shutdown.
  void postLimits(const config::Limits& limits);
  void postDrain(int64_t deadline_ms);
  bool finished() const { return finished_.load(std::memory_order_acquire); }

  // --- used by Client (same thread) ---
  int64_t nowMs() const { return loop_.now_ms; }
  const config::Limits& limits() const { return limits_; }
  const config::UpstreamConfig& upstreamConfig() const { return cfg_.upstream; }
  SharedState& shared() { return shared_; }
  Stats::Worker& stats() { return *stats_; }
  const std::string& redisVersion() const { return loop_.redis_version; }
  bool draining() const { return draining_; }
  // Scratch space for one recv: idle clients keep no input buffer of their own.
  char* readScratch() { return read_scratch_.get(); }
  static constexpr size_t kReadScratch = 64 * 1024;
  // Scratch string for re-encoding inline commands and local replies.
  std::string& scratch() { return scratch_; }
  // Where clients parse their requests into (valid until the next request is parsed), and
  // what the policy engine arms for the request being handled (armed.h).
  codec::Request& parsedRequest() { return parsed_; }
  Armed& armed() { return armed_; }

  // The policy engine's world on this worker: the set in force, the decision, fills, origins.
  wiring::PolicyRuntime& policies() { return *policies_; }
  // The set in force decides nothing (no policies): requests skip the engine.
  bool policiesTrivial() const { return policies_trivial_; }
  // global.unknown_commands: reject is in force (from the policy set, picked up with it).
  bool rejectUnknownCommands() const { return reject_unknown_; }

  // Chooses the shared connection for a request of a client on `db`. Reads may go to a
  // replica only on the configured db (replica pools exist for it alone).
  upstream::Connection* route(bool read_only, uint64_t client_id, int db);
  // The same with a policy's read_from instead of upstream.read_from.
  upstream::Connection* route(bool read_only, uint64_t client_id, int db, config::ReadFrom from);
  // The shared primary connection a client with this slot uses on the configured db (stable for
  // the worker's life), and whether reads may go elsewhere.
  upstream::Connection* primaryFor(uint64_t slot) const {
    return pools_[0][slot % pools_[0].size()].get();
  }
  bool hasReplicas() const { return pools_.size() > 1; }
  // upstream.cluster: the router keyed requests go through (null without a cluster), and a
  // scratch list for the keys of the request being routed.
  ClusterRouter* cluster() const { return cluster_.get(); }
  // The near cache (near_cache.h), made and connected on first use (a near policy's GET): one
  // tracking connection to the primary (single, replicas; Sentinel: following it, ROLE checked,
  // fenced with it), or with a cluster one per primary node, emptied on any slot-map change.
  NearCache& near();
  const NearCache* nearIfAny() const { return near_.get(); }
  std::vector<uint32_t>& clusterKeys() { return cluster_keys_; }
  // The db count learned from the primary (-1 when unknown: any db >= 0 is tried).
  int64_t databases() const { return loop_.databases; }
  int defaultDb() const { return cfg_.upstream.primary.db; }
  // The primary in use ("sentinel:<master>" while Sentinel has named none) and the replicas.
  const std::string& primaryText() const { return primary_addr_.text; }
  size_t replicaCount() const { return pools_.size() - 1; }
  // True when one of this worker's primary connections is connected right now.
  bool primaryReady() const {
    if (cluster_ != nullptr) return cluster_->anyReady();
    for (const auto& c : pools_[0]) {
      if (c->ready()) return true;
    }
    return false;
  }

  // A dedicated primary connection on `db` for one client, as a pipe to `owner` (session.h);
  // nullptr and *error set (RESP bytes) past upstream.max_dedicated or while the primary is
  // down. Give it back with releaseDedicated(), which closes it at the end of the loop turn
  // (never from inside one of its own callbacks).
  // `user`: the pool of the client's own credentials (passthrough), or nullptr for corral's.
  // `slot`: with a cluster, the connection goes to that slot's owner (-1: any primary).
  // `resp3`: HELLO 3 in its handshake (a RESP3 client that was on shared connections).
  std::unique_ptr<upstream::Connection> acquireDedicated(UserPools::Pool* user, int db,
                                                         uint64_t owner_id, Client* owner,
                                                         std::string_view* error, int slot = -1,
                                                         bool resp3 = false);
  void releaseDedicated(Client* owner, std::unique_ptr<upstream::Connection> conn);
  // Commands meant for a busy server (SCRIPT KILL, FUNCTION KILL, SHUTDOWN) go on a
  // connection of their own, never behind a running script on a shared one, with a deadline
  // above Redis's busy-reply-threshold (5 s by default, during which Redis answers nothing).
  static constexpr int64_t kBusyTimeoutMs = 15000;
  bool sendBusy(upstream::ReplySink* sink, uint64_t seq, std::string_view request,
                const UserPools::Pool* user);

  // Passthrough authentication (passthrough.h); only when passthrough() (auth mode passthrough).
  bool passthrough() const { return auth_checks_ != nullptr; }
  AuthChecks& authChecks() { return *auth_checks_; }
  UserPools& userPools() { return *user_pools_; }

  // Fan-out (CLIENT LIST/KILL): `each` runs on every worker's loop thread with a shared text
  // and count (under a lock), then `done` on this worker's loop with the totals.
  using FanOutEach = std::function<void(Worker&, std::string&, int64_t&)>;
  void fanOut(FanOutEach each, std::function<void(const std::string&, int64_t)> done);
  // Runs task on this worker's loop; any thread may call it.
  void post(std::function<void()> task);
  size_t workerCount() const { return shared_.workers.size(); }
  const std::vector<Client*>& clients() const { return all_clients_; }
  static std::string addressText(const sockaddr_storage& ss);  // "1.2.3.4:5", "[::1]:5", "unix"
  codec::Limits codecLimits() const;

  void markDirty(Client* c);
  void clientClosed(Client* c);  // fd closed; delete once no upstream holds it
  // A request of c waits for global rate-limit credits (Client::decidePolicies): c is told
  // (onWaitOver) when a take of this worker is back or overdue.
  void waitForLimits(Client* c) { limit_waiters_.push_back(c); }

 private:
  static void onAccept(evutil_socket_t fd, short what, void* arg);
  static void onTick(evutil_socket_t fd, short what, void* arg);
  static void onControl(evutil_socket_t fd, short what, void* arg);
  void run();
  // pool_size connections to addr; the first asks for the version when learn_version.
  // primary: with Sentinel, each checks ROLE in its handshake.
  std::vector<std::unique_ptr<upstream::Connection>> makePool(const config::UpstreamAddress& addr,
                                                              bool learn_version, bool primary);
  void acceptFrom(int fd);
  // A tls:// client's socket, to the handshake thread; then back here as a Client, or closed.
  void handOverTls(int fd);
  void onHandshake(Handshaker::Result r, const std::string& peer);
  void addClient(int fd, std::unique_ptr<tls::Stream> stream, std::string peer);
  void flushPhase();
  void reap();
  void refreshClock();
  void beginDrain(int64_t deadline_ms);
  void checkDrain();

  int index_;
  const config::Config cfg_;  // this worker's copy (upstream settings never change at runtime)
  config::Limits limits_;
  SharedState& shared_;
  Stats::Worker* stats_;
  std::vector<ListenSocket> listeners_;
  std::vector<event*> accept_events_;
  upstream::LoopContext loop_;
  event* tick_ev_ = nullptr;
  event* control_ev_ = nullptr;
  std::thread thread_;

  // Upstreams: [0] primary pool; then one pool per replica. pools_[u][k]: k-th connection.
  std::vector<std::vector<std::unique_ptr<upstream::Connection>>> pools_;
  // The primary in use: cfg_.upstream.primary, or (Sentinel) that template with the node the
  // sentinels name. Pooled connections follow it in place (retarget), so pointers stay valid.
  config::UpstreamAddress primary_addr_;

  // Sentinel (worker_topology.cc): the board's topology, picked up between loop turns.
  void makeUpstreams();  // constructor: the pools, from the config or the board
  void syncTopology();
  void applyTopology(const sentinel::Topology& t);
  void syncReplicaPools(const std::vector<config::ListenAddress>& nodes, bool start);
  void setPrimaryFenced(bool on);
  void endDedicated(std::string_view why);
  // Tick: this worker's connections by upstream address and role (Stats::Worker::upstream_nodes).
  void reportUpstreams();
  std::string upstream_label_;  // reportUpstreams' scratch
  // With Sentinel, until it names a primary the pool's address has no host: connecting fails
  // at once ("no address yet"), so requests fail fast.
  bool primary_known_ = true;
  bool fenced_ = false;  // a failover of the primary is under way: requests to it fail fast
  uint64_t topology_gen_ = 0;
  std::vector<config::ListenAddress> replica_nodes_;  // Sentinel: pools_[1 + i] serves [i]
  uint32_t replica_rr_ = 0;
  // Shared primary pools for dbs other than the configured one, made on first use.
  std::vector<std::pair<int, std::vector<std::unique_ptr<upstream::Connection>>>> db_pools_;
  std::vector<Client*> dedicated_owners_;  // clients holding a dedicated connection (tick)
  // upstream.cluster (worker_topology.cc makes it): keyed requests go by slot; pools_[0] is
  // then a pool to the first seed, for what has no key and no better place (COMMAND, INFO).
  std::unique_ptr<ClusterRouter> cluster_;
  std::unique_ptr<NearCache> near_;
  std::vector<uint32_t> cluster_keys_;
  std::vector<std::unique_ptr<upstream::Connection>> retired_;
  std::unique_ptr<AuthChecks> auth_checks_;  // passthrough only
  std::unique_ptr<UserPools> user_pools_;    // passthrough only
  struct BusyCall;                           // one SCRIPT KILL-like request on its own connection
  std::vector<std::unique_ptr<BusyCall>> busy_;

  std::vector<Client*> dirty_clients_;
  std::vector<Client*> limit_waiters_;  // waitForLimits
  std::vector<Client*> dead_clients_;
  int64_t idle_sweep_ms_ = 0;         // last time idle clients gave back their buffers
  std::vector<Client*> all_clients_;  // index kept in Client for O(1) removal
  std::unique_ptr<char[]> read_scratch_;
  std::string scratch_;
  codec::Request parsed_;
  Armed armed_;

  // Policies (see SharedState): picked up between loop turns.
  void syncPolicies();
  std::unique_ptr<wiring::PolicyRuntime> policies_;
  uint64_t policy_gen_seen_ = UINT64_MAX;
  bool policies_trivial_ = true;
  bool reject_unknown_ = false;

  // Asking the primary for its commands (SharedState::commands), from the tick.
  struct CommandAsk;
  std::unique_ptr<CommandAsk> command_ask_;
  void askCommands();

  // Control messages from the main thread.
  std::mutex control_mu_;
  bool pending_limits_ = false;
  config::Limits new_limits_;
  int64_t pending_drain_deadline_ = -1;
  std::vector<std::function<void()>> tasks_;
  bool draining_ = false;
  int64_t drain_deadline_ms_ = 0;
  std::atomic<bool> finished_{false};
  bool stop_loop_ = false;

  friend class Client;
};

}  // namespace corral::net
