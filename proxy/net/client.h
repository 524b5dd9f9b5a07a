// One client connection: framing, the session state machine, and replies in request order.
//
//   socket ──recv──> (worker scratch | in_) ──RequestParser──> handleRequest ──> dispatch
//     dispatch: classify (command_kind.h) ──> session step (session.h) ──> one route:
//       local answer ──> slot ready          shared connection ──> Connection::enqueue(seq)
//       dedicated connection (a pipe) ──> enqueueRaw; its frames come back in order and are
//       paired with this client's slots here (pushes and pub/sub messages go straight out)
//   replies ──> head slot? append to out_ : store in slot ──> written once a loop turn
//
// Every request takes a sequence number and a slot in pending_; replies are written only from
// the head, so a client sees replies in request order even when they come from different
// upstreams or from corral itself. Views into the input never outlive handleRequest: forwarding
// copies the frame into the upstream's out buffer.
//
// Where things are: client.cc (socket, framing, ordering, flushing, which shared connection a
// request goes on), client_near.cc (the near cache's reads and writes), client_session.cc
// (dispatch and the state machine's steps), client_dedicated.cc (the dedicated connection:
// pairing, pub/sub counts, deadlines, loss), client_local.cc (commands corral answers and
// AUTH), client_admin.cc (CLIENT LIST/KILL/INFO/UNBLOCK and ids), client_policy.cc and
// client_fill.cc (the policy engine and fills), reply_rewrite.cc (INFO, CONFIG GET, EXEC).
//
// Lifetime: a closed client is deleted by its worker once no upstream connection or fan-out
// still holds one of its requests (inflight_refs_ == 0).
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policies/command_batch.h"
#include "policies/decision.h"
#include "proxy/codec/buffer.h"
#include "proxy/codec/resp.h"
#include "proxy/codec/ring.h"
#include "proxy/net/armed.h"
#include "proxy/net/command_kind.h"
#include "proxy/net/passthrough.h"
#include "proxy/net/session.h"
#include "proxy/net/stats.h"
#include "proxy/tls/stream.h"
#include "proxy/upstream/upstream.h"

namespace corral::policies {
struct PolicyCounters;
struct FillPolicy;
struct FillOutcome;
class PolicySet;
}  // namespace corral::policies

namespace corral::net {

class Worker;
struct KillFilter;

// What corral does to the replies of a transaction's commands when EXEC answers (see
// reply_rewrite.cc): answers for its own commands, which were queued as a PING placeholder,
// CONFIG GET redaction, INFO's Proxy section, and a SELECT to follow.
struct TxEntry {
  enum class Kind : uint8_t { kLocal, kConfigGet, kInfo, kSelect };
  uint32_t index = 0;  // position in EXEC's reply array
  Kind kind = Kind::kLocal;
  int64_t db = 0;                 // kSelect
  std::vector<std::string> args;  // kLocal: the command, answered at EXEC
};
using TxPlan = std::vector<TxEntry>;

class Client final : public upstream::ReplySink {
 public:
  Client(Worker& worker, int fd, uint64_t id, std::string peer);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Replies corral changes on the way back (rare commands only; never GET/SET).
  enum class Rewrite : uint8_t {
    kNone,
    kInfo,          // INFO: corral's "# Proxy" section is added
    kConfigGet,     // CONFIG GET: corral's upstream secrets are blanked
    kExecAbort,     // EXEC of a dirty transaction was sent as DISCARD: EXECABORT
    kExec,          // EXEC with a TxPlan
    kSelect,        // SELECT on the dedicated connection: followed on +OK (Slot::arg = db)
    kProtocol,      // hidden HELLO sent upstream: an error ends the session (Slot::arg = ver)
    kTracking,      // CLIENT TRACKING: +OK turns tracking on/off (Slot::arg = on, redirect id)
    kTrackingInfo,  // CLIENT TRACKINGINFO: Redis's redirect id becomes corral's
    kReauth,        // hidden AUTH with the client's new credentials: an error ends the session
  };

  void start();  // begins reading
  // Before start(), for a client of a tls:// listener: every byte goes through its TLS stream,
  // whose handshake is done (handshaker.h).
  void adoptTls(std::unique_ptr<tls::Stream> stream) { tls_ = std::move(stream); }

