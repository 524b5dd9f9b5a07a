// Data-path connections to Redis: pipelined, shared by many clients, replies forwarded verbatim.
//
//   client request bytes --enqueue()--> out_ --(one write per loop turn)--> Redis
//   Redis --> in_ --ReplyParser--> inflight_.front().sink->onUpstreamReply(seq, bytes)
//
// Every request enqueued here gets exactly one onUpstreamReply: Redis's reply, or a
// `-ERR corral: upstream <addr> unavailable|timeout` when the connection fails, or
// `-ERR corral: reply too large (limits.max_reply_bytes)` when Redis's reply is (it is dropped as
// it arrives; the connection stays in step). Replies come back in the order requests were sent
// (Redis answers a connection in order), so the inflight FIFO pairs them. The command timeout
// clock starts when a request's last byte is written.
//
// Life of a connection:
//
//   kIdle --connectNow--> kConnecting --TCP up--> kHandshake --AUTH, SELECT OK--> kReady
//     ^                        |                       |                            |
//     └─── backoff ────────────┴── failure ────────────┴────── failure ─────────────┘
//
// (With neither AUTH nor SELECT to send, a PING is the handshake: it is what shows NOAUTH.)
// Only a handshake that succeeded makes the connection ready() and resets the backoff, so a
// wrong password retries with exponential backoff (reconnect_backoff.min..max, jittered) and is
// logged once per change of reason, then reminded at most every 30 s with a count.
#pragma once

#include <event2/event.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "proxy/codec/buffer.h"
#include "proxy/codec/resp.h"
#include "proxy/codec/ring.h"
#include "proxy/tls/context.h"
#include "proxy/tls/stream.h"
#include "proxy/upstream/resolve.h"

namespace corral::upstream {

// Receives the reply to one request. Implemented by the client session; the upstream holds a
// raw pointer until it delivers the reply, so a sink must outlive its in-flight requests (the
// client keeps a count and defers its own deletion).
class ReplySink {
 public:
  virtual void onUpstreamReply(uint64_t seq, std::string_view reply) = 0;

 protected:
  ~ReplySink() = default;
};

class Connection;

// Sequence numbers of what a pipe-mode connection delivers (see Connection::setPipe).
inline constexpr uint64_t kPipeFrame = UINT64_MAX;       // a frame, in arrival order
inline constexpr uint64_t kPipeClosed = UINT64_MAX - 1;  // the connection is gone (empty view)

// corral client id -> the upstream client id of that client's dedicated connection, and the
// server it is on (ids are per server: a cluster has several), for every worker (CLIENT
// TRACKING ... REDIRECT and CLIENT UNBLOCK name a client by the id corral gave it). Locked: used
// only when a dedicated connection starts or ends and on a REDIRECT or UNBLOCK.
class IdRegistry {
 public:
  void set(uint64_t corral_id, uint64_t upstream_id, const std::string& server = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    map_[corral_id] = upstream_id;
    servers_[corral_id] = server;
  }
  // The server (address text) the client's dedicated connection is on; "" when unknown.
  std::string server(uint64_t corral_id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = servers_.find(corral_id);
    return it == servers_.end() ? std::string() : it->second;
  }
  void erase(uint64_t corral_id) {
    std::lock_guard<std::mutex> lock(mu_);
    map_.erase(corral_id);
    servers_.erase(corral_id);
  }
  bool get(uint64_t corral_id, uint64_t& upstream_id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(corral_id);
    if (it == map_.end()) return false;
    upstream_id = it->second;
    return true;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, uint64_t> map_;
  std::unordered_map<uint64_t, std::string> servers_;
};

// Process-wide counters of every worker's upstream connections, for /metrics. Touched only when
// a handshake fails or a reply is too large, never per request: a relaxed atomic add is cheap
// enough there, and admin reads them without a lock.
struct Counters {
  std::atomic<uint64_t> handshake_failures{0};  // AUTH/SELECT refused (NOAUTH, WRONGPASS, ...)
  std::atomic<uint64_t> replies_too_large{0};   // replies dropped at limits.max_reply_bytes
  std::atomic<uint64_t> not_primary{0};         // checkRole(): ROLE named another role than master
  std::atomic<uint64_t> tls_failures{0};        // TLS handshakes or records refused
  std::atomic<uint64_t> tls_resumed{0};         // TLS handshakes that resumed a session
};
Counters& counters();

// Per-worker state shared by its upstream connections: the loop, its cached clock and the list
// of connections with bytes to write at the end of this loop turn.
struct LoopContext {
  event_base* base = nullptr;
  evdns_base* dns = nullptr;  // host names of upstreams (resolve.h)
  // upstream.tls: the context for rediss:// upstreams (null when none is configured), and the
  // TLS session last agreed with each server (by address text), resumed on reconnect.
  tls::Holder* tls = nullptr;
  std::unordered_map<std::string, std::unique_ptr<SSL_SESSION, void (*)(SSL_SESSION*)>>
      tls_sessions;
  int64_t now_ms = 0;  // monotonic, refreshed once per loop turn
  int64_t now_us = 0;  // precise monotonic, refreshed when a socket becomes readable
  std::vector<Connection*> dirty;
  IdRegistry* ids = nullptr;  // process-wide; set by the worker
  int64_t databases = -1;     // CONFIG GET databases at the handshake; -1 when not known
  std::string redis_version;  // learned from the primary's INFO during the handshake
  // Called (on this loop) when a connection that checks ROLE finds a server that is not the
  // primary: with Sentinel, the worker asks for the topology again (proxy/sentinel).
  std::function<void()> on_not_primary;
};

class Connection {
 public:
  enum class State : uint8_t { kIdle, kConnecting, kHandshake, kReady };