  // upstream::ReplySink: replies of shared connections (by seq), and every frame of the
  // dedicated connection (kPipeFrame) and its end (kPipeClosed).
  void onUpstreamReply(uint64_t seq, std::string_view reply) override;
  // Passthrough: Redis's verdict on credentials this client gave (AuthChecks::check); the
  // request that gave them is parsed again now (client_passthrough.cc).
  void onAuthVerdict(const Sha256Digest& key, std::string_view reply);
  // Passthrough: what this client waited for (a verdict, a permission) is known; the waiting
  // request is parsed again.
  void onWaitOver();

  // Worker's end-of-turn write; returns false when the client closed.
  void flush();
  // Re-evaluates backpressure after replies drained; may parse input held while paused.
  void maybeResume();
  void closeNow(const char* why);
  void applyLimits(const codec::Limits& limits) { parser_.setLimits(limits); }
  // Drain (SIGTERM): see Event::kDrain.
  void beginDrain();
  // Worker tick: a request on the dedicated connection past its deadline ends it ("timeout").
  void checkDeadline(int64_t now_ms);
  // Worker tick: an idle client gives back its buffers.
  void releaseIdleMemory();
  // CLIENT LIST / CLIENT INFO line of this client (with "\n"), and CLIENT KILL's filter.
  void describe(std::string& out, std::string_view cmd_name = {}) const;
  bool matches(const KillFilter& f) const;
  // A CLIENT KILL from any client: closes once the current turn is over.
  void kill();
  // Delivers the answer of a request that waited on another thread (CLIENT LIST/KILL).
  void answerFanOut(uint64_t seq, std::string_view reply) {
    fanout_pending_ = false;
    onUpstreamReply(seq, reply);
  }

  bool closed() const { return fd_ < 0; }
  uint32_t inflightRefs() const { return inflight_refs_; }
  size_t pendingCount() const { return pending_.size(); }
  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }
  bool hasDedicated() const { return dedicated_ != nullptr; }
  SessionState sessionState() const { return st_; }
  int64_t lastActiveMs() const { return last_active_ms_; }

  // Worker bookkeeping.
  bool in_dirty_ = false;
  bool in_dead_ = false;
  size_t index_ = 0;  // position in Worker::all_clients_

 private:
  static constexpr uint16_t kNoCommand = Stats::kNoCommand;
  // Slot::flags.
  static constexpr uint8_t kSilent = 1;          // CLIENT REPLY OFF/SKIP: the reply is dropped
  static constexpr uint8_t kHidden = 2;          // corral's own follow-up: dropped, errors counted
  static constexpr uint8_t kOnDedicated = 4;     // paired with the dedicated connection's frames
  static constexpr uint8_t kSubscribing = 8;     // (P|S)(UN)SUBSCRIBE: confirmations are replies
  static constexpr uint8_t kFramesUnknown = 16;  // UNSUBSCRIBE with no channel: one frame each
  static constexpr uint8_t kMonitorOk = 32;      // MONITOR: its +OK starts the monitor stream

  static constexpr uint8_t kReady = 64;    // answered; waits for the slots before it
  static constexpr uint8_t kLooked = 128;  // its reply is looked at (fill, hit/miss, rewrite)
  // Slot::start_us of a blocking command (BLPOP, XREAD BLOCK, WAIT, ...): how long it waits is
  // the app's timeout, not latency, so it stays out of the histogram (blocking_requests counts
  // it). A value no clock gives, so a slot needs no extra field.
  static constexpr int64_t kUntimed = INT64_MIN;

  // What few slots need: a stored reply, a fill, a transaction's plan.
  struct SlotExtra {
    std::string reply;                   // kReady: the reply (empty when it is dropped)
    std::unique_ptr<FillReq> fill;       // a GET of a fill policy's key: miss -> fill
    std::unique_ptr<TxPlan> tx;          // EXEC: corral's part of the transaction's replies
    std::vector<std::string> near_keys;  // a write's near keys: dropped again when answered
  };
  // A request's place in the reply order. Empty while waiting: a reply for the head slot goes
  // straight to out_, so only a reply that overtakes the head is stored (in `extra`). Small and
  // trivially reset, since one is pushed and popped per request.
  struct Slot {
    std::unique_ptr<SlotExtra> extra;
    // A GET-like read of a policy key: its reply counts as the policy's hit or miss.
    policies::PolicyCounters* hitmiss = nullptr;
    int64_t start_us = 0;       // for the latency histogram; kUntimed: left out of it
    int64_t deadline_ms = -1;   // dedicated connection: when it times out (-1: never)
    int64_t arg = 0;            // the rewrite's argument
    uint32_t frames = 1;        // dedicated connection: reply frames still expected
    uint16_t cmd = kNoCommand;  // per-command counter slot, for errors
    Rewrite rewrite = Rewrite::kNone;
    uint8_t flags = 0;
    SlotExtra& more() {
      if (extra == nullptr) extra = takeExtra();
      return *extra;
    }
    // Ring::pop_front's reset: only what newSlot() does not set again.
    friend void recycle(Slot& s) {
      if (s.extra != nullptr) [[unlikely]] {
        s.giveBackExtra();
      }
    }
    // A reply that overtakes its head is stored (replies of several cluster nodes, fills): the
    // holders are kept per thread for the next one instead of freed (client.cc).
    static std::unique_ptr<SlotExtra> takeExtra();
    void giveBackExtra();
  };
  static thread_local std::vector<std::unique_ptr<SlotExtra>> spare_extras_;
  // A new slot at the back of pending_, for the request being handled (next_seq_ advanced);
  // every field but `extra` (left empty by recycle) is set here.
  Slot& newSlot(uint8_t flags);

  // Rarely used session state, allocated on first use so that idle clients stay small.
  struct Extras {
    std::string name;      // CLIENT SETNAME
    std::string user;      // the user the client logged in as (auth.users or passthrough)
    std::string lib_name;  // CLIENT SETINFO
    std::string lib_ver;
    TxPlan tx_plan;  // the transaction being queued
    // Near keys written on the dedicated connection (a transaction's, a WATCHer's): dropped
    // again once everything the client sent is answered (then the writes have run).
    std::vector<std::string> near_written;
    policies::CommandBatch tx_hidden;  // its follow-ups, sent after EXEC
    // upstream.cluster: what a transaction sent before its first key (MULTI and keyless
    // commands), replayed unseen on the first key's owner when the connection moves there.
    std::string tx_prefix;
    int64_t tracking_redirect = -1;  // -1 off; 0 on without REDIRECT; else corral's id
    int64_t soft_since_ms = -1;      // since when the output is above limits.pubsub_soft_bytes
    // read_your_writes: key -> until (loop ms). Bounded; when full of live entries, every
    // read goes to the primary until ryw_all_until.
    std::unordered_map<std::string, int64_t> ryw;
    int64_t ryw_all_until = 0;
    // Passthrough: Redis's verdicts for the credentials of the request being handled (one per
    // AUTH option of a HELLO at most), kept from its check until it has run.
    std::vector<std::pair<Sha256Digest, std::string>> verdicts;
  };
  Extras& extras();
  Armed& armed() { return worker_armed_; }