  // learn_version: ask INFO/CONFIG for the version and db count (one primary connection).
  // reconnect: false for a client's dedicated connection, whose server-side state (MULTI, a
  // blocked pop) dies with the socket: it stays down and its owner lets it go.
  // `limits` is read as it changes (a reload): it must outlive the connection.
  Connection(LoopContext& ctx, const config::UpstreamAddress& addr,
             const config::UpstreamConfig& cfg, const config::Limits& limits, bool learn_version,
             bool reconnect = true, uint64_t owner_id = 0);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Before start(): no PING in the handshake. For a connection whose one request must reach a
  // server busy with a script (SCRIPT KILL and the like): Redis answers nothing but such
  // commands (and AUTH) until the script ends, so a PING would hold the handshake.
  void handshakeWithoutPing() { handshake_ping_ = false; }
  // Before start(): AUTH even with an empty password (a client's own credentials in
  // passthrough mode: `AUTH app ""` is a valid login for a user with nopass, and skipping it
  // would log the connection in as the default user instead).
  void authenticateAlways() { auth_always_ = true; }

  // Before start(), with Sentinel: the handshake also asks ROLE, and nothing of a client's is
  // written before the server has said it is the primary. Any other answer fails the handshake
  // (backoff, counted in Counters::not_primary, logged) and calls ctx.on_not_primary.
  void checkRole() { check_role_ = true; }
  // Before start(), for a Redis Cluster replica: READONLY in the handshake, so it serves reads
  // of its primary's slots (harmless on a primary).
  void readOnly() { read_only_ = true; }
  // Before start(): HELLO 3 in the handshake (after AUTH), so replies come in RESP3 for clients
  // that speak it (Redis Cluster node pools and dedicated connections of RESP3 clients).
  void resp3() { resp3_ = true; }
  // Before start(), with resp3(): `CLIENT TRACKING ON` in the handshake, and RESP3 push frames
  // ('>', the invalidations) go to `push_sink` as onUpstreamReply(0, frame), never paired with
  // a request. `on_reset` is called whenever the connection is lost: invalidations are missed
  // from then on (the near cache, issue 12). Reads queued while it connects are sent after
  // CLIENT TRACKING ON, so they are tracked; while it is down nothing is accepted.
  void tracking(ReplySink* push_sink, std::function<void()> on_reset) {
    tracking_ = true;
    push_sink_ = push_sink;
    on_reset_ = std::move(on_reset);
  }
  // Points a pooled connection at another server (Sentinel named a new primary): it closes now,
  // what was in flight gets the old address's unavailable error (never retried: a write may have
  // run there), and it connects to addr at once with a fresh backoff.
  void retarget(const config::UpstreamAddress& addr);
  // While fenced (a failover of this server is under way), accepting() is false, so new
  // requests fail fast; what is already queued or in flight completes. Lasts across reconnects.
  void setFenced(bool on);
  // Closes now: what is in flight gets the unavailable error; a dedicated connection tells its
  // owner (kPipeClosed), a pooled one reconnects after backoff. `reason` is for the log.
  void drop(std::string_view reason);

  // Starts connecting (from kIdle). Called once at startup; later the connection reconnects
  // by itself with jittered backoff.
  void start();

  // True when requests may be enqueued: connected, or connecting for the first time (requests
  // wait for the connection up to connect_timeout). False while down (from a failure until a
  // handshake succeeds again): callers fail fast.
  bool accepting() const { return !down_; }
  // Connected and past its handshake (AUTH, SELECT): what /ready and replica routing count.
  bool ready() const { return state_ == State::kReady; }
  const std::string& addrText() const { return addr_.text; }
  // "-ERR corral: upstream <addr> unavailable\r\n", for callers that fail fast.
  const std::string& unavailableError() const { return error_unavailable_; }

  // Queues one request (its RESP bytes) to be written at the end of the loop turn; `sink`
  // receives exactly one reply for `seq`. Requires accepting(). timeout_ms: 0 = the configured
  // command_timeout; > 0 its own (a blocking command's block time plus a margin); < 0 none.
  void enqueue(ReplySink* sink, uint64_t seq, std::string_view request, int64_t timeout_ms = 0);

  // Pipe mode, for a client's dedicated connection (set before start): after corral's own
  // handshake replies, every frame goes to `sink` as onUpstreamReply(kPipeFrame, frame) in
  // arrival order, and the end of the connection as onUpstreamReply(kPipeClosed, {}). Requests
  // are queued with enqueueRaw(): the sink pairs replies and keeps deadlines itself (the client
  // session, proxy/net/client_dedicated.cc).
  // setPipe(nullptr) detaches the owner: frames still arriving are dropped.
  void setPipe(ReplySink* sink) {
    pipe_sink_ = sink;
    if (sink != nullptr) pipe_ = true;
  }
  void enqueueRaw(std::string_view request);

  // Writes queued bytes (called by the worker once per loop turn for each dirty connection).
  void flush();

  // Periodic check (worker tick): command and connect timeouts, reconnect when due.
  void tick();

  // Fails every in-flight request and closes; used at shutdown.
  void shutdown();

  size_t inflight() const { return inflight_.size(); }

 private:
  struct Inflight {
    ReplySink* sink;      // nullptr: corral's own handshake command
    uint64_t seq;         // the sink's sequence number (handshake: which step)
    uint64_t end_offset;  // cumulative out-byte offset of the request's end
    int64_t sent_ms;      // when its last byte was written; -1 until then
    int64_t timeout_ms;   // as given to enqueue()
  };