  // --- client.cc: socket, framing, ordering, flushing
  static void onEvent(evutil_socket_t fd, short what, void* arg);
  void onReadable();
  // Parses and handles requests in data[0, len); returns bytes consumed.
  size_t process(const char* data, size_t len);
  bool overLimits() const;
  void pauseReading();
  void setReadEnabled(bool on);
  void setWriteEnabled(bool on);
  void armEvent();  // one event for the socket: read (or only its close) and, when blocked, write
  // Queues a reply produced by corral (an error, PONG, ...), in order with forwarded ones.
  void replyLocal(std::string_view bytes);
  void replyError(std::string_view msg);  // msg without '-' and CRLF
  void replyArity(const commands::CommandInfo* cmd);
  void deliver(std::string_view bytes);  // append to out_ and mark dirty
  // A reply for pending_[idx]: out now if it is the head (then any ready ones behind it),
  // else kept in its slot.
  void place(uint64_t idx, std::string_view reply);
  void popAnswered();    // delivers the ready slots at the head
  void onAllAnswered();  // nothing is pending any more
  // Sends req on a shared connection with a slot for its reply.
  void forward(upstream::Connection* conn, const codec::Request& req, int64_t timeout_ms,
               Rewrite rewrite = Rewrite::kNone, int64_t arg = 0);
  // A plain command on shared connections (the dispatch fast path and routeShared): the near
  // cache for a GET armed for it, the cluster's router, else forward() on the client's pool.
  void forwardShared(const commands::CommandInfo* cmd, const codec::Request& req);
  // The shared connection for a command: the client's primary connection, a replica or another
  // db's pool, as the config and the policy's routing say; always its own user's pool when it
  // logged in as one (passthrough), whose reads stay on the primary.
  upstream::Connection* sharedConnection(const commands::CommandInfo* cmd);
  // The shared primary connection on the client's db (and user).
  upstream::Connection* primaryConnection();
  // RESP bytes of args, in the worker's scratch string (valid until the next use of it).
  std::string_view encode(const std::vector<std::string_view>& args);
  // What to send upstream for req: its own bytes, or a multibulk for an inline command.
  std::string_view wireBytes(const codec::Request& req);
  // forward()'s parts: the slot of a request sent upstream (its seq), and the error of one
  // that cannot be sent.
  uint64_t openSlot(Rewrite rewrite, int64_t arg, size_t bytes);
  void replyUnavailable(std::string_view error);
  // --- client_near.cc: the near cache
  // A read armed for the near cache: answered from memory, or sent on the tracking connection;
  // false when it must go the usual way (behind the client's writes, a read that does not
  // fill, or the tracking connection is down).
  bool forwardNear(const codec::Request& req);
  // True when every request still waiting for its reply only reads (or is answered already).
  bool onlyReadsPending();
  // A client held on a connection of its own for RESP3 alone, whose reads the near cache may
  // answer; and whether what it sends there must wait for a read due from the near cache.
  bool nearHeld() const;
  bool nearWaits();
  // After the policies decided: arms a near GET, drops the near keys of a write.
  void armNear(const commands::CommandInfo* cmd, const codec::Request& req,
               const policies::Decision& d);
  // upstream.cluster: forward() to the node that owns the request's slot (client_cluster.cc).
  // `cmd`: the request's command (null when unknown).
  void forwardToCluster(const commands::CommandInfo* cmd, const codec::Request& req,
                        int64_t timeout_ms, Rewrite rewrite, int64_t arg);
  // Its keyless part: true when answered or sent (corral's CLUSTER SLOTS with expose, SCAN
  // across the shards, a fan-out to every primary); false for any other keyless command.
  bool forwardKeyless(const commands::CommandInfo* cmd, const codec::Request& req,
                      int64_t timeout_ms, Rewrite rewrite, int64_t arg);

  // --- client_session.cc: dispatch and the state machine
  // Returns false when the request must wait until this client's earlier requests are
  // answered (moving to or from a dedicated connection keeps their order that way).
  bool handleRequest(const codec::Request& req);
  bool dispatch(const codec::Request& req);
  Event eventOf(const commands::CommandInfo* cmd, CommandKind kind, const codec::Request& req);
  // Carries out a step's route for the request.
  void route(const Step& s, const commands::CommandInfo* cmd, CommandKind kind,
             const codec::Request& req, Event ev);
  void routeShared(const commands::CommandInfo* cmd, CommandKind kind, const codec::Request& req);
  // After a change of db or user: primary_ and fixed_route_ follow.
  void bindShared();
  void setDb(int db) {
    db_ = db;
    bindShared();
  }
  // An event that is not a request (upstream, client, worker). Requests still waiting on a
  // dedicated connection that the step gives up get `error` (RESP bytes) as their reply.
  void sessionEvent(Event e, std::string_view error = {});
  void failDedicatedSlots(std::string_view error);
  // False (and an error replied) past upstream.max_dedicated. With a cluster, the connection
  // goes to the owner of the request's first key (any primary when it has none).
  bool acquireDedicated(const codec::Request& req, const commands::CommandInfo* cmd);
  void releaseDedicated();
  void refuse(const commands::CommandInfo* cmd, CommandKind kind, const codec::Request& req,
              Event ev);
  void contextError(const codec::Request& req);
  bool inMulti() const { return st_.tx == Tx::kMulti || st_.tx == Tx::kMultiDirty; }