  static void onEvent(evutil_socket_t fd, short what, void* arg);
  void onReadable();
  void onWritable();
  void onConnected();
  void onHandshakeDone();
  void connectNow();
  void connectTo(const SockAddr& addr);
  enum class Then : uint8_t { kBackoff, kReconnect, kStay };
  // Closes the socket and fails every in-flight request with `why` ("unavailable" or
  // "timeout"), then backs off (the server is down, or refused the handshake: `reason` says
  // which, for the log), reconnects at once, or stays closed.
  void fail(std::string_view why, Then then, std::string_view reason = {});
  // Logs a failure that makes the connection back off: once per change of reason, then at most
  // every kFailureLogEvery with how many there were.
  void noteFailure(std::string_view reason);
  void scheduleReconnect();
  void enqueueInternal(uint64_t step, std::string_view request);
  // Returns false when the reply failed the connection (the caller must stop using in_).
  bool handleInternalReply(uint64_t step, std::string_view reply);
  // checkRole(): false (and the connection failed) when ROLE's reply is not the primary's.
  bool checkPrimaryRole(std::string_view reply);
  // Answers the request whose reply is being dropped at limits.max_reply_bytes. Returns false
  // when that failed the connection.
  bool replyTooLarge();
  void markDirty();
  void armWrite(bool on);
  // The socket or, on TLS, the stream (upstream_tls.cc): recv/send results with errno set.
  bool startTls(std::string* err);
  ssize_t recvSome(char* buf, size_t cap);
  ssize_t sendSome(const char* buf, size_t len);
  void saveTlsSession();
  std::string ioError(std::string_view what) const;

  LoopContext& ctx_;
  config::UpstreamAddress addr_;  // changed only by retarget()
  const config::UpstreamConfig& cfg_;
  const config::Limits& limits_;
  State state_ = State::kIdle;
  bool down_ = false;            // set after a failure until the next successful handshake
  uint32_t handshake_left_ = 0;  // AUTH/SELECT replies still awaited this connection
  bool dirty_ = false;
  bool write_armed_ = false;
  bool learn_version_ = false;
  bool reconnect_ = true;
  uint64_t owner_id_ = 0;  // a dedicated connection's client: its upstream id is registered
  ReplySink* pipe_sink_ = nullptr;
  bool pipe_ = false;  // a pipe once setPipe was called
  bool handshake_ping_ = true;
  bool check_role_ = false;
  bool read_only_ = false;
  bool resp3_ = false;
  bool tracking_ = false;
  ReplySink* push_sink_ = nullptr;
  std::function<void()> on_reset_;
  bool fenced_ = false;           // setFenced(): down_ stays set while it is
  uint64_t handshake_bytes_ = 0;  // with check_role_: out-bytes of the handshake, sent alone
  bool auth_always_ = false;
  int fd_ = -1;
  event* rev_ = nullptr;
  event* wev_ = nullptr;
  Lookup lookup_;                     // the host name being looked up (connectNow)
  std::unique_ptr<tls::Stream> tls_;  // rediss://: set from connect to close
  bool read_wants_write_ = false;     // TLS: a read waits for the socket to take a write
  codec::Buffer out_;
  codec::Buffer in_;
  codec::ReplyParser parser_;
  uint64_t reply_limit_ = 0;  // the parser's max_reply_bytes (limits_ may change on reload)
  codec::Ring<Inflight> inflight_;
  size_t first_unsent_ = 0;     // index into inflight_ of the first request not fully written
  uint64_t queued_bytes_ = 0;   // cumulative bytes enqueued
  uint64_t written_bytes_ = 0;  // cumulative bytes written
  int64_t connect_started_ms_ = 0;
  int64_t last_progress_ms_ = 0;  // last read or write that moved bytes
  uint64_t attempts_ = 0;
  uint64_t rng_state_ = 1;  // xorshift state for reconnect jitter
  int64_t next_attempt_ms_ = 0;
  int64_t backoff_ms_ = 0;
  uint32_t failures_ = 0;    // since the last successful handshake
  std::string last_reason_;  // of the last failure logged
  int64_t down_since_ms_ = 0;
  int64_t last_failure_log_ms_ = 0;
  uint32_t failures_unlogged_ = 0;  // failures since the last line logged
  int64_t last_too_large_log_ms_ = -1;
  uint32_t too_large_unlogged_ = 0;
  std::string error_unavailable_;  // preformatted error replies
  std::string error_timeout_;
};

// Error reply bytes for an upstream condition: "-ERR corral: upstream <addr> <why>\r\n".
std::string upstreamError(std::string_view addr_text, std::string_view why);

}  // namespace corral::upstream