  // --- client_dedicated.cc: the dedicated connection, a pipe paired here
  // Sends req on the dedicated connection with a slot that pairs its reply frames, and what a
  // transaction or a subscription needs around it.
  void sendDedicated(const codec::Request& req, const commands::CommandInfo* cmd, CommandKind kind);
  void sendDedicatedRaw(std::string_view bytes, uint8_t flags, Rewrite rewrite, int64_t arg,
                        int64_t timeout_ms, uint32_t frames);
  void onDedicatedFrame(std::string_view frame);
  void onDedicatedLost(std::string_view why);
  void answerDedicatedHead(std::string_view frame);
  // Subscription counts from a (un)subscribe confirmation (Redis's count is the total).
  void noteConfirmation(std::string_view kind, int64_t count);
  bool subscribedUpstream() const { return channels_ + patterns_ + shard_channels_ > 0; }
  bool overSubscriberLimits();  // closes the client and returns true past the limits
  int64_t blockingTimeout(const commands::CommandInfo* cmd, const codec::Request& req) const;

  // --- client_local.cc: commands corral answers, AUTH
  // Answers a command corral runs itself into `out` (RESP bytes); false when it is not one.
  bool runLocal(const commands::CommandInfo* cmd, CommandKind kind,
                const std::vector<std::string_view>& args, std::string& out);
  // Before authentication (auth.users configured): true when the request was answered.
  bool gateAuth(const commands::CommandInfo* cmd, CommandKind kind, const codec::Request& req);
  bool authenticate(std::string_view user, std::string_view password, std::string& out);
  void hello(const std::vector<std::string_view>& args, bool* ok, std::string& out);
  void helloReply(std::string& out) const;
  void reset();  // RESET: everything but the connection itself

  // --- client_passthrough.cc: AUTH checked by Redis (passthrough.h has the worker's side)
  // True when every verdict the request's credentials need is known (from an earlier check or
  // the cache); false when a check is running and the request must wait for it.
  // *logs_in: the request carries credentials.
  bool credentialsReady(CommandKind kind, const std::vector<std::string_view>& args, bool* logs_in);
  // Applies the verdict for these credentials: +OK logs the client in as that user (its pool,
  // and its dedicated connection, if any, logged in again); else Redis's reply goes into out.
  bool authenticatePassthrough(bool one_arg, std::string_view user, std::string_view password,
                               std::string& out);
  // CLIENT LIST/KILL of a client logged in as its own user: false while Redis is asked whether
  // its ACL allows it (the request waits); true once known, with *denial set to Redis's
  // -NOPERM reply (RESP bytes) when it does not.
  bool adminPermitted(CommandKind kind, std::string* denial);
  void dropUserPool();
  void clientReply(const std::vector<std::string_view>& args);

  // --- client_admin.cc: CLIENT LIST/INFO/KILL/UNBLOCK/GETREDIR/TRACKINGINFO, ids
  // CLIENT LIST/INFO/KILL/GETREDIR/TRACKINGINFO answered by corral into `out` (empty: the
  // answer comes later, through a fan-out over the workers); false when not one of them.
  bool clientAdminLocal(const commands::CommandInfo* cmd, CommandKind kind,
                        const std::vector<std::string_view>& args, std::string& out);
  // CLIENT UNBLOCK and CLIENT TRACKING with corral's ids translated, sent on the client's
  // connection; false when Redis should answer the command as it is.
  bool clientAdmin(const commands::CommandInfo* cmd, const codec::Request& req);
  void fanOut(std::function<void(Worker&, std::string&, int64_t&)> each,
              std::function<std::string(const std::string&, int64_t)> finish, std::string& out);

  // --- client_policy.cc: the policy engine
  // Runs the policy engine on a request, before anything of it is counted or done. False when
  // it must wait for a global rate limit's credits (nothing was decided: the client waits on
  // the worker's limit waiters and the request is parsed again when they are woken).
  bool decidePolicies(const commands::CommandInfo* cmd, const codec::Request& req);
  // Acts on that decision. Returns false when a policy refused it (the error is
  // already queued); otherwise *use is the request to send (req, or Armed::rewritten) and the
  // decision's follow-ups and routing hints are armed for forward().
  bool applyPolicies(const commands::CommandInfo* cmd, const codec::Request& req,
                     const codec::Request** use);
  void rejectByPolicy(std::string_view error);
  // Enqueues each command of a decision's batch on conn; their replies are swallowed (counted
  // when they are errors).
  void sendHidden(const policies::CommandBatch& batch, upstream::Connection* conn);
  // Who the client is for rate limits: AUTH user, else CLIENT SETNAME name, else peer IP.
  std::string_view identity() const;
  // read_your_writes: remembers a write / tells whether a read must go to the primary.
  void noteWrite(std::string_view key, int64_t window_ms);
  bool recentlyWritten(std::string_view key) const;

  // --- client_fill.cc: fills
  // The reply of a GET with a fill attached (Slot::fill): a hit is answered, a miss starts or
  // joins a fill; the slot stays pending until the fill answers.
  void onFillReply(uint64_t idx, uint64_t seq, std::string_view reply);
  void startFill(uint64_t seq, std::unique_ptr<FillReq> f, const std::string* stale);
  void onFillDone(uint64_t seq, const policies::FillOutcome& o);
  // MGET with fills: the misses among the fill keys are filled (a few at a time) and the
  // array is answered once all are back.
  void onMgetFillReply(uint64_t seq, std::unique_ptr<FillReq> f, std::string_view reply);
  struct MgetJob {
    uint64_t seq = 0;
    std::vector<std::string> elems;  // the reply's elements, misses replaced as fills answer
    std::vector<policies::FillPlan::Item> todo;  // the misses to fill
    size_t next = 0;                             // todo[next] is the next to start
    size_t running = 0;
    bool answered = false;
    std::shared_ptr<const policies::PolicySet> set;  // keeps the items' policies alive
  };
  void pumpMget(const std::shared_ptr<MgetJob>& job);
  // --- client_fill_hash.cc: HGETALL / HGET fills of hash policies (policies/fill_decode.h)
  // Whether this client's request may wait for the plan's fill (GET: RESP2 on shared
  // connections; hash reads: either protocol, RESP3 clients of a single Redis included).
  bool fillsHere(const policies::FillPlan& plan) const;
  // A RESP3 client's hash read with a fill armed, on its way to its own connection: sent on a
  // shared one instead (its reply is looked at there); false when it must go the usual way.
  bool forwardFillHeld(const commands::CommandInfo* cmd, const codec::Request& req);
  // Before the policies decide: such a read waits (true) while a request that may write is
  // still due on the client's own connection, so it can then take the shared one.
  bool fillHeldWaits(const commands::CommandInfo* cmd);
  void onHashFillReply(uint64_t seq, std::unique_ptr<FillReq> f, std::string_view reply);
  void onHashFillDone(uint64_t seq, const FillReq& f, const policies::FillOutcome& o);

  // --- reply_rewrite.cc
  // INFO plus corral's "# Proxy" section; CONFIG GET without corral's upstream secrets; EXEC
  // with corral's answers.
  std::string rewriteReply(Slot& slot, std::string_view reply);
  void appendProxyInfo(std::string& text);
  // EXEC's reply with corral's part of it (`queued`: the commands Redis queued).
  std::string rewriteExec(const TxPlan& plan, int64_t queued, std::string_view reply);

  Worker& worker_;
  Armed& worker_armed_;  // the worker's (armed.h)
  int fd_;
  uint64_t id_;
  std::string peer_;  // "1.2.3.4:5678", "[::1]:5678" or "unix"
  event* ev_ = nullptr;
  codec::Buffer in_;  // only bytes of a frame not yet complete (or held while paused)
  codec::Buffer out_;
  codec::RequestParser parser_;
  codec::Ring<Slot> pending_;
  const commands::CommandInfo* last_cmd_ = nullptr;   // lookup cache (plain commands only)
  const commands::CommandInfo* last_full_ = nullptr;  // the last command run (CLIENT LIST)
  uint64_t head_seq_ = 0;                             // sequence number of pending_.front()
  uint64_t near_fill_seq_ = 0;  // 1 + the slot of the last read sent on the near cache's connection
  uint64_t next_seq_ = 0;
  uint32_t inflight_refs_ = 0;  // requests held by upstream connections and fan-outs
  // Bytes of requests sent upstream since nothing was last pending (limits.max_pending_bytes).
  uint64_t pending_bytes_ = 0;
  uint32_t primary_slot_ = 0;
  // Worker::primaryFor(primary_slot_), or the user pool's connection on db_.
  upstream::Connection* primary_ = nullptr;
  // primary_ is where every shared command goes unless a policy routes it: the client has its
  // own user's pool, or is on the configured db without replicas.
  bool fixed_route_ = true;
  UserPools::Pool* user_pool_ = nullptr;  // passthrough: the user the client logged in as
  int64_t created_ms_ = 0;
  int64_t last_active_ms_ = 0;
  uint16_t cur_cmd_ = kNoCommand;  // the request being handled: its counter slot
  uint8_t cur_flags_ = 0;          // ... and kSilent when its reply must be dropped

  // Session (session.h): the state, and what it needs beside it.
  SessionState st_;
  bool authenticated_ = false;   // may run commands (Authenticator::gate() passed)
  bool checking_ = false;        // passthrough: waits for a verdict or a permission
  bool limit_replay_ = false;    // the request being parsed waited for global limit credits
  uint8_t proto_ = 2;            // RESP version the client speaks
  bool reply_off_ = false;       // CLIENT REPLY OFF
  bool reply_skip_ = false;      // CLIENT REPLY SKIP: the next command's reply is dropped
  bool monitoring_ = false;      // MONITOR confirmed: "+<timestamp> ..." lines are pushed
  bool waiting_ = false;         // paused until every earlier request is answered
  bool fanout_pending_ = false;  // a CLIENT LIST/KILL waits for the other workers' part
  bool read_enabled_ = false;
  bool write_enabled_ = false;
  bool paused_ = false;  // backpressure (or waiting_): not reading
  int db_ = 0;           // the client's SELECTed db
  // Subscriptions of the dedicated connection, from Redis's confirmations.
  uint32_t channels_ = 0;
  uint32_t patterns_ = 0;
  uint32_t shard_channels_ = 0;
  uint32_t tx_queued_ = 0;  // commands queued by Redis in the current transaction
  std::unique_ptr<upstream::Connection> dedicated_;
  // upstream.cluster (client_cluster.cc): the slot the dedicated connection serves, -1 while
  // none is known (bound at MULTI, SUBSCRIBE: to any primary).
  int dedicated_slot_ = -1;
  // upstream.cluster.expose: CLUSTER SLOTS/SHARDS/NODES answered with corral as the only node;
  // false for any other subcommand (it goes to the cluster).
  bool exposeCluster(std::string_view sub);
  // A request's policy follow-ups, each to the owner of its own first key (through the router:
  // redirected like the request).
  void sendHiddenBySlot();
  // The slot of a request's keys: -1 with none, -2 when they span slots.
  int clusterSlotOf(const commands::CommandInfo* cmd, const codec::Request& req);
  // After the state machine's step, for a request meant for the dedicated connection: true
  // when it must wait for the replies still due (the connection is about to move to its slot's
  // owner; or it changes between the dedicated and the shared connections, below).
  bool clusterWaits(const commands::CommandInfo* cmd, CommandKind kind, const codec::Request& req);
  // A RESP3 client holding subscriptions on one node's dedicated connection: a command on
  // another node's keys goes on the shared connections instead (never with WATCH, MULTI,
  // tracking or MONITOR, whose state lives on that one connection).
  bool clusterElsewhere(const commands::CommandInfo* cmd, CommandKind kind,
                        const codec::Request& req);
  // Before a request goes on the dedicated connection: false when it was answered or sent
  // elsewhere instead (CROSSSLOT, clusterElsewhere); may move a fresh transaction's connection
  // to the owner of its first key.
  bool clusterRouteDedicated(const commands::CommandInfo* cmd, CommandKind kind,
                             const codec::Request& req);
  std::unique_ptr<Extras> extras_;
  // --- client_tls.cc: the socket, or the TLS stream of a tls:// client. recv/send results
  // with errno set (EPROTO: the TLS stream failed; ioError() says why).
  ssize_t readSome(char* buf, size_t cap);
  ssize_t writeSome(const char* buf, size_t len);
  std::string ioError() const;
  std::unique_ptr<tls::Stream> tls_;

  friend class Worker;
};

}  // namespace corral::net
